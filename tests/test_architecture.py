"""House rules that can be checked: slimcore stays UI-free; no user-facing code unpickles arbitrary objects."""
import subprocess
import sys

from tests.conftest import ROOT


def test_slimcore_never_imports_streamlit():
    code = "import sys, slimcore, slimcore.plots; print('streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_no_unsafe_torch_load_outside_tests():
    offenders = [p for p in ROOT.rglob("*.py") if "tests" not in p.parts and "venv" not in str(p)
                 and "weights_only=False" in p.read_text()]
    assert offenders == []
