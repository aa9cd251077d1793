"""The warm-up prepares exactly what the pages ask for on a first visit: after it, opening every page of a sample
submits no job the warm-up did not already run (so no visitor waits for a default view)."""
import pytest

from tests.apptest_utils import app

PAGES = ["app.py", "views/1_Pruning.py", "views/2_Quantization.py", "views/3_Distillation.py",
         "views/4_Trade-offs.py", "views/5_Sensitivity.py"]


def _pages_after_warmup(name: str) -> set[str]:
    from slimui import warmup, work

    w = work.worker()
    assert w.inline   # the tests run jobs in the caller
    assert warmup.prepare(name) == []
    warmed = {k for k, state in w.known().items() if state == "done"}
    asked = set()
    for page in PAGES:
        before = set(w.known())
        at = app(page, timeout=600)
        at.session_state["model_name"] = name
        at.run()
        assert not at.exception and not at.error, (page, at.exception, at.error)
        asked |= set(w.known()) - before
    return asked - warmed


def test_every_default_view_of_a_classifier_is_warmed():
    assert _pages_after_warmup("digits-mlp") == set()


@pytest.mark.slow
def test_every_default_view_of_the_encoder_is_warmed():
    assert _pages_after_warmup("minilm") == set()
