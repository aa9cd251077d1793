"""Trade-offs on the text encoder: a grid of pruning (kind x ratio) combined with a precision (fp32, real int8, k-bit
fake quantization), every point's embedding quality measured on held-out sentences against its size.

The points are built by the labs' own functions (slimcore.text_prune, slimcore.text_quant), so a point here is the
model the Pruning or Quantization lab shows at the same setting. Sizes are measured (torch.save bytes) where a real
artifact stores the weights as counted, and modelled otherwise, with the rule written beside each figure:
- fp32 after structured pruning, and real int8 (with or without its word-embedding table in 8 bits): measured;
- fp32 after unstructured pruning: modelled sparse storage (the smaller of bitmask and CSR; dense zeros cost as much
  as any weight, so the measured dense file would not change);
- k-bit fake quantization: modelled, k bits per Linear weight plus one fp32 scale per channel, the rest fp32.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import pandas as pd
import torch
from torch import nn

from . import text as T
from . import text_prune as TP
from . import text_quant as TQ
from .metrics import modelled_size, serialized_bytes
from .quantization import QuantConfig, modelled_bytes
from .sweep import pareto

PRECISIONS = ("fp32", "int8", "int8+emb", "int6", "int4", "int3")  # int8+emb: real int8, word embeddings 8-bit too


def precision_label(p: str) -> str:
    if p == "fp32":
        return "fp32"
    if p == "int8":
        return "real int8 (dynamic, per channel)"
    if p == "int8+emb":
        return "real int8 (per channel), word embeddings 8-bit too"
    return f"{p[3:]}-bit fake quant (per channel, simulated)"


@dataclass(frozen=True)
class TextGridConfig:
    """Which points to build: every pruning kind at every ratio, each at every precision (ratio 0 once)."""

    kinds: tuple[str, ...] = ("unstructured", "ffn", "heads")
    ratios: tuple[float, ...] = (0.0, 0.25, 0.5)
    precisions: tuple[str, ...] = ("fp32", "int8", "int4")

    def __post_init__(self) -> None:
        for k in self.kinds:
            if k not in TP.KINDS:
                raise ValueError(f"unknown pruning kind {k!r}; known: {', '.join(TP.KINDS)}")
        for r in self.ratios:
            TP.TextPruneConfig(r, "unstructured")  # the same range check as the Pruning lab
        for p in self.precisions:
            if p not in PRECISIONS and not re.fullmatch(r"int([2-9]|1[0-6])", p):
                raise ValueError(f"unknown precision {p!r}; known: fp32, int8 and int8+emb (real) and int2..int16 "
                                 "(fake)")
        if not (self.kinds and self.ratios and self.precisions):
            raise ValueError("the grid needs at least one pruning kind, one ratio and one precision")

    def points(self) -> list[tuple[str, float, str]]:
        out, seen = [], set()
        for kind in self.kinds:
            for r in self.ratios:
                for p in self.precisions:
                    key = ("none", 0.0, p) if r == 0 else (kind, float(r), p)
                    if key not in seen:
                        seen.add(key)
                        out.append(key)
        return out


def label(kind: str, ratio: float, precision: str) -> str:
    pruned = "unpruned" if kind == "none" else f"{TP.UNIT.get(kind, 'weights')} -{ratio:.0%}"
    return f"{pruned}, {precision}"


def build(model: T.MiniLM, kind: str, ratio: float, precision: str) -> tuple[nn.Module, float, str, str]:
    """The model of one point with its size: (model, bytes, "measured" | "modelled", how the size was obtained)."""
    pruned = model if kind == "none" else TP.prune_text(model, TP.TextPruneConfig(ratio, kind))
    if precision == "fp32":
        if kind == "unstructured":
            m = modelled_size(pruned)
            return pruned, m.bytes, "modelled", f"sparse storage ({m.format}): {m.detail}"
        return pruned, float(serialized_bytes(pruned)), "measured", "torch.save of the fp32 model"
    if precision in ("int8", "int8+emb"):
        q = TQ.int8_text(pruned, per_channel=True, embeddings=precision == "int8+emb").model
        table = ", word embeddings 8-bit per row" if precision == "int8+emb" else ""
        return q, float(serialized_bytes(q)), "measured", f"torch.save of the int8 model{table} (zeros stored like " \
                                                          "any weight)"
    cfg = QuantConfig(int(precision[3:]), per_channel=True)
    m = modelled_bytes(pruned, cfg, TQ.layers(pruned))
    return TQ.fake_quantized(pruned, cfg), m.bytes, "modelled", m.detail


def grid(model: T.MiniLM, split: T.TextSplit, reference: torch.Tensor, cfg: TextGridConfig = TextGridConfig(),
         on_point: Callable[[int, int, str], None] | None = None) -> pd.DataFrame:
    """One row per point: its setting, the embedding quality on `split` against the original's `reference`
    embeddings, its size (MiB) and how that size was obtained, and whether it is on the Pareto frontier."""
    rows = []
    points = cfg.points()
    for i, (kind, ratio, precision) in enumerate(points):
        name = label(kind, ratio, precision)
        net, size, how, rule = build(model, kind, ratio, precision)
        q = T.quality(reference, reference, split) if (kind, precision) == ("none", "fp32") else \
            T.evaluate(net, split, reference)
        rows.append({"point": name, "pruning": kind, "ratio": ratio, "precision": precision,
                     "mean cosine": q.mean_cosine, "worst cosine": q.worst_cosine, "top-1 agreement": q.top1_agreement,
                     "spearman": q.spearman, "paraphrase top-1": q.paraphrase_top1,
                     "size, MiB": size / 2**20, "size is": how, "size rule": rule})
        if on_point:
            on_point(i + 1, len(points), name)
    frame = pd.DataFrame(rows)
    frame["frontier"] = frame.index.isin(pareto(frame, "size, MiB", "mean cosine").index)
    return frame


__all__ = ["PRECISIONS", "TextGridConfig", "build", "grid", "label", "precision_label"]
