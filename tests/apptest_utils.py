"""Helpers for AppTest: run a page by absolute path and read the Plotly figures it drew."""
from __future__ import annotations

import base64
import json

import numpy as np
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT


def app(page: str = "app.py", timeout: float = 120) -> AppTest:
    """An AppTest of the app opened on a page ("views/1_Pruning.py"; app.py: the home), as a link to it would open
    it: app.py draws the frame (sidebar, teacher mode) and runs the page. Paths are relative to the repository root
    (AppTest resolves a relative path against the test file)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    if page != "app.py":
        at.switch_page(page)   # before the first run, by its file name: /Pruning for views/1_Pruning.py
    return at


def figures(at: AppTest) -> dict[str, dict]:
    """Plotly figures drawn in the last run, as JSON dicts, by their widget key (ids end in "-<key>")."""
    return {el.proto.id.split("-", 2)[-1]: json.loads(el.proto.spec) for el in at.get("plotly_chart")}


def array(value) -> np.ndarray:
    """A Plotly array from figure JSON: a plain list, or plotly's {"dtype", "bdata"} base64 encoding."""
    if isinstance(value, dict) and "bdata" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = value.get("shape")
        return flat.reshape([int(n) for n in str(shape).split(",")]) if shape else flat
    return np.asarray(value)


def metrics(at: AppTest) -> dict[str, str]:
    """Metric values by label."""
    return {m.label: m.value for m in at.metric}


def run_page(page: str) -> AppTest:
    """A page run once, checked to have raised nothing."""
    at = app(page).run()
    assert not at.exception, at.exception
    return at


def run_for_model(page: str, name: str) -> AppTest:
    """A page run once with a sample model chosen (as the sidebar would), checked to have drawn without errors."""
    at = app(page)
    at.session_state["model_name"] = name
    at.run()
    assert not at.exception and not at.error, (at.exception, at.error)
    return at


LINK_TIMEOUT = 900   # seconds for a page run opened by a link (run_link)


def run_link(page: str, timeout: float = LINK_TIMEOUT, **query: str) -> AppTest:
    """A page run once as a link would open it (?key=value...), checked to have drawn without errors."""
    at = app(page, timeout=timeout)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception and not at.error, (at.exception, at.error)
    return at
