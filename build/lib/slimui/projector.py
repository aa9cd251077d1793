"""Projector mode's look: large type for a lecture hall and less padding, so the main slider and the main chart share
one screen. The pages do the rest when it is on (urlstate.projector()): their main chart right under the controls,
their introduction and long explanations left out (the expanders stay folded), the labels that say what is measured
and what is modelled kept."""
from __future__ import annotations

import streamlit as st

from . import urlstate

CSS = """
<style>
html { font-size: 20px; }
[data-testid="stMainBlockContainer"] { padding-top: 3.2rem; padding-bottom: 1rem; max-width: 100%; }
[data-testid="stMain"] h1 { font-size: 1.9rem; padding-top: 0; padding-bottom: 0.2rem; }
[data-testid="stMetricValue"] { font-size: 1.9rem; }
[data-testid="stMetricLabel"] p { font-size: 0.95rem; }
</style>
"""
CHART_HEIGHT = 320   # the main chart's height in projector mode (px): it shares the screen with the controls


def style() -> None:
    """Apply projector mode's style when it is on (the frame calls it once per run)."""
    if urlstate.projector():
        st.html(CSS)


def height(default: int) -> int:
    """A main chart's height: shorter in projector mode."""
    return min(default, CHART_HEIGHT) if urlstate.projector() else default
