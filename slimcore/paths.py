"""Where slimcore's shipped files are: the sample models (weights, cards, the sentence set) sit in the package once
it is installed (slimcore/sample_models/), and at the top of a checkout (sample_models/) when run from a clone."""
from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def _first_dir(*candidates: Path) -> Path:
    return next((p for p in candidates if p.is_dir()), candidates[-1])


SAMPLE_DIR = _first_dir(_HERE / "sample_models", _HERE.parent / "sample_models")


def _site_dirs() -> set[Path]:
    import site
    import sysconfig

    dirs = [*site.getsitepackages(), site.getusersitepackages(), sysconfig.get_path("purelib"),
            sysconfig.get_path("platlib")]
    return {Path(d).resolve() for d in dirs if d}


# What a child process (the upload sandbox, ONNX Runtime's builder, a Ray worker) needs on its PYTHONPATH to import
# this slimcore: the checkout's root (or whatever folder slimcore sits in outside site-packages); None when slimcore
# is installed in a site-packages folder, which the child's interpreter finds by itself (put on PYTHONPATH, it would
# come before the standard library).
IMPORT_ROOT: Path | None = None if _HERE.parent in _site_dirs() else _HERE.parent


def child_env() -> dict[str, str]:
    """The environment variables a child process needs to import this slimcore ({} when installed)."""
    return {} if IMPORT_ROOT is None else {"PYTHONPATH": str(IMPORT_ROOT)}
