"""The classifier family: every image and 1-D sample trained here, and every uploaded classifier.

Data are labelled splits (slimcore.data.Split); a model is scored by top-1 accuracy on held-out data; compression acts
on Linear and Conv layers; structured pruning removes output channels (conv filters, neurons), never those of the
output layer; a student is the teacher with every hidden width scaled down.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

import torch
from torch import nn
from torch.nn import functional as F

from .. import distillation as D
from ..data import Dataset, Split
from ..metrics import accuracy, predict, weight_layers
from .base import LayerGroup, Metric, Score, Scorer, Tuning, UnitGroup, unsupported

ACCURACY = Metric("test accuracy", "accuracy", percent=True,
                  help="Measured: top-1 accuracy on held-out test examples the model never trained on.")
TIMING_EXAMPLES = 256   # latency is timed on batches built from the first 256 test inputs


def accuracy_scorer(split: Split) -> Scorer:
    """A scorer of top-1 accuracy on a labelled split (the classifier family's headline)."""
    return lambda model: Score(accuracy(model, split), ACCURACY, len(split))


class Classifier:
    """Labelled data, top-1 accuracy, Linear/Conv layers, output channels."""

    name = "classifier"
    label = "classifiers"
    metric = ACCURACY
    unit_kinds: Mapping[str, str] = {"channels": "output channels (conv filters, neurons)"}
    timing_batches: tuple[int, ...] = (1, 256)
    distill_defaults = D.DistillConfig()   # T 4, alpha 0.5, 10 epochs of Adam at 1e-2, batches of 64, 1/2 width

    def owns(self, sample: Any) -> bool:
        data = getattr(sample, "data", None)
        return isinstance(getattr(data, "test", None), Split)

    def split(self, sample: Any, which: str) -> Split:
        data: Dataset = sample.data
        if which in ("train", "calibration"):   # calibration batches are drawn from the head of the train split
            return data.train
        if which == "validation":
            return data.val
        if which in ("test", "quick"):           # the test splits are small enough to be the quick set too
            return data.test
        raise ValueError(f"unknown split {which!r}; known: train, calibration, validation, test, quick")

    def scorer(self, sample: Any, which: str = "test") -> Scorer:
        return accuracy_scorer(self.split(sample, which))

    def timing_inputs(self, sample: Any) -> dict[int, torch.Tensor]:
        x = sample.data.test.x[:TIMING_EXAMPLES]
        return {1: x[:1], 256: x}

    def example(self, sample: Any) -> torch.Tensor:
        data: Dataset = sample.data
        return data.test.x[:1]

    def layers(self, model: nn.Module) -> dict[str, nn.Module]:
        return weight_layers(model)

    def units(self, model: nn.Module, kind: str) -> list[UnitGroup]:
        if kind not in self.unit_kinds:
            raise unsupported(f"removing {kind}", self, list(self.unit_kinds))
        layers = weight_layers(model)
        last = list(layers)[-1] if layers else None   # its outputs are the model's outputs: never removed
        return [UnitGroup("channels", n, int(cast(torch.Tensor, m.weight).shape[0]))   # a Linear/Conv layer's
                for n, m in layers.items() if n != last]

    def layer_groups(self, model: nn.Module, whole: bool = False) -> list[LayerGroup]:
        return [LayerGroup(n, (n,), n) for n in weight_layers(model)]   # one layer each; `whole` changes nothing

    def prune_masks(self, model: nn.Module, cfg: Any, scores: dict[str, torch.Tensor] | None = None,
                    calibration: Any = None) -> dict[str, torch.Tensor]:
        from .. import pruning  # every method, scope, norm, skip and override; structured: output channels
        return pruning.masks(model, cfg, calibration, scores)

    def remove_units(self, model: nn.Module, unit: str, keep: dict[str, torch.Tensor], example: torch.Tensor | None
                     ) -> tuple[nn.Module, dict[str, torch.Tensor]]:
        from .. import pruning  # torch-pruning's dependency graph removes the channels and every input reading them
        if example is None:
            raise ValueError("removing channels needs an example input to trace the model")
        return pruning.split_channels(model, keep, example)

    def importance_loss(self, calibration: Split) -> Callable[[nn.Module], torch.Tensor]:
        if calibration is None or len(calibration) == 0:
            raise ValueError("Taylor importance needs a calibration batch with labels")
        return lambda net: F.cross_entropy(net(calibration.x), calibration.y)

    def tuning(self, sample: Any) -> Tuning:
        train = sample.data.train
        return Tuning(len(train), lambda net, idx: F.cross_entropy(net(train.x[idx]), train.y[idx]),
                      lambda net: list(net.parameters()))

    def student(self, teacher: nn.Module, cfg: D.DistillConfig) -> nn.Module:
        return D.make_student(teacher, cfg.student, cfg.seed)   # every hidden width scaled by cfg.student

    def distill_loss(self, student_out: torch.Tensor, teacher_out: torch.Tensor, labels: torch.Tensor | None,
                     cfg: D.DistillConfig) -> D.LossParts:
        if labels is None:   # a classifier's lesson always gives them (D.Lesson.labels)
            raise ValueError("a classifier's distillation loss needs the labels")
        return D.classifier_loss(student_out, teacher_out, labels, cfg)

    def distill_lesson(self, sample: Any, cfg: D.DistillConfig) -> D.Lesson:
        train = sample.data.train   # the teacher's logits once; Adam on every parameter; validation accuracy per epoch
        return D.Lesson(plan=D.shuffled_batches(len(train), cfg), inputs=lambda idx: train.x[idx],
                        targets=predict(sample.model, train.x), labels=train.y,
                        optimizer=lambda net: torch.optim.Adam(net.requires_grad_(True).parameters(), lr=cfg.lr),
                        score=self.scorer(sample, "validation"), examples=len(train),
                        train_score=self.scorer(sample, "train"))
