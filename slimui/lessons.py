"""Guided lessons: short sequences of steps on the real labs, written as YAML files (lessons/*.yaml), so a teacher
writes one without Python (lessons/README.md gives the format).

A step opens a lab at a setting through the link (`/Pruning?model=digits-cnn&prune_ratio=0.9&lesson=...&step=2`),
asks the student to predict a figure (a choice, or a number) and only then reveals the figure the lab measured at
that setting, with two or three sentences on why. The answer is never written in the file: a choice is right
because the measured figure falls in its range (`min`, `max`) or satisfies its comparison (`when: thin_bytes <
dense_bytes`); a number is compared with the measurement. Figures are the labs' own (the same functions as their
headline metrics and the A/B table: slimui.pruning.figures, slimui.quant.figures, ...).

The app's frame calls `enter()` before the page runs: when the link names a lesson step the session has not opened
yet, the lab's settings the session holds are dropped, so the link's (the step's) are taken. A lab page then calls
`banner(lab, figures)` after its controls.
"""
from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st
import yaml

from . import compare, paths, urlstate
from .compare import Figure
from .safe import code, md, prose

FOLDER = paths.LESSONS
ENV = "SLIMLAB_LESSONS"    # another folder of lesson files (a teacher's), read besides the shipped ones
LABS = {"Pruning": "views/1_Pruning.py", "Quantization": "views/2_Quantization.py",
        "Distillation": "views/3_Distillation.py", "Trade-offs": "views/4_Trade-offs.py",
        "Sensitivity": "views/5_Sensitivity.py"}
MAX_BYTES = 64 * 1024      # a lesson file larger than this is not read
# The figures each lab offers a lesson (its figures() functions; lessons/README.md lists them for teachers). A step's
# figure and the figures its comparisons name must be the lab's.
FIGURES = {
    "Pruning": {"score", "nonzeros", "removed", "dense_bytes", "dense_share", "sparse_bytes", "most_removed",
                "least_removed", "thin_bytes", "thin_share", "thin_params", "speedup_masked", "speedup_thin"},
    "Quantization": {"score", "size_bytes", "smaller", "sqnr", "worst_sqnr", "int8_score", "int8_bytes",
                     "int8_smaller", "int8_speedup"},
    "Distillation": {"top_prob", "top_prob_t1", "second_prob", "entropy_bits", "score", "params", "scratch", "gain",
                     "scarce_distilled", "scarce_scratch", "scarce_gain", "dark_recall_distilled",
                     "dark_recall_scratch", "weak", "strong"},
    "Trade-offs": {"configurations", "frontier", "best_bytes", "best_score", "pipeline_bytes", "pipeline_score"},
    "Sensitivity": {"drop", "test", "bytes", "uniform_drop"},
}
APPLIED = "lesson_applied"    # session: the (lesson, step) whose view was last applied
REVEALED = "lesson_revealed"  # session: the (lesson, step)s revealed
_COMPARISON = re.compile(r"^\s*(?:(-?\d+(?:\.\d+)?)\s*\*\s*)?([a-z_][a-z0-9_]*|-?\d+(?:\.\d+)?)\s*"
                         r"(<=|>=|<|>)\s*(?:(-?\d+(?:\.\d+)?)\s*\*\s*)?([a-z_][a-z0-9_]*|-?\d+(?:\.\d+)?)\s*$")


class LessonError(ValueError):
    """A lesson file that cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Option:
    """One answer to choose: right when the measured figure is within [lo, hi) or the comparison `when` holds."""

    label: str
    lo: float | None = None
    hi: float | None = None
    when: str | None = None


@dataclass(frozen=True)
class Number:
    """A number to predict: entered in `unit` (the figure times `scale`: 100 for a percent), between lo and hi."""

    lo: float
    hi: float
    step: float = 1.0
    scale: float = 1.0
    unit: str = ""


@dataclass(frozen=True)
class Step:
    lab: str
    title: str
    settings: tuple[tuple[str, Any], ...]   # the lab's settings by URL key (the rest at their defaults)
    look: str                               # what to look at (markdown)
    question: str
    figure: str                             # the figure the question is about (a key of the lab's figures)
    options: tuple[Option, ...] = ()
    number: Number | None = None
    explain: str = ""                       # why, shown with the measured answer


@dataclass(frozen=True)
class Lesson:
    id: str
    title: str
    summary: str
    model: str
    steps: tuple[Step, ...]
    source: str = ""
    order: float = 100.0   # place on the Lessons page (then the id)


# --------------------------------------------------------------------------------------------- reading files

def _text(data: Mapping, key: str, where: str, required: bool = True, limit: int = 2000) -> str:
    value = data.get(key, "")
    if required and (not isinstance(value, str) or not value.strip()):
        raise LessonError(f"{where}: '{key}' must be a non-empty text")
    if not isinstance(value, str) or len(value) > limit:
        raise LessonError(f"{where}: '{key}' must be a text of at most {limit} characters")
    return value.strip()


def _number(value: Any, what: str) -> float:
    try:
        ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(float(value))
    except OverflowError:   # an integer of hundreds of digits
        ok = False
    if not ok:
        raise LessonError(f"{what} must be a number")
    return float(value)


def _option(data: Any, where: str) -> Option:
    if not isinstance(data, Mapping):
        raise LessonError(f"{where}: an option is a mapping with a label and min/max or when")
    unknown = set(data) - {"label", "min", "max", "when"}
    if unknown:
        raise LessonError(f"{where}: unknown option field(s) {', '.join(sorted(map(str, unknown)))}")
    lo = _number(data["min"], f"{where}: min") if "min" in data else None
    hi = _number(data["max"], f"{where}: max") if "max" in data else None
    when = data.get("when")
    if when is not None and (not isinstance(when, str) or not _COMPARISON.match(when)):
        raise LessonError(f"{where}: 'when' must compare figures or numbers, like 'thin_bytes < dense_bytes' or "
                          "'score >= 0.5 * other'")
    if when is not None and (lo is not None or hi is not None):
        raise LessonError(f"{where}: an option has a range (min/max) or a comparison (when), not both")
    if when is None and lo is None and hi is None:
        raise LessonError(f"{where}: an option needs min, max or when (else it is always right)")
    return Option(_text(data, "label", where, limit=200), lo, hi, when)


def _operands(when: str) -> list[str]:
    """The figure names a comparison reads."""
    m = _COMPARISON.match(when)
    assert m is not None   # _option checked it
    return [v for v in (m.group(2), m.group(5)) if v and not re.fullmatch(r"-?\d+(?:\.\d+)?", v)]


def _step(data: Any, where: str) -> Step:
    if not isinstance(data, Mapping):
        raise LessonError(f"{where}: a step is a mapping")
    unknown = set(data) - {"lab", "title", "settings", "look", "question", "figure", "options", "number", "explain"}
    if unknown:
        raise LessonError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    lab = data.get("lab")
    if lab not in LABS:
        raise LessonError(f"{where}: 'lab' must be one of {', '.join(LABS)}")
    settings = data.get("settings") or {}
    if not isinstance(settings, Mapping) or not all(isinstance(k, str) for k in settings):
        raise LessonError(f"{where}: 'settings' maps the lab's setting names to values")
    for k, v in settings.items():
        if not (isinstance(v, (str, int, float, bool)) or (isinstance(v, list) and all(
                isinstance(x, (str, int, float)) for x in v))):
            raise LessonError(f"{where}: setting {k!r} must be a text, a number, true/false or a list")
    options = data.get("options") or []
    if not isinstance(options, list):
        raise LessonError(f"{where}: 'options' is a list")
    number = None
    if "number" in data:
        n = data["number"]
        if not isinstance(n, Mapping) or "min" not in n or "max" not in n:
            raise LessonError(f"{where}: 'number' needs min and max (and may give step, scale, unit)")
        number = Number(_number(n["min"], f"{where}: number min"), _number(n["max"], f"{where}: number max"),
                        _number(n.get("step", 1), f"{where}: number step"),
                        _number(n.get("scale", 1), f"{where}: number scale"), str(n.get("unit", ""))[:12])
        if not number.lo < number.hi:
            raise LessonError(f"{where}: number min must be below max")
        if not (number.step > 0 and number.scale > 0):
            raise LessonError(f"{where}: number step and scale must be above 0")
    if bool(options) == (number is not None):
        raise LessonError(f"{where}: a question has either options or a number")
    figure = _text(data, "figure", where, limit=60)
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", figure):
        raise LessonError(f"{where}: 'figure' is a figure's key, like score or thin_bytes")
    parsed = tuple(_option(o, f"{where}, option {i + 1}") for i, o in enumerate(options))
    not_figures = sorted({figure, *(k for o in parsed if o.when for k in _operands(o.when))} - FIGURES[lab])
    if not_figures:
        raise LessonError(f"{where}: the {lab} lab has no figure {', '.join(not_figures)}; its figures: "
                          f"{', '.join(sorted(FIGURES[lab]))}")
    return Step(lab, _text(data, "title", where, limit=120), tuple(settings.items()), _text(data, "look", where),
                _text(data, "question", where, limit=400), figure, parsed, number, _text(data, "explain", where))


def parse(lesson_id: str, data: Any, source: str = "") -> Lesson:
    """A lesson from its YAML data (already parsed), checked field by field."""
    where = source or lesson_id
    if not isinstance(data, Mapping):
        raise LessonError(f"{where}: a lesson file is a mapping with title, summary, model and steps")
    unknown = set(data) - {"title", "summary", "model", "steps", "order"}
    if unknown:
        raise LessonError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    steps = data.get("steps")
    if not isinstance(steps, list) or not 1 <= len(steps) <= 20:
        raise LessonError(f"{where}: 'steps' is a list of 1 to 20 steps")
    order = _number(data.get("order", 100), f"{where}: order")
    return Lesson(lesson_id, _text(data, "title", where, limit=120), _text(data, "summary", where, limit=600),
                  _text(data, "model", where, limit=200),
                  tuple(_step(s, f"{where}, step {i + 1}") for i, s in enumerate(steps)), source, order)


def read(path: Path) -> Lesson:
    """A lesson file (YAML, safe loader: no code runs), its id the file name."""
    lesson_id = path.stem
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,60}", lesson_id):
        raise LessonError(f"{path.name}: a lesson's file name is lower case letters, digits and dashes")
    if path.stat().st_size > MAX_BYTES:
        raise LessonError(f"{path.name}: larger than {MAX_BYTES // 1024} KiB")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except Exception as e:   # YAMLError, UnicodeDecodeError, or a number too long for Python to read (ValueError)
        raise LessonError(f"{path.name}: not valid YAML ({type(e).__name__})") from None
    return parse(lesson_id, data, path.name)


def folders() -> list[Path]:
    extra = os.environ.get(ENV)
    return [FOLDER] + ([Path(extra)] if extra else [])


def load_all() -> tuple[dict[str, Lesson], list[str]]:
    """Every lesson in the lesson folders by id (in their `order`, then by name), and the files that could not be
    read, each with why."""
    found: dict[str, Lesson] = {}
    problems = []
    for folder in folders():
        for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
            try:
                lesson = read(path)
                found[lesson.id] = lesson
            except LessonError as e:
                problems.append(str(e))
            except Exception as e:   # one unreadable file never takes the others down
                problems.append(f"{path.name}: cannot be read ({type(e).__name__})")
    return {k: v for k, v in sorted(found.items(), key=lambda kv: (kv[1].order, kv[0]))}, problems


@st.cache_data(show_spinner=False, ttl=5)
def lessons() -> tuple[dict[str, Lesson], list[str]]:
    return load_all()


# ------------------------------------------------------------------------------------------------- answers

def _operand(name: str, figures: Mapping[str, Figure]) -> float | None:
    try:
        return float(name)
    except ValueError:
        fig = figures.get(name)
        return None if fig is None or not isinstance(fig.value, (int, float)) else float(fig.value)


def holds(when: str, figures: Mapping[str, Figure]) -> bool | None:
    """Whether a comparison holds on the measured figures (None: a figure it names is not there)."""
    m = _COMPARISON.match(when)
    if m is None:
        raise LessonError(f"not a comparison: {when!r}")
    k1, a, op, k2, b = m.groups()
    left, right = _operand(a, figures), _operand(b, figures)
    if left is None or right is None:
        return None
    left, right = left * float(k1 or 1), right * float(k2 or 1)
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]


def right_options(step: Step, figures: Mapping[str, Figure]) -> list[int] | None:
    """The indices of the options the measurement makes right (None: the figures are not there yet)."""
    value = figures.get(step.figure)
    out = []
    for i, o in enumerate(step.options):
        if o.when is not None:
            ok = holds(o.when, figures)
            if ok is None:
                return None
        else:
            if value is None:
                return None
            v = float(value.value)
            ok = (o.lo is None or v >= o.lo) and (o.hi is None or v < o.hi)
        if ok:
            out.append(i)
    return out


def _raw(value: Any) -> str | list[str]:
    """A step's setting as its link writes it (what the lab's urlstate reads)."""
    if isinstance(value, list):
        return [str(v) for v in value]
    return ("1" if value else "0") if isinstance(value, bool) else str(value)


def link(lesson: Lesson, index: int) -> tuple[str, dict[str, str | list[str]]]:
    """The page and query of a lesson's step (index from 0): the model, the step's settings, the lesson."""
    step = lesson.steps[index]
    query: dict[str, str | list[str]] = {"model": lesson.model}
    for key, value in step.settings:
        query[key] = _raw(value)
    return LABS[step.lab], query | {"lesson": lesson.id, "step": str(index + 1)}


def url(lesson: Lesson, index: int) -> str:
    """A step as a link (relative to the server): what a teacher shares."""
    from urllib.parse import urlencode

    page, query = link(lesson, index)
    title = next(t for t, p in LABS.items() if p == page)
    return f"/{title}?{urlencode(query, doseq=True)}"


# ----------------------------------------------------------------------------------------------------- pages

def _requested() -> tuple[Lesson, int] | None:
    """The lesson step the link names, when it exists."""
    lesson_id, raw = st.query_params.get("lesson"), st.query_params.get("step", "1")
    if not lesson_id:
        return None
    found, _ = lessons()
    lesson = found.get(lesson_id)
    if lesson is None or not re.fullmatch(r"[0-9]{1,3}", raw) or not 1 <= int(raw) <= len(lesson.steps):
        return None
    return lesson, int(raw) - 1


def enter() -> None:
    """Before the sidebar and the page: when the link opens a lesson step this session has not applied, drop the
    model and the labs' settings the session holds, so the link's are taken (the step's view, every other setting
    at its default)."""
    asked = _requested()
    if asked is None:
        return
    lesson, index = asked
    if st.session_state.get(APPLIED) == (lesson.id, index):
        return
    st.session_state[APPLIED] = (lesson.id, index)
    from .state import MODEL

    for key in {MODEL, *urlstate.seen_keys(), *(k for k, _ in lesson.steps[index].settings)}:
        st.session_state.pop(key, None)
    compare.unpin_all()   # a step is its own view: no A/B comparison pinned before it


def _wanted(step: Step) -> tuple[dict[str, Any], list[str]]:
    """The step's settings as the page's controls take them, and the names the page has no such setting for."""
    spec = urlstate.page_spec()
    wanted, unknown = {}, []
    for key, value in step.settings:
        p = spec.params.get(key)
        if p is None:   # no such setting here
            unknown.append(key)
            continue
        try:
            wanted[key] = p.read(_raw(value))[0]
        except (AttributeError, TypeError, urlstate.Invalid):   # a value it cannot take (a list for one value)
            unknown.append(key)
    return wanted, unknown


def _moved(wanted: Mapping[str, Any]) -> list[str]:
    """The step's settings the controls no longer show (the student moved them)."""
    spec = urlstate.page_spec()
    return [k for k, v in wanted.items()
            if spec.params[k].write(st.session_state.get(k, spec.params[k].default)) != spec.params[k].write(v)]


def _back(wanted: Mapping[str, Any]) -> None:
    st.session_state.update(wanted)


def banner(lab: str, figures: Callable[[], Mapping[str, Figure] | None]) -> None:
    """The current lesson step, when the link names one on this lab: what to look at, the question, the student's
    prediction, and once it is revealed, the measured answer and why. Until then the page stops under the banner, so
    the figure asked about is not on the screen before the prediction. `figures` gives the lab's figures at the
    setting shown (None: not measured yet)."""
    asked = _requested()
    if asked is None:
        if st.query_params.get("lesson"):
            st.info("The lesson in the link is not on this server (or has no such step): see the Lessons page.")
        return
    lesson, index = asked
    step = lesson.steps[index]
    if step.lab != lab:
        return
    n = len(lesson.steps)
    key = (lesson.id, index)
    done = st.session_state.setdefault(REVEALED, set())
    with st.container(border=True, key="lesson_banner"):
        st.markdown(f"🎓 **{md(lesson.title)}** · step {index + 1} of {n}: **{md(step.title)}**")
        st.progress((index + 1) / n)
        st.markdown(prose(step.look))
        wanted, unknown = _wanted(step)
        if unknown:
            st.warning("This lesson step names settings the lab does not have here (or values it cannot take): "
                       + ", ".join(code(k) for k in unknown) + ". Tell the lesson's author.")
        if moved := _moved(wanted):
            st.warning("You moved " + ", ".join(code(k) for k in moved) + " away from this step's setting: the "
                       "answer below is measured at the setting shown now.")
            st.button("Back to the step's setting", key="lesson_back", on_click=_back, args=(wanted,))
        widget = f"lesson_{lesson.id}_{index}"
        st.markdown(f"**Predict first:** {prose(step.question)}")
        pick: float | None   # an option's index, or the number predicted
        if step.options:
            pick = st.radio("Your prediction", range(len(step.options)), index=None, key=widget,
                            format_func=lambda i: md(step.options[i].label))
        else:
            num = step.number
            assert num is not None   # a step without options has a number (parse checks)
            pick = st.number_input(f"Your prediction{f' ({md(num.unit.strip())})' if num.unit else ''}", num.lo,
                                   num.hi, value=None, step=num.step, key=widget)
        if st.button("Reveal the measured answer", key="lesson_reveal", disabled=pick is None,
                     help="Make a prediction first."):
            done.add(key)
        revealed = key in done and pick is not None
        if revealed:
            _reveal(step, pick, figures())
        nav = st.columns(3)
        if index > 0:
            page, query = link(lesson, index - 1)
            nav[0].page_link(page, label="← Previous step", query_params=query)
        if index + 1 < n:
            page, query = link(lesson, index + 1)
            nav[1].page_link(page, label="Next step →", query_params=query)
        else:
            nav[1].page_link("views/6_Lessons.py", label="Lesson done: back to the lessons ✓")
        nav[2].page_link("views/6_Lessons.py", label="All lessons")
    if not revealed:
        st.caption("The lab's figures appear below once you have made your prediction and revealed the answer.")
        st.stop()


def _reveal(step: Step, pick: Any, figures: Mapping[str, Figure] | None) -> None:
    fig = (figures or {}).get(step.figure)
    right = right_options(step, figures) if figures is not None and step.options else None
    if fig is None or (step.options and right is None):
        st.info("The answer is being measured on this page (or needs a button below, e.g. Train or Run): it appears "
                "here as soon as it is there.")
        return
    st.markdown(f"**Measured:** {md(fig.label)} = **{fig.text()}** ({md(fig.note)}, at the setting shown).")
    if step.options:
        assert right is not None   # returned above when it is None
        names = " / ".join(md(step.options[i].label) for i in right) or "none of the options"
        if pick in right:
            st.success(f"Your prediction, *{md(step.options[pick].label)}*, is right.")
        else:
            st.error(f"Your prediction was *{md(step.options[pick].label)}*; the measurement says: *{names}*.")
    else:
        num = step.number
        assert num is not None   # a step without options has a number (parse checks)
        measured = float(fig.value) * num.scale
        off = float(pick) - measured
        unit = md(num.unit)
        st.info(f"You predicted **{pick:g}{unit}**; measured **{measured:.3g}{unit}** ({off:+.3g}{unit} off).")
    st.markdown(prose(step.explain))
