"""Cached computations behind the Pruning page. Every number comes from slimcore; nothing here mutates a cached model."""
from __future__ import annotations

from dataclasses import replace

import streamlit as st
import torch
from torch import nn

import slimcore
from slimcore import pruning as P

from . import cache

CALIBRATION = P.CALIBRATION            # training examples that Taylor importance is computed on
CURVE = tuple(round(r / 20, 2) for r in range(20)) + (0.97, 0.99)  # ratios of the accuracy curve


def _calibration(name: str) -> slimcore.Split:
    return cache.sample(name).data.train.head(CALIBRATION)


@st.cache_resource(show_spinner=False, max_entries=8)
def scores(name: str, method: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Weight scores of a sample model for a method (read-only, shared)."""
    s = cache.sample(name)
    return P.weight_scores(s.model, method, _calibration(name), seed)


@st.cache_resource(show_spinner=False, max_entries=32)
def result(name: str, cfg: P.PruneConfig) -> tuple[P.PruneReport, nn.Module, nn.Module | None]:
    """A configuration's report and its two real models (read-only, shared by sessions)."""
    s = cache.sample(name)
    return P.evaluate(s.model, cfg, s.test, scores=scores(name, cfg.method, cfg.seed))


@st.cache_resource(show_spinner=False, max_entries=64)
def masks(name: str, cfg: P.PruneConfig) -> P.Masks:
    """Keep-masks as the page shows them (read-only, shared): structured ones extended to the input columns that
    removing the channels also takes away, when the channel-pruned model exists."""
    s = cache.sample(name)
    keep = P.masks(s.model, cfg, scores=scores(name, cfg.method, cfg.seed))
    if cfg.structured:
        try:
            return P.effective_masks(s.model, keep, s.test.x[:1])
        except ValueError:  # every channel of a layer removed: the page says so; show the channel masks
            return keep
    return keep


@st.cache_data(show_spinner=False, max_entries=128)
def layer(name: str, cfg: P.PruneConfig, layer_name: str) -> dict:
    """One layer's kept weights, its mask and the magnitude cut (its weights before: cache.layer_weights)."""
    model = cache.sample(name).model
    w = slimcore.weight_layers(model)[layer_name].weight.detach()
    keep = masks(name, cfg)
    return {"after": w[keep[layer_name]].numpy().copy(), "mask": keep[layer_name].numpy().copy(),
            "threshold": P.threshold(model, keep, layer_name)}


@st.cache_data(show_spinner="Computing the accuracy curve (once per model and method)…", max_entries=64)
def curve(name: str, method: str, scope: str, structured: bool, norm: int) -> tuple[tuple[float, ...], list[float]]:
    """One-shot test accuracy over CURVE for a method, without fine-tuning."""
    s = cache.sample(name)
    cfg = P.PruneConfig(0.0, method, scope, structured, norm)
    return CURVE, P.accuracy_curve(s.model, cfg, s.test, CURVE, _calibration(name))


@st.cache_data(show_spinner=False, max_entries=128)
def latencies(name: str, cfg: P.PruneConfig) -> dict[str, tuple[slimcore.Latency, slimcore.Latency]]:
    """Latency at batch 1 and 256 of the original, the masked and the channel-pruned model, timed side by side."""
    s = cache.sample(name)
    _, dense, small = result(name, cfg)
    models = {"original": s.model, "masked": dense} | ({"channels": small} if small is not None else {})
    return slimcore.compare_latencies(models, s.test, max_seconds=0.5)  # on the slider's path: a short budget


def tuned_key(name: str, cfg: P.PruneConfig) -> str:
    """Where this session keeps a fine-tuned run for a model and method (any ratio: its curve stays visible)."""
    return f"{name}|{replace(cfg, amount=0.0)}"


def gradual(name: str, cfg: P.GradualConfig, on_step) -> tuple[P.GradualStep, ...]:
    """Run gradual pruning with fine-tuning on a sample model (on a copy); return its steps."""
    s = cache.sample(name)
    return P.gradual_prune(s.model, s.data, cfg, on_step=on_step).steps
