"""Sweeps over compression settings: a grid of prune ratio x bit width x method (x structured) with accuracy, size,
latency and MACs per row (the classifier rows of slimcore.tradeoffs.grid, in its columns); the Pareto frontier of any
two columns; and a per-layer-group allocation, from a sensitivity scan (slimcore.sensitivity) of any model family,
that meets a budget of the family's headline metric (accuracy points, or mean cosine), measured against a uniform
setting of the same overall size. Never mutates a model.

Variants are dicts of new tensors evaluated with torch.func.functional_call (no deep copies): scores are computed once
per method, masks once per ratio, and every configuration is evaluated on the whole split in one batch. A real model
is built only where one is needed: channel-pruned models (their shapes change) and, when latency is asked for, the
fp32 models that get timed.

Honesty of the numbers, per row: accuracy is always measured (top-1 on the split given). Size is *measured*
(torch.save of a real model) where such a model stands for the configuration: the original, and channel-pruned
models at fp32. Otherwise it is *modelled* from bit counts (slimcore.metrics.modelled_size, the smallest of dense,
bitmask and CSR storage, plus one fp32 scale per quantization grid): fake-quantized weights are fp32 in memory, and a
masked model saved by torch.save is as large as the original. Latency is measured only for real fp32 models; k-bit
rows are NaN with the reason (fake quantization runs fp32 kernels). MACs are what dense kernels compute: all of them
for masked models, fewer for channel-pruned ones.
"""
from __future__ import annotations

import copy
import math
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, cast

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.func import functional_call

from . import pruning as P
from .data import Dataset, Split
from .executor import Executor
from .families import Family, LayerGroup, Metric, Scorer, family_of, get
from .families.classifier import ACCURACY, accuracy_scorer
from .metrics import compare_latency, cpu_name, layer_table, modelled_size, serialized_bytes, weight_layers
from .pruning import (
    METHODS,
    PruneConfig,
    apply_masks,
    calibration_batch,
    masked_parameters,
    masks,
    remove_channels,
    weight_scores,
)
from .quantization import QuantConfig, copy_with, quantize_tensor

FP32 = 32                                              # "bits" of an unquantized row
PRUNE_RATIOS = tuple(round(0.05 * i, 2) for i in range(20))   # 0.00 .. 0.95: the 20 ratios of the standard grid
BITS = (32, 16, 8, 6, 4, 3, 2)                         # the 7 bit widths of the standard grid
CALIBRATION = P.CALIBRATION                            # training examples that Taylor scores are computed on
EVAL_BATCH = 2048      # examples per forward pass: the batches of slimcore.metrics.predict, so the sums are the same
FAKE = "not timed: fake-quantized weights run the same fp32 kernels (no real k-bit model)"
# The columns of a trade-off grid, for every family (slimcore.tradeoffs): `score` is the family's headline metric
# (here top-1 accuracy), `size_rule` how the size was obtained, `detail` the family's detail record (None here).
COLUMNS = ["config", "prune", "method", "structured", "scope", "prune_ratio", "precision", "bits", "score",
           "size_bytes", "size_label", "size_rule", "params", "nonzeros", "macs", "latency_ms", "latency_label", "note",
           "detail"]

Params = dict[str, torch.Tensor]


class SweepError(ValueError):
    """A sweep, scan or allocation that cannot run as asked, with a message fit to show a person."""


# Helpers -------------------------------------------------------------------------------------------------------------

def _splits(data: Dataset | Split, calibration: Split | None) -> tuple[Split, Split | None]:
    """The split to evaluate on and the calibration batch (Taylor scores) from a Dataset or a bare Split."""
    if isinstance(data, Dataset):
        return data.test, calibration if calibration is not None else data.train.head(CALIBRATION)
    return data, calibration


class _State:
    """A read-only stand-in with the one method slimcore.metrics.modelled_size reads: a model's state dict."""

    def __init__(self, state: dict[str, torch.Tensor]) -> None:
        self._state = state

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self._state


def _state(model: nn.Module, params: Params) -> dict[str, torch.Tensor]:
    """The model's state dict with the given parameters in place of its own."""
    return {k: params.get(k, v) for k, v in model.state_dict().items()}


class _Evaluator:
    """Top-1 accuracy of parameter dicts on a split, run on private copies of the architecture, one per worker
    thread: torch.func.functional_call swaps the tensors into the module for the duration of the call, so calling it
    on the given (possibly shared) model from several threads would let them see each other's weights."""

    def __init__(self, split: Split, workers: int = 1, batch: int | None = None) -> None:
        self.split, self.batch = split, batch or EVAL_BATCH
        self.slots: queue.SimpleQueue[list[nn.Module | None]] = queue.SimpleQueue()
        for _ in range(workers):
            self.slots.put([None, None])   # [the model a copy was made of, the copy]

    def __call__(self, model: nn.Module, params: Params) -> float:
        slot = self.slots.get()
        try:
            if slot[0] is not model:   # a new architecture (a channel-pruned model): copy it once for this worker
                slot[:] = [model, copy.deepcopy(model)]
            net = slot[1]
            assert net is not None   # the copy, made with slot[0] (which is `model`, never None, here)
            return self._accuracy(net, params)
        finally:
            self.slots.put(slot)

    @torch.inference_mode()
    def _accuracy(self, net: nn.Module, params: Params) -> float:
        state = (params, dict(net.named_buffers()))
        x, y = self.split.x, self.split.y
        right = sum(int((functional_call(net, state, (x[i:i + self.batch],)).argmax(1) == y[i:i + self.batch]).sum())
                    for i in range(0, len(x), self.batch))
        return float(torch.tensor(float(right)) / len(x)) if len(x) else math.nan  # rounded as metrics.accuracy


_THREADS = threading.Lock()
_single: list[int] = [0, 0]     # sweeps running with one intra-op thread, and the thread count to restore after them


@contextmanager
def _parallel(workers: int) -> Iterator[ThreadPoolExecutor | None]:
    """A pool of worker threads with one intra-op thread each (several small forward passes side by side use two
    cores better than one pass split over two). torch's thread count is process-wide: the first of concurrent sweeps
    (for example two dashboard sessions) sets it to 1, the last restores it."""
    if workers <= 1:
        yield None
        return
    with _THREADS:
        if _single[0] == 0:
            _single[1] = torch.get_num_threads()
            torch.set_num_threads(1)
        _single[0] += 1
    try:
        with ThreadPoolExecutor(workers) as pool:
            yield pool
    finally:
        with _THREADS:
            _single[0] -= 1
            if _single[0] == 0:
                torch.set_num_threads(_single[1])


def _grid_bytes(model: nn.Module, cfg: QuantConfig, layers: Iterable[str]) -> int:
    """Bytes of the quantization grids: one fp32 scale (and an int32 zero point when asymmetric) per tensor or per
    output channel, as slimcore.quantization.modelled_bytes counts them."""
    mods = dict(model.named_modules())
    grids = sum(mods[n].weight.shape[0] if cfg.per_channel else 1 for n in layers)
    return grids * (4 if cfg.symmetric or cfg.bits == 1 else 8)


def _quantized(params: Params, layers: Iterable[str], keep: dict[str, torch.Tensor] | None, cfg: QuantConfig) -> Params:
    """Parameters with the named layers' weights quantized under cfg (layers in forward order, as
    slimcore.quantization.quantized_weights draws stochastic rounding); pruned weights stay zero."""
    gen = torch.Generator().manual_seed(cfg.seed) if cfg.rounding == "stochastic" else None
    out = dict(params)
    for n in layers:
        q = quantize_tensor(params[f"{n}.weight"], cfg, gen)
        out[f"{n}.weight"] = q * keep[n] if keep is not None and cfg.bits == 1 else q  # binary would give zeros +-a
    return out


def _size(model: nn.Module, params: Params, bits: int, cfg: QuantConfig, layers: Iterable[str]) -> tuple[float, str]:
    """Modelled bytes (and how) of a variant: weights at `bits` in the smallest storage format, biases fp32, plus
    the quantization grids."""
    m = modelled_size(_State(_state(model, params)), bits)
    if bits == FP32:
        return m.bytes, f"modelled: {m.detail}"
    extra = _grid_bytes(model, cfg, layers)
    return m.bytes + extra, f"modelled: {m.detail}; + {extra:,} B of scales"


def precision(bits: int) -> str:
    """A bit width as the grids name it: 'fp32' or '4-bit' (fake quantization)."""
    return "fp32" if bits == FP32 else f"{bits}-bit"


def label(method: str, ratio: float, unit: str, precision: str) -> str:
    """A short name of a configuration, e.g. 'L1 50% weights · 4-bit' or 'L1 50% attention heads · fp32'."""
    prune = "unpruned" if ratio == 0 else f"{method.upper() if method == 'l1' else method} {ratio:.0%} {unit}"
    return f"{prune} · {precision}"


def _label(method: str, ratio: float, structured: bool, bits: int) -> str:
    return label(method, ratio, "channels" if structured else "weights", precision(bits))


def _check_grid(prune_ratios: Sequence[float], bits: Sequence[int], methods: Sequence[str],
                structured: Sequence[bool], quant: QuantConfig) -> None:
    for what, values in (("prune ratios", prune_ratios), ("bit widths", bits), ("methods", methods),
                         ("structured choices", structured)):
        if len(values) == 0:
            raise SweepError(f"the grid is empty: give at least one of the {what}")
    for r in prune_ratios:
        if not 0.0 <= r < 1.0:
            raise SweepError(f"prune ratios must be in [0, 1), got {r}")
    for b in bits:
        if b != FP32 and not 1 <= b <= 16:
            raise SweepError(f"bit widths must be 1..16, or {FP32} for no quantization; got {b}")
    for m in methods:
        if m not in METHODS:
            raise SweepError(f"unknown pruning method {m!r}; known: {', '.join(METHODS)}")
    if quant.skip or quant.activations is not None or quant.ternary:
        raise SweepError("sweeps quantize every layer's weights on a k-bit grid: leave skip, activations and ternary "
                         "out of the quantization template")


# The sweep ---------------------------------------------------------------------------------------------------------

def _figures(evaluate: _Evaluator, net: nn.Module, params: Params, bits: int, quant: QuantConfig, layers: list[str],
             measured: bool, same_as: Future[dict[str, Any]] | dict[str, Any] | None = None) -> dict[str, Any]:
    """The measured and modelled figures of one configuration: parameters `params` of `net`, at `bits`. `same_as`
    is the (future) figures of a configuration with exactly the same parameters, whose accuracy is reused."""
    if measured:
        size, label, detail = float(serialized_bytes(net)), "measured", "measured: torch.save of the model"
    else:
        (size, detail), label = _size(net, params, bits, quant, layers), "modelled"
    if same_as is None:
        acc = evaluate(net, params)
    else:
        acc = (same_as.result() if isinstance(same_as, Future) else same_as)["score"]
    return dict(score=acc, size_bytes=float(size), size_label=label, size_rule=detail,
                params=sum(t.numel() for t in params.values()),
                nonzeros=sum(int(torch.count_nonzero(params[f"{n}.weight"])) for n in layers))


def _same(a: Params, b: Params) -> bool:
    """Whether two parameter dicts hold exactly the same values."""
    return all(torch.equal(a[k], v) for k, v in b.items())


def sweep(model: nn.Module, data: Dataset | Split, prune_ratios: Sequence[float] = PRUNE_RATIOS,
          bits: Sequence[int] = BITS, methods: Sequence[str] = ("l1",), structured: Sequence[bool] = (False,),
          scope: str = "layer", quant: QuantConfig | None = None, latency: bool = False, latency_batch: int = 256,
          latency_repeats: int = 10, calibration: Split | None = None,
          scores: dict[str, dict[str, torch.Tensor]] | None = None, workers: int | None = None,
          on_progress: Callable[[int, int], None] | None = None,
          should_stop: Callable[[], bool] | None = None) -> pd.DataFrame:
    """One row per configuration of the grid (prune ratio x bits x method x structured; ratio 0, the unpruned
    model, once, under the first method and kind): its accuracy on the test split (or the Split given), size in
    bytes with a `size_label` of "measured" or "modelled", MACs per example, and, with latency=True, the measured
    latency of real fp32 models (NaN elsewhere, the reason in `latency_label`). `bits` 32 means no quantization;
    `quant` sets the grid (symmetric, per channel, rounding) for the others.
    Prune first, then quantize the kept weights. `scores` reuses weight scores by method; `workers` threads (default:
    torch's thread count) evaluate configurations side by side. `on_progress(done, total)` reports progress;
    `should_stop()` cancels between prune settings, returning the rows done so far with frame.attrs["cancelled"]."""
    quant = quant or QuantConfig()
    _check_grid(prune_ratios, bits, methods, structured, quant)
    split, calib = _splits(data, calibration)
    layers = list(weight_layers(model))
    input_shape = tuple(split.x.shape[1:])
    dense_macs = sum(r.macs for r in layer_table(model, input_shape))
    workers = workers or min(_single[1] if _single[0] else torch.get_num_threads(), 4)
    evaluate = _Evaluator(split, workers)
    unpruned = 0.0 in prune_ratios    # the same model for every method and kind: one set of rows
    total = len(bits) * ((len(prune_ratios) - unpruned) * len(methods) * len(structured) + unpruned)
    rows: list[dict[str, Any]] = []
    timed: dict[int, nn.Module] = {}           # row index -> the real fp32 model to time
    cancelled = False

    def collect(common: dict[str, Any], figures: list[dict[str, Any] | Future[dict[str, Any]]],
                real: nn.Module | None) -> None:
        for b, fig in zip(bits, figures):
            fig = fig.result() if isinstance(fig, Future) else fig
            if latency and b == FP32 and real is not None:
                timed[len(rows)] = real
            why = FAKE if b != FP32 else "" if latency or math.isnan(fig["score"]) else "not timed (latency off)"
            rows.append(common | dict(config=_label(common["method"], common["prune_ratio"], common["structured"], b),
                                      bits=b, precision=precision(b), prune="none" if not common["prune_ratio"] else
                                      "channels" if common["structured"] else "unstructured",
                                      detail=None) | fig | dict(latency_ms=math.nan, latency_label=why))
            if on_progress is not None:
                on_progress(len(rows), total)

    settings = [(m, st, r) for m in methods for st in structured for r in prune_ratios
                if r or (m, st) == (methods[0], structured[0])]
    scored: dict[str, dict[str, torch.Tensor]] = dict(scores or {})
    # the previous ratio's parameters and figures, per (method, structured, bits)
    last: dict[tuple[str, bool, int], tuple[Params, Future[dict[str, Any]] | dict[str, Any]]] = {}
    with _parallel(workers) as pool:
        # settings whose bit widths are being evaluated: one runs ahead of collection
        pending: deque[tuple[dict[str, Any], list[dict[str, Any] | Future[dict[str, Any]]], nn.Module | None]] = deque()
        for method, struct, ratio in settings:
            if should_stop is not None and should_stop():
                cancelled = True
                break
            if method not in scored:
                if method == "taylor" and calib is None:
                    raise SweepError("Taylor importance needs a calibration batch with labels: pass a Dataset or "
                                     "`calibration`")
                scored[method] = weight_scores(model, method, calib)
            keep = masks(model, PruneConfig(ratio, method, scope, struct), scores=scored[method])
            common = dict(method=method, structured=struct, scope=scope, prune_ratio=ratio)
            real: nn.Module | None   # the real fp32 model of this setting, when one is built
            if struct:
                try:
                    net = remove_channels(model, keep, split.x[:1])
                except ValueError as e:
                    blank = dict(score=math.nan, size_bytes=math.nan, size_label="", size_rule="", params=0,
                                 nonzeros=0, macs=math.nan, note=f"no channel-pruned model at this ratio: {e}")
                    pending.append((common, [blank] * len(bits), None))
                    continue
                own = {k: v.detach() for k, v in net.named_parameters()}
                macs, mask, real = sum(r.macs for r in layer_table(net, input_shape)), None, net
            else:
                net, own, macs, mask = model, masked_parameters(model, keep), dense_macs, keep
                real = (model if ratio == 0 else apply_masks(model, keep)) if latency else None
            figures = []
            for b in bits:
                qcfg = replace(quant, bits=b) if b != FP32 else quant
                params = own if b == FP32 else _quantized(own, layers, mask, qcfg)
                # pruning below what quantization rounds to zero anyway changes nothing: reuse that accuracy
                twin = last.get((method, struct, b))
                same = twin[1] if twin is not None and not struct and _same(twin[0], params) else None
                job = (evaluate, net, params, b, qcfg, layers, b == FP32 and (struct or ratio == 0), same)
                figures.append(pool.submit(_figures, *job) if pool else _figures(*job))
                last[(method, struct, b)] = (params, figures[-1])
            pending.append((common | dict(macs=float(macs), note=""), figures, real))
            while len(pending) > 1:
                collect(*pending.popleft())
        while pending:
            collect(*pending.popleft())
    frame = pd.DataFrame(rows, columns=COLUMNS)
    if timed and not cancelled:
        frame = _time(frame, timed, split, latency_batch, latency_repeats)
    frame.attrs["cancelled"] = cancelled
    frame.attrs["split_size"] = len(split)
    return frame


def _time(frame: pd.DataFrame, models: dict[int, nn.Module], split: Split, batch: int, repeats: int) -> pd.DataFrame:
    """Fill latency_ms for the given rows by timing their models round-robin (A B C A B C ...) on real inputs."""
    frame, cpu = frame.copy(), cpu_name()
    lat = compare_latency({str(i): m for i, m in models.items()}, split.x[:batch], batch, repeats=repeats,
                          max_seconds=max(2.0, 0.1 * len(models)))
    for i, m in lat.items():
        frame.loc[int(i), "latency_ms"] = m.median_ms
        frame.loc[int(i), "latency_label"] = (f"measured: median of {m.repeats} runs at batch {m.batch}, "
                                              f"{m.threads} thread(s), one model at a time, on {cpu}"
                                              + (" (noisy)" if m.noisy else ""))
    return frame


def fp32_model(model: nn.Module, row: pd.Series | dict[str, Any], example: torch.Tensor,
               scores: dict[str, torch.Tensor] | None = None, calibration: Split | None = None) -> nn.Module:
    """The real fp32 model of a sweep row's pruning: channel-pruned (structured) or masked dense (unstructured)."""
    cfg = PruneConfig(float(row["prune_ratio"]), row["method"], row["scope"], bool(row["structured"]))
    keep = masks(model, cfg, calibration, scores)
    return remove_channels(model, keep, example) if cfg.structured else apply_masks(model, keep)


def time_rows(model: nn.Module, data: Dataset | Split, frame: pd.DataFrame, batch: int = 256, repeats: int = 10,
              scores: Mapping[str, dict[str, torch.Tensor] | None] | None = None) -> pd.DataFrame:
    """A copy of a sweep frame with the latency of every fp32 row measured (its real model rebuilt and timed
    round-robin with the others) and every k-bit row labelled as not timed."""
    split, calib = _splits(data, None)
    frame = frame.copy()
    models = {}
    for i, row in frame.iterrows():
        if row["bits"] == FP32 and not math.isnan(row["score"]):
            sc = (scores or {}).get(row["method"])
            models[i] = fp32_model(model, row, split.x[:1], sc, calib)
        elif row["bits"] != FP32:
            frame.loc[i, "latency_label"] = FAKE
    return _time(frame, models, split, batch, repeats) if models else frame


# The Pareto frontier ------------------------------------------------------------------------------------------------

def pareto(frame: pd.DataFrame, x: str, y: str, minimize_x: bool = True, maximize_y: bool = True) -> pd.DataFrame:
    """The non-dominated rows of a frame for columns x and y, sorted by x (index kept). A row is dominated when
    another is at least as good in both and better in one; equal rows do not dominate each other, so they are all
    kept. Rows with NaN in x or y are left out."""
    for c in (x, y):
        if c not in frame.columns:
            raise SweepError(f"no column {c!r}; columns: {', '.join(map(str, frame.columns))}")
    valid = frame[[x, y]].dropna()
    a = valid[x].to_numpy(float) * (1 if minimize_x else -1)   # both objectives as "smaller is better"
    b = valid[y].to_numpy(float) * (-1 if maximize_y else 1)
    order = np.lexsort((b, a))
    keep: list[int] = []
    best, i = math.inf, 0
    while i < len(order):
        j = i
        while j < len(order) and a[order[j]] == a[order[i]]:
            j += 1
        group = order[i:j]
        low = b[group].min()
        if low < best:
            keep.extend(int(k) for k in group if b[k] == low)
            best = low
        i = j
    out = frame.loc[valid.index[keep]]
    return out.sort_values(x, ascending=minimize_x, kind="stable")


# Allocation under a quality budget -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    """A measured per-group setting: the family's headline score (`accuracy`: top-1 accuracy for classifiers, mean
    cosine to the original for encoders) measured on the split it was chosen on (and on test when given), size
    modelled from bit counts."""

    name: str
    settings: dict[str, float]       # layer group -> prune ratio, or bits (32 = left fp32), set on all its layers
    accuracy: float                  # the headline score on the selection split
    test_accuracy: float | None      # on the held-out test split, when given
    size_bytes: float                # modelled
    size_detail: str
    weights_kept: int                # compressible layers' weights kept (prune) or all of them (quantize)
    weight_bits: int                 # bits spent on the compressible layers' weights


@dataclass(frozen=True)
class Allocation:
    """A per-group allocation that meets a budget of the family's headline metric, its measured result, and uniform
    settings of the same overall size measured the same way. Drops are in the metric's units as the labs write them
    (metric.scale: points of accuracy; a plain drop of mean cosine)."""

    kind: str
    budget: float                    # largest accepted drop on the selection split (points, or the metric's units)
    base_accuracy: float             # the original's score on the selection split
    base_test_accuracy: float | None
    base_bytes: float                # the original's modelled size (fp32 weights, same storage model)
    predicted_drop: float            # the per-group drops summed (the plan's assumption)
    result: Outcome
    uniform: tuple[Outcome, ...]
    tries: int                       # plans measured until one met the budget
    message: str = ""                # set when nothing could be compressed within the budget
    history: tuple[tuple[float, float], ...] = field(default=())  # (predicted, measured) drop per try
    metric: Metric = ACCURACY        # the family's headline metric the budget and scores are in

    @property
    def drop(self) -> float:
        """Measured drop of the allocated model on the selection split, in the budget's units."""
        return (self.base_accuracy - self.result.accuracy) * self.metric.scale

    def table(self) -> pd.DataFrame:
        """The allocated model beside the uniform ones: one row each, every number labelled."""
        rows = []
        unit = "points" if self.metric.percent else self.metric.short
        for o in (self.result, *self.uniform):
            rows.append({"model": o.name, f"{self.metric.short} (selection split)": o.accuracy,
                         f"drop, {unit}": (self.base_accuracy - o.accuracy) * self.metric.scale,
                         f"test {self.metric.short}": o.test_accuracy, "size_bytes (modelled)": o.size_bytes,
                         "compression (modelled)": self.base_bytes / o.size_bytes, "weights kept": o.weights_kept,
                         "weight bits": o.weight_bits, "size detail": o.size_detail})
        return pd.DataFrame(rows)


def _plan(options: dict[str, list[tuple[float, int, float]]], capacity: int) -> dict[str, float]:
    """Multiple-choice knapsack by dynamic programming: one option (setting, cost, gain) per group, total cost at
    most `capacity`, largest total gain (ties: lower cost). Costs are whole steps of the metric (Metric.steps), so
    this is exact."""
    best: dict[int, tuple[float, dict[str, float]]] = {0: (0.0, {})}
    for layer, opts in options.items():
        nxt: dict[int, tuple[float, dict[str, float]]] = {}
        for used, (gain, chosen) in best.items():
            for setting, cost, g in opts:
                c = used + cost
                if c > capacity:
                    continue
                if c not in nxt or gain + g > nxt[c][0]:
                    nxt[c] = (gain + g, chosen | {layer: setting})
        best = nxt
    top = max(v[0] for v in best.values())
    return best[min(c for c, v in best.items() if v[0] == top)][1]


def _groups(family: Family, model: nn.Module, names: Iterable[str]) -> dict[str, LayerGroup]:
    """The family's layer groups (per layer, or whole) that a sensitivity frame's groups are among, by name."""
    names = set(names)
    for whole in (False, True):
        groups = {g.name: g for g in family.layer_groups(model, whole)}
        if names <= set(groups):
            return groups
    raise SweepError(f"the sensitivity frame names layers this model does not have: "
                     f"{', '.join(sorted(names - set(groups)))}")


def allocate(model: nn.Module, sens: pd.DataFrame, split: Split | Scorer, budget: float,
             test: Split | Scorer | None = None, method: str = "l1", quant: QuantConfig | None = None,
             calibration: Split | None = None, scores: dict[str, torch.Tensor] | None = None, max_tries: int = 50,
             family: Family | None = None) -> Allocation:
    """Per-group prune ratios (or bit widths) from a sensitivity frame (slimcore.sensitivity.scan: one row per
    (layer group, setting)), as much compression as a budget of the family's headline metric allows. `split` scores
    a variant on the data the sensitivity was measured on (a Scorer of the family; a bare Split of a classifier is
    scored by top-1 accuracy, as `test` is). `budget` is the largest drop accepted there, in the metric's units as the
    labs write them: points for a percent metric (accuracy), else the metric itself (mean cosine: e.g. 0.01).
    The plan is exact in integer costs, Metric.steps of them per unit of the metric: whole examples for a percent
    metric, else steps of Metric.quantum (1e-4 of a mean cosine). It assumes per-group drops add up; the allocated
    model is then built and measured, and while its measured drop exceeds the budget the plan is made again with
    less room. So the result always meets the budget on `split` (leaving every group as it was meets any budget >= 0).
    A group's setting goes on each of its layers (fam.layers); sizes are the sum of its layers' weights. Compared with
    uniform settings of the same overall size: the same total of kept weights (prune), or the bit widths just below
    and above the same total of weight bits (quantize). `test`, when given, is measured too and never used to choose.
    `family`: the model's (default: classifiers, a bare model as before)."""
    if not budget >= 0:
        raise SweepError(f"the budget is the largest drop you accept (points, or the metric's own units): it must be "
                         f">= 0, got {budget}")
    if sens.empty:
        raise SweepError("the sensitivity frame is empty: scan some settings first")
    family = family or get("classifier")
    on_split = split if callable(split) else accuracy_scorer(split)
    on_test = None if test is None else test if callable(test) else accuracy_scorer(test)
    kind = str(sens["kind"].iloc[0])
    quant = quant or QuantConfig()
    layers = family.layers(model)
    groups = _groups(family, model, sens["group"])
    if kind == "prune" and scores is None:
        scores = weight_scores(model, method, calibration, family=family)
    base = {k: v.detach() for k, v in model.named_parameters()}
    first = on_split(model)
    metric, n = first.metric, first.examples
    if sens.attrs.get("metric", metric) != metric:
        raise SweepError(f"the sensitivity frame was scored by {sens.attrs['metric'].short}, the allocation by "
                         f"{metric.short}: scan and allocate with the same family's scorer")
    per = metric.steps(n)                   # integer cost steps per unit of the metric
    base_acc, base_test = first.value, (on_test(model).value if on_test is not None else None)
    numel = {ln: cast(torch.Tensor, m.weight).numel() for ln, m in layers.items()}
    sizes = {g: sum(numel[ln] for ln in grp.layers) for g, grp in groups.items()}
    full = FP32 if kind == "quantize" else 0.0

    def build(settings: dict[str, float]) -> tuple[Params, int, int, float, str]:
        if kind == "prune":
            cfg = PruneConfig(0.0, method, "layer", overrides=tuple((ln, float(r)) for g, r in settings.items() if r
                                                                    for ln in groups[g].layers))
            keep = masks(model, cfg, scores=scores)
            params = masked_parameters(model, keep)
            kept = sum(int(keep[ln].sum()) for ln in layers)
            m = modelled_size(_State(_state(model, params)), FP32)
            return params, kept, kept * FP32, m.bytes, f"modelled: {m.detail}"
        params = dict(base)
        for g, b in settings.items():
            if b != FP32:
                params = _quantized(params, groups[g].layers, None, replace(quant, bits=int(b)))
        bits = {ln: int(b) for g, b in settings.items() for ln in groups[g].layers}
        wbits = sum(numel[ln] * bits.get(ln, FP32) for ln in layers)
        other = sum(v.numel() * 4 for k, v in model.state_dict().items() if k not in {f"{ln}.weight" for ln in layers})
        q = [ln for ln in layers if bits.get(ln, FP32) != FP32]
        grids = _grid_bytes(model, quant, q) if q else 0
        return (params, sum(numel.values()), wbits, wbits / 8 + other + grids,
                f"modelled: each layer's weights densely at its bit width, biases fp32, {grids:,} B of scales")

    def outcome(name: str, settings: dict[str, float]) -> Outcome:
        params, kept, wbits, size, detail = build(settings)
        variant = copy_with(model, params)   # a new model: the given one is never changed
        return Outcome(name, dict(settings), on_split(variant).value, on_test(variant).value if on_test else None,
                       size, detail, kept, wbits)

    options: dict[str, list[tuple[float, int, float]]] = {g: [(full, 0, 0.0)] for g in groups}
    for row in sens.itertuples():
        cost = max(0, round((base_acc - row.score) * per))    # whole steps lost on the split (examples, or quanta)
        if kind == "prune":   # weights removed
            gain = round(float(row.setting) * sizes[row.group])
        else:                 # weight bits saved
            gain = sizes[row.group] * (FP32 - int(row.setting))
        options[row.group].append((row.setting, cost, float(gain)))
    drop_of = {(g, s): c for g, opts in options.items() for s, c, _ in opts}
    capacity = math.floor(budget / metric.scale * per + 1e-9)
    history, tries = [], 0
    while True:
        plan = _plan(options, capacity)
        settings = {g: plan.get(g, full) for g in groups}
        result = outcome("allocated per layer", settings)
        predicted = sum(drop_of[(g, s)] for g, s in settings.items()) / per * metric.scale
        measured = (base_acc - result.accuracy) * metric.scale
        history.append((predicted, measured))
        tries += 1
        if measured <= budget + 1e-9 or capacity <= 0 or tries >= max_tries:
            break
        # less room, by the measured excess; never below none at all (the plan that changes nothing costs 0)
        capacity = max(0, capacity - max(1, round((measured - budget) / metric.scale * per)))
    if measured > budget + 1e-9:   # the loop gave up: leave every group as it was, which meets any budget
        settings = {g: full for g in groups}
        result = outcome("allocated per layer", settings)
    message = ""
    if all(v == full for v in settings.values()):
        unit = "points" if metric.percent else f"of {metric.short}"
        message = (f"No layer can be {'pruned' if kind == 'prune' else 'quantized'} at any scanned setting within a "
                   f"drop of {budget:g} {unit} on {n} examples: every layer is left as it was. Allow a larger drop, "
                   "or scan gentler settings.")
    uniform = _uniform(kind, settings, sizes, outcome)
    base_bytes = build({g: full for g in groups})[3]
    return Allocation(kind, budget, base_acc, base_test, base_bytes, predicted, result, uniform, tries, message,
                      tuple(history), metric)


def _allocated(shared: tuple[Any, ...], _item: int) -> Allocation:
    sample, sens, budget, kwargs = shared
    return allocate_sample(sample, sens, budget, **kwargs)


def allocate_sample(sample: Any, sens: pd.DataFrame, budget: float, executor: Executor | None = None,
                    **kwargs: Any) -> Allocation:
    """allocate() for a loaded sample of any family: chosen with its scorer on its validation split (an encoder's
    quick set), reported on test; `budget` in the family's metric's units (points of accuracy; mean cosine). With an
    `executor` (a Ray cluster) the search runs there as one task: each try depends on the one before."""
    if executor is not None:
        allocation: Allocation = executor.map(_allocated, (sample, sens, budget, kwargs), [0])[0]
        return allocation
    fam = family_of(sample)
    if kwargs.get("calibration") is None and kwargs.get("scores") is None:
        kwargs["calibration"] = calibration_batch(sample, kwargs.get("method", "l1"))
    return allocate(sample.model, sens, fam.scorer(sample, "validation"), budget, fam.scorer(sample, "test"),
                    family=fam, **kwargs)


def _uniform(kind: str, settings: dict[str, float], sizes: dict[str, int],
             outcome: Callable[[str, dict[str, float]], Outcome]) -> tuple[Outcome, ...]:
    """Uniform settings of the same overall size as an allocation: one ratio removing the same number of weights
    (prune), or the whole bit widths just below and above the same total of weight bits (quantize)."""
    total = sum(sizes.values())
    if kind == "prune":
        removed = sum(round(float(r) * sizes[ln]) for ln, r in settings.items())
        ratio = min(removed / total, 0.999)
        return (outcome(f"uniform {ratio:.3f} per layer", {ln: ratio for ln in sizes}),)
    mean = sum(sizes[ln] * int(settings[ln]) for ln in sizes) / total
    widths = sorted({math.floor(mean + 1e-9), math.ceil(mean - 1e-9)})
    widths = [b if b <= 16 else FP32 for b in widths]   # no 17..31-bit grids: above 16 bits compare with fp32
    widths = sorted(set(b if b >= 2 else 2 for b in widths))
    return tuple(outcome(f"uniform {b if b != FP32 else 'fp32'}{'-bit' if b != FP32 else ''} "
                         f"({'same' if b == mean else 'fewer' if b < mean else 'more'} bits)", {ln: b for ln in sizes})
                 for b in widths)


__all__ = ["FP32", "PRUNE_RATIOS", "BITS", "COLUMNS", "SweepError", "precision", "label",
           "sweep", "time_rows", "fp32_model", "pareto", "Outcome", "Allocation", "allocate", "allocate_sample"]
