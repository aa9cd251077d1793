"""House rules that can be checked: slimcore stays UI-free; no user-facing code unpickles arbitrary objects."""
import subprocess
import sys

from tests.conftest import ROOT


def test_slimcore_never_imports_streamlit():
    code = ("import sys, pkgutil, importlib, slimcore\n"
            "for m in pkgutil.iter_modules(slimcore.__path__): importlib.import_module('slimcore.' + m.name)\n"
            "print('streamlit' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# Files allowed a full unpickle, each for a reason: never of a file that came from outside the process tree.
TRUSTED_PICKLES = {
    "slimcore/ort_int8.py": "its child process reads the job its parent wrote a moment before in a private (0700) "
                            "temporary folder: the lab's own model objects, never a user's file",
}


def test_no_unsafe_torch_load_outside_tests():
    skip = {"tests", "build", ".git", ".venv", "venv"}   # build/: copies `pip install .` leaves in a clone
    offenders = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py")
                 if not skip & set(p.relative_to(ROOT).parts) and "weights_only=False" in p.read_text()]
    assert sorted(set(offenders) - set(TRUSTED_PICKLES)) == []
    text = (ROOT / "slimcore/ort_int8.py").read_text()
    assert text.count("weights_only=False") == 1 and "TemporaryDirectory(" in text   # the one job file, as said


def test_pages_are_thin():
    for page in [ROOT / "app.py", *sorted((ROOT / "views").glob("*.py"))]:
        assert len(page.read_text().splitlines()) <= 250, \
            f"{page.name} is over 250 lines: move logic to slimcore/slimui"
