"""Cached computations behind the Trade-offs and Sensitivity pages of any model family, keyed by plain values. Slow
work is split into small cached pieces (one prune setting of a grid, one layer group of a scan) so a page can show
progress between them, an interrupted run keeps the pieces it finished, and a revisit is instant. Nothing here changes
a cached model."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import pandas as pd
import streamlit as st

import slimcore
from slimcore import executor, plots
from slimcore import sensitivity as SE
from slimcore import tradeoffs as core  # the grid, its latencies and its CSV: shared with the CLI and benchmarks
from slimcore.families import Metric, Score, Scorer, family_of

# Names come from the module itself: the package exports the function `sweep` under the module's name, so
# `from slimcore import sweep` may give the function.
from slimcore.sweep import FP32, Allocation, allocate_sample, pareto

from . import cache, state, work
from . import pruning as prune_ui
from .compare import Figure

RATIOS = core.RATIOS               # 20 prune ratios, 0 .. 0.95
BITS = core.BITS                   # 7 bit widths: fp32, 16, 8, 6, 4, 3, 2
GRANULARITIES = {"per tensor": False, "per channel": True}
AXES = {  # x axis choice -> (column, axis title, unit, scale to the unit, log axis)
    "size": ("size_bytes", "size", " KiB", 1 / 1024, True),
    "latency": ("latency_ms", "latency at batch 256", " ms", 1.0, False),
    "MACs": ("macs", "multiply-accumulates per example", "", 1.0, True),
}
# Han, Mao & Dally, "Deep Compression", ICLR 2016 (arXiv:1510.00149), Table 1 and Fig. 1: LeNet-300-100 on MNIST.
PUBLISHED = {"source": "LeNet-300-100 on MNIST, Han et al. 2016", "detail": "1070 KB -> 27 KB, error 1.64 % -> 1.58 %",
             "ratios": (1.0, 12.0, 32.0, 40.0)}


# What differs between families on these pages: the grid's choices and defaults, whether the grid can be timed as a
# whole and its MACs counted, whether its evaluations are slow enough to wait for a click, and Deep Compression's
# settings.
@dataclass(frozen=True)
class PipelineChoices:
    """A family's Deep Compression settings on the Trade-offs page: the choices offered, the defaults, the fixed
    settings of the run (pipeline.deep_compression's keywords) and how long a run takes on this server."""

    amounts: tuple[float, ...] = (0.8, 0.9, 0.92, 0.95)
    amount: float = 0.92
    bits: tuple[int, ...] = (3, 4, 5, 6)
    default_bits: int = 4
    steps: int = 6                     # pruning steps, each followed by fine-tuning
    finetune_epochs: int = 4
    cluster_epochs: int = 4            # centroid fine-tuning
    lr: float = 1e-3
    batch_size: int = 64
    run_time: str = "a few seconds"

    def options(self) -> dict:
        """The fixed keywords of pipeline.deep_compression."""
        return dict(steps=self.steps, finetune_epochs=self.finetune_epochs, cluster_epochs=self.cluster_epochs,
                    lr=self.lr, batch_size=self.batch_size)


@dataclass(frozen=True)
class GridChoices:
    """A family's Trade-offs choices: the options offered and the defaults chosen."""

    ratios: tuple[float, ...]
    default_ratios: tuple[float, ...]
    default_precisions: tuple[str, ...]
    granularity: str                   # the fake quantization grid by default
    axes: tuple[str, ...]              # AXES keys the family's grid fills
    slow: bool                         # grids and scans wait for a click (seconds per evaluation)
    size_unit: tuple[str, float]       # (" KiB", 1 / 1024) or (" MiB", 1 / 2**20)
    log_size: bool                     # sizes spread over decades (a log axis) or bunch up (a linear one)
    pipeline: PipelineChoices = PipelineChoices()


CHOICES = {
    "classifier": GridChoices(RATIOS, RATIOS, tuple(core.precisions("classifier")), "per tensor",
                              ("size", "latency", "MACs"), False, (" KiB", 1 / 1024), True),
    "encoder": GridChoices((0.0, 0.1, 0.25, 0.5, 0.75), (0.0, 0.25, 0.5), ("fp32", "int8", "4-bit"), "per channel",
                           ("size",), True, (" MiB", 1 / 2**20), False,
                           PipelineChoices((0.3, 0.5, 0.7), 0.5, (4, 5, 6, 8), 5, 2, 1, 1, 3e-4, 32,
                                           "about 1-2 minutes")),
}


SLOW_MACS = 2 * 10**9   # multiply-accumulates of one pass over the quick split beyond which a grid waits for a click


def choices(name: str) -> GridChoices:
    """The family's choices; a classifier heavy enough that its grid takes minutes (an uploaded ResNet: 37 M MACs per
    32 x 32 image) waits for a click as an encoder's does."""
    s = cache.sample(name)
    fam = family_of(s)
    opts = CHOICES[fam.name]
    if not opts.slow and cache.baseline(name).macs * len(fam.split(s, "quick")) > SLOW_MACS:
        return replace(opts, slow=True)
    return opts


@st.cache_resource(show_spinner="Scoring the original model…")
def scorer(name: str, split: str) -> Scorer:
    """The family's scorer on a split, built once (an encoder embeds its reference sentences once)."""
    s = cache.sample(name)
    return family_of(s).scorer(s, split)


@st.cache_data(show_spinner=False)
def base_score(name: str, split: str) -> Score:
    """The original model's score on a split."""
    return scorer(name, split)(cache.sample(name).model)


def where() -> None:
    """Say so when grids, scans and allocations are computed on a Ray cluster ($SLIMLAB_RAY_ADDRESS)."""
    address = executor.address_from_env()
    if address:
        st.caption(f"Grids, scans and allocations are computed on the Ray cluster at `{address}` "
                   f"(${executor.ENV}); their figures are the same as in this process. Latency is timed on this "
                   "server.")


# The grid (computed by slimcore.tradeoffs, which `python -m slimcore sweep` calls too) ------------------------------

def _piece_setting(cfg: core.GridConfig, kind: str, method: str, ratio: float) -> core.GridConfig:
    """What decides one piece: the grid's precisions, scope and grid, with this one prune setting."""
    return core.GridConfig((kind,), (method,), (ratio,), cfg.precisions, cfg.scope, cfg.per_channel)


class _Kept:
    """The pieces of a sweep kept on disk under (kind, name, key): those found, and the others computed by the
    caller (in this process, or on the Ray cluster at $SLIMLAB_RAY_ADDRESS) and kept as each one is finished, with
    (done, total) pieces reported from the start (so the page's Stop shows at once), as they come and while a
    cluster computes (`tick`: a Stop is noticed even before the next piece is finished)."""

    def __init__(self, kind: str, name: str, keys: list, on_progress: Callable[[int, int], None] | None) -> None:
        self.kind, self.name, self.keys, self.on_progress = kind, name, keys, on_progress
        self.have = {i: work.find(kind, name, k) for i, k in enumerate(keys)}
        self.missing = [i for i, v in self.have.items() if v is None]
        self.count = len(keys) - len(self.missing)
        self.tick()

    def tick(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.count, len(self.keys))

    def keep(self, i: int, value: object, seconds: float = 0.0) -> None:
        """The i-th missing piece is finished: keep it."""
        index = self.missing[i]
        work.keep(self.kind, self.name, self.keys[index], value, seconds)
        self.have[index], self.count = value, self.count + 1
        self.tick()

    def values(self) -> list:
        return [self.have[i] for i in range(len(self.keys))]


def grid(name: str, cfg: core.GridConfig, on_progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """The whole grid: the pieces kept on disk, the others computed (in this process, or on the Ray cluster at
    $SLIMLAB_RAY_ADDRESS) and kept as each one is finished, reporting (done, total) pieces as they come."""
    todo = cfg.pieces()
    kept = _Kept("grid_piece", name, [_piece_setting(cfg, *p) for p in todo], on_progress)
    if kept.missing:
        missing = [todo[i] for i in kept.missing]
        core.pieces(cache.sample(name), cfg, missing, executor=executor.from_env(), tick=kept.tick,
                    on_piece=lambda p, frame, seconds: kept.keep(missing.index(p), frame, seconds),
                    method_scores={m: prune_ui.scores(name, m) for m in {p[1] for p in missing}})
    return core.combine(kept.values())


def grid_task(name: str, cfg: core.GridConfig) -> work.Task:
    """The grid, built in the background with its progress."""
    todo = len(cfg.pieces())
    return work.Task(f"grid|{name}|{cfg}", lambda progress: grid(name, cfg, progress),
                     f"Sweeping the grid: {todo} prune settings, each at {len(cfg.precisions)} precisions", "grid",
                     name, guess=todo * (0.3 if family_of(cache.sample(name)).name == "classifier" else 3.0),
                     stoppable=True)


def grid_started(name: str, cfg: core.GridConfig) -> bool:
    """Whether the grid is computed or being computed: every piece on disk, or its job known to the worker."""
    return work.started(grid_task(name, cfg)) or all(
        work.on_disk("grid_piece", name, _piece_setting(cfg, *p)) for p in cfg.pieces())


def grid_later(name: str, cfg: core.GridConfig) -> pd.DataFrame | None:
    """The grid (None, with the placeholder drawn, until it is built)."""
    return work.later(grid_task(name, cfg))


def sweep(name: str, methods: tuple[str, ...], structured: tuple[bool, ...], scope: str, per_channel: bool,
          on_progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """A classifier's grid as the page builds it by default: every ratio and bit width, methods x kinds."""
    kinds = tuple("channels" if st_ else "unstructured" for st_ in structured)
    return grid(name, core.GridConfig(kinds, methods, RATIOS, core.precisions("classifier"), scope, per_channel),
                on_progress)


def latencies(name: str, cfg: core.GridConfig) -> dict[str, tuple]:
    """Latency at batch 256 of every real fp32 model of a classifier's grid (masked or channel-pruned), timed
    round-robin: {configuration name: (median ms, label)}. The page times them in the background."""
    frame = grid(name, cfg)  # kept pieces: only the fp32 rows are used
    return core.latencies(cache.sample(name), frame, {m: prune_ui.scores(name, m) for m in cfg.methods})


def latencies_later(name: str, cfg: core.GridConfig) -> dict[str, tuple] | None:
    return work.later(work.Task(f"timing|grid|{name}|{cfg}", lambda progress: latencies(name, cfg),
                                "Timing every real fp32 model side by side at batch 256 (once per grid)",
                                "timing_grid", name, guess=10.0, keep=8))


def with_latency(frame: pd.DataFrame, timed: dict[str, tuple] | None) -> pd.DataFrame:
    """The frame with the measured latencies filled in (k-bit rows keep their reason for having none)."""
    return core.with_latency(frame, timed)


def point_latency(name: str, kind: str, method: str, ratio: float, precision: str, per_channel: bool) -> dict:
    """One point of a grid timed against the original, side by side at the family's batch sizes."""
    s = cache.sample(name)
    net = core.build(s, kind, ratio, precision, per_channel, method)[0]
    return slimcore.time_models(s, {"original": s.model, "point": net}, max_seconds=1.5)


def point_latency_later(name: str, *point) -> dict | None:
    """point_latency in the background (None, with a placeholder drawn, until it is timed)."""
    return work.later(work.Task(f"timing|point|{name}|{point}", lambda progress: point_latency(name, *point),
                                "Timing both models side by side", "timing_point", name, guess=4.0, keep=16))


def frontier(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Pareto frontier of the score against a cost column (smaller cost, higher score)."""
    return pareto(frame, column, "score")


def best_within(frame: pd.DataFrame, base: float, tolerance: float = 0.01) -> pd.Series | None:
    """The smallest configuration scoring within `tolerance` of the original (None if there is none)."""
    ok = frame[frame.score >= base - tolerance].dropna(subset=["size_bytes"])
    return None if ok.empty else ok.sort_values(["size_bytes", "score"], ascending=[True, False]).iloc[0]


def table(frame: pd.DataFrame, front: set[str], metric, size_unit: tuple[str, float]) -> pd.DataFrame:
    """The experiments table as shown: units in the headers, every size and latency labelled."""
    score = (frame.score * 100).round(2) if metric.percent else frame.score.round(4)
    unit = size_unit[0].strip()
    return pd.DataFrame({
        "configuration": frame.config, "Pareto (size)": frame.config.isin(front), "pruning": frame.prune,
        "method": frame.method, "prune ratio": frame.prune_ratio, "precision": frame.precision,
        f"{metric.name}{', %' if metric.percent else ''} (measured)": score,
        f"size, {unit}": (frame.size_bytes * size_unit[1]).round(2), "size is": frame.size_label,
        "non-zero weights": frame.nonzeros, "MACs per example": frame.macs,
        "latency b=256, ms (measured)": frame.latency_ms.round(3),
        "latency note": frame.latency_label.where(frame.latency_label != "", frame.note),
        "size detail": frame.size_rule})


def csv(frame: pd.DataFrame) -> bytes:
    """The raw grid rows as CSV (sizes in bytes, the score as a fraction, labels beside the numbers)."""
    return core.csv(frame)


# The Deep Compression pipeline --------------------------------------------------------------------------------

def run_pipeline(name: str, prune_amount: float, bits: int, on_stage: Callable | None = None,
                 on_step: Callable | None = None) -> tuple:
    """Deep Compression on a sample model (a copy; slimcore.pipeline never changes the model) with its family's
    settings (choices(name).pipeline): its stages, kept on disk for every visitor (the run is seeded)."""
    from slimcore import pipeline  # imported when first run: the rest of the page does not need it

    options = choices(name).pipeline.options()

    def compute() -> tuple:
        return tuple(pipeline.deep_compression(cache.sample(name), prune_amount=prune_amount, bits=bits, seed=0,
                                               on_stage=on_stage, on_step=on_step, **options).stages)
    return work.kept("deep_compression", name, (prune_amount, bits, options), compute)


def pipeline_task(name: str, amount: float, bits: int) -> work.Task:
    """Deep Compression's stages, run in the background with its steps as progress."""
    pipe = choices(name).pipeline
    total = pipe.steps + 3   # the pruning steps, then sharing, Huffman coding and the final check

    def run(progress) -> tuple:
        count = {"n": 0}

        def tick(*_) -> None:
            count["n"] += 1
            progress(min(count["n"], total), total)
        return run_pipeline(name, amount, bits, on_stage=tick, on_step=tick)
    return work.Task(f"deep_compression|{name}|{amount}|{bits}", run, f"Running Deep Compression ({pipe.run_time})",
                     "deep_compression", name, keep=16)


def stage_table(stages, metric: Metric, size_unit: tuple[str, float]) -> pd.DataFrame:
    published = PUBLISHED["ratios"]
    unit, scale = size_unit
    return pd.DataFrame([{
        "stage": st_.name, f"size,{unit}": round(st_.bytes * scale, 2), "size is": st_.label,
        "ratio (ours)": f"{st_.ratio:.2f}x" if st_.ratio < 10 else f"{st_.ratio:.1f}x",
        f"test {metric.short}{', %' if metric.percent else ''}": round(st_.score * metric.scale,
                                                                      2 if metric.percent else 4),
        "published ratio (reference)": f"{published[i]:g}x" if i < len(published) else "",
        "detail": st_.detail} for i, st_ in enumerate(stages)])


def pipeline_section(name: str) -> None:
    """The Trade-offs page's Deep Compression section for a sample model of any family: its settings, the run (at
    once for a fast family, behind a button for a slow one; shared by every visitor once finished) and its stages
    beside the published ones. Independent of the grid: the page draws it whether or not the grid is built."""
    s = cache.sample(name)
    fam, opts = family_of(s), choices(name)
    metric, pipe = fam.metric, opts.pipeline
    st.subheader(f"Deep Compression, stage by stage, on {state.label(name)}")
    st.caption(f"Prune with fine-tuning → share weights by k-means → Huffman-code (Han, Mao & Dally 2016), on the "
               f"model's compressible layers ({len(fam.layers(s.model))} of them); everything else is stored fp32. "
               f"Each stage of ours writes a real byte stream: its size is **measured** (the stream's length) and its "
               f"{metric.name} is that of the model decoded from it. The published stages are **reference** only: "
               "another model, on 28×28 MNIST, on other hardware.")
    p1, p2, p3 = st.columns([2, 2, 3])
    amount = p1.select_slider("Prune amount", list(pipe.amounts), key="tradeoff_pipe_prune")
    bits = p2.select_slider("Weight-sharing bits", list(pipe.bits), key="tradeoff_pipe_bits")
    p3.caption(f"Global L1 in {pipe.steps} steps, {pipe.finetune_epochs} fine-tuning epoch(s) each, centroids "
               f"fine-tuned {pipe.cluster_epochs} epoch(s) (Adam, learning rate {pipe.lr:g}). Fine-tuning is seeded: "
               f"each setting is run once ({pipe.run_time} on this server) and then kept for every visitor.")
    started = (work.started(pipeline_task(name, amount, bits))
               or work.on_disk("deep_compression", name, (amount, bits, pipe.options())))
    if not started and opts.slow and not st.button(f"Run Deep Compression ({pipe.run_time})",
                                                   key="tradeoff_pipe_run", type="primary"):
        st.info(f"Not run yet at this setting: press the button ({pipe.run_time} on this server's 2 cores). Every "
                "visitor then sees the result, also after a restart.")
        return
    with state.friendly_errors():
        stages = work.later(pipeline_task(name, amount, bits))   # None (its progress drawn) until it has run
    if stages is None:
        return
    reference = f"published: {PUBLISHED['source']} (reference)"
    ours = f"ours: {name}, bytes {stages[-1].label}"
    n = len(stages)
    series = {ours: [st_.ratio for st_ in stages], reference: (list(PUBLISHED["ratios"]) + [None] * n)[:n]}
    w1, w2 = st.columns(2)
    w1.plotly_chart(plots.pipeline_waterfall([st_.name for st_ in stages], [st_.bytes for st_ in stages],
                                             [st_.score for st_ in stages], [st_.label for st_ in stages],
                                             f"{name}: bytes after each stage", metric.format, opts.size_unit),
                    key="tradeoff_waterfall")
    w2.plotly_chart(plots.grouped_bars([st_.name for st_ in stages], series, "Compression ratio after each stage",
                                       "stage", "times smaller than the original", text_format="{:.1f}x",
                                       hover="%{x}: %{y:.1f}x", colors=[plots.KEPT, "#9ca3af"]),
                    key="tradeoff_reference")
    st.dataframe(stage_table(stages, metric, opts.size_unit), hide_index=True, width="stretch")
    st.caption(f"Ours: {stages[-1].ratio:.1f}x smaller at test {metric.short} {metric.format(stages[-1].score)} "
               f"(original {metric.format(stages[0].score)}). The published ratios (grey) are the paper's for "
               f"{PUBLISHED['source']} ({PUBLISHED['detail']}): context only, not our result. Where tensors outside "
               "the compressed layers are large (an encoder's embedding tables), they stay fp32 and bound the ratio: "
               "the stage details say how much.")

# Sensitivity -------------------------------------------------------------------------------------------------------

SPLIT = "validation"   # scans and allocations are chosen on it; classifiers report the test split beside it


def groups(name: str, whole: bool = False) -> list:
    """The family's layer groups of the sample's model, scanned one at a time."""
    s = cache.sample(name)
    return family_of(s).layer_groups(s.model, whole)


def scan(name: str, cfg: SE.ScanConfig, on_progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """Every layer group: those kept on disk, the others scanned (in this process, or on the Ray cluster at
    $SLIMLAB_RAY_ADDRESS) and kept as each one is finished, reporting (done, total) groups as they come."""
    todo = groups(name, cfg.whole)
    kept = _Kept("scan_group", name, [(cfg, i) for i in range(len(todo))], on_progress)
    base = base_score(name, SPLIT)
    if kept.missing:
        SE.scan(cache.sample(name).model, [todo[i] for i in kept.missing], scorer(name, SPLIT), cfg,
                prune_ui.scores(name, cfg.method) if cfg.kind == "prune" else None, base=base,
                executor=executor.from_env(), tick=kept.tick,
                on_group=lambda i, rows, seconds: kept.keep(i, SE.frame_of(rows, base), seconds))
    frames = kept.values()
    frame = pd.concat(frames, ignore_index=True)
    frame.attrs = dict(frames[0].attrs)
    return frame


def scan_task(name: str, cfg: SE.ScanConfig) -> work.Task:
    """The scan, in the background with its progress."""
    n = len(groups(name, cfg.whole))
    return work.Task(f"scan|{name}|{cfg}", lambda progress: scan(name, cfg, progress),
                     f"Scanning the {n} groups, each at {len(cfg.values)} settings", "scan", name,
                     guess=n * len(cfg.values) * (0.05 if family_of(cache.sample(name)).name == "classifier" else 0.5),
                     stoppable=True)


def scan_started(name: str, cfg: SE.ScanConfig) -> bool:
    """Whether the scan is computed or being computed: every group on disk, or its job known to the worker."""
    return work.started(scan_task(name, cfg)) or all(
        work.on_disk("scan_group", name, (cfg, i)) for i in range(len(groups(name, cfg.whole))))


def scan_later(name: str, cfg: SE.ScanConfig) -> pd.DataFrame | None:
    """The scan (None, with the placeholder drawn, until it is done)."""
    return work.later(scan_task(name, cfg))


def allocation(name: str, cfg: SE.ScanConfig, budget: float) -> Allocation:
    """The allocation under a budget (the family's metric, in its units: accuracy points; mean cosine) on the
    validation split, measured on validation and test (kept on disk)."""
    def compute() -> Allocation:
        return allocate_sample(cache.sample(name), scan(name, cfg), budget, executor.from_env(), method=cfg.method,
                               quant=core.quant(cfg.per_channel),
                               scores=prune_ui.scores(name, cfg.method) if cfg.kind == "prune" else None)
    return work.kept("allocation", name, (cfg, budget), compute)


def allocation_task(name: str, cfg: SE.ScanConfig, budget: float) -> work.Task:
    return work.Task(f"allocation|{name}|{cfg}|{budget}", lambda progress: allocation(name, cfg, budget),
                     "Allocating, then building and measuring the allocated and uniform models", "allocation", name,
                     guess=5.0 if family_of(cache.sample(name)).name == "classifier" else 60.0, keep=32)


def allocation_started(name: str, cfg: SE.ScanConfig, budget: float) -> bool:
    return work.started(allocation_task(name, cfg, budget)) or work.on_disk("allocation", name, (cfg, budget))


def allocation_later(name: str, cfg: SE.ScanConfig, budget: float) -> Allocation | None:
    return work.later(allocation_task(name, cfg, budget))


def budget_range(metric: Metric) -> tuple[float, float, float, float]:
    """The budget slider's (default, low, high, step) in the metric's units: 0-5 points of a percent metric,
    else 0-1000 quanta (mean cosine 0-0.1, default 0.01)."""
    if metric.percent:
        return 1.0, 0.0, 5.0, 0.1
    q = metric.quantum
    return round(100 * q, 12), 0.0, round(1000 * q, 12), round(10 * q, 12)


def drop_text(metric: Metric, drop: float) -> str:
    """A drop as the budget is written: 1.25 pt, or 0.0123 (of a plain metric)."""
    return f"{drop:.2f} pt" if metric.percent else f"{drop:.4f}"


def setting_name(kind: str, value: float) -> str:
    if kind == "prune":
        return f"{value:.0%}" if value else "kept"
    return "fp32" if value == FP32 else f"{int(value)}-bit"


def allocation_table(a: Allocation) -> pd.DataFrame:
    """The allocated model beside the uniform ones: the family's metric measured (validation chooses, test is held
    out), size modelled."""
    m = a.metric
    unit, places = ("%", 2) if m.percent else (m.short, 4)

    def shown(v: float) -> float:
        return round(v * m.scale, places)

    rows = []
    for o in (a.result, *a.uniform):
        test = shown(o.test_accuracy) if o.test_accuracy is not None else math.nan
        rows.append({"model": o.name,
                     "per layer": ", ".join(f"{n} {setting_name(a.kind, v)}" for n, v in o.settings.items()),
                     f"validation, {unit} (measured)": shown(o.accuracy),
                     f"drop, {'points' if m.percent else m.short}": shown(a.base_accuracy - o.accuracy),
                     f"test, {unit} (measured)": test, "size, KiB (modelled)": round(o.size_bytes / 1024, 2),
                     "compression (modelled)": f"{a.base_bytes / o.size_bytes:.2f}x"}
                    | ({"weights kept": o.weights_kept} if a.kind == "prune"
                       else {"mean bits per weight": round(o.weight_bits / max(o.weights_kept, 1), 2)}))
    return pd.DataFrame(rows)


# A/B comparison: settings and figures ------------------------------------------------------------------------------

GRID_KEYS = ("tradeoff_methods", "tradeoff_ratios", "tradeoff_precisions")


def grid_config(name: str, v: dict) -> core.GridConfig | None:
    """The grid a Trade-offs setting (the page's values by key) sweeps; None when it sweeps nothing (no method, ratio
    or precision chosen)."""
    if not all(v[k] for k in GRID_KEYS):
        return None
    fam = family_of(cache.sample(name))
    kinds = ("unstructured", *fam.unit_kinds) if v["tradeoff_structured"] else ("unstructured",)
    return core.GridConfig(kinds, tuple(v["tradeoff_methods"]), tuple(sorted(v["tradeoff_ratios"])),
                           tuple(p for p in core.precisions(fam.name) if p in v["tradeoff_precisions"]),
                           v["tradeoff_scope"], GRANULARITIES[v["tradeoff_granularity"]])


def tradeoff_presets(name: str) -> dict[str, dict]:
    """Deep Compression from gentle to harsh (the grid's choices stay): the lowest prune amount at the most bits, the
    defaults' neighbours, the highest amount at the fewest bits."""
    pipe = choices(name).pipeline
    return {"mild": dict(tradeoff_pipe_prune=pipe.amounts[0], tradeoff_pipe_bits=pipe.bits[-1]),
            "aggressive": dict(tradeoff_pipe_prune=pipe.amounts[-2], tradeoff_pipe_bits=pipe.bits[1]),
            "breaks it": dict(tradeoff_pipe_prune=pipe.amounts[-1], tradeoff_pipe_bits=pipe.bits[0])}


def tradeoff_figures(name: str, v: dict) -> dict[str, Figure] | None:
    """A Trade-offs setting's figures where they are computed (the grid when every piece is kept, Deep Compression's
    last stage when it has run): never computed here. None when neither is there."""
    metric = family_of(cache.sample(name)).metric
    kind = "percent" if metric.percent else "number"
    out: dict[str, Figure] = {}
    cfg = grid_config(name, v)
    if cfg is not None and all(work.on_disk("grid_piece", name, _piece_setting(cfg, *p)) for p in cfg.pieces()):
        frame = grid(name, cfg).dropna(subset=["score"])
        out["configurations"] = Figure("Configurations", len(frame), "count", None, "counted")
        out["frontier"] = Figure("On the size frontier", len(frontier(frame, "size_bytes")), "count", None, "counted")
        best = best_within(frame, base_score(name, "quick").value)
        if best is not None:
            out["best_bytes"] = Figure("Smallest within 1 point: size", best.size_bytes, "bytes", False,
                                       best.size_label)
            out["best_score"] = Figure(f"Smallest within 1 point: {metric.short}", best.score, kind,
                                       metric.higher_is_better, "measured")
    pipe = choices(name).pipeline
    stages = work.find("deep_compression", name, (v["tradeoff_pipe_prune"], v["tradeoff_pipe_bits"], pipe.options()))
    if stages:
        last = stages[-1]
        out["pipeline_bytes"] = Figure(f"Deep Compression ({last.name}): size", last.bytes, "bytes", False, last.label)
        out["pipeline_score"] = Figure(f"Deep Compression ({last.name}): {metric.short}", last.score, kind,
                                       metric.higher_is_better, "measured")
    return out or None


def scan_config(name: str, v: dict) -> SE.ScanConfig:
    """The scan a Sensitivity setting (the page's values by key) runs: one setting at a time where groups are laid
    out as (layer x kind) cells, else the family's list of settings."""
    grid_layout = any(g.column for g in groups(name))
    settings: tuple = ()
    if grid_layout:
        settings = ((round(float(v["sens_ratio"]), 2),) if v["sens_kind"] == "prune" else (int(v["sens_bits"]),))
    return SE.ScanConfig(v["sens_kind"], settings, v["sens_method"], GRANULARITIES[v["sens_granularity"]],
                         bool(v["sens_whole"]) if grid_layout else False)


def sensitivity_presets(name: str) -> dict[str, dict]:
    """Budgets from gentle to harsh (pruning scans), and quantization's fewest bits for 'breaks it'."""
    _, lo, hi, step = budget_range(family_of(cache.sample(name)).metric)
    return {"mild": dict(sens_budget=round(lo + 5 * step, 12)), "aggressive": dict(sens_budget=round(hi / 2, 12)),
            "breaks it": dict(sens_budget=hi, sens_kind="quantize", sens_bits=2)}


def nearest_uniform(alloc: Allocation):
    """The uniform setting nearest in size to the allocated model (what the page and the A/B table set beside it)."""
    return min(alloc.uniform, key=lambda o: abs(o.size_bytes - alloc.result.size_bytes))


def sensitivity_figures(name: str, v: dict) -> dict[str, Figure] | None:
    """A Sensitivity setting's allocation figures when it has been computed (never computed here), else None."""
    alloc = work.find("allocation", name, (scan_config(name, v), float(v["sens_budget"])))
    if alloc is None:
        return None
    metric = alloc.metric
    kind = "percent" if metric.percent else "number"
    uniform = nearest_uniform(alloc)
    return {"drop": Figure(f"Drop, validation ({'points' if metric.percent else metric.short})", alloc.drop, "number",
                           False, "measured"),
            "test": Figure(f"Test {metric.short}", alloc.result.test_accuracy, kind, metric.higher_is_better,
                           "measured"),
            "bytes": Figure("Size", alloc.result.size_bytes, "bytes", False, "modelled"),
            "uniform_drop": Figure(f"Uniform, same size: drop ({'points' if metric.percent else metric.short})",
                                   (alloc.base_accuracy - uniform.accuracy) * metric.scale, "number", False,
                                   "measured")}
