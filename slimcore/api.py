"""The public entry points: measure, prune, quantize and distill a loaded sample of any model family.

Each takes a sample (slimcore.load_sample(name), or an upload) and, where it applies, a config; the family
(slimcore.families) says how the sample is scored, timed and traced and which layers are compressed, so the same
call works on a classifier and on a sentence encoder and returns the same kinds of objects. What a family cannot do
is a one-line ValueError naming what it can. Techniques are looked up by (technique, family) in HANDLERS, so a new
family adds entries there instead of another `elif`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from . import distillation as D
from . import pruning as P
from . import quantization as Q
from . import text_distill as TD
from . import text_prune as TP
from . import text_quant as TQ  # noqa: F401 (registers the encoder's real int8 builder, slimcore.int8.build)
from .families import Family, Score, family_of, unsupported
from .metrics import LayerInfo, Latency, compare_latency, layer_table, serialized_bytes

Handler = Callable[..., Any]
HANDLERS: dict[tuple[str, str], Handler] = {}


def handles(technique: str, family: str) -> Callable[[Handler], Handler]:
    """Register the function that carries out a technique on a family's samples."""
    def register(fn: Handler) -> Handler:
        HANDLERS[technique, family] = fn
        return fn
    return register


def _handler(technique: str, fam: Family) -> Handler:
    if (technique, fam.name) not in HANDLERS:
        raise unsupported(technique, fam, sorted(t for t, f in HANDLERS if f == fam.name))
    return HANDLERS[technique, fam.name]


# ----------------------------------------------------------------------------------------------------- measure

@dataclass(frozen=True)
class Measurement:
    """A model's figures on its family's held-out data: each measured (score, counts, file bytes, latency)."""

    score: Score
    params: int
    nonzeros: int
    macs: int                                  # multiply-accumulates for one example, as dense kernels compute them
    size_bytes: int                            # measured: torch.save of the state dict
    latencies: dict[int, Latency] | None       # by batch size (the family's timing batches); None: not timed
    layers: tuple[LayerInfo, ...]

    @property
    def accuracy(self) -> float:
        """The headline quality (top-1 accuracy for classifiers)."""
        return self.score.value

    @property
    def latency_b1(self) -> Latency | None:
        return self.latencies[1] if self.latencies else None

    @property
    def latency_b256(self) -> Latency | None:
        return self.latencies.get(256) if self.latencies else None


def time_models(sample: Any, models: dict[str, nn.Module], repeats: int = 30,
                max_seconds: float = 2.0) -> dict[str, dict[int, Latency]]:
    """Latency of several models timed side by side (round-robin) at each of the family's timing batches, on real
    held-out inputs: {name: {batch: Latency}}."""
    inputs = family_of(sample).timing_inputs(sample)
    per_batch = {b: compare_latency(models, x, len(x), repeats=repeats, max_seconds=max_seconds)
                 for b, x in inputs.items()}
    return {k: {b: per_batch[b][k] for b in inputs} for k in models}


def measure(sample: Any, model: nn.Module | None = None, *, split: str = "test", timing: bool = True,
            repeats: int = 30, max_seconds: float = 2.0) -> Measurement:
    """Score (on a held-out split), parameters, non-zeros, MACs per example, serialized size and, unless timing is
    False, latency at the family's batch sizes, of the sample's model or of a compressed `model` made from it."""
    fam = family_of(sample)
    model = sample.model if model is None else model
    layers = tuple(layer_table(model, fam.example(sample)))
    params = sum(p.numel() for p in model.parameters())
    nonzeros = sum(int(torch.count_nonzero(p)) for p in model.parameters())
    lat = time_models(sample, {"model": model}, repeats, max_seconds)["model"] if timing else None
    return Measurement(fam.scorer(sample, split)(model), params, nonzeros, sum(r.macs for r in layers),
                       serialized_bytes(model), lat, layers)


def score(sample: Any, model: nn.Module | None = None, split: str = "test") -> Score:
    """The family's headline quality of a model made from the sample, on a held-out split."""
    return family_of(sample).scorer(sample, split)(sample.model if model is None else model)


# ------------------------------------------------------------------------------------------------------- prune

def prune(sample: Any, cfg: P.PruneConfig) -> nn.Module:
    """A new pruned model (the sample's is never changed). Unstructured: same shapes, pruned weights zero.
    Structured: whole units (cfg.unit: the family's unit_kinds) removed for real."""
    fam = family_of(sample)
    if cfg.structured and cfg.unit not in fam.unit_kinds:
        raise unsupported(f"structured pruning of {cfg.unit!r}", fam, list(fam.unit_kinds))
    return _handler("prune", fam)(sample, cfg)


@handles("prune", "classifier")
def _prune_classifier(sample: Any, cfg: P.PruneConfig) -> nn.Module:
    calibration = sample.data.train.head(P.CALIBRATION) if cfg.method == "taylor" else None
    keep = P.masks(sample.model, cfg, calibration)
    if not cfg.structured:
        return P.apply_masks(sample.model, keep)
    return P.remove_channels(sample.model, keep, family_of(sample).example(sample))


@handles("prune", "encoder")
def _prune_encoder(sample: Any, cfg: P.PruneConfig) -> nn.Module:
    fam = family_of(sample)
    if cfg.method != "l1" or cfg.scope != "layer" or cfg.skip or cfg.overrides:
        raise unsupported(f"pruning with method {cfg.method!r}, scope {cfg.scope!r}, skips or overrides", fam,
                          ["method 'l1', scope 'layer' (unstructured, or units: heads, ffn)"])
    if cfg.structured and cfg.norm != 2:
        raise unsupported(f"scoring {cfg.unit} by their L{cfg.norm} norm", fam, ["norm 2"])
    return TP.prune_text(sample.model, TP.TextPruneConfig(cfg.amount, cfg.unit if cfg.structured else "unstructured"))


# ---------------------------------------------------------------------------------------------------- quantize

ACTIVATION_FAMILIES = ("classifier",)   # families whose activations can be fake-quantized (calibrated inputs)


def quantize(sample: Any, cfg: Q.QuantConfig) -> nn.Module:
    """A new model whose compressible layers (the family's) hold fake-quantized weights: a simulation of the grid's
    error, run by fp32 kernels. Activation ranges, when cfg asks for them, are calibrated on the calibration split."""
    fam = family_of(sample)
    calibration = None
    if cfg.activations is not None:
        if fam.name not in ACTIVATION_FAMILIES:
            raise unsupported("activation quantization", fam, ["weights only (activations=None)"])
        calibration = fam.split(sample, "calibration").x[:Q.CALIBRATION]
    return Q.quantize(sample.model, config=cfg, calibration=calibration, layers=fam.layers(sample.model))


# ----------------------------------------------------------------------------------------------------- distill

def distill(teacher: Any, cfg: D.DistillConfig | TD.TextDistillConfig, width: float = 0.25,
            **callbacks: Callable) -> Any:
    """Train a student of the teacher sample's family on its train split against the teacher's softened outputs;
    returns the family's result record (student, per-epoch history). Classifiers: a student `width` as wide, seeded
    by cfg.seed, with a DistillConfig. Sentence encoders: a shallower student with a TextDistillConfig."""
    return _handler("distill", family_of(teacher))(teacher, cfg, width, **callbacks)


@handles("distill", "classifier")
def _distill_classifier(teacher: Any, cfg: Any, width: float, **callbacks: Callable) -> D.DistillResult:
    if not isinstance(cfg, D.DistillConfig):
        raise ValueError(f"a classifier is distilled with a DistillConfig, got {type(cfg).__name__}")
    student = D.make_student(teacher.model, width, cfg.seed)
    return D.distill(teacher.model, student, teacher.data, cfg.temperature, cfg.alpha, cfg.epochs, cfg.seed,
                     lr=cfg.lr, batch_size=cfg.batch_size, t_squared=cfg.t_squared, **callbacks)


@handles("distill", "encoder")
def _distill_encoder(teacher: Any, cfg: Any, width: float, **callbacks: Callable) -> TD.TextDistillResult:
    if not isinstance(cfg, TD.TextDistillConfig):
        raise ValueError(f"a sentence encoder is distilled with a TextDistillConfig, got {type(cfg).__name__}")
    return TD.distill(teacher.model, teacher.data, cfg, **callbacks)
