"""Architectures by name: well-known image classifiers a user can bring weights for, written here.

torchvision and timm cannot be installed beside the pinned CPU build of torch 2.13.0 (their PyPI wheels are built
against CUDA torch and fail to import: "operator torchvision::nms does not exist"), so the residual networks people
most often bring are written here from the papers, with the parameter names torchvision uses (`conv1`, `bn1`,
`layer1.0.conv1`, `layer2.0.downsample.0`, `fc`, ...): a state dict saved from torchvision's `resnet18(num_classes=K)`
loads into `build("resnet18", K)` unchanged. Built without downloading anything; the weights come from the user.

ResNet: He, Zhang, Ren and Sun, "Deep Residual Learning for Image Recognition" (2016): basic blocks of two 3x3
convolutions (ResNet-18/34) or bottlenecks of 1x1, 3x3, 1x1 with 4x expansion (ResNet-50), a 1x1 projection on the
skip wherever the shape changes, stride in the 3x3 convolution (the "v1.5" placement torchvision uses).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = _projection(inplanes, planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.downsample is None else self.downsample(x)
        out: torch.Tensor = self.relu(self.bn1(self.conv1(x)))   # a module's call is typed Any
        out = self.relu(self.bn2(self.conv2(out)) + skip)
        return out


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU()
        self.downsample = _projection(inplanes, planes * 4, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.downsample is None else self.downsample(x)
        out: torch.Tensor = self.relu(self.bn1(self.conv1(x)))   # a module's call is typed Any
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.relu(self.bn3(self.conv3(out)) + skip)
        return out


def _projection(inplanes: int, planes: int, stride: int) -> nn.Sequential | None:
    """The 1x1 convolution (and BatchNorm) on the skip when a block changes the shape; None when it does not."""
    if stride == 1 and inplanes == planes:
        return None
    return nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes))


class ResNet(nn.Module):
    """A ResNet for images of any size (global average pooling before the classifier)."""

    layer1: nn.Sequential   # the four stages, set by name in __init__
    layer2: nn.Sequential
    layer3: nn.Sequential
    layer4: nn.Sequential

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], depths: tuple[int, int, int, int],
                 num_classes: int = 1000, in_channels: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes = 64
        for i, (planes, depth) in enumerate(zip((64, 128, 256, 512), depths)):
            blocks = []
            for j in range(depth):
                blocks.append(block(inplanes, planes, 2 if (i > 0 and j == 0) else 1))
                inplanes = planes * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(inplanes, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        logits: torch.Tensor = self.fc(torch.flatten(self.avgpool(x), 1))   # a module's call is typed Any
        return logits


@dataclass(frozen=True)
class Architecture:
    """An architecture a user can name: how to build it for K classes and C input channels."""

    name: str
    summary: str
    build: Callable[[int, int], nn.Module]   # (num_classes, in_channels) -> a freshly initialised model
    classes_key: str                         # the weight whose first dimension is the number of classes
    channels_key: str                        # the weight whose second dimension is the number of input channels


ARCHITECTURES: dict[str, Architecture] = {a.name: a for a in (
    Architecture("resnet18", "ResNet-18 (He et al. 2016; torchvision's parameter names), basic blocks 2-2-2-2",
                 lambda k, c: ResNet(BasicBlock, (2, 2, 2, 2), k, c), "fc.weight", "conv1.weight"),
    Architecture("resnet34", "ResNet-34 (He et al. 2016; torchvision's parameter names), basic blocks 3-4-6-3",
                 lambda k, c: ResNet(BasicBlock, (3, 4, 6, 3), k, c), "fc.weight", "conv1.weight"),
    Architecture("resnet50", "ResNet-50 (He et al. 2016; torchvision's parameter names), bottlenecks 3-4-6-3",
                 lambda k, c: ResNet(Bottleneck, (3, 4, 6, 3), k, c), "fc.weight", "conv1.weight"),
)}


def names() -> list[str]:
    return list(ARCHITECTURES)


def build(name: str, num_classes: int = 1000, in_channels: int = 3, seed: int | None = None) -> nn.Module:
    """A named architecture in eval mode. With `seed`, its initial weights are drawn from that seed alone (PyTorch's
    default initialisation, from a private generator state), so the same seed always gives the same model."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; known: {', '.join(ARCHITECTURES)}")
    if not (1 <= num_classes <= 100_000 and 1 <= in_channels <= 64):
        raise ValueError(f"{name} needs 1-100000 classes and 1-64 input channels, got {num_classes} and {in_channels}")
    if seed is None:
        return ARCHITECTURES[name].build(num_classes, in_channels).eval()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ARCHITECTURES[name].build(num_classes, in_channels).eval()


def fit(name: str, state: dict[str, torch.Tensor]) -> nn.Module:
    """A named architecture sized by a state dict (classes, input channels) and loaded with it, strictly; a
    ValueError naming the first mismatching tensors when the weights are another architecture's."""
    arch = ARCHITECTURES.get(name)
    if arch is None:
        raise ValueError(f"unknown architecture {name!r}; known: {', '.join(ARCHITECTURES)}")
    for key in (arch.classes_key, arch.channels_key):
        if key not in state or state[key].dim() < 2:
            raise ValueError(f"these weights are not a {name}'s: no {key} matrix")
    classes, channels = int(state[arch.classes_key].shape[0]), int(state[arch.channels_key].shape[1])
    with torch.device("meta"):   # shapes first: nothing allocated for weights that do not fit
        want = {k: tuple(v.shape) for k, v in arch.build(classes, channels).state_dict().items()}
    have = {k: tuple(v.shape) for k, v in state.items()}
    missing, extra = [k for k in want if k not in have], [k for k in have if k not in want]
    wrong = [k for k in want if k in have and have[k] != want[k]]
    if missing or extra or wrong:
        parts = ([f"missing {', '.join(missing[:3])}"] if missing else []) + \
                ([f"unexpected {', '.join(extra[:3])}"] if extra else []) + \
                [f"{k} is {'x'.join(map(str, have[k]))} here, {'x'.join(map(str, want[k]))} in {name}"
                 for k in wrong[:2]]
        raise ValueError(f"these weights do not fit {name} ({'; '.join(parts)})")
    model = build(name, classes, channels, seed=0)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, strict=True)
    return model.eval()
