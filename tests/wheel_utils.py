"""The package as pip builds it from this checkout, for the tests that check what an installed SlimLab does."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What the build reads: the packages and the files pyproject.toml maps into them (not the tests, caches or venv).
SOURCES = ["pyproject.toml", "README.md", "app.py", "slimcore", "slimui", "views", "lessons", ".streamlit",
           "sample_models"]


def build(work: Path) -> Path:
    """The wheel pip builds from a copy of the checkout's sources (an in-place build would write build/ into it)."""
    src, out = work / "src", work / "wheel"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=skip)
        else:
            src.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(src)], check=True, timeout=600, capture_output=True)
    return next(out.glob("slimlab-*.whl"))


def install(wheel: Path, site: Path) -> dict[str, str]:
    """Unpack the wheel into `site` (what pip install puts in site-packages) and return an environment whose Python
    imports slimcore and slimui from there only: the checkout is not on its path."""
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SLIMLAB_RESULTS")}
    return env | {"PYTHONPATH": str(site)}
