"""Cached computations behind the Trade-offs and Sensitivity pages, keyed by plain values. Slow work is split into
small cached pieces (one prune setting of a sweep, one layer of a scan) so a page can show progress between them,
an interrupted run keeps the pieces it finished, and a revisit is instant. Nothing here changes a cached model."""
from __future__ import annotations

import math
from typing import Callable

import pandas as pd
import streamlit as st

import slimcore
from slimcore import tradeoffs as core   # the grid, its latencies and its CSV: shared with the CLI and benchmarks
# Names come from the module itself: the package exports the function `sweep` under the module's name, so
# `from slimcore import sweep` may give the function.
from slimcore.sweep import BITS as SWEEP_BITS, FP32, PRUNE_RATIOS, Allocation, allocate, pareto, sensitivity

from . import cache
from . import pruning as prune_ui

RATIOS = PRUNE_RATIOS              # 20 prune ratios, 0 .. 0.95
BITS = SWEEP_BITS                      # 7 bit widths: fp32, 16, 8, 6, 4, 3, 2
GRANULARITIES = {"per tensor": False, "per channel": True}
AXES = {  # x axis choice -> (column, axis title, unit, scale to the unit, log axis)
    "size": ("size_bytes", "size", " KiB", 1 / 1024, True),
    "latency": ("latency_ms", "latency at batch 256", " ms", 1.0, False),
    "MACs": ("macs", "multiply-accumulates per example", "", 1.0, True),
}
PIPELINE_MODEL = "digits-mlp"
# Han, Mao & Dally, "Deep Compression", ICLR 2016 (arXiv:1510.00149), Table 1 and Fig. 1: LeNet-300-100 on MNIST.
PUBLISHED = {"source": "LeNet-300-100 on MNIST, Han et al. 2016", "detail": "1070 KB -> 27 KB, error 1.64 % -> 1.58 %",
             "ratios": (1.0, 12.0, 32.0, 40.0)}


def _quant(per_channel: bool) -> slimcore.QuantConfig:
    return core.quant(per_channel)


# The sweep (computed by slimcore.tradeoffs, which `python -m slimcore sweep` calls too) ----------------------------

def pieces(methods: tuple[str, ...], structured: tuple[bool, ...]) -> list[tuple[str, bool, float]]:
    """The prune settings of a sweep, one cached piece each: (method, structured, ratio); ratio 0 once."""
    return core.pieces(methods, structured, RATIOS)


@st.cache_data(show_spinner=False, max_entries=2048)
def piece(name: str, method: str, structured: bool, ratio: float, scope: str, per_channel: bool) -> pd.DataFrame:
    """One prune setting at every bit width of BITS: accuracy on the test split, size, counts, MACs."""
    s = cache.sample(name)
    return core.piece(s.model, s.data, method, structured, ratio, scope, per_channel, BITS,
                      prune_ui.scores(name, method))


def sweep(name: str, methods: tuple[str, ...], structured: tuple[bool, ...], scope: str, per_channel: bool,
          on_progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """The whole grid, piece by piece (each piece cached), reporting (done, total) pieces as it goes."""
    todo = pieces(methods, structured)
    frames = []
    for i, (m, s, r) in enumerate(todo):
        frames.append(piece(name, m, s, r, scope, per_channel))
        if on_progress is not None:
            on_progress(i + 1, len(todo))
    return core.combine(frames)


@st.cache_data(show_spinner=False, max_entries=64)
def latencies(name: str, methods: tuple[str, ...], structured: tuple[bool, ...], scope: str,
              per_channel: bool) -> dict[str, tuple]:
    """Latency at batch 256 of every real fp32 model of a grid (masked or channel-pruned), timed round-robin:
    {configuration name: (median ms, label)}."""
    s = cache.sample(name)
    frame = sweep(name, methods, structured, scope, per_channel)  # cached pieces: only the fp32 rows are used
    return core.latencies(s.model, s.data, frame, {m: prune_ui.scores(name, m) for m in methods})


def with_latency(frame: pd.DataFrame, timed: dict[str, tuple] | None) -> pd.DataFrame:
    """The frame with the measured latencies filled in (k-bit rows keep their reason for having none)."""
    return core.with_latency(frame, timed)


def frontier(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Pareto frontier of accuracy against a cost column (smaller cost, higher accuracy)."""
    return pareto(frame, column, "accuracy")


def best_within(frame: pd.DataFrame, base: float, points: float = 1.0) -> pd.Series | None:
    """The smallest configuration within `points` of the original's accuracy (None if there is none)."""
    ok = frame[frame.accuracy >= base - points / 100].dropna(subset=["size_bytes"])
    return None if ok.empty else ok.sort_values(["size_bytes", "accuracy"], ascending=[True, False]).iloc[0]


def table(frame: pd.DataFrame, front: set[str]) -> pd.DataFrame:
    """The experiments table as shown: units in the headers, every size and latency labelled."""
    return pd.DataFrame({
        "configuration": frame.config, "Pareto (size)": frame.config.isin(front), "method": frame.method,
        "structured": frame.structured, "prune ratio": frame.prune_ratio,
        "bits": frame.bits.map(lambda b: "fp32" if b == FP32 else str(b)),
        "test accuracy, % (measured)": (frame.accuracy * 100).round(2),
        "size, KiB": (frame.size_bytes / 1024).round(2), "size is": frame.size_label,
        "non-zero weights": frame.nonzeros, "MACs per example": frame.macs,
        "latency b=256, ms (measured)": frame.latency_ms.round(3),
        "latency note": frame.latency_label.where(frame.latency_label != "", frame.note),
        "size detail": frame.size_detail})


def csv(frame: pd.DataFrame) -> bytes:
    """The raw sweep rows as CSV (sizes in bytes, accuracy as a fraction, labels beside the numbers)."""
    return core.csv(frame)


# The Deep Compression pipeline --------------------------------------------------------------------------------

@st.cache_resource
def pipeline_runs() -> dict[tuple, tuple]:
    """Finished pipeline runs, shared by every session: {(prune amount, bits): stages}."""
    return {}


def run_pipeline(prune_amount: float, bits: int, on_stage: Callable | None = None) -> tuple:
    """Run Deep Compression on PIPELINE_MODEL (a copy; slimcore.pipeline never changes the model) and keep its
    stages for every session."""
    from slimcore import pipeline  # imported when first run: the rest of the page does not need it

    s = cache.sample(PIPELINE_MODEL)
    res = pipeline.deep_compression(s.model, s.data, prune_amount=prune_amount, bits=bits, seed=0, on_stage=on_stage)
    pipeline_runs()[(prune_amount, bits)] = tuple(res.stages)
    return tuple(res.stages)


def stage_table(stages) -> pd.DataFrame:
    published = PUBLISHED["ratios"]
    return pd.DataFrame([{
        "stage": st_.name, "size, KiB": round(st_.bytes / 1024, 2), "size is": st_.label,
        "ratio (ours)": f"{st_.ratio:.1f}x", "test accuracy, %": round(st_.accuracy * 100, 2),
        "published ratio (reference)": f"{published[i]:g}x" if i < len(published) else "",
        "detail": st_.detail} for i, st_ in enumerate(stages)])


# Sensitivity -------------------------------------------------------------------------------------------------------

@st.cache_data(show_spinner=False, max_entries=512)
def scan_layer(name: str, kind: str, method: str, per_channel: bool, layer: str) -> pd.DataFrame:
    """One layer alone pruned at every SENSITIVITY_RATIOS ratio or quantized at every SENSITIVITY_BITS width, on the
    validation split (the allocation is chosen there, so the test split stays held out)."""
    s = cache.sample(name)
    return sensitivity(s.model, s.data.val, kind, method=method, quant=_quant(per_channel),
                         scores=prune_ui.scores(name, method) if kind == "prune" else None, layers=[layer])


def scan(name: str, kind: str, method: str, per_channel: bool,
         on_progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    layers = list(slimcore.weight_layers(cache.sample(name).model))
    frames = []
    for i, layer in enumerate(layers):
        frames.append(scan_layer(name, kind, method, per_channel, layer))
        if on_progress is not None:
            on_progress(i + 1, len(layers))
    frame = pd.concat(frames, ignore_index=True)
    frame.attrs = dict(frames[0].attrs)
    return frame


@st.cache_data(show_spinner="Allocating and measuring the allocated model…", max_entries=256)
def allocation(name: str, kind: str, method: str, per_channel: bool, budget: float) -> Allocation:
    """The allocation under a budget (points on the validation split), measured on validation and test."""
    s = cache.sample(name)
    sens = scan(name, kind, method, per_channel)
    return allocate(s.model, sens, s.data.val, budget, s.test, method=method, quant=_quant(per_channel),
                      scores=prune_ui.scores(name, method) if kind == "prune" else None)


def setting_name(kind: str, value: float) -> str:
    if kind == "prune":
        return f"{value:.0%}" if value else "kept"
    return "fp32" if value == FP32 else f"{int(value)}-bit"


def allocation_table(a: Allocation) -> pd.DataFrame:
    """The allocated model beside the uniform ones: accuracy measured (validation chooses, test is held out), size
    modelled."""
    rows = []
    for o in (a.result, *a.uniform):
        test = round(o.test_accuracy * 100, 2) if o.test_accuracy is not None else math.nan
        rows.append({"model": o.name,
                     "per layer": ", ".join(f"{n} {setting_name(a.kind, v)}" for n, v in o.settings.items()),
                     "validation, % (measured)": round(o.accuracy * 100, 2),
                     "drop, points": round((a.base_accuracy - o.accuracy) * 100, 2),
                     "test, % (measured)": test, "size, KiB (modelled)": round(o.size_bytes / 1024, 2),
                     "compression (modelled)": f"{a.base_bytes / o.size_bytes:.2f}x"}
                    | ({"weights kept": o.weights_kept} if a.kind == "prune"
                       else {"mean bits per weight": round(o.weight_bits / max(o.weights_kept, 1), 2)}))
    return pd.DataFrame(rows)
