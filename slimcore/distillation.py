"""Knowledge distillation: a small student learns from a teacher's temperature-softened outputs (Hinton et al. 2015).

loss = alpha * T^2 * KL(softmax(z_t / T) || softmax(z_s / T)) + (1 - alpha) * CE(z_s, y)

The T^2 factor keeps the soft-target gradients, which shrink as 1/T^2, on the same scale as the hard-label ones.
"""
from __future__ import annotations

import copy
import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from .data import Dataset, Split
from .metrics import accuracy, predict, weight_layers
from .zoo import DigitsCNN, DigitsMLP, Mnist1dCNN, Mnist1dMLP, spec

WIDTHS = {"1/2": 0.5, "1/4": 0.25, "1/8": 0.125, "1/16": 0.0625}  # student widths, relative to the teacher
GRID = (1.0, 2.0, 4.0, 8.0, 12.0, 16.0, 20.0)   # temperatures of the accuracy-against-temperature grid


def _w(n: int, width: float) -> int:
    return max(1, round(n * width))


def student_architecture(teacher: str | nn.Module, width: float) -> nn.Module:
    """A freshly initialised student of the same kind as a teacher (a sample model's name, or the model itself: a
    sample architecture or a plain nn.Sequential), every hidden width scaled by `width`; the outputs stay.
    Its initial weights come from torch's global generator: use make_student for reproducible ones."""
    if not 0 < width <= 1:
        raise ValueError(f"student width must be in (0, 1], got {width}")
    kind = spec(teacher).build if isinstance(teacher, str) else type(teacher)
    if kind is DigitsMLP:
        return DigitsMLP(hidden=(_w(300, width), _w(100, width)))
    if kind is DigitsCNN:
        return DigitsCNN(channels=(_w(20, width), _w(50, width)), hidden=_w(500, width))
    if kind is Mnist1dMLP:
        return Mnist1dMLP(hidden=_w(100, width))
    if kind is Mnist1dCNN:
        return Mnist1dCNN(channels=_w(25, width))
    if isinstance(teacher, nn.Sequential):
        return _thin_sequential(teacher, width)
    raise ValueError(f"no student family for {teacher if isinstance(teacher, str) else type(teacher).__name__}")


def _thin_sequential(teacher: nn.Sequential, width: float) -> nn.Sequential:
    """A Sequential like the teacher with every hidden Linear/Conv (and the BatchNorms after them) `width` as wide."""
    weights = [n for n, m in teacher.named_children() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))]
    layers, old, new = {}, None, None  # channels of the running activation: teacher's, student's
    for name, m in teacher.named_children():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            size = m.in_features if isinstance(m, nn.Linear) else m.in_channels
            if old is not None and old != new:
                if size % old:
                    raise ValueError(f"cannot thin {name}: its {size} inputs are not a multiple of {old} channels")
                size = size // old * new
            out = m.out_features if isinstance(m, nn.Linear) else m.out_channels
            thin = out if name == weights[-1] else _w(out, width)
            if isinstance(m, nn.Linear):
                layers[name] = nn.Linear(size, thin, bias=m.bias is not None)
            else:
                layers[name] = type(m)(size, thin, m.kernel_size, stride=m.stride, padding=m.padding,
                                       dilation=m.dilation, bias=m.bias is not None)
            old, new = out, thin
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            layers[name] = type(m)(new if new is not None else m.num_features, eps=m.eps)
        else:
            layers[name] = copy.deepcopy(m)
    return nn.Sequential(OrderedDict(layers))


def make_student(teacher: str | nn.Module, width: float, seed: int) -> nn.Module:
    """The student a (teacher, width, seed) triple always gives: same weights for the same seed, whatever other
    threads (other dashboard sessions) do meanwhile. Weights are drawn from a private generator with PyTorch's
    default Linear/Conv initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases alike."""
    net = student_architecture(teacher, width)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in weight_layers(net).values():
            bound = 1.0 / math.sqrt(m.weight[0].numel())  # fan_in
            m.weight.uniform_(-bound, bound, generator=gen)
            if m.bias is not None:
                m.bias.uniform_(-bound, bound, generator=gen)
    return net


def soften(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Class probabilities at a temperature: softmax(z / T). T = 1 is the ordinary softmax; larger T is flatter."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return F.softmax(logits / temperature, dim=-1)


def entropy_bits(probs: torch.Tensor) -> torch.Tensor:
    """Shannon entropy in bits of probability vectors (last dimension)."""
    return -(probs * torch.log2(probs.clamp_min(1e-30))).sum(-1)


@dataclass(frozen=True)
class LossParts:
    total: torch.Tensor
    soft: torch.Tensor   # KL(teacher_T || student_T), before the T^2 and alpha factors
    hard: torch.Tensor   # cross-entropy with the labels


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                      temperature: float, alpha: float, t_squared: bool = True) -> LossParts:
    """alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, labels), KL averaged over the batch."""
    log_s = F.log_softmax(student_logits / temperature, dim=-1)
    log_t = F.log_softmax(teacher_logits / temperature, dim=-1)
    soft = F.kl_div(log_s, log_t, reduction="batchmean", log_target=True)
    hard = F.cross_entropy(student_logits, labels)
    scale = temperature ** 2 if t_squared else 1.0
    return LossParts(alpha * scale * soft + (1 - alpha) * hard, soft, hard)


@dataclass(frozen=True)
class DistillConfig:
    """How to distil. Plain data: the key under which a result is kept."""

    temperature: float = 4.0
    alpha: float = 0.5        # weight of the soft-target term; 0 = training on labels alone ("scratch")
    epochs: int = 10
    seed: int = 0             # shuffling order (the student's initialisation is the caller's)
    lr: float = 1e-2          # Adam
    batch_size: int = 64
    t_squared: bool = True

    def __post_init__(self) -> None:
        if not (isinstance(self.temperature, (int, float)) and math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature must be a number > 0, got {self.temperature!r}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")
        if not (isinstance(self.epochs, int) and self.epochs >= 1):
            raise ValueError(f"epochs must be a whole number >= 1, got {self.epochs!r}")
        if not self.lr > 0 or self.batch_size < 1:
            raise ValueError(f"need lr > 0 and batch_size >= 1, got {self.lr} and {self.batch_size}")


@dataclass(frozen=True)
class Epoch:
    """One epoch of training: mean loss parts over its batches, and accuracies after it."""

    epoch: int
    soft_loss: float
    hard_loss: float
    loss: float
    train_accuracy: float
    val_accuracy: float
    seconds: float


@dataclass(frozen=True)
class DistillResult:
    student: nn.Module
    history: tuple[Epoch, ...]
    cancelled: bool


def _check_fits(teacher: nn.Module, student: nn.Module, split: Split) -> torch.Tensor:
    """The teacher's logits on a split, after checking that both models take its inputs and agree on the classes."""
    x = split.x[:2]
    try:
        with torch.inference_mode():
            t, s = teacher(x), student(x)
    except RuntimeError as e:
        raise ValueError(f"the student or the teacher does not fit this data (inputs {tuple(x.shape[1:])}): "
                         f"{str(e).splitlines()[0][:160]}") from None
    if t.shape != s.shape:
        raise ValueError(f"the student gives {s.shape[-1]} outputs, the teacher {t.shape[-1]}: they must match")
    return predict(teacher, split.x)


def distill(teacher: nn.Module, student: nn.Module, data: Dataset, temperature: float = 4.0, alpha: float = 0.5,
            epochs: int = 10, seed: int = 0, on_epoch: Callable[[Epoch], None] | None = None,
            should_stop: Callable[[], bool] | None = None, on_batch: Callable[[float], None] | None = None,
            **options) -> DistillResult:
    """Train a copy of `student` on the train split against the teacher's softened outputs (teacher and student are
    left untouched). Deterministic for a seed. `on_epoch` is called after every epoch and `on_batch(fraction_done)` after every batch; `should_stop()` (checked every
    batch) cancels and returns what was done. Options: lr, batch_size, t_squared."""
    cfg = DistillConfig(temperature, alpha, epochs, seed, **options)
    targets = _check_fits(teacher, student, data.train)  # the teacher runs once, not once per batch
    net = copy.deepcopy(student).requires_grad_(True)
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    history: list[Epoch] = []
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        net.train()
        order = torch.randperm(len(data.train), generator=gen)
        sums, batches = [0.0, 0.0, 0.0], 0
        for i in range(0, len(order), cfg.batch_size):
            if should_stop is not None and should_stop():
                return DistillResult(net.eval().requires_grad_(False), tuple(history), True)
            idx = order[i:i + cfg.batch_size]
            parts = distillation_loss(net(data.train.x[idx]), targets[idx], data.train.y[idx], cfg.temperature,
                                      cfg.alpha, cfg.t_squared)
            opt.zero_grad()
            parts.total.backward()
            opt.step()
            for k, v in enumerate((parts.soft, parts.hard, parts.total)):
                sums[k] += float(v.detach())
            batches += 1
            if on_batch is not None:
                on_batch((epoch - 1 + min(i + cfg.batch_size, len(order)) / len(order)) / cfg.epochs)
        net.eval()
        record = Epoch(epoch, sums[0] / batches, sums[1] / batches, sums[2] / batches, accuracy(net, data.train),
                       accuracy(net, data.val), time.perf_counter() - t0)
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
    return DistillResult(net.eval().requires_grad_(False), tuple(history), False)
