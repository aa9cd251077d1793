"""Slow work off the request path: one background worker per process, shared by every session, and the gate that
keeps torch.fx tracing apart from every other forward pass.

A page submits a job under a key (what decides its result); the same key submitted again, by any session, is the
same job: it runs once and its result is kept (the most recent ones, a bounded number per kind). The worker runs one
job at a time, the highest priority first (a visitor's page before the warm-up; among a visitor's jobs, those a page
still watches before those of pages left behind), and waits for running pages to finish before it starts one, so its
work does not slow a slider's rerun. Each kind of job remembers how long it took,
so a page can say how long the next one is expected to take.

Inline mode (SLIMLAB_JOBS=inline: the AppTest tests) runs a job in the caller as it is submitted."""
from __future__ import annotations

import ctypes
import itertools
import logging
import os
import threading
import time
from collections import Counter, OrderedDict, defaultdict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]      # progress(done, total)
VISITOR = 10   # the priority of what a visitor waits for; below it: speculative work (warm-up, prefetch)


class Stopped(Exception):
    """A job stopped on request (Worker.stop), raised from its progress report."""


class Gate:
    """A readers-writer gate. Page runs pass it shared (many at once); a torch.fx trace, which patches
    torch.nn.Module.__call__ for the whole process while it runs, passes it exclusively: it waits until no other
    thread runs a page, and pages wait the few milliseconds it takes. A thread that runs a page may trace itself; two
    that would wait for each other go on after `patience` seconds rather than wait for ever."""

    patience = 10.0

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers: Counter[int] = Counter()
        self._writer: int | None = None

    @contextmanager
    def shared(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._cond:
            self._cond.wait_for(lambda: self._writer in (None, me))
            self._readers[me] += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers[me] -= 1
                if not self._readers[me]:
                    del self._readers[me]
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._cond:
            if not self._cond.wait_for(lambda: self._writer is None and set(self._readers) <= {me}, self.patience):
                log.warning("gate: a page still runs after %.0f s; tracing beside it", self.patience)
                self._cond.wait_for(lambda: self._writer is None)
            self._writer = me
        try:
            yield
        finally:
            with self._cond:
                self._writer = None
                self._cond.notify_all()

    def busy(self) -> bool:
        """Whether any page is running now."""
        with self._cond:
            return bool(self._readers)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no page runs (at most `timeout` seconds); True if none does."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._readers, timeout)


GATE = Gate()


@dataclass(eq=False)
class Job:
    """One piece of slow work and what became of it."""

    key: str
    kind: str                        # what it is, for its measured duration: "timing", "curve", "grid"...
    what: str                        # in words, for the page: "Timing the models side by side"
    fn: Callable[[Progress], Any] = field(repr=False)
    priority: int = 0                # higher first
    estimate: float | None = None    # seconds, from the last jobs of its kind (or the caller's guess)
    state: str = "queued"            # queued, running, done, failed
    result: Any = field(default=None, repr=False)
    error: str = ""
    progress: tuple[int, int] | None = None
    submitted: float = field(default_factory=time.monotonic)
    asked: float = field(default_factory=time.monotonic)   # when a page last asked for it or watched it
    order: int = 0                   # submission order: first come, first served among equals
    started: float | None = None
    finished: float | None = None
    _done: threading.Event = field(default_factory=threading.Event, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def done(self) -> bool:
        return self.state in ("done", "failed")

    @property
    def stopping(self) -> bool:
        """Asked to stop, and still running (it stops at its next progress report)."""
        return self._stop.is_set() and not self.done

    @property
    def seconds(self) -> float:
        """Seconds it ran (so far)."""
        if self.started is None:
            return 0.0
        return (self.finished or time.monotonic()) - self.started

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def status(self) -> str:
        """A sentence for the page: what runs, for how long so far, how long it is expected to take."""
        if self.state == "queued":
            return f"{self.what}: waiting for the work before it" + (
                f" (it takes about {_seconds(self.estimate)} once it starts)" if self.estimate else "") + "…"
        text = f"{self.what}… {_seconds(self.seconds)} so far"
        if self.progress:
            text += f", {self.progress[0]} of {self.progress[1]} done"
        if self.estimate:
            text += f", about {_seconds(self.estimate)} in all"
        return text + "."


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s < 10 else f"{s:.0f} s" if s < 90 else f"{s / 60:.1f} min"


class Worker:
    """One background thread that runs submitted jobs, the highest priority first, one at a time. Among a visitor's
    jobs, those a page still watches (asked for or polled within `watched` seconds) go before those of pages the
    visitor has left, so the page on the screen is not kept waiting by the one before it. A visitor's job waits for
    running pages to finish (at most `yield_to_pages` seconds); speculative work (the warm-up, slider positions
    prepared ahead) waits as long as any page runs."""

    def __init__(self, inline: bool | None = None, keep: int = 256, yield_to_pages: float = 3.0,
                 urgent: int = VISITOR, watched: float = 3.0) -> None:
        self.inline = os.environ.get("SLIMLAB_JOBS") == "inline" if inline is None else inline
        self.keep, self.yield_to_pages, self.watched = keep, yield_to_pages, watched
        self.urgent = urgent   # jobs of this priority or more (a visitor's) run after pages finish, or 3 s at most;
                               # the others (warm-up, prefetch) only while no page runs
        self._lock = threading.Condition()
        self._jobs: OrderedDict[str, Job] = OrderedDict()       # every job known, oldest first
        self._queued: set[str] = set()                         # keys of the jobs waiting to run
        self._order = itertools.count()
        self._durations: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=5))
        self._kept: dict[str, int] = {}                        # results kept per kind (default: keep)
        self._thread: threading.Thread | None = None

    def submit(self, key: str, fn: Callable[[Progress], Any], what: str, kind: str = "work", priority: int = 0,
               guess: float | None = None, keep: int | None = None, retry: bool = False) -> Job:
        """The job under `key`: the one already known (queued, running, done or failed; a failed one is tried again
        when `retry`), or a new one. `guess` is the expected seconds until a job of its kind has been measured; at
        most `keep` results of a kind are kept (the most recent)."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and not (retry and job.state == "failed"):
                self._jobs.move_to_end(key)
                job.asked = time.monotonic()
                job.priority = max(job.priority, priority)   # asked for by a visitor: sooner
                return job
            job = Job(key, kind, what, fn, priority, self.estimate(kind) or guess, order=next(self._order))
            self._jobs[key] = job
            if keep is not None:
                self._kept[kind] = keep
            if not self.inline:
                self._queued.add(key)
                self._start()
                self._lock.notify_all()
        if self.inline:
            self._run(job)
        return job

    def put(self, key: str, result: Any, what: str = "", kind: str = "work") -> Job:
        """Keep a result computed elsewhere as the finished job under `key`."""
        job = Job(key, kind, what, lambda progress: result, state="done", result=result)
        job.started = job.finished = time.monotonic()
        job._done.set()
        with self._lock:
            self._jobs[key] = job
        return job

    def get(self, key: str) -> Job | None:
        with self._lock:
            return self._jobs.get(key)

    def watch(self, key: str) -> Job | None:
        """The job under `key`, noted as still watched by a page (its placeholder polls it)."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None:
                job.asked = time.monotonic()
            return job

    def stop(self, key: str) -> bool:
        """Ask a queued or running job to stop: a queued one fails at once, a running one at its next progress
        report (what it finished and kept stays kept; on a cluster its remaining tasks are cancelled). True when
        there was such a job."""
        with self._lock:
            job = self._jobs.get(key)
            if job is None or job.done:
                return False
            job._stop.set()
            if job.state == "queued":
                self._queued.discard(key)
                job.state, job.error, job.finished = "failed", "stopped before it started", time.monotonic()
                job._done.set()
        return True

    def forget(self, key: str) -> None:
        """Drop a finished job, so the next submit computes it afresh (Time again)."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.done:
                del self._jobs[key]

    def clear(self) -> None:
        """Drop every finished job (a model changed under its name: tests do that)."""
        with self._lock:
            for key in [k for k, j in self._jobs.items() if j.done]:
                del self._jobs[key]

    def record(self, kind: str, seconds: float) -> None:
        """A duration of work of this kind measured elsewhere (a page run's own slow part), for estimate()."""
        with self._lock:
            self._durations[kind].append(seconds)

    def estimate(self, kind: str) -> float | None:
        """Seconds a job of this kind is expected to take: the median of the last ones here."""
        with self._lock:
            d = sorted(self._durations.get(kind, ()))
        return d[len(d) // 2] if d else None

    def known(self) -> dict[str, str]:
        """Every job known, by key: its state."""
        with self._lock:
            return {k: j.state for k, j in self._jobs.items()}

    def pending(self) -> list[Job]:
        with self._lock:
            return [j for j in self._jobs.values() if not j.done]

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="slimlab-worker", daemon=True)
            self._thread.start()

    def _rank(self, job: Job, now: float) -> tuple[int, bool, int]:
        """Higher runs first: the priority, then whether a page still watches a visitor's job, then the oldest."""
        watched = job.priority >= self.urgent and now - job.asked <= self.watched
        return job.priority, watched, -job.order

    def _first(self) -> Job | None:
        """The queued job to run next (under the lock)."""
        self._queued = {k for k in self._queued if k in self._jobs and self._jobs[k].state == "queued"}
        now = time.monotonic()
        return max((self._jobs[k] for k in self._queued), key=lambda j: self._rank(j, now), default=None)

    def _next(self) -> Job:
        with self._lock:
            while (job := self._first()) is None:
                self._lock.wait()
            self._queued.discard(job.key)
            return job

    def _loop(self) -> None:
        while True:
            job = self._next()
            if job.priority >= self.urgent:
                GATE.wait_idle(self.yield_to_pages)   # let running pages finish first (not for ever: others wait)
            elif not GATE.wait_idle(0.5) or self._more_urgent(job.priority):
                self._requeue(job)                     # speculative work only runs while no page does, and after
                continue                               # anything more urgent that came meanwhile
            self._run(job)

    def _more_urgent(self, priority: int) -> bool:
        with self._lock:
            first = self._first()
            return first is not None and first.priority > priority

    def _requeue(self, job: Job) -> None:
        with self._lock:
            self._queued.add(job.key)

    def _run(self, job: Job) -> None:
        with self._lock:   # stop() marks a job failed only while it is queued: decided under the same lock
            if job._stop.is_set():
                return
            job.state, job.started = "running", time.monotonic()

        def progress(done: int, total: int) -> None:
            job.progress = (done, total)
            if job._stop.is_set():
                raise Stopped(f"stopped after {done} of {total} (what was finished is kept)")

        try:
            job.result = job.fn(progress)
            job.state = "done"
        except Stopped as e:
            job.error, job.state = str(e), "failed"
        except Exception as e:   # the page says what went wrong; the next submit tries again
            log.warning("job %s failed: %s: %s", job.key, type(e).__name__, e, exc_info=not isinstance(e, ValueError))
            job.error, job.state = f"{e}" or type(e).__name__, "failed"
        job.finished = time.monotonic()
        release_memory()
        with self._lock:
            if job.state == "done":
                self._durations[job.kind].append(job.seconds)
            self._trim(job.kind)
        job._done.set()

    def _trim(self, kind: str) -> None:
        limit = self._kept.get(kind, self.keep)
        done = [k for k, j in self._jobs.items() if j.kind == kind and j.done]
        for k in done[:max(0, len(done) - limit)]:
            del self._jobs[k]


def release_memory() -> None:
    """Give the heap that freed tensors leave behind back to the system. glibc keeps it for reuse otherwise, so a
    server that builds and drops models (a masked copy of an encoder is 90 MB) only grows; a no-op elsewhere."""
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL("libc.so.6")
        except OSError:
            _libc = False
    if _libc:
        _libc.malloc_trim(0)


_libc: Any = None
_worker: Worker | None = None
_worker_lock = threading.Lock()


def worker() -> Worker:
    """This process's worker (made on first use)."""
    global _worker
    with _worker_lock:
        if _worker is None:
            _worker = Worker()
        return _worker
