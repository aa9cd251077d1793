"""The Trade-offs grid as the Trade-offs page computes it, for every caller: the standard sweep (20 prune ratios x 7 bit
widths, per method and kind) run one prune setting (a "piece") at a time, so a caller can cache pieces, report
progress between them and stop early; the measured latency of its real fp32 models; and the table as CSV. The page
(through slimui.tradeoffs), `python -m slimcore sweep` and the benchmarks call these, so their numbers agree.
"""
from __future__ import annotations

import importlib
from typing import Callable, Sequence

import pandas as pd
import torch
from torch import nn

from .data import Dataset
from .pruning import weight_scores
from .quantization import QuantConfig

_sweep = importlib.import_module(".sweep", __package__)  # the module: the package exports the function `sweep`

RATIOS = _sweep.PRUNE_RATIOS     # 20 prune ratios, 0 .. 0.95
BITS = _sweep.BITS               # 7 bit widths: fp32, 16, 8, 6, 4, 3, 2
FP32 = _sweep.FP32
CALIBRATION = _sweep.CALIBRATION  # training examples Taylor scores are computed on

Piece = tuple[str, bool, float]   # (method, structured, prune ratio)


def quant(per_channel: bool) -> QuantConfig:
    """The grid of the quantized rows: symmetric k-bit, one scale per tensor or per output channel."""
    return QuantConfig(per_channel=per_channel)


def pieces(methods: Sequence[str], structured: Sequence[bool], ratios: Sequence[float] = RATIOS) -> list[Piece]:
    """The prune settings of a grid, one piece each: (method, structured, ratio); ratio 0 (the unpruned model) once,
    under the first method and kind, as slimcore.sweep counts it."""
    return [(m, s, r) for m in methods for s in structured for r in ratios
            if r or (m, s) == (methods[0], structured[0])]


def scores(model: nn.Module, data: Dataset, method: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Weight scores of a method, on the first CALIBRATION training examples (the Pruning lab's calibration)."""
    return weight_scores(model, method, data.train.head(CALIBRATION), seed)


def piece(model: nn.Module, data: Dataset, method: str, structured: bool, ratio: float, scope: str = "layer",
          per_channel: bool = False, bits: Sequence[int] = BITS,
          method_scores: dict[str, torch.Tensor] | None = None) -> pd.DataFrame:
    """One prune setting at every bit width: accuracy on the test split, size (measured or modelled), counts, MACs.
    `method_scores` reuses the method's weight scores (see `scores`)."""
    return _sweep.sweep(model, data, (ratio,), tuple(bits), (method,), (structured,), scope, quant(per_channel),
                        scores=None if method_scores is None else {method: method_scores})


def combine(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The pieces' rows as one table (columns of slimcore.sweep.COLUMNS)."""
    if not frames:
        return pd.DataFrame(columns=_sweep.COLUMNS)
    frame = pd.concat(frames, ignore_index=True)
    frame.attrs["split_size"] = frames[0].attrs.get("split_size")
    return frame


def grid(model: nn.Module, data: Dataset, methods: Sequence[str] = ("l1",), structured: Sequence[bool] = (False, True),
         scope: str = "layer", per_channel: bool = False, ratios: Sequence[float] = RATIOS,
         bits: Sequence[int] = BITS, on_progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """The whole grid, piece by piece, reporting (done, total) pieces; the defaults are the page's defaults."""
    todo = pieces(tuple(methods), tuple(structured), tuple(ratios))
    if not todo:
        raise _sweep.SweepError("the grid is empty: give at least one method, kind and prune ratio")
    scored = {m: scores(model, data, m) for m in dict.fromkeys(methods)}
    frames = []
    for i, (m, s, r) in enumerate(todo):
        frames.append(piece(model, data, m, s, r, scope, per_channel, bits, scored[m]))
        if on_progress is not None:
            on_progress(i + 1, len(todo))
    return combine(frames)


def latencies(model: nn.Module, data: Dataset, frame: pd.DataFrame,
              method_scores: dict[str, dict[str, torch.Tensor]] | None = None) -> dict[str, tuple[float, str]]:
    """Latency at batch 256 of every real fp32 model of a grid (masked or channel-pruned), rebuilt and timed
    round-robin: {configuration name: (median ms, label)}."""
    fp32 = frame[(frame.bits == FP32) & frame.accuracy.notna()].reset_index(drop=True)
    timed = _sweep.time_rows(model, data, fp32, scores=method_scores)
    return {r.config: (r.latency_ms, r.latency_label) for r in timed.itertuples()}


def with_latency(frame: pd.DataFrame, timed: dict[str, tuple[float, str]] | None) -> pd.DataFrame:
    """The frame with the measured latencies filled in (k-bit rows keep their reason for having none)."""
    if not timed:
        return frame
    out = frame.copy()
    hit = out.config.isin(timed)
    out.loc[hit, "latency_ms"] = [timed[c][0] for c in out.config[hit]]
    out.loc[hit, "latency_label"] = [timed[c][1] for c in out.config[hit]]
    return out


def csv(frame: pd.DataFrame) -> bytes:
    """The raw sweep rows as CSV (sizes in bytes, accuracy as a fraction, labels beside the numbers)."""
    return frame.to_csv(index=False).encode()


__all__ = ["RATIOS", "BITS", "FP32", "CALIBRATION", "quant", "pieces", "scores", "piece", "combine", "grid",
           "latencies", "with_latency", "csv"]
