"""Where slimcore's shipped files are: the sample models (weights, cards, the sentence set) sit in the package once
it is installed (slimcore/sample_models/), and at the top of a checkout (sample_models/) when run from a clone."""
from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def _first_dir(*candidates: Path) -> Path:
    return next((p for p in candidates if p.is_dir()), candidates[-1])


SAMPLE_DIR = _first_dir(_HERE / "sample_models", _HERE.parent / "sample_models")
# The folder that holds the slimcore package: what a worker process (a Ray task, the sandbox) needs on its import
# path to import slimcore, installed or in a checkout.
IMPORT_ROOT = _HERE.parent
