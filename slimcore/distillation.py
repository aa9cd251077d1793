"""Knowledge distillation, written once for every model family: a smaller student learns from a teacher's outputs
softened by a temperature (Hinton, Vinyals & Dean 2015).

    loss = alpha * T^2 * soft + (1 - alpha) * hard

`soft` compares the teacher's and the student's distributions at temperature T (a KL divergence); `hard` ties the
student to the family's own target. What they are is the family's (Family.distill_loss):
  classifiers        soft = KL of the class distributions softmax(z / T); hard = cross-entropy with the labels.
  sentence encoders  soft = KL of the in-batch similarity distributions softmax(S / T) (slimcore.text_distill);
                     hard = MSE of the student's embeddings to the teacher's.
The T^2 factor keeps the soft term's gradients, which shrink as 1/T^2, on the scale of the hard term's.

The family also supplies the student (Family.student: a thinner classifier; a shallower encoder keeping teacher
layers), its default settings (Family.distill_defaults) and the training material (Family.distill_lesson: the
teacher's targets computed once, the seeded batch plan, the optimizer, the score after each epoch). `distill` below
is the one training loop. The classifier's students (every hidden width scaled) are built here too.
"""
from __future__ import annotations

import copy
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn
from torch.nn import functional as F

from .metrics import weight_layers
from .zoo import DigitsCNN, DigitsMLP, DigitsResNet, Mnist1dCNN, Mnist1dMLP, spec

WIDTHS = {"1/2": 0.5, "1/4": 0.25, "1/8": 0.125, "1/16": 0.0625}  # classifier student widths, relative to the teacher
GRID = (1.0, 2.0, 4.0, 8.0, 12.0, 16.0, 20.0)   # temperatures of the classifier's accuracy-against-temperature grid


# --------------------------------------------------------------------------------------------------------- config

@dataclass(frozen=True)
class DistillConfig:
    """How to distil, for any family (plain data: the key under which a result is kept). The defaults are the
    classifiers'; a family's own are `family.distill_defaults`."""

    temperature: float = 4.0  # T of the softmax the soft term compares (classes, or a batch's similarity rows)
    alpha: float = 0.5        # weight of the soft (teacher) term; 0 = the hard term alone (classifiers: "scratch")
    epochs: int = 10
    lr: float = 1e-2          # the family's optimizer (classifiers Adam, encoders AdamW)
    batch_size: int = 64
    seed: int = 0             # batch order (encoders: and the training sentences' variants); classifiers: student init
    t_squared: bool = True    # multiply the soft term by T^2
    student: float = 0.5      # share of the teacher kept: hidden width (classifiers), transformer layers (encoders)

    def __post_init__(self) -> None:
        def number(v: Any) -> bool:
            return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

        checks = [
            (number(self.temperature) and self.temperature > 0, f"temperature must be a number > 0, got "
                                                                f"{self.temperature!r}"),
            (number(self.alpha) and 0.0 <= self.alpha <= 1.0, f"alpha must be in [0, 1], got {self.alpha!r}"),
            (isinstance(self.epochs, int) and self.epochs >= 1, f"epochs must be a whole number >= 1, got "
                                                                f"{self.epochs!r}"),
            (number(self.lr) and self.lr > 0, f"learning rate must be a number > 0, got {self.lr!r}"),
            (isinstance(self.batch_size, int) and self.batch_size >= 1, f"batch size must be a whole number >= 1, "
                                                                        f"got {self.batch_size!r}"),
            (isinstance(self.seed, int) and self.seed >= 0, f"seed must be a whole number >= 0, got {self.seed!r}"),
            (number(self.student) and 0 < self.student <= 1, f"the student's share of the teacher must be in (0, 1], "
                                                             f"got {self.student!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


# ----------------------------------------------------------------------------------------------------------- loss

@dataclass(frozen=True)
class LossParts:
    """One batch's distillation loss and its two parts (each a mean over the batch, before its weight).

    soft: KL(teacher_T || student_T) — classifiers: of the class distributions at T; encoders: of each sentence's
          similarity distribution over the other sentences of its batch at T. Before the T^2 and alpha factors.
    hard: classifiers: cross-entropy with the labels; encoders: MSE of the student's embeddings to the teacher's.
    """

    total: torch.Tensor
    soft: torch.Tensor
    hard: torch.Tensor


def combine(soft: torch.Tensor, hard: torch.Tensor, cfg: DistillConfig) -> LossParts:
    """alpha * T^2 * soft + (1 - alpha) * hard (without T^2 when cfg.t_squared is off): every family's total."""
    scale = cfg.temperature ** 2 if cfg.t_squared else 1.0
    return LossParts(cfg.alpha * scale * soft + (1 - cfg.alpha) * hard, soft, hard)


def soft_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(softmax(teacher / T) || softmax(student / T)) over the last dimension, averaged over the rows."""
    log_s = F.log_softmax(student_logits / temperature, dim=-1)
    log_t = F.log_softmax(teacher_logits / temperature, dim=-1)
    return F.kl_div(log_s, log_t, reduction="batchmean", log_target=True)


def classifier_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                    cfg: DistillConfig) -> LossParts:
    """The classifiers' loss: soft = KL of the class distributions at T, hard = cross-entropy with the labels."""
    return combine(soft_kl(student_logits, teacher_logits, cfg.temperature),
                   F.cross_entropy(student_logits, labels), cfg)


def soften(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Class probabilities at a temperature: softmax(z / T). T = 1 is the ordinary softmax; larger T is flatter."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return F.softmax(logits / temperature, dim=-1)


def entropy_bits(probs: torch.Tensor) -> torch.Tensor:
    """Shannon entropy in bits of probability vectors (last dimension)."""
    return -(probs * torch.log2(probs.clamp_min(1e-30))).sum(-1)


# ----------------------------------------------------------------------------------------- classifier students

def _w(n: int, width: float) -> int:
    return max(1, round(n * width))


def student_architecture(teacher: str | nn.Module, width: float) -> nn.Module:
    """A freshly initialised classifier student of the same kind as a teacher (a sample model's name, or the model
    itself: a sample architecture or a plain nn.Sequential), every hidden width scaled by `width`; the outputs stay.
    Its initial weights come from torch's global generator: use make_student for reproducible ones."""
    if not 0 < width <= 1:
        raise ValueError(f"student width must be in (0, 1], got {width}")
    kind = spec(teacher).build if isinstance(teacher, str) else type(teacher)
    if kind is DigitsMLP:
        return DigitsMLP(hidden=(_w(300, width), _w(100, width)))
    if kind is DigitsCNN:
        return DigitsCNN(channels=(_w(20, width), _w(50, width)), hidden=_w(500, width))
    if kind is DigitsResNet:   # each stage's channels scaled (the stem writes stage 1's); as many blocks
        net = teacher if isinstance(teacher, DigitsResNet) else DigitsResNet()
        return DigitsResNet(channels=(_w(net.conv.out_channels, width), _w(net.fc.in_features, width)),
                            blocks=(len(net.layer1), len(net.layer2)))
    if kind is Mnist1dMLP:
        return Mnist1dMLP(hidden=_w(100, width))
    if kind is Mnist1dCNN:
        return Mnist1dCNN(channels=_w(25, width))
    if isinstance(teacher, nn.Sequential):
        return _thin_sequential(teacher, width)
    if not isinstance(teacher, str) and getattr(teacher, "input_shape", None) is not None:
        return _thin_channels(teacher, width)   # any traceable model (a graph model, a ResNet)
    raise ValueError(f"no student family for {teacher if isinstance(teacher, str) else type(teacher).__name__}")


def _thin_sequential(teacher: nn.Sequential, width: float) -> nn.Sequential:
    """A Sequential like the teacher with every hidden Linear/Conv (and the BatchNorms after them) `width` as wide."""
    weights = [n for n, m in teacher.named_children() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))]
    layers: dict[str, nn.Module] = {}
    old: int | None = None  # channels of the running activation: the teacher's (old), the student's (new)
    new: int | None = None
    for name, m in teacher.named_children():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            size = m.in_features if isinstance(m, nn.Linear) else m.in_channels
            if old is not None and new is not None and old != new:
                if size % old:
                    raise ValueError(f"cannot thin {name}: its {size} inputs are not a multiple of {old} channels")
                size = size // old * new
            out = m.out_features if isinstance(m, nn.Linear) else m.out_channels
            thin = out if name == weights[-1] else _w(out, width)
            if isinstance(m, nn.Linear):
                layers[name] = nn.Linear(size, thin, bias=m.bias is not None)
            else:
                conv: Callable[..., nn.Module] = type(m)   # given back its own kernel_size, stride... tuples
                layers[name] = conv(size, thin, m.kernel_size, stride=m.stride, padding=m.padding,
                                    dilation=m.dilation, bias=m.bias is not None)
            old, new = out, thin
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            layers[name] = type(m)(new if new is not None else m.num_features, eps=m.eps)
        else:
            layers[name] = copy.deepcopy(m)
    return nn.Sequential(OrderedDict(layers))


def _thin_channels(teacher: nn.Module, width: float) -> nn.Module:
    """The teacher with `width` of the output channels of every layer but the classifier, removed as structured
    pruning removes them (torch-pruning's dependency graph: channels tied by residual adds go together): the same
    graph, thinner. Its weights are set afresh by make_student."""
    from . import pruning

    if width >= 1:
        return copy.deepcopy(teacher)
    keep = pruning.masks(teacher, pruning.PruneConfig(1 - width, "l1", "layer", structured=True))
    shape = cast("tuple[int, ...]", teacher.input_shape)   # a traceable model's input shape, without the batch
    return pruning.split_channels(teacher, keep, torch.zeros((1, *shape)))[0]


def _params(layer: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A Linear/Conv layer's weight and bias (nn.Module's attribute lookup types them as tensors or submodules)."""
    return cast(torch.Tensor, layer.weight), cast("torch.Tensor | None", layer.bias)


def make_student(teacher: str | nn.Module, width: float, seed: int) -> nn.Module:
    """The classifier student a (teacher, width, seed) triple always gives: same weights for the same seed, whatever
    other threads (other dashboard sessions) do meanwhile. Weights are drawn from a private generator with PyTorch's
    default Linear/Conv initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases alike."""
    net = student_architecture(teacher, width)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in weight_layers(net).values():
            weight, bias = _params(m)
            bound = 1.0 / math.sqrt(weight[0].numel())  # fan_in
            weight.uniform_(-bound, bound, generator=gen)
            if bias is not None:
                bias.uniform_(-bound, bound, generator=gen)
        for m in net.modules():   # normalisation starts as the identity, with fresh running statistics
            if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.LayerNorm)):
                m.reset_parameters()
    return net.requires_grad_(True)


def shuffled_batches(n: int, cfg: DistillConfig) -> tuple[tuple[torch.Tensor, ...], ...]:
    """Every epoch's batches of n examples: a fresh permutation per epoch from one generator seeded by cfg.seed,
    cut into batches of cfg.batch_size (the last one shorter)."""
    gen = torch.Generator().manual_seed(cfg.seed)
    orders = [torch.randperm(n, generator=gen) for _ in range(cfg.epochs)]
    return tuple(tuple(o[i:i + cfg.batch_size] for i in range(0, n, cfg.batch_size)) for o in orders)


# ------------------------------------------------------------------------------------------------------ training

@dataclass(frozen=True)
class Lesson:
    """What a family hands the training loop for one run (Family.distill_lesson)."""

    plan: tuple[tuple[Any, ...], ...]                 # each epoch's batches: indices into the training examples
    inputs: Callable[[Any], torch.Tensor]             # a batch's indices -> the student's (and teacher's) input
    targets: torch.Tensor                             # the teacher's outputs on every training example, once
    labels: torch.Tensor | None                       # ground truth where the family has it (classifiers)
    optimizer: Callable[[nn.Module], torch.optim.Optimizer]   # sets which of the student's parameters learn
    score: Callable[[nn.Module], Any]                 # the headline Score after each epoch, on held-out data
    examples: int                                     # training examples per epoch
    train_score: Callable[[nn.Module], Any] | None = None     # the same on the training examples (classifiers)


@dataclass(frozen=True)
class Epoch:
    """One epoch: mean loss parts over its batches, and the family's headline score after it."""

    epoch: int
    loss: float
    soft: float                 # mean soft term (KL at T), before T^2 and alpha
    hard: float                 # mean hard term (cross-entropy; embedding MSE)
    score: Any                  # a families.Score on held-out data (validation accuracy; quick-set mean cosine)
    train_score: Any | None     # a Score on the training examples, where the family measures it
    seconds: float              # wall-clock time of the epoch, evaluation included


@dataclass(frozen=True)
class DistillResult:
    """A run: the trained student (eval mode, frozen), its history, and the untrained student's score."""

    config: DistillConfig
    student: nn.Module
    history: tuple[Epoch, ...]
    cancelled: bool             # stopped by should_stop(): the history holds the finished epochs
    before: Any                 # the untrained student's Score, on the split of Epoch.score
    examples: int               # training examples per epoch
    teacher_seconds: float      # preparing the lesson (the teacher's targets), once per run
    seconds: float              # the whole run


def _check_fits(student: nn.Module, lesson: Lesson) -> None:
    idx = lesson.plan[0][0][:2]
    x = lesson.inputs(idx)
    try:
        with torch.inference_mode():
            out = student(x)
    except RuntimeError as e:
        raise ValueError(f"the student does not fit this data (inputs {tuple(x.shape[1:])}): "
                         f"{str(e).splitlines()[0][:160]}") from None
    if out.shape[1:] != lesson.targets.shape[1:]:
        raise ValueError(f"the student gives {out.shape[-1]} outputs, the teacher {lesson.targets.shape[-1]}: "
                         "they must match")


def distill(sample: Any, cfg: DistillConfig | None = None, *, student: nn.Module | None = None,
            on_epoch: Callable[[Epoch], None] | None = None, on_batch: Callable[[float], None] | None = None,
            should_stop: Callable[[], bool] | None = None) -> DistillResult:
    """Train a student of the sample's family against its teacher (the sample's model) on the train split.

    cfg: the family's distill_defaults unless given. `student`: start from this model (copied) instead of the
    family's student for cfg. Deterministic for a config. `on_batch(fraction of the run)` is called after every
    batch, `on_epoch(Epoch)` after every epoch; `should_stop()` (checked before every batch) cancels and returns
    what was done. Neither the teacher nor a given student is changed."""
    from .families import family_of  # here, not at the top: the family modules import this one

    t_start = time.perf_counter()
    fam = family_of(sample)
    cfg = fam.distill_defaults if cfg is None else cfg
    net = copy.deepcopy(student) if student is not None else fam.student(sample.model, cfg)
    t0 = time.perf_counter()
    try:
        lesson = fam.distill_lesson(sample, cfg)
    except RuntimeError as e:
        raise ValueError(f"the teacher does not fit its data: {str(e).splitlines()[0][:160]}") from None
    teacher_seconds = time.perf_counter() - t0
    net.eval()
    _check_fits(net, lesson)
    before = lesson.score(net)
    opt = lesson.optimizer(net)
    total, done = sum(len(b) for b in lesson.plan), 0
    history: list[Epoch] = []

    def result(cancelled: bool) -> DistillResult:
        net.eval().requires_grad_(False)
        return DistillResult(cfg, net, tuple(history), cancelled, before, lesson.examples, teacher_seconds,
                             time.perf_counter() - t_start)

    for epoch, batches in enumerate(lesson.plan, start=1):
        t0 = time.perf_counter()
        net.train()
        sums = [0.0, 0.0, 0.0]
        for idx in batches:
            if should_stop is not None and should_stop():
                return result(True)
            labels = None if lesson.labels is None else lesson.labels[idx]
            parts = fam.distill_loss(net(lesson.inputs(idx)), lesson.targets[idx], labels, cfg)
            opt.zero_grad(set_to_none=True)
            parts.total.backward()
            opt.step()
            for k, v in enumerate((parts.total, parts.soft, parts.hard)):
                sums[k] += float(v.detach())
            done += 1
            if on_batch is not None:
                on_batch(done / total)
        net.eval()
        record = Epoch(epoch, sums[0] / len(batches), sums[1] / len(batches), sums[2] / len(batches),
                       lesson.score(net), lesson.train_score(net) if lesson.train_score else None,
                       time.perf_counter() - t0)
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
    return result(False)


def parameters(model: nn.Module) -> int:
    """How many parameters a model has."""
    return sum(p.numel() for p in model.parameters())
