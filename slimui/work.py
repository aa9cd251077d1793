"""The page side of slow work: results kept on disk (slimcore.store) and jobs run by the server's one background
worker (slimcore.jobs), shown when they are ready.

A page part's slow work is a `Task` (its key, its work, what it is in words): the page and the warm-up submit the
same task, so they share one job. `later(task)` draws its result when it is there; until then a placeholder says
what is being computed, for how long so far and how long it is expected to take (from measured times), and polls (a
fragment, so only it reruns) until the job is done, then reruns the page once to draw it. The page run itself never
waits for the job: a slider move is answered by what depends on it, and the slow parts follow."""
from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import streamlit as st

from slimcore import jobs, store

T = TypeVar("T")


class _WorkerThreads(logging.Filter):
    """Streamlit warns once per thread that calls a cached function outside a script run: the worker and the warm-up
    do that on purpose (their results are shared), so the warning says nothing there."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not threading.current_thread().name.startswith("slimlab-")


logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(_WorkerThreads())
POLL = 0.5                  # seconds between looks at a running job
VISITOR = jobs.VISITOR      # the priority of what a visitor's page asks for (the warm-up's is 0)
PREFETCH = 5                # what a visitor may ask for next (the other positions of a slider)

_store: store.Store | None = None
_store_lock = threading.Lock()


def results() -> store.Store:
    """The server's result store on disk (the cache folder's results/, or $SLIMLAB_RESULTS)."""
    global _store
    with _store_lock:
        if _store is None:
            _store = store.Store()
        return _store


def use_results(new: store.Store) -> store.Store:
    """Make `new` the result store of this process; return the one it replaces (tests isolate themselves so)."""
    global _store
    with _store_lock:
        old, _store = _store or store.Store(), new
    return old


@functools.lru_cache(maxsize=64)
def model_hash(name: str) -> str:
    """The content hash of a model's weights (what its kept results are keyed by)."""
    from . import cache  # cache keeps its results with kept(): imported here, not at the top
    return store.model_hash(cache.sample(name).model)


def kept(kind: str, name: str, setting: Any, compute: Callable[[], T]) -> T:
    """A deterministic result of a model for a setting: from disk when it was computed before (by this code, for
    these weights), else computed and kept. Never for latency: that is measured here, now."""
    return results().cached(kind, model_hash(name), setting, compute)


def origin(kind: str, name: str, setting: Any) -> str:
    """Where a kept result came from, in words: read from the result cache (when and in how long it was computed),
    or computed here and kept."""
    src = results().source(kind, model_hash(name), setting)
    if src is None:
        return ""
    read, prov = src
    if read:
        return (f"read from the result cache (computed {prov.get('computed', '?')[:16].replace('T', ' ')} in "
                f"{prov.get('seconds', 0):.1f} s by this code on these weights)")
    return f"computed in {prov['seconds']:.1f} s and kept in the result cache"


def find(kind: str, name: str, setting: Any) -> Any | None:
    """A result kept on disk for this key, or None (absent, or not to be trusted)."""
    hit = results().get(kind, model_hash(name), setting)
    return None if hit is None else hit[0]


def keep(kind: str, name: str, setting: Any, value: Any, seconds: float = 0.0) -> None:
    """Keep a result computed as part of another (a curve's points), as kept() would have."""
    results().put(kind, model_hash(name), setting, value, seconds)


def on_disk(kind: str, name: str, setting: Any) -> bool:
    """Whether a result is kept on disk for this key (checked when read)."""
    return results().has(kind, model_hash(name), setting)


def worker() -> jobs.Worker:
    return jobs.worker()


@dataclass(frozen=True)
class Task:
    """One part of a page's slow work, as the page and the warm-up both submit it: the job's `key` (what decides its
    result), the work `fn(progress)`, `what` it is in words, its `kind` and model `name` (whose measured durations
    estimate it), a `guess` of its seconds until one is measured, and how many results of its kind the worker
    `keep`s (None: the worker's default)."""

    key: str
    fn: Callable[[jobs.Progress], Any] = field(repr=False, compare=False)
    what: str
    kind: str
    name: str
    guess: float | None = None
    keep: int | None = None
    stoppable: bool = False   # work in pieces kept as they finish (a grid, a scan): a Stop button while it runs


def submit(task: Task, priority: int = VISITOR, retry: bool = False) -> jobs.Job:
    """The task's job (the one known, or a new one queued at `priority`)."""
    return worker().submit(task.key, task.fn, task.what, kind=f"{task.kind}|{task.name}", priority=priority,
                           guess=task.guess, keep=task.keep, retry=retry)


def started(task: Task) -> bool:
    """Whether the worker knows the task's job (queued, running, done or failed)."""
    return worker().get(task.key) is not None


def done(task: Task) -> Any | None:
    """The task's result if its job has finished here, else None: nothing submitted, nothing drawn (what a lesson's
    answer or an A/B table reads of a page's background work)."""
    job = worker().get(task.key)
    return job.result if job is not None and job.state == "done" else None


def later(task: Task, draw: Callable[[Any], Any] | None = None) -> Any | None:
    """Run the task in the background (once, whoever asks) and return its result when it is there (after calling
    `draw` with it); until then show a placeholder that says what runs and reruns the page when it is done, and
    return None. A failure is said in one line, with a button to try again."""
    job = submit(task)
    if job.state == "done":
        return draw(job.result) if draw is not None else job.result
    if job.state == "failed":
        stopped = job.error.startswith("stopped")   # on request (Stop): not a failure
        if stopped:
            st.info(f"{task.what}: {job.error}.", icon="⏹️")
        else:
            st.warning(f"{task.what} failed: {job.error}")
        if st.button("Go on" if stopped else "Try again", key=f"retry|{task.key}"):
            submit(task, retry=True)
            st.rerun()
        return None
    pending(task.key, task.stoppable)
    return None


def pending(key: str, stoppable: bool = False) -> None:
    """The placeholder of a job that is not done: what runs, for how long, the progress, an estimate; it looks
    again every POLL seconds and reruns the page once the job is done."""

    @st.fragment(run_every=POLL)
    def look() -> None:
        job = worker().watch(key)   # still on the screen: it goes before the jobs of pages left behind
        if job is None or job.done:
            st.rerun(scope="app")
        if job.progress and stoppable:   # work in pieces kept as they finish: it can stop between them
            done, total = job.progress
            bar, stop = st.columns([6, 1], vertical_alignment="bottom")
            if job.stopping:
                bar.progress(done / max(total, 1), f"Stopping after the pieces under way… {job.status()}")
            else:
                bar.progress(done / max(total, 1), job.status())
                if stop.button("Stop", key=f"stop|{key}", help="Stop this work (on a cluster: its tasks are "
                               "cancelled). The pieces already finished are kept; Go on continues from them."):
                    worker().stop(key)
                    st.rerun(scope="app")
        elif job.progress:
            done, total = job.progress
            st.progress(done / max(total, 1), job.status())
        else:
            st.info(job.status(), icon="⏳")

    look()


def clear() -> None:
    """Forget every finished job and model hash of this process (the weights under a sample's name changed)."""
    worker().clear()
    model_hash.cache_clear()


@contextmanager
def spinner(what: str, kind: str, name: str, fast: float = 0.3) -> Iterator[None]:
    """A spinner around a page run's own slow part (what a slider changes), saying how long it took the last times
    on this model; durations above `fast` seconds are remembered (a cached answer says nothing of the work)."""
    kind = f"{kind}|{name}"
    est = worker().estimate(kind)
    start = time.perf_counter()
    with st.spinner(f"{what}" + (f" (about {est:.1f} s)" if est else "") + "…"):
        yield
    seconds = time.perf_counter() - start
    if seconds > fast:
        worker().record(kind, seconds)


def forget(key: str) -> None:
    """Drop a finished job (Time again): the next `later` runs it afresh."""
    worker().forget(key)
