"""Warm-up: the default view of every page of every sample computed once per server, in the background worker, as
soon as the server starts (`python -m slimui`) or, under a plain `streamlit run app.py`, at the first visit.

Each page's slow parts are submitted under the very keys the page uses (its defaults, as a first visit sees them),
at a priority below any visitor's, so a visitor never waits for a warm-up: what a visitor asks for runs first, and
what the warm-up already paid for is there for everyone. Deterministic results land in the disk store too, so after a
restart the warm-up mostly reads files. The page shows a note with its progress while it runs (`note()`)."""
from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import streamlit as st

import slimcore
from slimcore import distillation as D
from slimcore import executor
from slimcore import pruning as P
from slimcore import sensitivity as SE
from slimcore import text_prune as TP
from slimcore import tradeoffs as core
from slimcore.families import family_of

from . import cache, home, work
from . import distill as distill_ui
from . import pruning as prune_ui
from . import quant as quant_ui
from . import tradeoffs as trade_ui

WARM = 0   # the warm-up's priority: below every visitor's (work.VISITOR)


def prune_default(name: str) -> P.PruneConfig:
    """The Pruning page's setting on a first visit (its controls' defaults)."""
    if family_of(cache.sample(name)).name == "encoder":
        return replace(TP.config(0.3, "unstructured"), method="l1", scope="layer")
    return P.PruneConfig(0.5, "l1", "layer", False, 1)


def quant_default(name: str):
    return quant_ui.config(8, False, next(iter(quant_ui.SCHEMES)), next(iter(quant_ui.GRANULARITIES)),
                           quant_ui.TARGETS[0], 8, next(iter(quant_ui.CALIBRATION_METHODS)),
                           next(iter(quant_ui.ROUNDING)))


def grid_default(name: str) -> core.GridConfig:
    fam, opts = family_of(cache.sample(name)), trade_ui.choices(name)
    precisions = core.precisions(fam.name)
    return core.GridConfig(("unstructured", *fam.unit_kinds), ("l1",), tuple(sorted(opts.default_ratios)),
                           tuple(p for p in precisions if p in opts.default_precisions), next(iter(P.SCOPES)),
                           trade_ui.GRANULARITIES[opts.granularity])


def scan_default(name: str) -> SE.ScanConfig:
    groups = family_of(cache.sample(name)).layer_groups(cache.sample(name).model)
    settings = (0.5,) if any(g.column for g in groups) else ()
    return SE.ScanConfig("prune", settings, "l1", trade_ui.GRANULARITIES[next(iter(trade_ui.GRANULARITIES))], False)


def distill_default(name: str) -> D.DistillConfig:
    """The Distillation page's setting on a first visit: the family's defaults, the student as its control rounds it."""
    s = cache.sample(name)
    d = family_of(s).distill_defaults
    if family_of(s).name == "encoder":
        from slimcore import text_distill as TD
        model = cache.text_sample(name).model
        return replace(d, student=TD.share(model, TD.student_layers(model, d.student)))
    return d


def _page_path(name: str) -> None:
    """What the pages compute in their own run on a first visit, cached in memory for every session."""
    s = cache.sample(name)
    fam = family_of(s)
    cache.baseline(name)
    layers = list(fam.layers(s.model))
    cache.layer_weights(name, layers[0])
    if fam.name == "encoder":
        home.neighbours(name)
    else:
        cache.examples(name)
    cfg = prune_default(name)
    prune_ui.report(name, cfg)
    prune_ui.original(name)
    prune_ui.masks(name, cfg)
    q = quant_default(name)
    quant_ui.variant(name, quant_ui.key(q))
    quant_ui.layer_detail(name, quant_ui.key(q), layers[0])
    trade_ui.base_score(name, "quick")
    trade_ui.base_score(name, trade_ui.SPLIT)
    d = distill_default(name)
    if fam.name == "encoder":   # the Distillation page's picture of the default student
        distill_ui.student_card(name, d.student)
        distill_ui.teacher_card(name)
        distill_ui.first_batch(name, d.seed, d.batch_size)
        distill_ui.untrained_rows(name, d.student, d.seed, d.batch_size)
    else:
        distill_ui.teacher_logits(name)
        for width in D.WIDTHS:
            distill_ui.student_params(name, width)


def _jobs(name: str) -> list[tuple[str, Callable[[], object]]]:
    """The slow parts of the pages' default views, as (what, submit): each submits the very task its page asks for
    (so a visitor and the warm-up share one job), at the warm-up's priority."""
    fam = family_of(cache.sample(name))
    cfg, q = prune_default(name), quant_default(name)
    grid, scan = grid_default(name), scan_default(name)
    opts = trade_ui.choices(name)
    budget = trade_ui.budget_range(fam.metric)[0]
    panel = prune_ui.panel(fam)
    small = fam.name == "classifier"   # the slow family's Deep Compression waits for a click, as on the page
    tasks = [("home timing", lambda: home.timing(name)),
             ("pruning curve", lambda: prune_ui.curve_task(name, cfg, panel.curve)),
             ("pruning timing", lambda: prune_ui.timing(name, cfg)),
             ("quantization curve", lambda: quant_ui.curve_task(name, quant_ui.curve_key(q))),
             ("int8 builds", lambda: quant_ui.int8_task(name)),
             ("int8 timing", lambda: quant_ui.timing(name)),
             ("trade-off grid", lambda: trade_ui.grid_task(name, grid)),
             ("sensitivity scan", lambda: trade_ui.scan_task(name, scan))]
    if panel.positions:   # a slow model: every position of the Pruning slider, as its page would prepare them
        tasks.append(("slider positions", lambda: prune_ui.positions_task(name, cfg, panel.positions)))
    if small:
        amount, bits = opts.pipeline.amount, opts.pipeline.default_bits
        tasks += [("allocation", lambda: trade_ui.allocation_task(name, scan, budget)),
                  ("Deep Compression", lambda: trade_ui.pipeline_task(name, amount, bits))]
    return [(what, _submitting(task)) for what, task in tasks]


def _submitting(task: Callable[[], work.Task]) -> Callable[[], object]:
    """A warm-up step: submit the task (made when the step runs) at the warm-up's priority."""
    return lambda: work.submit(task(), priority=WARM)


@dataclass
class Progress:
    """How far the warm-up is: samples and jobs done of all, since when, and the time it took once done."""

    samples: list[str] = field(default_factory=list)
    done: int = 0
    total: int = 0
    started: float = field(default_factory=time.monotonic)
    seconds: float | None = None
    failed: list[str] = field(default_factory=list)
    now: str = ""

    @property
    def running(self) -> bool:
        return self.seconds is None


_progress: Progress | None = None
_lock = threading.Lock()
_cluster = False   # the cluster's workers started (once per process)


def start(samples: list[str] | None = None) -> Progress | None:
    """Start the warm-up once per process (later calls return its progress); None when it is not enabled(). The
    Ray cluster's workers at $SLIMLAB_RAY_ADDRESS are started then too, warm-up or not."""
    global _progress, _cluster
    with _lock:
        if not _cluster and executor.address_from_env():
            _cluster = True
            threading.Thread(target=_start_cluster, name="slimlab-cluster", daemon=True).start()
    if not enabled():
        return None
    with _lock:
        if _progress is None:
            _progress = Progress(list(samples or _order()))
            threading.Thread(target=_run, args=(_progress,), name="slimlab-warmup", daemon=True).start()
        return _progress


def _start_cluster() -> None:
    try:
        runner = executor.from_env()
        runner.warm()
        print(f"SlimLab: sweeps run on {runner.name}, {runner.workers} worker CPUs", file=sys.stderr, flush=True)
    except Exception as e:   # the pages say it again when a sweep is asked for
        print(f"SlimLab: the Ray cluster cannot be used: {e}", file=sys.stderr, flush=True)


def _order() -> list[str]:
    """Every sample, the default one first (or those named in $SLIMLAB_WARMUP_SAMPLES, comma-separated)."""
    chosen = [n for n in os.environ.get("SLIMLAB_WARMUP_SAMPLES", "").split(",") if n]
    names = [n for n in slimcore.list_samples() if n in chosen] if chosen else slimcore.list_samples()
    return sorted(names, key=lambda n: n != slimcore.DEFAULT_SAMPLE)


def _run(progress: Progress) -> None:
    """Prepare every sample (the default one first), one at a time: its page path, then its pages' jobs, each waited
    for. The worker runs a visitor's jobs before the warm-up's as they come."""
    try:
        plans = {name: _jobs(name) for name in progress.samples}   # loads every sample
    except Exception as e:   # a sample that cannot be loaded: its pages say why; the warm-up stops here
        progress.failed.append(f"loading the samples: {e}")
        plans = {}
    progress.total = sum(1 + len(steps) for steps in plans.values())
    for name, steps in plans.items():
        progress.now = name
        progress.failed += prepare(name, steps, progress)
    progress.seconds = time.monotonic() - progress.started
    progress.now = ""
    print(f"SlimLab warm-up: {progress.done} of {progress.total} parts of {len(plans)} samples ready in "
          f"{progress.seconds:.1f} s" + (f"; failed: {'; '.join(progress.failed)}" if progress.failed else ""),
          file=sys.stderr, flush=True)


def prepare(name: str, steps: list | None = None, progress: Progress | None = None) -> list[str]:
    """Prepare one sample's default views (its page path, then its pages' jobs, each waited for); return what
    failed, in words."""
    w, failed = work.worker(), []
    page = w.submit(f"warm|{name}", lambda p: _page_path(name), f"Preparing {name}", "warm", priority=WARM)
    page.wait()
    for what, submit in [("pages", None)] + (_jobs(name) if steps is None else steps):
        job = page if submit is None else submit()
        job.wait()
        if progress is not None:
            progress.done += 1
        if job.state == "failed":
            failed.append(f"{name} {what}: {job.error}")
    return failed


def enabled() -> bool:
    """Whether this process warms up: not in the tests' inline mode, nor with SLIMLAB_WARMUP=0."""
    return not work.worker().inline and os.environ.get("SLIMLAB_WARMUP", "1") != "0"


def note() -> None:
    """One line while the warm-up runs (what it prepares, how far it is), looked at again every few seconds; the
    page is drawn once more without it when the warm-up is done."""
    if _progress is None or not _progress.running:
        return

    @st.fragment(run_every=3.0)
    def line() -> None:
        p = _progress
        if not p.running:
            st.rerun(scope="app")
        st.caption(f"Warming up in the background: every sample's default views are being prepared so that they "
                   f"open at once ({p.done} of {max(p.total, 1)} done, now {p.now or 'starting'}). What you ask for "
                   "runs first.")

    line()
