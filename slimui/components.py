"""Pieces every page draws the same way: the timed block (measured latencies, how they were timed, one warning when
they are noisy, and the Time again button) and the delta of a metric against the original."""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TypeVar

import pandas as pd
import streamlit as st

from slimcore import Latency

from . import urlstate, work

T = TypeVar("T")

NOISY = ("Some of these timings are noisy: a wide spread between runs, or the machine was busy while timing — often "
         "with the browser drawing this page on the same machine.")
LATENCY = re.compile(r"\bms\b|speed-up|latency|IQR", re.IGNORECASE)   # a timed table's columns of timings
RETIME_HELP = ("Timing shares this server's CPU with everything else on it (your browser too, when it runs here): a "
               "wide spread (IQR) means a noisy measurement. This times the models afresh, side by side.")


class Timed:
    """A timed block drawn in place: a slot for the timed table (none when the page shows the figures as metrics),
    the note saying how they were timed, the noisy-timing warning and the Time again button (not in teacher mode).
    Timing runs in the server's background worker (slimui.work): the page run never waits for it; until it is done
    the note says what is being timed and how long it is expected to take, and the page is drawn again when it is.

        timed = Timed("prune_retime", teacher)
        timed.measure(timing_task("Timing the models side by side", name, f"prune|{name}|{cfg}",
                                  lambda: time_them(name, cfg)), lambda lat: draw_table(lat))
    """

    def __init__(self, key: str, teacher: bool, table: bool = True) -> None:
        self.table = st.empty() if table else None
        self.frame = pd.DataFrame()   # the table last shown
        self.note, self.warning = st.empty(), st.empty()
        self.slot = st.container()
        self.button = not teacher
        self.again = self.button and st.button("Time again", key=key, help=RETIME_HELP)

    def measure(self, task: work.Task, draw: Callable[[T], None]) -> T | None:
        """Time models in the background (a `timing_task`); draw the result when it is there (then return it), else
        show what is being timed, and return None."""
        if self.again:
            work.forget(task.key)
        with self.slot:
            lat = work.later(task)
        if lat is not None:
            draw(lat)
        return lat

    def show(self, frame: pd.DataFrame) -> None:
        """The timed table, full width."""
        self.frame = frame
        assert self.table is not None, "Timed(table=False) has no table to show"
        self.table.dataframe(frame, hide_index=True, width="stretch")

    def explain(self, text: str, latencies: Iterable[Latency] = (), noisy: bool = False,
                markdown: bool = False) -> None:
        """Say how the figures were timed (a caption, or markdown for a sentence with figures in bold); below it, the
        one warning when any of `latencies` is noisy (or `noisy` says so)."""
        (self.note.markdown if markdown else self.note.caption)(text)
        if noisy or any(b.noisy for b in latencies):
            if urlstate.projector() and self.table is not None:   # a lecture hall sees no figure it cannot trust
                kept = [c for c in self.frame.columns if not LATENCY.search(str(c))]
                with self.table.container():
                    if kept:
                        st.dataframe(self.frame[kept], hide_index=True, width="stretch")
                    st.info("Latency is left out in projector mode: these timings were noisy (a wide spread between "
                            "runs, or a busy machine)." + (" Press **Time again**." if self.button else ""))
                self.note.empty()
            else:
                self.warning.warning(NOISY + (" Press **Time again**." if self.button else ""))
        else:
            self.warning.empty()


def timing_task(what: str, name: str, key: str, timing: Callable[[], T], guess: float = 3.0) -> work.Task:
    """The task that times models of sample `name` (under `key`: what decides the models timed) for a Timed block;
    the most recent 64 timings are kept."""
    return work.Task(f"timing|{key}", lambda progress: timing(), what, "timing", name, guess=guess, keep=64)


def metric_slots(n: int, per_row: int = 4) -> list:
    """`n` columns for metrics, in rows of at most `per_row`, the rows as even as they go (5 → 3 + 2, 6 → 3 + 3),
    every slot as wide as the widest row's: five or six metrics in one row cut their labels and values ("Dense size
    (measur…", "148,635,6…") on a 1280 px wide window."""
    rows = -(-n // per_row)
    width = -(-n // rows)
    slots: list = []
    for _ in range(rows):
        slots += st.columns(width)
    return slots[:n]


def delta(change: float, fmt: str, lower_is_better: bool = False) -> dict:
    """st.metric's delta arguments for a change against the original: green when better, red when worse. A change
    that rounds to zero is not a change: shown grey without an arrow ("0.0 KiB", not a red "+0.0 KiB")."""
    text = fmt.format(change)
    if not re.search(r"[1-9]", text):
        return {"delta": text.lstrip("+-"), "delta_color": "off", "delta_arrow": "off"}
    return {"delta": text, "delta_color": "inverse" if lower_is_better else "normal"}
