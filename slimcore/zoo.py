"""The model zoo: sample architectures, their registry, and loading of the shipped trained weights."""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from . import paths, text
from .data import Dataset, Split, load_dataset

SAMPLE_DIR = paths.SAMPLE_DIR   # tests point it at a folder of their own
RETRAIN_COMMAND = "python sample_models/train.py"   # from a SlimLab checkout (an installed package: reinstall it)


class DigitsMLP(nn.Module):
    """LeNet-300-100-style MLP for 8x8 digits: 64-300-100-10."""

    def __init__(self, hidden: tuple[int, int] = (300, 100)) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(64, hidden[0])
        self.fc2 = nn.Linear(hidden[0], hidden[1])
        self.fc3 = nn.Linear(hidden[1], 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.fc1(self.flatten(x)))
        logits: torch.Tensor = self.fc3(torch.relu(self.fc2(x)))
        return logits


class DigitsCNN(nn.Module):
    """LeNet-5-style CNN (the Caffe LeNet of the compression papers, 20-50-500-10) sized for 8x8 inputs."""

    def __init__(self, channels: tuple[int, int] = (20, 50), hidden: int = 500) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels[0], 3, padding=1)   # 8x8 -> pool -> 4x4
        self.conv2 = nn.Conv2d(channels[0], channels[1], 3, padding=1)  # 4x4 -> pool -> 2x2
        self.pool = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(channels[1] * 4, hidden)
        self.fc2 = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(torch.relu(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x)))
        logits: torch.Tensor = self.fc2(torch.relu(self.fc1(self.flatten(x))))
        return logits


class BasicBlock(nn.Module):
    """A ResNet basic block: two 3x3 convolutions with BatchNorm, the block's input added back before the last ReLU;
    when the block changes width or resolution, the added input goes through a 1x1 convolution + BatchNorm first."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
                           if stride != 1 or cin != cout else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        skip = x if self.downsample is None else self.downsample(x)
        return torch.relu(out + skip)


class DigitsResNet(nn.Module):
    """A small ResNet for 8x8 inputs: a 3x3 stem, a stage of basic blocks at 8x8, a stage at twice the channels and
    4x4 (stride 2, projected skip), global average pooling and a linear classifier. The adds tie the channels of every
    layer that writes into one residual stream: removing a channel there means removing it from all of them."""

    input_shape: ClassVar[tuple[int, ...]] = (1, 8, 8)   # one example, without the batch dimension

    def __init__(self, channels: tuple[int, int] = (16, 32), blocks: tuple[int, int] = (2, 2)) -> None:
        super().__init__()
        c1, c2 = channels
        self.conv = nn.Conv2d(1, c1, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c1)
        self.layer1 = nn.Sequential(*[BasicBlock(c1, c1) for _ in range(blocks[0])])                 # 8x8
        self.layer2 = nn.Sequential(BasicBlock(c1, c2, stride=2), *[BasicBlock(c2, c2) for _ in range(blocks[1] - 1)])
        self.pool = nn.AdaptiveAvgPool2d(1)                                                           # 4x4 -> 1x1
        self.fc = nn.Linear(c2, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.conv(x)))
        x = self.layer2(self.layer1(x))
        logits: torch.Tensor = self.fc(torch.flatten(self.pool(x), 1))
        return logits


class Mnist1dMLP(nn.Module):
    """The MNIST-1D paper's MLP baseline: 40-100-100-10."""

    def __init__(self, hidden: int = 100) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(40, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.fc1(self.flatten(x)))
        logits: torch.Tensor = self.fc3(torch.relu(self.fc2(x)))
        return logits


class Mnist1dCNN(nn.Module):
    """The MNIST-1D paper's CNN baseline: three strided 1-D convolutions of 25 channels, then a linear classifier."""

    def __init__(self, channels: int = 25) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(1, channels, 5, stride=2, padding=1)         # 40 -> 19
        self.conv2 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)  # 19 -> 10
        self.conv3 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)  # 10 -> 5
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(channels * 5, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        x = torch.relu(self.conv3(x))
        logits: torch.Tensor = self.fc(self.flatten(x))
        return logits


@dataclass(frozen=True)
class SampleSpec:
    """How to build and train one sample model."""

    name: str
    dataset: str
    build: Callable[[], nn.Module]
    summary: str
    epochs: int          # training epochs over the train split
    lr: float            # Adam learning rate
    batch_size: int = 100
    weight_decay: float = 0.0
    seed: int = 0
    reference: str = ""  # published figure to compare with, if any


SAMPLES: dict[str, SampleSpec] = {
    s.name: s
    for s in (
        SampleSpec("digits-mlp", "digits", DigitsMLP, "LeNet-300-100-style MLP, 64-300-100-10", epochs=60, lr=1e-3,
                   batch_size=32, weight_decay=1e-4,
                   reference="LeNet-300-100 on MNIST (28x28): 1.64 % error (Han et al. 2015); not the same data"),
        SampleSpec("digits-cnn", "digits", DigitsCNN, "LeNet-5-style CNN (conv 20, conv 50, fc 500) for 8x8 inputs",
                   epochs=60, lr=1e-3, batch_size=32, weight_decay=1e-4,
                   reference="LeNet-5 on MNIST (28x28): 0.80 % error (Han et al. 2015); not the same data"),
        SampleSpec("digits-resnet", "digits", DigitsResNet,
                   "small ResNet for 8x8 inputs: stem conv 16, 2 basic blocks of 16, 2 of 32 (stride 2, 1x1 "
                   "projection), average pool, fc 10", epochs=60, lr=3e-3, batch_size=32, weight_decay=1e-4,
                   reference="ResNet-20 on CIFAR-10 (32x32 colour): 8.75 % error (He et al. 2016); not the same "
                             "data"),
        SampleSpec("mnist1d-mlp", "mnist1d", Mnist1dMLP, "MNIST-1D paper's MLP baseline, 40-100-100-10", epochs=150,
                   lr=1e-2, reference="MNIST-1D paper: MLP 68 % test accuracy (Greydanus 2020)"),
        SampleSpec("mnist1d-cnn", "mnist1d", Mnist1dCNN, "MNIST-1D paper's CNN baseline, 3 x conv1d(25) + linear",
                   epochs=150, lr=1e-2, batch_size=32,
                   reference="MNIST-1D paper: CNN 94 % test accuracy (Greydanus 2020)"),
    )
}
DEFAULT_SAMPLE = "digits-cnn"


class SampleError(RuntimeError):
    """A sample model that cannot be loaded, with a message fit to show a person."""


@dataclass(frozen=True)
class Sample:
    """A trained sample model with its data and card. Treat `model` as read-only: it may be shared."""

    name: str
    model: nn.Module
    data: Dataset
    card: dict[str, Any] = field(hash=False)
    kind: ClassVar[str] = "classifier"

    @property
    def test(self) -> Split:
        return self.data.test


TEXT_SAMPLES = (text.NAME,)  # pretrained text encoders from installed packages (slimcore.text), not trained here
KINDS = ("classifier", "text")


def list_samples(kind: str | None = None) -> list[str]:
    """Names of the sample models: the classifiers trained here, then the text encoder; or those of one kind."""
    if kind not in (None, *KINDS):
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return (list(SAMPLES) if kind != "text" else []) + (list(TEXT_SAMPLES) if kind != "classifier" else [])


def spec(name: str) -> SampleSpec:
    """The spec of a sample model; an unknown name raises KeyError listing the known ones."""
    if name not in SAMPLES:
        raise KeyError(f"unknown sample model {name!r}; known: {', '.join(SAMPLES)}")
    return SAMPLES[name]


def weights_path(name: str) -> Path:
    return SAMPLE_DIR / f"{name}.pt"


def card_path(name: str) -> Path:
    return SAMPLE_DIR / f"{name}.json"


def first_line(e: Exception, limit: int = 160) -> str:
    """A short description of an exception for a person: its type and the start of its first line."""
    line = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {line[:limit]}" if line else type(e).__name__


def load_sample(name: str) -> Sample | text.TextSample:
    """Build a sample model, load its shipped weights safely (weights_only) and return it in eval mode with data and
    card. The text sample (`minilm`) comes from its installed package as a slimcore.text.TextSample."""
    if name in TEXT_SAMPLES:
        try:
            return text.load_sample()
        except text.TextModelError as e:
            raise SampleError(str(e)) from None
    s = spec(name)
    model = s.build()
    wpath, cpath = weights_path(name), card_path(name)
    hint = f"regenerate it with `{RETRAIN_COMMAND}` in a SlimLab checkout, or reinstall the package"
    try:
        state = torch.load(wpath, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise SampleError(f"weights file {wpath} is missing; {hint}") from None
    except Exception as e:  # truncated, corrupt, or holding objects other than tensors
        raise SampleError(f"weights file {wpath} is not a readable PyTorch state dict ({first_line(e)}); "
                          f"{hint}") from None
    try:
        model.load_state_dict(state)
    except Exception as e:  # another architecture's weights, or not a dict of tensors at all
        raise SampleError(f"weights file {wpath} does not fit {name}'s architecture ({first_line(e)}); "
                          f"{hint}") from None
    try:
        card = json.loads(cpath.read_text())
    except (OSError, ValueError) as e:
        raise SampleError(f"model card {cpath} could not be read ({type(e).__name__}); {hint}") from None
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return Sample(name, model, load_dataset(s.dataset), card)
