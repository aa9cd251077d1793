"""The sentence-encoder family: BERT sentence encoders as slimcore.text writes them (all-MiniLM-L6-v2, `minilm`, and
uploaded Hugging Face folders, slimcore.hf).

Data are the project's sentence set (slimcore.text.TextData); a compressed encoder is scored by the mean cosine of its
embeddings to the original's on held-out sentences, with nearest-neighbour agreement, Spearman of pair similarities
and paraphrase top-1 as detail figures; compression acts on the encoder's Linear layers (not the embedding tables);
structured pruning removes attention heads or FFN neurons; a student keeps some of the teacher's layers.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

import torch
from torch import nn
from torch.nn import functional as F

from .. import distillation as D
from .. import text as T
from .. import text_distill as TD
from .base import LayerGroup, Metric, Score, Scorer, Tuning, UnitGroup, unsupported

COSINE = Metric("mean cosine to the original", "mean cosine", percent=False,
                help="Measured: cosine of each held-out sentence's embedding to the original encoder's, averaged.")


def cosine_scorer(split: T.TextSplit, reference: torch.Tensor, original: nn.Module | None = None) -> Scorer:
    """A scorer of the mean cosine to the original's embeddings (`reference`) of a split, with text.TextQuality as
    its detail (the sentence-encoder family's headline). The `original` model itself is scored from the reference,
    without embedding the split again (the same figures: embedding is deterministic)."""
    def score(model: nn.Module) -> Score:
        q = T.quality(reference, reference, split) if model is original else T.evaluate(model, split, reference)
        return Score(q.mean_cosine, COSINE, len(split), q)
    return score


def _encoder(model: nn.Module) -> T.MiniLM:
    """The family's model as what it is: a text.MiniLM (slimcore.text and slimcore.hf build no other encoder)."""
    return cast(T.MiniLM, model)


class SentenceEncoder:
    """Sentence set, mean cosine to the original, encoder Linears, heads and FFN neurons."""

    name = "encoder"
    label = "sentence encoders"
    metric = COSINE
    unit_kinds: Mapping[str, str] = {"heads": "attention heads", "ffn": "FFN neurons"}
    timing_batches: tuple[int, ...] = (1, 32)
    distill_defaults = TD.DEFAULTS   # T 0.2 (cosines are in [-1, 1]), 3 epochs of AdamW at 1e-4, half the layers

    def owns(self, sample: Any) -> bool:
        return isinstance(getattr(sample, "data", None), T.TextData)

    def split(self, sample: Any, which: str) -> T.TextSplit:
        data: T.TextData = sample.data
        if which in ("train", "calibration"):
            return data.train
        if which == "test":
            return data.test
        if which in ("quick", "validation"):     # no validation split of its own: settings are chosen on the quick set
            return data.quick_set
        raise ValueError(f"unknown split {which!r}; known: train, calibration, validation, test, quick")

    def scorer(self, sample: Any, which: str = "test") -> Scorer:
        split = self.split(sample, which)
        return cosine_scorer(split, T.embed(sample.model, split), sample.model)   # the original's embeddings, once

    def timing_inputs(self, sample: Any) -> dict[int, torch.Tensor]:
        return T.timing_batches(sample.data.test, self.timing_batches[-1])

    def example(self, sample: Any) -> torch.Tensor:
        return T.timing_batches(sample.data.test, self.timing_batches[-1])[1]

    def layers(self, model: nn.Module) -> dict[str, nn.Module]:
        return T.linear_layers(model)

    def units(self, model: nn.Module, kind: str) -> list[UnitGroup]:
        if kind not in self.unit_kinds:
            raise unsupported(f"removing {kind}", self, list(self.unit_kinds))
        shape = _encoder(model).shape()
        where = "attention" if kind == "heads" else "intermediate"
        return [UnitGroup(kind, f"encoder.layer.{i}.{where}", n) for i, n in enumerate(shape[kind])]

    def layer_groups(self, model: nn.Module, whole: bool = False) -> list[LayerGroup]:
        names = list(T.linear_layers(model))
        if whole:
            return [LayerGroup(f"{T.GROUP_LABELS[g]} (all layers)", tuple(n for n in names if T.group_of(n) == g),
                               "all layers", T.GROUP_LABELS[g]) for g in T.GROUPS]
        depth = len(_encoder(model).encoder.layer)
        return [LayerGroup(f"layer {i} · {T.GROUP_LABELS[g]}",
                           tuple(n for n in names if T.group_of(n) == g and T.layer_index(n) == i), f"layer {i}",
                           T.GROUP_LABELS[g]) for i in range(depth) for g in T.GROUPS]

    def prune_masks(self, model: nn.Module, cfg: Any, scores: dict[str, torch.Tensor] | None = None,
                    calibration: Any = None) -> dict[str, torch.Tensor]:
        from .. import pruning, text_prune  # units: the L1/L2 norm of the scores of their rows and columns
        if scores is None:
            scores = pruning.weight_scores(model, cfg.method, calibration, cfg.seed, family=self)
        return text_prune.masks(_encoder(model), cfg, scores)

    def remove_units(self, model: nn.Module, unit: str, keep: dict[str, torch.Tensor], example: torch.Tensor | None
                     ) -> tuple[nn.Module, dict[str, torch.Tensor]]:
        from .. import text_prune  # heads and neurons sliced out of the Linear layers; the masks say it all already
        return text_prune.remove_units(_encoder(model), unit, keep), keep

    def importance_loss(self, calibration: T.TextSplit) -> Callable[[nn.Module], torch.Tensor]:
        return lambda net: T.paraphrase_loss(net, calibration)   # at the original, MSE to itself has no gradient

    def tuning(self, sample: Any) -> Tuning:
        train = sample.data.train
        targets = T.embed(sample.model, train)   # the original's embeddings, once
        return Tuning(len(train), lambda net, idx: F.mse_loss(net(T.pad([list(train.ids[i]) for i in idx])),
                                                               targets[idx]),
                      lambda net: [p for n, p in net.named_parameters() if n.startswith("encoder.")])

    def student(self, teacher: nn.Module, cfg: D.DistillConfig) -> nn.Module:
        return TD.student(_encoder(teacher), cfg)   # cfg.student of the transformer layers, copied from the teacher

    def distill_loss(self, student_out: torch.Tensor, teacher_out: torch.Tensor, labels: torch.Tensor | None,
                     cfg: D.DistillConfig) -> D.LossParts:
        return TD.distill_loss(student_out, teacher_out, labels, cfg)

    def distill_lesson(self, sample: Any, cfg: D.DistillConfig) -> D.Lesson:
        return TD.lesson(sample.model, sample.data.train, cfg, self.scorer(sample, "quick"))
