"""The classifier family: every image and 1-D sample trained here, and every uploaded classifier.

Data are labelled splits (slimcore.data.Split); a model is scored by top-1 accuracy on held-out data; compression acts
on Linear and Conv layers; structured pruning removes output channels (conv filters, neurons), never those of the
output layer; a student is the teacher with every hidden width scaled down.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..data import Split
from ..metrics import accuracy, weight_layers
from .base import LayerGroup, Metric, Score, Scorer, UnitGroup, unsupported

ACCURACY = Metric("test accuracy", "accuracy", percent=True,
                  help="Measured: top-1 accuracy on held-out test examples the model never trained on.")
TIMING_EXAMPLES = 256   # latency is timed on batches built from the first 256 test inputs


class Classifier:
    """Labelled data, top-1 accuracy, Linear/Conv layers, output channels."""

    name = "classifier"
    label = "classifiers"
    metric = ACCURACY
    unit_kinds = {"channels": "output channels (conv filters, neurons)"}
    timing_batches = (1, 256)

    def owns(self, sample: Any) -> bool:
        data = getattr(sample, "data", None)
        return isinstance(getattr(data, "test", None), Split)

    def split(self, sample: Any, which: str) -> Split:
        data = sample.data
        if which in ("train", "calibration"):   # calibration batches are drawn from the head of the train split
            return data.train
        if which == "validation":
            return data.val
        if which in ("test", "quick"):           # the test splits are small enough to be the quick set too
            return data.test
        raise ValueError(f"unknown split {which!r}; known: train, calibration, validation, test, quick")

    def scorer(self, sample: Any, which: str = "test") -> Scorer:
        split = self.split(sample, which)
        return lambda model: Score(accuracy(model, split), ACCURACY, len(split))

    def timing_inputs(self, sample: Any) -> dict[int, torch.Tensor]:
        x = sample.data.test.x[:TIMING_EXAMPLES]
        return {1: x[:1], 256: x}

    def example(self, sample: Any) -> torch.Tensor:
        return sample.data.test.x[:1]

    def layers(self, model: nn.Module) -> dict[str, nn.Module]:
        return weight_layers(model)

    def units(self, model: nn.Module, kind: str) -> list[UnitGroup]:
        if kind not in self.unit_kinds:
            raise unsupported(f"removing {kind}", self, list(self.unit_kinds))
        layers = weight_layers(model)
        last = list(layers)[-1] if layers else None   # its outputs are the model's outputs: never removed
        return [UnitGroup("channels", n, int(m.weight.shape[0])) for n, m in layers.items() if n != last]

    def layer_groups(self, model: nn.Module, whole: bool = False) -> list[LayerGroup]:
        return [LayerGroup(n, (n,), n) for n in weight_layers(model)]   # one layer each; `whole` changes nothing
