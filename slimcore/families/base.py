"""The model-family protocol: what differs between kinds of model, and nothing more.

A family says where a sample's data comes from (train / calibration / test / quick splits), how a model is scored
(a headline quality with its direction and units, plus detail figures), what to time and trace it on, which layers
compression acts on, which structural units can be removed whole, and how a student learns from a teacher. Every
technique (pruning, quantization, distillation, measurement, sweeps) is written once against this protocol; a new
kind of model is one module that implements it and one `register` call.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

SPLITS = ("train", "calibration", "validation", "test", "quick")
# validation: held-out data that settings are chosen on (sensitivity scans, allocation), kept apart from test where
# the family has such a split (classifiers); an encoder chooses on its quick set.


@dataclass(frozen=True)
class Metric:
    """A family's headline quality: what it is called, which way is better, and how it is written."""

    name: str                     # "test accuracy", "mean cosine to the original"
    short: str                    # "accuracy", "mean cosine": for axis titles and table columns
    percent: bool                 # shown as a percentage (accuracy) or as a plain number (cosine)
    higher_is_better: bool = True
    help: str = ""                # one sentence: how it is measured
    quantum: float = 1e-4         # a plain metric's cost step in an allocation's exact plan (a percent metric, a share
                                  # of examples, counts whole examples instead)

    @property
    def scale(self) -> float:
        """From a value of the metric to the units its drops are written in: 100 (points) for a percent, else 1."""
        return 100.0 if self.percent else 1.0

    def steps(self, examples: int) -> float:
        """Whole cost steps in one unit of the metric, on a split of `examples`: a percent metric moves by one
        example at a time (1 / examples), a plain one is counted in `quantum`s."""
        return float(examples) if self.percent else 1.0 / self.quantum

    def format(self, value: float) -> str:
        """The value as the labs write it: 87.50 % or 0.9772."""
        return f"{value:.2%}" if self.percent else f"{value:.4f}"

    def delta(self, value: float, reference: float) -> str:
        """A change as the labs write it: +1.25 pt or -0.0123."""
        return f"{(value - reference) * 100:+.2f} pt" if self.percent else f"{value - reference:+.4f}"


@dataclass(frozen=True)
class Score:
    """How good a (compressed) model is on held-out data: the headline value and the family's detail figures."""

    value: float
    metric: Metric
    examples: int                                  # held-out examples (or sentences) it was measured on
    detail: Any = field(default=None, compare=False)   # the family's detail record (encoders: text.TextQuality)

    def __str__(self) -> str:
        return f"{self.metric.short} {self.metric.format(self.value)} on {self.examples:,} held-out examples"


@dataclass(frozen=True)
class UnitGroup:
    """Units that structured pruning removes whole, within one place of a model: `count` units of one kind."""

    kind: str        # "channels", "heads", "ffn"
    where: str       # the dotted name of the layer (or block) they belong to
    count: int       # how many the model has there now (read from its weights)


@dataclass(frozen=True)
class LayerGroup:
    """Compressible layers that a sensitivity scan changes together, alone, the others left as they are."""

    name: str                 # in words: "fc1", "layer 0 · attention q/k/v", "FFN in (all layers)"
    layers: tuple[str, ...]   # dotted names, keys of Family.layers(model)
    row: str                  # where it sits, a heatmap's row: the layer ("fc1", "layer 0"; "all layers" when whole)
    column: str = ""          # the kind of layer there, a heatmap's column ("" for classifiers; "FFN in", ...)


Scorer = Callable[[nn.Module], Score]


@dataclass(frozen=True)
class Tuning:
    """What fine-tuning a compressed copy of a sample's model trains on (Family.tuning): gradual pruning's steps and
    the Deep Compression pipeline take batches of `examples` training examples by index."""

    examples: int                                           # training examples, indexed 0..examples-1
    # (model, batch indices) -> the batch's mean loss; the model is only called, so a function standing in for it
    # (Deep Compression's forward through shared weights) fits too
    loss: Callable[[Callable[..., torch.Tensor], torch.Tensor], torch.Tensor]
    parameters: Callable[[nn.Module], list[nn.Parameter]]   # which of a model's parameters learn


@runtime_checkable
class Family(Protocol):
    """What a kind of model provides to the techniques. Sizes come from the model, never from literals."""

    name: str                      # registry key: "classifier", "encoder"
    label: str                     # in words, for messages
    metric: Metric                 # the headline quality
    unit_kinds: Mapping[str, str]  # structural unit kinds this family can remove: {"channels": "output channels"}
    timing_batches: tuple[int, ...]  # the batch sizes latency is measured at (small first)

    def owns(self, sample: Any) -> bool:
        """True when a loaded sample (or upload) belongs to this family."""
        ...

    def split(self, sample: Any, which: str) -> Any:
        """One of SPLITS of the sample's data, in the family's own split type."""
        ...

    def scorer(self, sample: Any, which: str = "test") -> Scorer:
        """A function scoring any variant of the sample's model on a held-out split (references computed once)."""
        ...

    def timing_inputs(self, sample: Any) -> dict[int, torch.Tensor]:
        """Real inputs to time the model on, by batch size (timing_batches)."""
        ...

    def example(self, sample: Any) -> torch.Tensor:
        """One small real input batch, for tracing and export."""
        ...

    def layers(self, model: nn.Module) -> dict[str, nn.Module]:
        """The layers whose weight matrices compression acts on, by dotted name, in forward order."""
        ...

    def units(self, model: nn.Module, kind: str) -> list[UnitGroup]:
        """Where a model has removable units of a kind, and how many of them (read from its weights)."""
        ...

    def layer_groups(self, model: nn.Module, whole: bool = False) -> list[LayerGroup]:
        """The groups of compressible layers a sensitivity scan compresses one at a time, in forward order:
        classifiers, each Linear/Conv layer; encoders, each (transformer layer x kind of Linear) cell, or with
        `whole` each kind of Linear across all transformer layers."""
        ...

    def prune_masks(self, model: nn.Module, cfg: Any, scores: dict[str, torch.Tensor] | None = None,
                    calibration: Any = None) -> dict[str, torch.Tensor]:
        """Keep-masks (True = kept), shaped like the weights of layers(model), that a pruning.PruneConfig gives:
        single weights, or (structured) the whole rows and columns of the units of cfg.unit the family scores lowest.
        `scores`: pruning.weight_scores of the model, when already computed; `calibration`: the labelled batch that
        gradient-based scores need. What the family lacks: a one-line ValueError (families.unsupported)."""
        ...

    def remove_units(self, model: nn.Module, unit: str, keep: dict[str, torch.Tensor], example: torch.Tensor | None
                     ) -> tuple[nn.Module, dict[str, torch.Tensor]]:
        """A new, smaller model without the units of a kind that structured keep-masks drop (really removed: the
        tensors shrink), and the masks extended to everything the removal takes (e.g. the next layer's inputs).
        `example`: one input batch, to trace the model where the family needs it (a ValueError when it needs one and
        has None). A ValueError when it cannot."""
        ...

    def importance_loss(self, calibration: Any) -> Callable[[nn.Module], torch.Tensor]:
        """The loss whose gradients first-order (Taylor) importance |w * dL/dw| uses, on a calibration batch (the
        family's calibration split cut by `.head(n)`), as a function of a model: classifiers, cross-entropy with the
        labels; encoders, the in-batch paraphrase ranking loss (its gradient is not zero at the original model)."""
        ...

    def tuning(self, sample: Any) -> Tuning:
        """What fine-tuning a compressed copy of the sample's model trains on: classifiers, cross-entropy with the
        training labels, every parameter; encoders, MSE of the embeddings to the original encoder's on the training
        sentences (recovering the original), the transformer layers only."""
        ...

    # Distillation (slimcore.distillation.distill is the one training loop; these are what differs):
    # distill_defaults: the distillation.DistillConfig this family's students train with unless told otherwise.
    distill_defaults: Any

    def student(self, teacher: nn.Module, cfg: Any) -> nn.Module:
        """A fresh student of the teacher for a distillation.DistillConfig, keeping cfg.student of it: classifiers,
        every hidden width scaled (weights seeded by cfg.seed); encoders, a share of the transformer layers, copied."""
        ...

    def distill_loss(self, student_out: torch.Tensor, teacher_out: torch.Tensor, labels: torch.Tensor | None,
                     cfg: Any) -> Any:
        """One batch's distillation.LossParts: alpha * T^2 * soft + (1 - alpha) * hard. Classifiers: soft = KL of the
        class distributions at T, hard = cross-entropy with `labels`. Encoders: soft = KL of the in-batch similarity
        distributions at T, hard = MSE of the embeddings to the teacher's (`labels` None)."""
        ...

    def distill_lesson(self, sample: Any, cfg: Any) -> Any:
        """A distillation.Lesson: the teacher's targets on the training examples (computed once), each epoch's seeded
        batches, the optimizer, and the held-out score after each epoch."""
        ...


REGISTRY: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Add a family to the registry (by its name); every technique then works on its samples."""
    if not isinstance(family, Family):
        raise TypeError(f"{type(family).__name__} does not implement the Family protocol")
    REGISTRY[family.name] = family
    return family


def get(name: str) -> Family:
    """A registered family by name; an unknown name raises a ValueError listing the known ones."""
    if name not in REGISTRY:
        raise ValueError(f"unknown model family {name!r}; known: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def family_of(sample: Any) -> Family:
    """The family a loaded sample (or upload) belongs to."""
    for f in REGISTRY.values():
        if f.owns(sample):
            return f
    raise ValueError(f"no model family takes a {type(sample).__name__}; families: {', '.join(REGISTRY)}")


def unsupported(what: str, family: Family, supported: list[str] | tuple[str, ...]) -> ValueError:
    """The one-line error for a technique setting a family does not have."""
    return ValueError(f"{what} is not available for {family.label}; supported: {', '.join(supported) or 'none yet'}")
