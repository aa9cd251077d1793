"""Session state: the chosen model (kept across pages), the shared sidebar, and error display without tracebacks."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import streamlit as st

import slimcore
from slimcore import Sample, SampleError

from . import cache

MODEL = "model_name"            # the chosen model; a plain key, so it survives page switches
MODEL_WIDGET = "model_select"   # the sidebar selectbox that edits it


def current_model() -> str:
    """The chosen model name: session state, else a valid ?model= in the URL, else the default."""
    if MODEL not in st.session_state:
        wanted = st.query_params.get("model")
        st.session_state[MODEL] = wanted if wanted in slimcore.list_samples() else slimcore.DEFAULT_SAMPLE
    return st.session_state[MODEL]


def _on_pick() -> None:
    st.session_state[MODEL] = st.session_state[MODEL_WIDGET]
    st.query_params["model"] = st.session_state[MODEL]


def sidebar() -> Sample:
    """Draw the model picker and the model's headline in the sidebar; return the loaded (read-only) sample."""
    name = current_model()
    st.session_state[MODEL_WIDGET] = name  # re-seed the widget on every page so the choice persists
    names = slimcore.list_samples()
    st.sidebar.selectbox("Model", names, key=MODEL_WIDGET, on_change=_on_pick,
                         help="The model every lab works on. Your choice is kept while you move between pages.")
    st.query_params["model"] = name
    with friendly_errors():
        s = cache.sample(name)
        st.sidebar.caption(f"**{name}** · {s.card['architecture']} · {s.card['parameters']:,} parameters · "
                           f"test accuracy {s.card['test_accuracy']:.2%} on {len(s.test)} held-out examples")
        return s
    st.stop()


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Show a clear message instead of a traceback, then stop the page run."""
    try:
        yield
    except SampleError as e:
        st.error(f"This model cannot be loaded: {e}")
        st.stop()
    except (ValueError, KeyError) as e:
        st.error(f"{e}")
        st.stop()
