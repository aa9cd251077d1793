"""Session state: the chosen model (kept across pages), the shared sidebar, what a page reads from the frame, and
error display without tracebacks."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import streamlit as st

import slimcore
from slimcore import SampleError
from slimcore import upload as U

from . import cache, urlstate
from .safe import code, md  # noqa: F401  (pages name them state.md / state.code)

MODEL = "model_name"            # the chosen model; a plain key, so it survives page switches
MODEL_WIDGET = "model_select"   # the sidebar selectbox that edits it
UPLOADS = "my_uploads"          # this session's uploads: {content name: file name shown}
MODEL_NOTE = "model_note"       # why the link's ?model= was not taken (said once, on the next page drawn)


def current_model() -> str:
    """The chosen model name: session state, else a valid ?model= in the URL (a sample, or an upload still on the
    server), else the default."""
    if MODEL not in st.session_state:
        wanted = st.query_params.get("model") or ""   # "": no model asked for
        kept = U.is_upload(wanted) and cache.uploads().get(wanted) is not None
        if kept:
            my_uploads()[wanted] = "uploaded model (shared link)"  # not the uploader's file name: that is theirs
        st.session_state[MODEL] = wanted if wanted in slimcore.list_samples() or kept else slimcore.DEFAULT_SAMPLE
        if wanted and st.session_state[MODEL] != wanted:
            gone = " (an uploaded model is kept only while the server that read it runs)" if U.is_upload(wanted) else ""
            st.session_state[MODEL_NOTE] = (
                f"The link asks for the model {code(wanted)}, which this server does not have{gone}: showing "
                f"{slimcore.DEFAULT_SAMPLE} instead. Its models: {', '.join(slimcore.list_samples())}.")
    return st.session_state[MODEL]


def my_uploads() -> dict[str, str]:
    """This session's uploaded models, by content name, with the file name to show."""
    return st.session_state.setdefault(UPLOADS, {})


def label(name: str) -> str:
    """How to name a model in text: a sample's name, or this session's file name for an upload (markdown-safe)."""
    return md(my_uploads().get(name, "uploaded model")) if U.is_upload(name) else name


def choose(name: str) -> None:
    """Make a model the current one (in this session and in the URL)."""
    st.session_state[MODEL] = name
    st.query_params["model"] = name


def _on_pick() -> None:
    choose(st.session_state[MODEL_WIDGET])


def sidebar() -> cache.AnySample:
    """Draw the model picker and the model's headline in the sidebar; return the loaded (read-only) sample."""
    name = current_model()
    if note := st.session_state.pop(MODEL_NOTE, None):   # the link's model was not taken: said once
        st.warning(note)
    st.session_state[MODEL_WIDGET] = name  # re-seed the widget on every page so the choice persists
    names = slimcore.list_samples() + [n for n in my_uploads() if n not in slimcore.list_samples()]
    if name not in names:  # an upload reached by a link: offer it too
        names.append(name)
    shown = dict(my_uploads())  # the labels as they are now (format_func may be called later, elsewhere)
    st.sidebar.selectbox("Model", names, key=MODEL_WIDGET, on_change=_on_pick,
                         format_func=lambda n: f"{shown.get(n, 'uploaded model')} (upload)" if U.is_upload(n) else n,
                         help="The model every lab works on. Your choice is kept while you move between pages. "
                              "Upload your own on the home page.")
    st.query_params["model"] = name
    with friendly_errors():
        s = cache.sample(name)
        if getattr(s, "kind", "") == "text":
            st.sidebar.caption(f"**{name}** · pretrained sentence encoder · {s.card['architecture']} · "
                               f"{s.card['parameters']:,} parameters · evaluated on {len(s.test)} held-out sentences")
        else:
            st.sidebar.caption(f"**{md(my_uploads().get(name, name))}** · {s.card['architecture']} · "
                               f"{s.card['parameters']:,} parameters · test accuracy {s.card['test_accuracy']:.2%} on "
                               f"{len(s.test)} held-out examples")
        return s
    st.stop()


def require_layers(s: cache.AnySample, lab: str) -> None:
    """Stop a lab's page, with the reason, for a model it cannot work on (one without Linear or Conv layers)."""
    if not slimcore.family_of(s).layers(s.model):
        from slimcore.graph import NO_LAYERS

        st.info(f"The {lab} lab does not apply to this model: {NO_LAYERS}.")
        st.stop()


class Frame(NamedTuple):
    """What a page reads from the frame app.py draws around it: the chosen model and whether teacher mode is on."""

    sample: cache.AnySample   # loaded, shared and read-only
    teacher: bool


def current() -> Frame:
    """The model the sidebar chose in this run (already loaded by it) and the teacher flag: `s, teacher = current()`."""
    with friendly_errors():
        return Frame(cache.sample(current_model()), urlstate.teacher())


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
