"""Shareable state: a lab's settings mirrored in the URL query string, so a link reproduces the view; and teacher
mode (?teacher=1), which hides the advanced controls and uses their defaults.

A page declares its URL-backed widget keys once, with their type, allowed values and default:

    URL = urlstate.Spec(urlstate.Float("prune_ratio", 0.5, 0.0, 0.99, 0.01),
                        urlstate.Choice("prune_method", list(P.METHODS)),
                        urlstate.Int("prune_steps", 5, 1, 20, advanced=True))
    URL.load()   # before the widgets: seed session state from valid URL values (or the defaults), say what was ignored
    ...          # the widgets: key=..., and no value=/default= (their value is already in session state)
    URL.save()   # after them: the current values back into st.query_params

Session state wins over the URL once a key is set (a value sent by another page, or the widget's own state), except
when the browser's back/forward buttons changed the URL: then the URL is the view to restore. Values equal to their
default are left out of the URL; floats are written rounded to the widget's step, booleans as 1/0, choices as short
tokens ("per channel" -> per-channel).

One setting has one key whatever the model: a lab declares the same key for the same setting on every family (its
range or options may differ; a value that does not fit the other family's widget falls back to the default). The
keys the text labs used before (text_bits, ...) are still read: rename_old_keys() rewrites them in the URL.
"""
from __future__ import annotations

import math
import numbers
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from .safe import code

TEACHER = "teacher"              # plain session key (survives page switches, like state.MODEL) and URL key
TEACHER_WIDGET = "teacher_mode"  # the sidebar toggle that edits it
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
GRANULARITY = {True: "per-channel", False: "per-tensor"}   # a per-channel switch (1/0) as a granularity choice
# Old key -> its key now, for links made before the text labs used the classifier labs' keys (text_bits=4 ->
# bit_width=4); a per-channel switch became the granularity choice.
RENAMED = {"text_prune_ratio": "prune_ratio", "text_prune_kind": "prune_kind", "text_prune_layer": "prune_layer",
           "text_bits": "bit_width", "text_per_channel": "granularity", "text_quant_layer": "quant_layer",
           "text_layers": "student_layers", "text_temperature": "temperature", "text_alpha": "mse_weight",
           "text_epochs": "epochs", "text_lr": "lr", "text_batch": "batch_size", "text_seed": "seed",
           "text_sens_kind": "sens_kind", "text_sens_ratio": "sens_ratio", "text_sens_bits": "sens_bits",
           "text_sens_per_channel": "sens_granularity"}
SWITCHED = {"text_per_channel", "text_sens_per_channel"}   # old 1/0 switches, now a GRANULARITY choice
# The text Distillation lab's alpha weighed the embedding MSE (text_alpha, then mse_weight); one DistillConfig now
# has alpha weigh the teacher's soft term in every family, the MSE getting 1 - alpha: an old value a is read as 1 - a.
FLIPPED = {"mse_weight": "alpha"}   # applied after RENAMED (text_alpha -> mse_weight -> alpha)


PAGE_SPEC = "_page_spec"   # session key: the Spec the page now running loaded (one per page run)


SEEN = "_url_keys"         # session key: every lab setting key a page has declared in this session


def seen_keys() -> set[str]:
    """The lab settings declared in this session so far (what a lesson step resets to take its link's values)."""
    return set(st.session_state.get(SEEN, ()))


def page_spec() -> Spec:
    """The settings of the page now running: the Spec its controls loaded this run (a page loads one)."""
    return st.session_state[PAGE_SPEC]


class Invalid(ValueError):
    """A URL value that cannot be used; the message says why, in a few words."""


def token(option: Any) -> str:
    """The URL form of a choice: lower case, runs of other characters as one '-' ('per channel' -> 'per-channel')."""
    return re.sub(r"[^a-z0-9.]+", "-", str(option).lower()).strip("-")


def _bool(raw: str) -> bool:
    if raw.strip().lower() in _TRUE:
        return True
    if raw.strip().lower() in _FALSE:
        return False
    raise Invalid("not 1 or 0")


class Param:
    """A URL-backed setting, as a Spec uses it: `read` parses a URL value (or raises Invalid), `valid` checks a
    session value, `write` formats one for the URL. Subclasses are frozen dataclasses with `key`, `default` and
    `advanced`."""

    multi = False  # True: the key may repeat in the URL (?k=a&k=b), read as a list
    key: str       # the fields every subclass declares (as dataclass fields)
    default: Any
    advanced: bool

    def read(self, raw: Any) -> tuple[Any, str | None]:
        """The value for a URL value, and a remark when it was adjusted (None when taken as written)."""
        raise NotImplementedError

    def valid(self, value: Any) -> bool:
        raise NotImplementedError

    def write(self, value: Any) -> str | list[str]:
        raise NotImplementedError

    def fit(self, value: Any) -> Any:
        """A valid session value as this widget takes it (a float from another family's finer slider: snapped)."""
        return value


@dataclass(frozen=True)
class Float(Param):
    """A slider of floats in [lo, hi] on a grid of `step`; written rounded to the step."""

    key: str
    default: float
    lo: float
    hi: float
    step: float
    advanced: bool = False   # hidden in teacher mode, its default used

    def __post_init__(self) -> None:
        if not (self.lo <= self.default <= self.hi and self.step > 0):
            raise ValueError(f"{self.key}: default {self.default} outside [{self.lo}, {self.hi}] or step <= 0")

    @property
    def _places(self) -> int:
        exponent = Decimal(str(self.step)).as_tuple().exponent
        assert isinstance(exponent, int)   # a finite step: 'n', 'N', 'F' only for NaN and infinity
        return max(0, -exponent)

    def read(self, raw: str) -> tuple[float, str | None]:
        try:
            v = float(raw)
        except ValueError:
            raise Invalid("not a number") from None
        if not math.isfinite(v) or not self.lo - 1e-9 <= v <= self.hi + 1e-9:
            raise Invalid(f"outside {self.write(self.lo)} to {self.write(self.hi)}")
        snapped = min(max(round(self.lo + round((v - self.lo) / self.step) * self.step, self._places), self.lo),
                      self.hi)
        return snapped, (f"rounded to {self.write(snapped)}, the slider's step" if abs(snapped - v) > 1e-9 else None)

    def valid(self, value: Any) -> bool:
        return (isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
                and self.lo - 1e-9 <= float(value) <= self.hi + 1e-9)

    def write(self, value: float) -> str:
        text = f"{round(float(value), self._places) + 0.0:.{self._places}f}"   # + 0.0: no "-0"
        return text.rstrip("0").rstrip(".") if "." in text else text

    def fit(self, value: float) -> float:
        return self.read(repr(float(value)))[0]


@dataclass(frozen=True)
class Int(Param):
    """A whole number in [lo, hi] (number input, integer slider)."""

    key: str
    default: int
    lo: int
    hi: int
    advanced: bool = False

    def __post_init__(self) -> None:
        if not self.lo <= self.default <= self.hi:
            raise ValueError(f"{self.key}: default {self.default} outside [{self.lo}, {self.hi}]")

    def read(self, raw: str) -> tuple[int, str | None]:
        try:
            v = int(raw.strip())
        except ValueError:
            raise Invalid("not a whole number") from None
        if not self.lo <= v <= self.hi:
            raise Invalid(f"outside {self.lo} to {self.hi}")
        return v, None

    def valid(self, value: Any) -> bool:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool) and self.lo <= int(value) <= self.hi

    def write(self, value: int) -> str:
        return str(int(value))


@dataclass(frozen=True)
class Bool(Param):
    """A checkbox or toggle; written as 1 or 0 (true/false, yes/no, on/off are read too)."""

    key: str
    default: bool = False
    advanced: bool = False

    def read(self, raw: str) -> tuple[bool, str | None]:
        return _bool(raw), None

    def valid(self, value: Any) -> bool:
        return isinstance(value, bool)

    def write(self, value: bool) -> str:
        return "1" if value else "0"


@dataclass(frozen=True)
class _Options(Param):
    """Shared by Choice and Choices: the options, found from their text or URL token."""

    key: str
    options: Sequence[Any]
    default: Any = None
    advanced: bool = False

    def _find(self, raw: str) -> Any:
        for o in self.options:
            if raw == str(o) or raw.strip().lower() == token(o):
                return o
        shown = ", ".join(token(o) for o in self.options[:8]) + (", …" if len(self.options) > 8 else "")
        raise Invalid(f"not one of {shown}")

    def _option(self, value: Any) -> bool:
        try:
            return value in self.options
        except (TypeError, ValueError):  # e.g. an array compared element-wise
            return False


@dataclass(frozen=True)
class Choice(_Options):
    """One of `options` (selectbox, radio, select slider); the default is the first option unless given. In the URL
    an option is its token ('per-channel'); the option's own text is read too."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", tuple(self.options))
        if not self.options:
            raise ValueError(f"{self.key}: no options")
        if self.default is None:
            object.__setattr__(self, "default", self.options[0])
        if self.default not in self.options:
            raise ValueError(f"{self.key}: default {self.default!r} is not an option")
        if len({token(o) for o in self.options}) < len(self.options):
            raise ValueError(f"{self.key}: two options have the same URL token")

    def read(self, raw: str) -> tuple[Any, str | None]:
        return self._find(raw), None

    def valid(self, value: Any) -> bool:
        return self._option(value)

    def write(self, value: Any) -> str:
        return token(value)


@dataclass(frozen=True)
class Choices(_Options):
    """Any of `options`, in the order chosen (multiselect); repeated in the URL (?k=a&k=b), empty as ?k=."""

    default: Any = ()
    multi = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "default", list(self.default))
        object.__setattr__(self, "options", tuple(self.options))
        if not all(d in self.options for d in self.default):
            raise ValueError(f"{self.key}: default {self.default!r} is not a subset of the options")
        if len({token(o) for o in self.options}) < len(self.options):
            raise ValueError(f"{self.key}: two options have the same URL token")

    def read(self, raw: list[str]) -> tuple[list[Any], str | None]:
        chosen = [self._find(r) for r in raw if r != ""]
        unique = list(dict.fromkeys(chosen))
        return unique, ("repeated choices dropped" if len(unique) < len(chosen) else None)

    def valid(self, value: Any) -> bool:
        return isinstance(value, (list, tuple)) and all(self._option(v) for v in value)

    def write(self, value: Sequence[Any]) -> list[str]:
        return [token(v) for v in value] or [""]


def shown(key: str) -> Any:
    """What a widget seeded from the link is given as its `value=`: the value the session holds. The browser draws a
    widget from its own copy of the state, and falls back to the widget's default when it redraws the widget without
    that copy (seen in CI with two sessions' runs overlapping: the Pruning slider showed 0.00, its minimum, beside the
    figures for 0.30, so the next arrow key went to 0.01). With the held value as the default, it shows that value.
    None (the widget's own default) for a key not seeded yet."""
    return st.session_state.get(key)


def history_navigation() -> bool:
    """True when this run follows the browser's back/forward buttons (the URL is then the state to restore)."""
    return bool(getattr(get_script_run_ctx(), "is_history_navigation", False))




def _raw(key: str, multi: bool) -> Any:
    values = st.query_params.get_all(key)
    return values if multi else values[-1]


def _update(want: dict[str, list[str]], owned: Sequence[str]) -> None:
    """Set the URL's `owned` keys to `want` (absent = removed), keeping every other key (?model=, other pages');
    owned keys follow the others in declaration order, so one view has one link. Sends nothing (and so adds no
    browser history entry) unless a value changes."""
    current = {k: st.query_params.get_all(k) for k in st.query_params}
    new = {k: v for k, v in current.items() if k not in owned} | {k: want[k] for k in owned if k in want}
    if new != current:   # dict equality ignores order: a reordered URL is the same view
        st.query_params.from_dict({k: v[0] if len(v) == 1 else v for k, v in new.items()})


class Spec:
    """The URL-backed widget keys of one page (rebuilt on every run: options may depend on the model)."""

    def __init__(self, *params: Param) -> None:
        self.params: dict[str, Param] = {p.key: p for p in params}

    def default(self, key: str) -> Any:
        """The declared default of a key: what a hidden (teacher mode) control stands for."""
        return self.params[key].default

    def load(self) -> None:
        """Seed session state for this page's keys before its widgets are drawn; then say which URL settings were
        ignored, and whether teacher mode is on. The spec becomes the page's (page_spec())."""
        st.session_state[PAGE_SPEC] = self
        st.session_state.setdefault(SEEN, set()).update(self.params)
        self._seed(list(self.params.values()))
        if teacher():
            st.caption("🎓 **Teacher mode**: the advanced controls are hidden and their defaults are used. To see "
                       "them, switch off *Teacher mode* in the sidebar (or remove `teacher=1` from the link).")

    def add(self, param: Param) -> None:
        """Declare (and seed) a key whose options are known only later in the run, e.g. a point of a computed grid."""
        self.params[param.key] = param
        st.session_state.setdefault(SEEN, set()).add(param.key)
        self._seed([param])

    def save(self) -> None:
        """Write this page's current values into the URL: valid, non-default values only; hidden ones left out."""
        want = {}
        for p in self.params.values():
            value = st.session_state.get(p.key)
            if (p.advanced and teacher()) or not p.valid(value) or p.write(value) == p.write(p.default):
                continue
            text = p.write(value)
            want[p.key] = text if isinstance(text, list) else [text]
        _update(want, list(self.params))

    def _seed(self, params: list[Param]) -> None:
        history, ignored = history_navigation(), []
        for p in params:
            fresh = p.key not in st.session_state
            if p.advanced and teacher():
                if fresh and p.key in st.query_params:
                    ignored.append(f"{_given(p.key)}: hidden in teacher mode, its default is used")
                continue
            if not fresh and not history and p.valid(st.session_state[p.key]):
                fitted = p.fit(st.session_state[p.key])   # the widget's own state, or a value another page (or the
                if fitted != st.session_state[p.key]:     # other family's lab) sent: it wins over the URL
                    st.session_state[p.key] = fitted
                continue
            value = p.default
            if (fresh or history) and p.key in st.query_params:
                raw = _raw(p.key, p.multi)
                try:
                    value, remark = p.read(raw)
                    if remark and fresh:
                        ignored.append(f"{_given(p.key)}: {remark}")   # our words: no value of the link
                except Invalid as e:
                    ignored.append(f"{_given(p.key)}: {e}, so the default is used")
            st.session_state[p.key] = value
        if ignored:
            st.info("Some settings in the link were not taken as written: " + "; ".join(ignored) + ".")


def _given(key: str) -> str:
    """A parameter of the link as it was given (key=value), as inline code that no value can break out of."""
    return code(f"{key}={st.query_params.get(key, '')}")


def renamed(params: dict[str, list[str]], text: bool) -> dict[str, list[str]]:
    """Query parameters (key -> values) with the text labs' old keys (RENAMED) rewritten. On a link to a text model,
    each old key takes its new name and wins over the new key in the same link (the text lab read the old one); on a
    link to any other model the old keys are dropped (its labs never read them), so the link shows the same view."""
    out = {k: v for k, v in params.items() if k not in RENAMED}
    for old, values in params.items():
        if old not in RENAMED or not text:
            continue
        if old in SWITCHED:
            try:
                values = [GRANULARITY[_bool(v)] for v in values]
            except Invalid:
                pass   # left as written: the page says it cannot use it
        out[RENAMED[old]] = values
    for old, new in FLIPPED.items():
        if old in out:
            values = out.pop(old)
            if text:
                out[new] = [_flip(v) for v in values]
    return out


def _flip(raw: str) -> str:
    """1 - a weight written in the URL (0.2 -> 0.8); left as written when it is not a number."""
    try:
        return f"{round(1 - float(raw), 10):g}"
    except ValueError:
        return raw


def rename_old_keys(text: bool) -> None:
    """Rewrite the URL's old keys (see renamed()) before a page reads it; `text`: the chosen model is a text one."""
    current = {k: st.query_params.get_all(k) for k in st.query_params}
    new = renamed(current, text)
    if new != current:
        st.query_params.from_dict({k: v[0] if len(v) == 1 else v for k, v in new.items()})


PROJECTOR = "projector"              # plain session key and URL key, as TEACHER
PROJECTOR_WIDGET = "projector_mode"


def teacher() -> bool:
    """Whether teacher mode is on in this session."""
    return bool(st.session_state.get(TEACHER, False))


def projector() -> bool:
    """Whether projector mode is on in this session (large type, the main slider and chart on one screen,
    explanations folded away, latency only when it is not noisy)."""
    return bool(st.session_state.get(PROJECTOR, False))


def _flag_toggle(key: str, widget: str, label: str, help: str) -> bool:
    """A sidebar toggle for a session-wide flag seeded from ?key=1 and kept in the URL (absent when off)."""
    note = None
    if key not in st.session_state or history_navigation():
        on = False
        if key in st.query_params:
            try:
                on = _bool(st.query_params[key])
            except Invalid as e:
                note = f"Ignored {_given(key)} in the link: {e}."
        st.session_state[key] = on
    st.session_state[widget] = st.session_state[key]  # re-seeded on every page, as the model picker is
    st.sidebar.toggle(label, key=widget, on_change=lambda: st.session_state.update({key: st.session_state[widget]}),
                      help=help)
    if note:
        st.sidebar.caption(note)
    _update({key: ["1"]} if st.session_state[key] else {}, [key])
    return bool(st.session_state[key])


def teacher_toggle() -> bool:
    """Draw the sidebar's Teacher mode toggle (seeded from ?teacher=1) and keep the flag in the URL; return it.
    The frame (app.py) calls it once per run, after state.sidebar()."""
    return _flag_toggle(TEACHER, TEACHER_WIDGET, "Teacher mode",
                        "Hide the advanced controls and use their defaults: the main sliders stay. Kept in the link as "
                        "teacher=1, so a class can open the same simple view.")


def projector_toggle() -> bool:
    """Draw the sidebar's Projector mode toggle (seeded from ?projector=1), keep it in the URL; return it."""
    return _flag_toggle(PROJECTOR, PROJECTOR_WIDGET, "Projector mode",
                        "For a lecture hall: large type, the main slider and the main chart on one screen, the "
                        "explanations folded away, and latency shown only when it is not noisy. Kept in the link as "
                        "projector=1.")
