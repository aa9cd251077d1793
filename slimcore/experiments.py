"""Distillation experiments in the regimes where distillation helps (issue 19): scarce labels, dark knowledge, and weak
against strong distillation. Each is repeated over seeds and summarised as the mean ± sample standard deviation, with
every seed's value; every figure is measured on the test split, which no student trains on.

One training loop serves all three (`train_student`). slimcore.distill trains on a single stream, the labelled
training split; here the examples that carry labels (the hard term) are set apart from the transfer set (the inputs
the teacher's soft targets cover), so that a step can take a batch of each:

    distilled  alpha * T^2 * KL(teacher_T || student_T) on a transfer batch + (1 - alpha) * CE on a labelled batch
    scratch    CE on the same labelled batch (the same initial weights, the same batches in the same order)

Same budget: every student of an experiment takes the same number of Adam steps at the same learning rate,
`steps = epochs x ceil(N / batch_size)` with N the size of the WHOLE training split, whatever share of it the student
learns from (a small labelled set is cycled through many times). Each step takes a labelled batch of
min(batch_size, labelled examples), drawn from seeded permutations of the labelled set laid end to end, so every
labelled example is seen equally often; the distilled student's step also takes batch_size transfer inputs (forwarded
together with the labelled batch). The scratch student thus sees exactly the same labelled examples, as often and in
the same order; the distilled student sees in addition the teacher's outputs on the transfer inputs. A seed decides
the student's initial weights, the batch order and (where there is one) which examples are labelled.

  scarce labels   a stratified, seeded `fraction` of the training labels; the transfer set is every training input.
  dark knowledge  every example of one class is removed from the training data (transfer set and labels alike); the
                  class's recall on the test split tells whether the distilled student learnt it from the teacher's
                  soft targets on the other classes' inputs alone. Extra, labelled as such: Hinton's correction, the
                  output bias of that class raised by the shift that maximises validation accuracy.
  weak vs strong  a stratified `share` of the training examples is all there is (inputs and labels). Weak: a small
                  student with random initial weights; strong: the teacher's own parameters thinned by structured
                  pruning (the channels of highest L1 norm kept, per layer) to exactly the weak student's shape. Each
                  trained with distillation, and with labels alone as the control.

Published figures (Hinton, Vinyals & Dean 2015) are in PUBLISHED: their setting (MNIST, speech), never ours.
"""
from __future__ import annotations

import copy
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, TypeVar, cast

import torch
from torch import nn
from torch.nn import functional as F

from . import distillation as D
from . import pruning
from .data import Split
from .families import family_of
from .metrics import accuracy, predict, torch_threads, weight_layers

T = TypeVar("T")

# The students' training in every experiment: the lab's temperature, alpha, learning rate and batch size; half the
# teacher's width (a quarter left MNIST-1D's student at ~60 % whatever it learnt from); 20 epochs' worth of steps (the
# three experiments, 5 seeds, took 35-55 s on digits-cnn and 150 s on mnist1d-cnn on 2 shared cores:
# benchmarks/bench_experiments.py). `seed`: the first of the seeds.
TRAINING = D.DistillConfig(temperature=4.0, alpha=0.5, epochs=20, lr=1e-2, batch_size=64, seed=0, student=0.5)
SEEDS = 5
WORKERS = 2                             # students trained side by side, one torch thread each
FRACTIONS = (0.01, 0.05, 0.2, 1.0)      # shares of the training labels the scarce-labels curve is measured at
SHIFTS = tuple(k / 4 for k in range(0, 81))   # output-bias shifts (0 .. 20 in steps of 0.25) the correction tries
Progress = Callable[[int, int], None]   # progress(students trained, students in all)


# ------------------------------------------------------------------------------------------------------- records

@dataclass(frozen=True)
class Spread:
    """A figure over seeds: mean, sample standard deviation (n - 1) and each seed's value, in seed order."""

    mean: float
    sd: float
    values: tuple[float, ...]

    @property
    def seeds(self) -> int:
        return len(self.values)

    def percent(self) -> str:
        """The mean in percent and the sd in points: "86.2 % ± 1.3"."""
        return f"{self.mean * 100:.1f} % ± {self.sd * 100:.1f}"


def spread(values: Sequence[float]) -> Spread:
    """The Spread of per-seed values (at least two: a spread needs them)."""
    vals = tuple(float(v) for v in values)
    if len(vals) < 2:
        raise ValueError(f"a mean ± sd needs at least two seeds, got {len(vals)}")
    return Spread(statistics.fmean(vals), statistics.stdev(vals), vals)


@dataclass(frozen=True)
class Reference:
    """A published figure, in its authors' setting (not comparable number for number with ours)."""

    label: str
    value: float          # a fraction (accuracy, recall)
    setting: str          # their data, model and measure
    source: str = "Hinton, Vinyals & Dean 2015 (arXiv:1503.02531)"


PUBLISHED = {
    "scarce": (   # speech recognition, frame accuracy on held-out data; soft targets on the 3 % only
        Reference("100 % of the data, labels", 0.589, "speech (frame accuracy), baseline acoustic model"),
        Reference("3 % of the data, labels alone", 0.445, "speech (frame accuracy), overfits: 67.3 % on train"),
        Reference("3 % of the data, soft targets of the full model", 0.570, "speech (frame accuracy)"),
    ),
    "dark": (     # MNIST, every 3 removed from the transfer set; 1,010 test 3s, 10,000 test digits
        Reference("distilled: recall of the unseen class (3)", 877 / 1010, "MNIST, 2x800 student, T = 20"),
        Reference("distilled, bias of 3 raised by 3.5: recall of 3", 996 / 1010, "MNIST, 2x800 student, T = 20"),
        Reference("distilled: test accuracy", 1 - 206 / 10_000, "MNIST, 2x800 student, T = 20"),
        Reference("distilled, bias raised: test accuracy", 1 - 109 / 10_000, "MNIST, 2x800 student, T = 20"),
    ),
    "baseline": (  # MNIST, the whole training set
        Reference("student trained alone", 1 - 146 / 10_000, "MNIST, 2x800 student, no regularisation"),
        Reference("student distilled", 1 - 74 / 10_000, "MNIST, 2x800 student, T = 20"),
        Reference("teacher", 1 - 67 / 10_000, "MNIST, 2x1200 teacher, dropout and jitter"),
    ),
}


# ------------------------------------------------------------------------------------------------------- configs

def _check_common(seeds: Any, train: Any) -> None:
    if not (isinstance(seeds, int) and not isinstance(seeds, bool) and seeds >= 2):
        raise ValueError(f"seeds must be a whole number >= 2 (a mean ± sd needs two), got {seeds!r}")
    if not isinstance(train, D.DistillConfig):
        raise ValueError(f"train must be a DistillConfig, got {type(train).__name__}")


def _check_share(name: str, value: Any) -> None:
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 1):
        raise ValueError(f"{name} must be in (0, 1], got {value!r}")


@dataclass(frozen=True)
class ScarceConfig:
    """Scarce labels: the students learn from a share of the training labels; the distilled one also from the
    teacher's soft targets on every training input."""

    fraction: float = 0.05      # share of the training labels used, stratified by class (at least one per class)
    seeds: int = SEEDS          # seeds train.seed, train.seed + 1, ...
    train: D.DistillConfig = TRAINING

    def __post_init__(self) -> None:
        _check_share("the share of labels", self.fraction)
        _check_common(self.seeds, self.train)


@dataclass(frozen=True)
class DarkConfig:
    """Dark knowledge: no example of class `held_out` in the training data, neither as input nor as label."""

    held_out: int = 3           # Hinton's choice on MNIST
    seeds: int = SEEDS
    train: D.DistillConfig = TRAINING

    def __post_init__(self) -> None:
        if not (isinstance(self.held_out, int) and not isinstance(self.held_out, bool) and self.held_out >= 0):
            raise ValueError(f"the held-out class must be a whole number >= 0, got {self.held_out!r}")
        _check_common(self.seeds, self.train)


@dataclass(frozen=True)
class WeakStrongConfig:
    """Weak vs strong: a `share` of the training examples is all the students get; weak starts from random weights,
    strong from the teacher's thinned parameters (train.student of its width)."""

    share: float = 0.05         # share of the training examples (inputs and labels), stratified by class
    seeds: int = SEEDS
    train: D.DistillConfig = TRAINING

    def __post_init__(self) -> None:
        _check_share("the share of training examples", self.share)
        _check_common(self.seeds, self.train)


def seeds_of(cfg: ScarceConfig | DarkConfig | WeakStrongConfig) -> range:
    """The seeds an experiment runs: train.seed, train.seed + 1, ... (cfg.seeds of them)."""
    return range(cfg.train.seed, cfg.train.seed + cfg.seeds)


# ------------------------------------------------------------------------------------------------ the pieces

@dataclass(frozen=True)
class Transfer:
    """Inputs the teacher's soft targets cover, and the teacher's logits on them (computed once)."""

    x: torch.Tensor
    logits: torch.Tensor

    def __len__(self) -> int:
        return int(self.x.shape[0])


def transfer_set(teacher: nn.Module, x: torch.Tensor) -> Transfer:
    """The teacher's logits on inputs, as a transfer set (the teacher is not changed)."""
    return Transfer(x, predict(teacher, x))


def budget(examples: int, cfg: D.DistillConfig) -> int:
    """The steps every student of an experiment takes: epochs x ceil(examples / batch_size), `examples` being the
    whole training split's size."""
    return cfg.epochs * math.ceil(examples / cfg.batch_size)


def labelled_subset(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Indices (ascending) of a stratified, seeded share of the examples: of each class present, max(1,
    round(fraction x its count)) examples drawn without replacement."""
    _check_share("the share", fraction)
    gen = torch.Generator().manual_seed(seed)
    picked = []
    for c in torch.unique(labels).tolist():
        idx = (labels == c).nonzero().flatten()
        n = max(1, round(fraction * len(idx)))
        picked.append(idx[torch.randperm(len(idx), generator=gen)[:n]])
    return torch.cat(picked).sort().values


def without_class(split: Split, held_out: int) -> Split:
    """The split with every example of one class removed."""
    keep = split.y != held_out
    return Split(split.x[keep], split.y[keep])


def batch_stream(n: int, batch_size: int, steps: int, seed: int) -> torch.Tensor:
    """`steps` batches of min(batch_size, n) indices into n examples (a steps x size tensor): seeded permutations of
    the n examples laid end to end and cut in order, so each example is drawn equally often (up to one pass)."""
    gen = torch.Generator().manual_seed(seed)
    size = min(batch_size, n)
    need = steps * size
    order = torch.cat([torch.randperm(n, generator=gen) for _ in range(-(-need // n))])
    return order[:need].view(steps, size)


def distill_loss(student_labelled: torch.Tensor, labels: torch.Tensor, student_transfer: torch.Tensor,
                 teacher_transfer: torch.Tensor, cfg: D.DistillConfig) -> D.LossParts:
    """One step's loss: alpha * T^2 * KL(teacher_T || student_T) on the transfer batch + (1 - alpha) *
    cross-entropy on the labelled batch (distillation.combine; the same terms as distillation.classifier_loss)."""
    return D.combine(D.soft_kl(student_transfer, teacher_transfer, cfg.temperature),
                     F.cross_entropy(student_labelled, labels), cfg)


def train_student(student: nn.Module, labelled: Split, transfer: Transfer | None, cfg: D.DistillConfig,
                  steps: int) -> nn.Module:
    """A trained copy of `student` (eval mode, frozen; the given one is not changed): `steps` Adam steps at cfg.lr,
    each on a labelled batch (batch_stream, seeded by cfg.seed) with cross-entropy alone when `transfer` is None (the
    scratch student), or with distill_loss when it is given, the step then also taking a batch of transfer inputs
    (a second stream, seeded by cfg.seed too). The labelled batches are the same either way. One torch thread: the
    same weights bit for bit whatever the machine's thread count (and small models train no slower so)."""
    net = copy.deepcopy(student).train().requires_grad_(True)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    labels = batch_stream(len(labelled), cfg.batch_size, steps, 2 * cfg.seed)
    inputs = None if transfer is None else batch_stream(len(transfer), cfg.batch_size, steps, 2 * cfg.seed + 1)
    with torch_threads(1):
        for k in range(steps):
            il = labels[k]
            if inputs is None or transfer is None:   # both None, or neither
                loss = F.cross_entropy(net(labelled.x[il]), labelled.y[il])
            else:
                it = inputs[k]
                out = net(torch.cat([labelled.x[il], transfer.x[it]]))
                loss = distill_loss(out[:len(il)], labelled.y[il], out[len(il):], transfer.logits[it], cfg).total
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]  # torch's Tensor.backward has no annotations
            opt.step()
    return net.eval().requires_grad_(False)


def _outputs(layer: nn.Module) -> int:
    """Output channels of a Linear/Conv layer: the rows of its weight."""
    return cast(torch.Tensor, layer.weight).shape[0]


def thinned_teacher(teacher: nn.Module, student: nn.Module, example: torch.Tensor) -> nn.Module:
    """The teacher's own parameters thinned by structured pruning to the shape of a student of it: each hidden layer
    keeps as many output channels as the student's layer of the same name has, those of highest L1 norm
    (pruning.prune, an override per layer; layers the student does not name stay whole). A new model, the teacher
    unchanged."""
    mine, theirs = weight_layers(teacher), weight_layers(student)
    last = pruning.output_layer(teacher)
    overrides = {n: (_outputs(m) - _outputs(theirs[n])) / _outputs(m)
                 for n, m in mine.items() if n in theirs and n != last}
    thin = pruning.prune(teacher, 0.0, "l1", "layer", structured=True, overrides=overrides, example=example)
    return thin.eval().requires_grad_(False)


def recall(logits: torch.Tensor, labels: torch.Tensor, cls: int) -> float:
    """The share of the examples of class `cls` predicted as `cls` (NaN when there are none)."""
    mine = labels == cls
    return float((logits[mine].argmax(1) == cls).float().mean()) if bool(mine.any()) else float("nan")


def shifted(logits: torch.Tensor, cls: int, shift: float) -> torch.Tensor:
    """Logits with the output bias of one class raised by `shift` (Hinton's correction)."""
    out = logits.clone()
    out[:, cls] += shift
    return out


def best_shift(logits: torch.Tensor, labels: torch.Tensor, cls: int, shifts: Sequence[float] = SHIFTS) -> float:
    """The bias shift of class `cls` that maximises accuracy on labelled held-out data (the smallest of ties)."""
    scores = [float((shifted(logits, cls, s).argmax(1) == labels).float().mean()) for s in shifts]
    return shifts[scores.index(max(scores))]


def run_all(tasks: Sequence[Callable[[], T]], on_progress: Progress | None = None) -> list[T]:
    """Run independent trainings side by side on WORKERS threads with one torch thread each (small models use two
    cores better so than one pass split over two, and a busy machine does not stall them as it stalls two threads
    waiting on each other; the process's own thread count is left alone): results in the order given, progress
    reported in that order."""
    out: list[T] = []
    with ThreadPoolExecutor(WORKERS, thread_name_prefix="slimlab-experiment", initializer=torch.set_num_threads,
                            initargs=(1,)) as pool:
        for i, future in enumerate([pool.submit(t) for t in tasks]):
            out.append(future.result())
            if on_progress is not None:
                on_progress(i + 1, len(tasks))
    return out


def classes(sample: Any) -> int:
    """How many classes a classifier sample's model tells apart (its outputs)."""
    _splits(sample)
    return int(predict(sample.model, family_of(sample).example(sample)).shape[1])


def _splits(sample: Any) -> tuple[Split, Split, Split]:
    fam = family_of(sample)
    if fam.name != "classifier":
        raise ValueError(f"the distillation experiments need labelled classes: classifiers only, not {fam.label}")
    return fam.split(sample, "train"), fam.split(sample, "validation"), fam.split(sample, "test")


# --------------------------------------------------------------------------------------------- scarce labels

@dataclass(frozen=True)
class ScarceResult:
    """Scarce labels at one share: test accuracy of the distilled and the scratch student, and their paired
    difference (distilled - scratch, per seed)."""

    config: ScarceConfig
    labelled: int             # labelled training examples (of `examples`), the same count for every seed
    examples: int             # the training split: every one of them is in the transfer set
    steps: int                # Adam steps of each student (the budget)
    parameters: int           # of the student
    distilled: Spread
    scratch: Spread
    gain: Spread              # distilled - scratch, in accuracy (a fraction), per seed
    test_examples: int
    seconds: float


def scarce_labels(sample: Any, cfg: ScarceConfig = ScarceConfig(), on_progress: Progress | None = None
                  ) -> ScarceResult:
    """Scarce labels on a classifier sample: per seed, a stratified cfg.fraction of the training labels; the distilled
    student adds the teacher's soft targets on every training input; the scratch student has the labels alone; same
    initial weights, same budget. Test accuracy of both."""
    t0 = time.perf_counter()
    train, _, test = _splits(sample)
    steps = budget(len(train), cfg.train)
    transfer = transfer_set(sample.model, train.x)
    subsets = {seed: labelled_subset(train.y, cfg.fraction, seed) for seed in seeds_of(cfg)}

    def run(seed: int, distilled: bool) -> Callable[[], float]:
        t = replace(cfg.train, seed=seed)
        labelled = Split(train.x[subsets[seed]], train.y[subsets[seed]])
        student = D.make_student(sample.model, t.student, seed)
        return lambda: accuracy(train_student(student, labelled, transfer if distilled else None, t, steps), test)

    acc = run_all([run(seed, d) for seed in seeds_of(cfg) for d in (True, False)], on_progress)
    dist, scratch = acc[0::2], acc[1::2]
    return ScarceResult(cfg, len(subsets[cfg.train.seed]), len(train), steps,
                        D.parameters(D.student_architecture(sample.model, cfg.train.student)), spread(dist),
                        spread(scratch), spread([a - b for a, b in zip(dist, scratch)]), len(test),
                        time.perf_counter() - t0)


def scarce_curve(sample: Any, cfg: ScarceConfig = ScarceConfig(), fractions: Sequence[float] = FRACTIONS,
                 on_progress: Progress | None = None) -> tuple[ScarceResult, ...]:
    """scarce_labels at each share of labels (cfg's other settings), progress counted over all of them."""
    per = 2 * cfg.seeds
    total = per * len(fractions)

    def part(i: int) -> Progress | None:
        return None if on_progress is None else lambda done, _: on_progress(per * i + done, total)
    return tuple(scarce_labels(sample, replace(cfg, fraction=f), part(i)) for i, f in enumerate(fractions))


# --------------------------------------------------------------------------------------------- dark knowledge

@dataclass(frozen=True)
class DarkResult:
    """Dark knowledge: how the held-out class fares on the test split, for the distilled and the scratch student
    (neither ever saw an example of it), and everyone's accuracy; with Hinton's bias correction as an extra."""

    config: DarkConfig
    examples: int             # training examples left (the transfer set, all labelled)
    removed: int              # training examples of the held-out class removed
    steps: int
    parameters: int
    class_examples: int       # test examples of the held-out class
    test_examples: int
    recall_distilled: Spread
    recall_scratch: Spread
    accuracy_distilled: Spread
    accuracy_scratch: Spread
    # Extra: the held-out class's output bias raised by the shift that maximises validation accuracy (chosen per seed
    # and student on the validation split, which holds labelled examples of the class: a peek the students never had)
    shift_distilled: Spread
    shift_scratch: Spread
    recall_distilled_shifted: Spread
    recall_scratch_shifted: Spread
    accuracy_distilled_shifted: Spread
    accuracy_scratch_shifted: Spread
    seconds: float


def dark_knowledge(sample: Any, cfg: DarkConfig = DarkConfig(), on_progress: Progress | None = None) -> DarkResult:
    """Dark knowledge on a classifier sample: the training data without class cfg.held_out (transfer set and labels);
    per seed, a distilled and a scratch student, same initial weights, same budget; recall of the held-out class and
    accuracy on the test split, before and after the bias correction."""
    t0 = time.perf_counter()
    train, val, test = _splits(sample)
    n = classes(sample)
    if cfg.held_out >= n:
        raise ValueError(f"the held-out class must be one of 0..{n - 1}, got {cfg.held_out}")
    c = cfg.held_out
    data = without_class(train, c)
    steps = budget(len(train), cfg.train)
    transfer = transfer_set(sample.model, data.x)

    def run(seed: int, distilled: bool) -> Callable[[], tuple[float, ...]]:
        t = replace(cfg.train, seed=seed)
        student = D.make_student(sample.model, t.student, seed)

        def figures() -> tuple[float, ...]:
            net = train_student(student, data, transfer if distilled else None, t, steps)
            logits, shift = predict(net, test.x), best_shift(predict(net, val.x), val.y, c)
            moved = shifted(logits, c, shift)
            return (recall(logits, test.y, c), float((logits.argmax(1) == test.y).float().mean()), shift,
                    recall(moved, test.y, c), float((moved.argmax(1) == test.y).float().mean()))
        return figures

    out = run_all([run(seed, d) for seed in seeds_of(cfg) for d in (True, False)], on_progress)
    d = [spread(v) for v in zip(*out[0::2])]   # recall, accuracy, shift, recall shifted, accuracy shifted
    s = [spread(v) for v in zip(*out[1::2])]
    return DarkResult(cfg, len(data), len(train) - len(data), steps,
                      D.parameters(D.student_architecture(sample.model, cfg.train.student)),
                      int((test.y == c).sum()), len(test), d[0], s[0], d[1], s[1], d[2], s[2], d[3], s[3], d[4], s[4],
                      time.perf_counter() - t0)


# --------------------------------------------------------------------------------------------- weak vs strong

ARMS = {  # weak vs strong: (initial weights, distilled?) -> what the page and the table call it
    ("random", True): "weak: random init, distilled",
    ("teacher", True): "strong: teacher's thinned weights, distilled",
    ("random", False): "random init, labels alone",
    ("teacher", False): "teacher's thinned weights, labels alone",
}


@dataclass(frozen=True)
class WeakStrongResult:
    """Weak vs strong on the same limited data and budget: test accuracy of each arm (ARMS, in order), and of the
    thinned teacher before any training."""

    config: WeakStrongConfig
    examples: int             # the limited training data (inputs and labels), the same count for every seed
    steps: int
    parameters_weak: int
    parameters_strong: int
    arms: tuple[str, ...]     # ARMS' names, in order
    accuracy: tuple[Spread, ...]   # one per arm
    thinned_untrained: float  # the thinned teacher's test accuracy before training (no seed plays a part)
    test_examples: int
    seconds: float

    def of(self, arm: str) -> Spread:
        """The accuracy of one arm, by its name (ARMS)."""
        return self.accuracy[self.arms.index(arm)]

    @property
    def weak(self) -> Spread:
        return self.of(ARMS["random", True])

    @property
    def strong(self) -> Spread:
        return self.of(ARMS["teacher", True])


def weak_strong(sample: Any, cfg: WeakStrongConfig = WeakStrongConfig(), on_progress: Progress | None = None
                ) -> WeakStrongResult:
    """Weak vs strong distillation on a classifier sample: per seed, a stratified cfg.share of the training examples
    (inputs and labels: the only data); a random-init student and the teacher thinned to its shape, each trained with
    distillation from the teacher on those inputs and with labels alone; same budget. Test accuracy of all four."""
    t0 = time.perf_counter()
    train, _, test = _splits(sample)
    shape = D.student_architecture(sample.model, cfg.train.student)
    thin = thinned_teacher(sample.model, shape, family_of(sample).example(sample))
    steps = budget(len(train), cfg.train)
    subsets = {seed: labelled_subset(train.y, cfg.share, seed) for seed in seeds_of(cfg)}

    def run(seed: int, init: str, distilled: bool) -> Callable[[], float]:
        t = replace(cfg.train, seed=seed)
        data = Split(train.x[subsets[seed]], train.y[subsets[seed]])
        start = D.make_student(sample.model, t.student, seed) if init == "random" else thin

        def score() -> float:
            transfer = transfer_set(sample.model, data.x) if distilled else None
            return accuracy(train_student(start, data, transfer, t, steps), test)
        return score

    acc = run_all([run(seed, *arm) for seed in seeds_of(cfg) for arm in ARMS], on_progress)
    per_arm = [spread(acc[i::len(ARMS)]) for i in range(len(ARMS))]
    return WeakStrongResult(cfg, len(subsets[cfg.train.seed]), steps, D.parameters(shape), D.parameters(thin),
                            tuple(ARMS.values()), tuple(per_arm), accuracy(thin, test), len(test),
                            time.perf_counter() - t0)

# --------------------------------------------------------------------------------------------------- the table

def rows(result: ScarceResult | DarkResult | WeakStrongResult) -> list[dict[str, str | float]]:
    """A result as table rows (the page's table, the CLI's and the benchmark's): experiment, setting, student, what
    is measured, mean and sd in percent (points), seeds, and each seed's value."""
    def row(experiment: str, setting: str, student: str, measure: str, s: Spread) -> dict[str, str | float]:
        return {"experiment": experiment, "setting": setting, "student": student, "measure": measure,
                "mean, %": round(s.mean * 100, 2), "sd, points": round(s.sd * 100, 2), "seeds": s.seeds,
                "per seed, %": ", ".join(f"{v * 100:.1f}" for v in s.values)}

    if isinstance(result, ScarceResult):
        setting = (f"{result.config.fraction * 100:g} % of labels ({result.labelled:,} of {result.examples:,}); soft "
                   f"targets on all {result.examples:,} inputs")
        acc = f"test accuracy ({result.test_examples:,} examples)"
        return [row("scarce labels", setting, "distilled", acc, result.distilled),
                row("scarce labels", setting, "scratch (labels alone)", acc, result.scratch),
                row("scarce labels", setting, "distilled - scratch (paired)", "accuracy difference", result.gain)]
    if isinstance(result, DarkResult):
        c = result.config.held_out
        setting = f"no {c} in the {result.examples:,} training examples ({result.removed:,} removed)"
        rec = f"recall of {c} ({result.class_examples:,} test {c}s)"
        acc = f"test accuracy ({result.test_examples:,} examples)"
        extra = f"extra: bias of {c} raised (shift chosen on validation)"
        return [row("dark knowledge", setting, "distilled", rec, result.recall_distilled),
                row("dark knowledge", setting, "scratch (labels alone)", rec, result.recall_scratch),
                row("dark knowledge", setting, "distilled", acc, result.accuracy_distilled),
                row("dark knowledge", setting, "scratch (labels alone)", acc, result.accuracy_scratch),
                row("dark knowledge", extra, "distilled", rec, result.recall_distilled_shifted),
                row("dark knowledge", extra, "scratch (labels alone)", rec, result.recall_scratch_shifted),
                row("dark knowledge", extra, "distilled", acc, result.accuracy_distilled_shifted),
                row("dark knowledge", extra, "scratch (labels alone)", acc, result.accuracy_scratch_shifted)]
    if isinstance(result, WeakStrongResult):
        setting = (f"{result.config.share * 100:g} % of the training data ({result.examples:,} examples), inputs "
                   "and labels")
        acc = f"test accuracy ({result.test_examples:,} examples)"
        return [row("weak vs strong", setting, arm, acc, s) for arm, s in zip(result.arms, result.accuracy)]
    raise TypeError(f"not an experiment result: {type(result).__name__}")


def text_table(table: Sequence[Mapping[str, object]],
               columns: Sequence[str] = ("experiment", "setting", "student", "measure", "mean, %", "sd, points",
                                         "seeds")) -> str:
    """Rows as a plain-text table (the CLI's and the benchmark's), columns padded to their widest cell."""
    cells = [[str(c) for c in columns]] + [[str(r[c]) for c in columns] for r in table]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in cells)


__all__ = ["TRAINING", "SEEDS", "WORKERS", "FRACTIONS", "SHIFTS", "PUBLISHED", "ARMS", "Spread", "spread",
           "Reference", "ScarceConfig", "DarkConfig", "WeakStrongConfig", "seeds_of", "Transfer", "transfer_set",
           "budget", "labelled_subset", "without_class", "batch_stream", "distill_loss", "train_student",
           "thinned_teacher", "recall", "shifted", "best_shift", "run_all", "classes", "ScarceResult",
           "scarce_labels", "scarce_curve", "DarkResult", "dark_knowledge", "WeakStrongResult", "weak_strong", "rows",
           "text_table"]
