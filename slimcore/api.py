"""The public entry points: measure, prune, quantize and distill a loaded sample of any model family.

Each takes a sample (slimcore.load_sample(name), or an upload) and, where it applies, a config; the family
(slimcore.families) says how the sample is scored, timed and traced and which layers are compressed, so the same
call works on a classifier and on a sentence encoder and returns the same kinds of objects. What a family cannot do
is a one-line ValueError naming what it can. Every technique is written once over the family protocol, so a new
family needs no entry here.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from . import distillation as D
from . import pruning as P
from . import quantization as Q
from . import text_quant as TQ  # noqa: F401 (registers the encoder's real int8 builder, slimcore.int8.build)
from .families import Score, Scorer, Tuning, family_of, unsupported
from .metrics import Latency, LayerInfo, compare_latency, flop_macs, layer_table, serialized_bytes

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
    all_macs: int | None = None                # a graph model: every operation's, by torch.utils.flop_counter

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
    from .graph import is_graph

    counted = flop_macs(model, fam.example(sample)) if is_graph(model) else None
    return Measurement(fam.scorer(sample, split)(model), params, nonzeros, sum(r.macs for r in layers),
                       serialized_bytes(model), lat, layers, counted)


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
    return P.prune_model(sample.model, cfg, fam, fam.example(sample), P.calibration_batch(sample, cfg.method))


def prune_gradually(sample: Any, cfg: P.GradualConfig, *,
                    on_step: Callable[[P.GradualStep, float], None] | None = None,
                    should_stop: Callable[[], bool] | None = None, tuning: Tuning | None = None,
                    scorers: tuple[Scorer, Scorer] | None = None) -> P.GradualResult:
    """Prune a copy of the sample's model along the cubic schedule, fine-tuning between steps on what its family
    trains on (pruning.gradual_prune); `on_step`, `should_stop`, `tuning` and `scorers` as there."""
    fam = family_of(sample)
    if cfg.prune.structured and cfg.prune.unit not in fam.unit_kinds:
        raise unsupported(f"structured pruning of {cfg.prune.unit!r}", fam, list(fam.unit_kinds))
    return P.gradual_prune(sample, cfg, on_step, should_stop, tuning=tuning, scorers=scorers)


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
    model: nn.Module = sample.model
    return Q.quantize(model, config=cfg, calibration=calibration, layers=fam.layers(model))


# ----------------------------------------------------------------------------------------------------- distill

def distill(teacher: Any, cfg: D.DistillConfig | None = None, **options: Any) -> D.DistillResult:
    """Train a student of the teacher sample's family on its train split against the teacher's softened outputs
    (distillation.distill: one loop for every family); returns a DistillResult (student, per-epoch history with the
    family's headline score). cfg: the family's distill_defaults unless given; cfg.student is the share of the teacher
    the student keeps (hidden width for classifiers, transformer layers for encoders). Options: student (a model to
    start from), on_epoch, on_batch, should_stop."""
    return D.distill(teacher, cfg, **options)   # one loop: a family gives its student, loss and lesson (distill_*)
