"""Sensitivity on any model family: each group of compressible layers (the family's `layer_groups`: a classifier's
Linear/Conv layers, an encoder's (transformer layer x kind of Linear) cells or whole kinds) compressed ALONE — pruned
at a ratio (unstructured, within each layer) or fake-quantized at a bit width — the rest left as it is, and scored by
the family's scorer. One tidy frame, one row per (group, setting). Never mutates a model.

Every figure is measured (one evaluation of a real variant on held-out data); the variants are simulations: masked
weights and fake-quantized weights stay dense fp32.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch import nn

from .executor import Executor, InProcess
from .families import LayerGroup, Score, Scorer, family_of
from .pruning import METHODS, lowest, sample_scores
from .quantization import BITS_RANGE, QuantConfig, copy_with, quantize_tensor

KINDS = {"prune": "pruned alone (unstructured, within each layer)", "quantize": "fake-quantized alone (weights)"}
RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)   # the default prune ratios of a scan
BITS = (8, 7, 6, 5, 4, 3, 2)                                          # the default bit widths of a scan
COLUMNS = ["group", "row", "column", "layers", "kind", "setting", "score", "score_drop", "weights", "detail"]
Progress = Callable[[int, int], None] | None


@dataclass(frozen=True)
class ScanConfig:
    """How each group is compressed alone, at which settings."""

    kind: str = "prune"                  # "prune" (unstructured, within each layer) or "quantize" (weights, k-bit)
    settings: tuple[float, ...] = ()     # prune ratios in [0, 1) or bit widths; () = RATIOS or BITS
    method: str = "l1"                   # prune: how weights are scored (slimcore.pruning.METHODS)
    per_channel: bool = False            # quantize: one symmetric grid per output channel (else per tensor)
    whole: bool = False                  # groups across the whole model (an encoder's kinds of Linear), not per layer

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown sensitivity kind {self.kind!r}; known: {', '.join(KINDS)}")
        if self.method not in METHODS:
            raise ValueError(f"unknown pruning method {self.method!r}; known: {', '.join(METHODS)}")
        for s in self.settings:
            if self.kind == "prune" and not 0.0 <= s < 1.0:
                raise ValueError(f"prune ratios must be in [0, 1), got {s}")
            if self.kind == "quantize" and not (float(s).is_integer() and BITS_RANGE[0] <= s <= BITS_RANGE[1]):
                raise ValueError(f"bit widths must be whole numbers {BITS_RANGE[0]}..{BITS_RANGE[1]}, got {s}")

    @property
    def values(self) -> tuple[float, ...]:
        """The settings scanned: the given ones, or the kind's defaults."""
        return tuple(self.settings) or (RATIOS if self.kind == "prune" else BITS)

    def quant(self, bits: int) -> QuantConfig:
        """The symmetric k-bit grid of the quantized settings."""
        return QuantConfig(int(bits), per_channel=self.per_channel)

    def describe(self, setting: float) -> str:
        """A setting in words: '50% of each Linear's weights pruned (smallest |w|, ...)' or '4-bit ... per tensor'."""
        if self.kind == "prune":
            how = "smallest |w|" if self.method == "l1" else f"lowest {METHODS[self.method]}"
            return f"{setting:.0%} of each Linear's weights pruned ({how}, unstructured, within the layer)"
        return f"{int(setting)}-bit symmetric fake quantization, {'per channel' if self.per_channel else 'per tensor'}"


def weights(model: nn.Module, layers: Sequence[str], cfg: ScanConfig, setting: float,
            scores: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """New weight tensors (by parameter name) of the named layers compressed at one setting: the round(ratio * n)
    lowest-scored weights of each set to zero (scores default to |w|), or each rounded onto the k-bit grid."""
    mods = dict(model.named_modules())
    out = {}
    for n in layers:
        w = mods[n].weight.detach()
        if cfg.kind == "prune":
            out[f"{n}.weight"] = w * lowest(w.abs() if scores is None else scores[n], float(setting))
        else:
            out[f"{n}.weight"] = quantize_tensor(w, cfg.quant(int(setting)))
    return out


def variant(model: nn.Module, layers: Sequence[str], cfg: ScanConfig, setting: float,
            scores: dict[str, torch.Tensor] | None = None) -> nn.Module:
    """A new model with only the named layers compressed at one setting (the given model is not changed)."""
    return copy_with(model, weights(model, layers, cfg, setting, scores)).eval()


def scores_for(sample: Any, cfg: ScanConfig, seed: int = 0) -> dict[str, torch.Tensor] | None:
    """Weight scores of cfg's pruning method on the sample's calibration data (None for |w| or when quantizing)."""
    if cfg.kind != "prune" or cfg.method == "l1":
        return None
    return sample_scores(sample, cfg.method, seed)


def _group_rows(shared: tuple[Any, ...], g: LayerGroup) -> tuple[list[dict[str, Any]], float]:
    """One group compressed alone at each setting and scored: its rows and seconds (where an executor runs it)."""
    model, scorer, cfg, scores, base = shared
    t0 = time.perf_counter()
    mods = dict(model.named_modules())
    size = sum(mods[n].weight.numel() for n in g.layers)
    rows = []
    for s in cfg.values:
        sc = scorer(variant(model, g.layers, cfg, s, scores))
        rows.append(dict(group=g.name, row=g.row, column=g.column, layers=len(g.layers), kind=cfg.kind, setting=s,
                         score=sc.value, score_drop=base.value - sc.value, weights=size, detail=sc.detail))
    return rows, time.perf_counter() - t0


def scan(model: nn.Module, groups: Sequence[LayerGroup], scorer: Scorer, cfg: ScanConfig,
         scores: dict[str, torch.Tensor] | None = None, on_progress: Progress = None,
         base: Score | None = None, executor: Executor | None = None,
         on_group: Callable[[int, list[dict[str, Any]], float], None] | None = None,
         tick: Callable[[], None] | None = None) -> pd.DataFrame:
    """Each group compressed alone at each setting and scored: one row per (group, setting) with the score, its drop
    below the original's (in the metric's own units: a fraction of accuracy, or of mean cosine), the group's
    weights and the family's detail record. frame.attrs: base_score, metric (the family's Metric), examples. `base`:
    the original's Score when already known (a page scanning group by group). The groups are computed by `executor`
    (default: this process, one after another; or a Ray cluster's workers), each reported as it is finished:
    `on_group(index in groups, rows, seconds)` and on_progress(rows done, rows in all); `tick()` while a cluster
    computes and nothing has finished for a while."""
    base = base if base is not None else scorer(model)
    groups, total, done = list(groups), len(groups) * len(cfg.values), 0

    def finished(i: int, result: tuple[list[dict[str, Any]], float]) -> None:
        nonlocal done
        done += len(result[0])
        if on_group is not None:
            on_group(i, *result)
        if on_progress is not None:
            on_progress(done, total)

    per_group = (executor or InProcess()).map(_group_rows, (model, scorer, cfg, scores, base), groups, finished, tick)
    return frame_of([r for rows, _ in per_group for r in rows], base)


def frame_of(rows: list[dict[str, Any]], base: Any) -> pd.DataFrame:
    """Scan rows (computed here, or in cached pieces by a page) as the tidy frame, with the original's Score."""
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame.attrs.update(base_score=base.value, metric=base.metric, examples=base.examples)
    return frame


def scan_sample(sample: Any, cfg: ScanConfig, split: str = "validation", on_progress: Progress = None,
                executor: Executor | None = None) -> pd.DataFrame:
    """scan() of a loaded sample of any family: its layer groups, its scorer on `split` (by default the data settings
    are chosen on), its calibration for Taylor scores; in this process or on a cluster (`executor`)."""
    fam = family_of(sample)
    return scan(sample.model, fam.layer_groups(sample.model, cfg.whole), fam.scorer(sample, split), cfg,
                scores_for(sample, cfg), on_progress, executor=executor)


def heat(frame: pd.DataFrame, setting: float | None = None) -> pd.DataFrame:
    """A scan as a heatmap's table of drops: rows by group and columns by setting, or, for groups laid out on a
    grid (an encoder's cells, at one setting), rows by the group's row and columns by its column."""
    if frame.column.eq("").all():
        settings = list(dict.fromkeys(frame.setting))
        return frame.pivot(index="group", columns="setting", values="score_drop").loc[list(dict.fromkeys(frame.group)),
                                                                                  settings]
    one = frame if setting is None else frame[frame.setting == setting]
    return one.pivot(index="row", columns="column", values="score_drop").loc[list(dict.fromkeys(one.row)),
                                                                       list(dict.fromkeys(one.column))]


__all__ = ["KINDS", "RATIOS", "BITS", "COLUMNS", "ScanConfig", "weights", "variant", "scores_for", "scan", "frame_of",
           "scan_sample", "heat"]
