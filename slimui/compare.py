"""A/B comparison, presets and reset, written once for every lab.

A lab page hands `panel` its settings (the urlstate.Spec of its widgets), a function from a setting to its figures
(the same cached functions its own headline uses, so A's figures are what the page showed when A was current) and
its named presets. The panel then offers:

- **Presets** (mild / aggressive / breaks it) and **Reset**: buttons that set the lab's widgets (a preset names only
  what it changes; the rest go back to their defaults);
- **Pin as A**: the current setting is kept as A — in the session and in the link (`?ab=digits-cnn&a.prune_ratio=0.3`:
  the model it was pinned on, then the values the lab's own keys take), so a pinned comparison survives a reload and
  can be shared. A belongs to one model: switching model drops it (the other model's settings differ);
- while A is pinned, a table of A's figures beside the current setting's (B) with B − A, and which settings differ.

Figures are `Figure`s: a label, a value and how the value is written and compared (a score in the family's metric,
bytes, a count, a ratio, milliseconds). A figure that is not there yet (a student not trained, a grid not built) is
None, and the table says so instead of inventing one.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from . import urlstate
from .safe import code

PIN = "ab"           # URL marker: an A is pinned, on this model (ab=<model>; its values follow as a.<key>, defaults
                     # left out)
PREFIX = "a."        # URL prefix of A's values
SESSION = "ab_pins"  # session key: lab -> A's values
KINDS = ("percent", "number", "bytes", "count", "ratio", "ms", "db", "text")
NOTES = ("measured", "modelled", "counted", "computed")   # how a figure was obtained: its note starts with one


@dataclass(frozen=True)
class Figure:
    """One figure a lab shows for a setting. kind: percent (a fraction written as %, compared in points), number (4
    places), bytes, count, ratio (x), ms, db (decibels), text (compared as same/different). `higher` says which way is
    better (None: neither); `note` says how it was obtained (measured, modelled, counted)."""

    label: str
    value: Any
    kind: str = "number"
    higher: bool | None = True
    note: str = "measured"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.label}: unknown kind {self.kind!r}")
        if not self.note.startswith(NOTES):
            raise ValueError(f"{self.label}: say how the figure was obtained ({', '.join(NOTES)}), not {self.note!r}")

    def text(self) -> str:
        return written(self.value, self.kind)


def written(value: Any, kind: str) -> str:
    """A figure's value as the labs write it."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if kind == "percent":
        return f"{value:.2%}"
    if kind == "number":
        return f"{value:.4f}"
    if kind == "bytes":
        return size_text(value)
    if kind == "count":
        return f"{int(value):,}"
    if kind == "ratio":
        return f"{value:.2f}×"
    if kind == "ms":
        return f"{value:.3f} ms"
    if kind == "db":
        return "∞ dB (exact)" if value == math.inf else f"{value:.1f} dB"
    return str(value)


def size_text(n: float) -> str:
    n = float(n)
    for unit, scale in (("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if abs(n) >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n:,.0f} B"


def difference(a: Any, b: Any, kind: str) -> str:
    """B − A as the table writes it: points for a percent, a signed size with the ratio for bytes, ..."""
    if a is None or b is None or any(isinstance(v, float) and math.isnan(v) for v in (a, b)):
        return "—"
    if kind == "text":
        return "same" if a == b else "different"
    if kind == "db" and math.inf in (a, b):
        return "same" if a == b else "—"
    d = b - a
    if kind == "percent":
        return f"{d * 100:+.2f} pt"
    if kind == "number":
        return f"{d:+.4f}"
    if kind == "bytes":
        sign = "+" if d > 0 else "−" if d < 0 else "±"
        return f"{sign}{size_text(abs(d))}" + (f" ({b / a:.2f}× A)" if a else "")
    if kind == "count":
        return f"{int(d):+,}"
    if kind == "ratio":
        return f"{d:+.2f}×"
    if kind == "db":
        return f"{d:+.1f} dB"
    return f"{d:+.3f} ms"


def verdict(a: Any, b: Any, fig: Figure) -> str:
    """Which of A and B is better on this figure, or '' (equal, not comparable, or no better way)."""
    if fig.higher is None or fig.kind == "text" or a is None or b is None:
        return ""
    if any(isinstance(v, float) and math.isnan(v) for v in (a, b)) or a == b:
        return ""
    return "B" if (b > a) == fig.higher else "A"


def table(a: Mapping[str, Figure] | None, b: Mapping[str, Figure] | None) -> pd.DataFrame:
    """Figures of A and B side by side: figure, A, B, B − A, better (A or B). Pure: the page and the tests call it."""
    labels = list(dict.fromkeys([*(b or {}), *(a or {})]))
    rows = []
    for key in labels:
        fa, fb = (a or {}).get(key), (b or {}).get(key)
        fig = fb or fa
        assert fig is not None   # the key is one of a's or b's
        va, vb = (fa.value if fa else None), (fb.value if fb else None)
        rows.append({"figure": fig.label + (f" ({fig.note})" if fig.note else ""), "A": written(va, fig.kind),
                     "B (now)": written(vb, fig.kind), "B − A": difference(va, vb, fig.kind),
                     "better": verdict(va, vb, fig)})
    return pd.DataFrame(rows, columns=["figure", "A", "B (now)", "B − A", "better"])


# ------------------------------------------------------------------------------------------------- settings

def setting(spec: urlstate.Spec, *views: str) -> urlstate.Spec:
    """The part of a page's settings that makes a setting: without the keys that only choose what to look at (the
    layer drawn, the example shown), which A/B neither compares nor keeps."""
    return urlstate.Spec(*(p for key, p in spec.params.items() if key not in views))


def values(spec: urlstate.Spec, teacher: bool) -> dict[str, Any]:
    """The lab's current setting: every key's session value (a hidden advanced key: its default)."""
    out = {}
    for key, p in spec.params.items():
        v = st.session_state.get(key, p.default)
        out[key] = p.default if (teacher and p.advanced) or not p.valid(v) else v
    return out


def changes(a: Mapping[str, Any], b: Mapping[str, Any], spec: urlstate.Spec) -> list[str]:
    """The settings in which B differs from A, as 'key: a → b' (URL spellings)."""
    out = []
    for key, p in spec.params.items():
        va, vb = a.get(key, p.default), b.get(key, p.default)
        if p.valid(va) and p.valid(vb) and p.write(va) != p.write(vb):
            wa, wb = p.write(va), p.write(vb)
            out.append(f"{key}: {' '.join(wa) if isinstance(wa, list) else wa} → "
                       f"{' '.join(wb) if isinstance(wb, list) else wb}")
    return out


def _from_url(spec: urlstate.Spec, model: str) -> tuple[dict[str, Any] | None, list[str]]:
    """A pinned in the link for this model (or None), and what in it was ignored."""
    if st.query_params.get(PIN) != model:
        return None, []
    pinned, ignored = {}, []
    for key, p in spec.params.items():
        raw_key = PREFIX + key
        if raw_key not in st.query_params:
            pinned[key] = p.default
            continue
        raw = st.query_params.get_all(raw_key) if p.multi else st.query_params.get(raw_key)
        try:
            pinned[key] = p.read(raw)[0]
        except urlstate.Invalid as e:
            ignored.append(f"{code(raw_key + '=' + str(st.query_params.get(raw_key, '')))}: {e}")
            pinned[key] = p.default
    return pinned, ignored


def _to_url(spec: urlstate.Spec, pinned: Mapping[str, Any] | None, model: str) -> None:
    """Write A into the link (or remove it), keeping every other key."""
    current = {k: st.query_params.get_all(k) for k in st.query_params}
    new = {k: v for k, v in current.items() if k != PIN and not k.startswith(PREFIX)}
    if pinned is not None:
        new[PIN] = [model]
        for key, p in spec.params.items():
            v = pinned.get(key, p.default)
            if p.valid(v) and p.write(v) != p.write(p.default):
                text = p.write(v)
                new[PREFIX + key] = text if isinstance(text, list) else [text]
    if new != current:
        st.query_params.from_dict({k: v[0] if len(v) == 1 else v for k, v in new.items()})


def _fitted(spec: urlstate.Spec, chosen: Mapping[str, Any]) -> dict[str, Any]:
    """A setting as this spec takes it: every key of the spec, a missing or invalid value at its default."""
    out = {}
    for key, p in spec.params.items():
        v = chosen.get(key, p.default)
        out[key] = p.fit(v) if p.valid(v) else p.default
    return out


def pinned(lab: str, spec: urlstate.Spec, model: str) -> dict[str, Any] | None:
    """This session's A for the lab on this model: the session's, else the link's (a reload, a shared link,
    back/forward). An A pinned on another model is dropped."""
    pins = st.session_state.setdefault(SESSION, {})
    kept = pins.get(lab)
    if kept is not None and kept[0] != model:
        pins[lab] = kept = None
        st.info("The setting pinned as A was for another model: it is unpinned (each model has its own settings).")
    if lab not in pins or urlstate.history_navigation():
        from_url, ignored = _from_url(spec, model)
        if ignored:
            st.info("Some values of the pinned setting A in the link were not taken: " + "; ".join(ignored) +
                    ". Their defaults are used.")
        pins[lab] = kept = None if from_url is None else (model, from_url)
    return None if kept is None else _fitted(spec, kept[1])


def _set(spec: urlstate.Spec, chosen: Mapping[str, Any], teacher: bool, keep: tuple[str, ...] = ()) -> None:
    """Set the lab's widgets to `chosen`, the rest to their defaults except those in `keep` (a hidden advanced key
    stays as it is)."""
    for key, p in spec.params.items():
        if (teacher and p.advanced) or (key in keep and key not in chosen):
            continue
        v = chosen.get(key, p.default)
        st.session_state[key] = p.fit(v) if p.valid(v) else p.default


def _pin(lab: str, model: str, now: dict[str, Any]) -> None:
    st.session_state.setdefault(SESSION, {})[lab] = (model, dict(now))


def _unpin(lab: str) -> None:
    st.session_state.setdefault(SESSION, {})[lab] = None


def unpin_all() -> None:
    """Forget every lab's A in this session (a lesson step opens its own view)."""
    st.session_state[SESSION] = {}


# ---------------------------------------------------------------------------------------------------- panel

def toolbar(lab: str, spec: urlstate.Spec, presets: Mapping[str, Mapping[str, Any]], teacher: bool, model: str,
            keep: tuple[str, ...] = ()) -> None:
    """Presets, Reset and Pin as A: one click sets the lab's widgets, or keeps the current setting as A (drawn under
    the controls; the callbacks run before the next run draws them). A preset leaves the settings in `keep` as they
    are unless it names them; Reset sets every setting to its default."""
    cols = st.columns([1] * (len(presets) + 2) + [max(1, 5 - len(presets))])
    for col, (label, chosen) in zip(cols, presets.items()):
        col.button(label, key=f"ab_preset_{urlstate.token(label)}", on_click=_set, args=(spec, chosen, teacher, keep),
                   help="Sets: " + (", ".join(f"{k} = {v}" for k, v in chosen.items()) or "the defaults")
                        + ("; every other setting back to its default." if not keep else "."), width="stretch")
    cols[len(presets)].button("Reset", icon=":material/restart_alt:", key="ab_reset", on_click=_set,
                              args=(spec, {}, teacher), help="Every setting of this lab back to its default.",
                              width="stretch")
    cols[len(presets) + 1].button("Pin as A", icon=":material/push_pin:", key="ab_pin", on_click=_pin,
                                  args=(lab, model, values(spec, teacher)), width="stretch",
                                  help="A/B comparison: keep this setting as A, then move the controls — B (now) is "
                                       "shown beside A with the differences. A is kept in the link, so a reload or a "
                                       "shared link shows the same comparison.")


def panel(lab: str, spec: urlstate.Spec, figures: Callable[[dict[str, Any]], Mapping[str, Figure] | None],
          teacher: bool, model: str) -> None:
    """While a setting is pinned as A (toolbar's Pin as A, or the link), show A beside B (now) with the differences.
    `figures` turns a setting into its figures (None: not computed yet); nothing is computed while none is pinned."""
    current = values(spec, teacher)
    a = pinned(lab, spec, model)
    _to_url(spec, a, model)
    if a is None:
        return
    with st.container(border=True, key="ab_panel"):
        head, b1, b2 = st.columns([5, 1, 1])
        diff = changes(a, current, spec)
        head.markdown("**A/B comparison** — A is pinned; B is the setting now. " +
                      ("B differs from A in " + "; ".join(code(d) for d in diff) + "." if diff else
                       "B is the same setting as A: move a control."))
        b1.button("Back to A", key="ab_restore", on_click=_set, args=(spec, a, teacher), width="stretch",
                  help="Set the controls to A's setting (A stays pinned).")
        b2.button("Unpin A", key="ab_unpin", on_click=_unpin, args=(lab,), width="stretch")
        try:
            fa = figures(a)
            fb = figures(current)
        except (ValueError, KeyError) as e:   # a setting this model cannot take: said here, the page goes on
            st.warning(f"The figures of A cannot be computed on this model: {e}")
            return
        if fa is None and fb is None:
            st.caption("Neither setting has its figures yet (a student not trained, a grid not built): they appear "
                       "here once computed.")
            return
        st.dataframe(table(fa, fb), hide_index=True, width="stretch")
        if fa is None:
            st.caption("A's figures are not computed yet: *Back to A* opens A, where they are computed.")
