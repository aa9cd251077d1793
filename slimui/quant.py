"""Quantization page glue: widget values -> QuantConfig, and the page's cached computations, keyed by plain values.

Cached results are plain data (numbers, arrays, records); the one cached model (the real int8 one) is shared by all
sessions and only ever evaluated, never changed.
"""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import streamlit as st
import torch

import slimcore
from slimcore import families
from slimcore import int8 as int8_backend
from slimcore import quantization as q

from . import cache

CALIBRATION_EXAMPLES = 512          # training inputs that calibrate activation ranges, simulated and real int8
SCHEMES = {"symmetric": True, "asymmetric": False}
GRANULARITIES = {"per tensor": False, "per channel": True}
TARGETS = ("weights only", "weights and activations")
CALIBRATION_METHODS = {"min/max": ("minmax", 100.0), "99.99th percentile": ("percentile", 99.99),
                       "99.9th percentile": ("percentile", 99.9)}
ROUNDING = {"to nearest": "nearest", "stochastic (seed 0)": "stochastic"}


def config(bits: int, ternary: bool, scheme: str, granularity: str, target: str, act_bits: int = 8,
           calibration: str = "min/max", rounding: str = "to nearest") -> q.QuantConfig:
    """The QuantConfig the page's widgets describe; an unknown choice raises ValueError with the known ones."""
    for value, known, what in ((scheme, SCHEMES, "scheme"), (granularity, GRANULARITIES, "granularity"),
                               (target, TARGETS, "what to quantize"), (calibration, CALIBRATION_METHODS, "calibration"),
                               (rounding, ROUNDING, "rounding")):
        if value not in known:
            raise ValueError(f"unknown {what} {value!r}; choose one of: {', '.join(known)}")
    acts = None
    if target == TARGETS[1]:
        method, pct = CALIBRATION_METHODS[calibration]
        acts = q.ActivationConfig(bits=act_bits, method=method, percentile=pct)
    return q.QuantConfig(bits=bits, symmetric=SCHEMES[scheme], per_channel=GRANULARITIES[granularity],
                         rounding=ROUNDING[rounding], ternary=bool(ternary), activations=acts)


def key(cfg: q.QuantConfig) -> str:
    """A config as a plain, hashable cache key (JSON)."""
    return json.dumps(cfg.to_dict(), sort_keys=True)


def _cfg(cfg_key: str) -> q.QuantConfig:
    return q.QuantConfig.from_dict(json.loads(cfg_key))


@st.cache_data(show_spinner=False, max_entries=32)
def ranges(name: str, method: str, percentile: float) -> q.Ranges:
    """Input ranges of every layer of a sample model on CALIBRATION_EXAMPLES training inputs."""
    s = cache.sample(name)
    return q.calibrate(s.model, s.data.train.x[:CALIBRATION_EXAMPLES], method, percentile)


def _quantized(name: str, cfg: q.QuantConfig) -> torch.nn.Module:
    s = cache.sample(name)
    calib = ranges(name, cfg.activations.method, cfg.activations.percentile) if cfg.activations else None
    return q.quantize(s.model, config=cfg, calibration=calib)


@st.cache_data(show_spinner=False, max_entries=256)
def variant(name: str, cfg_key: str) -> dict:
    """Accuracy (measured, of the simulated model), per-layer weight errors and modelled size of one setting."""
    cfg = _cfg(cfg_key)
    s = cache.sample(name)
    qm = _quantized(name, cfg)
    return {"accuracy": slimcore.accuracy(qm, s.test), "errors": q.layer_errors(s.model, qm),
            "size": q.modelled_bytes(s.model, cfg)}


@st.cache_data(show_spinner=False, max_entries=256)
def layer_detail(name: str, cfg_key: str, layer: str) -> dict:
    """One layer's fp32 weights, quantized weights, grid levels (of the widest channel when per channel) and step."""
    cfg = _cfg(cfg_key)
    layers = slimcore.weight_layers(cache.sample(name).model)
    if layer not in layers:
        raise ValueError(f"layer {layer!r} has no weights to quantize; layers with weights: {', '.join(layers)}")
    w = layers[layer].weight.detach()
    qw = q.quantized_weights(cache.sample(name).model, cfg)[f"{layer}.weight"]
    grid = q.levels(w, cfg.bits, cfg.symmetric, 0 if cfg.per_channel else None, cfg.ternary)
    qp = q.weight_qparams(w, cfg)
    note, half_step = "", None
    if grid.dim() == 2:  # per channel: draw the grid of the channel with the widest range
        widest = int((grid.amax(1) - grid.amin(1)).argmax())
        grid = grid[widest]
        note = f"levels of output channel {widest}, the widest of {w.shape[0]}; each channel has its own grid"
    if qp is not None:
        half_step = float(qp.scale.max()) / 2
    return {"w": w.numpy().ravel().copy(), "q": qw.numpy().ravel().copy(), "levels": grid.numpy().copy(),
            "half_step": half_step, "note": note, "shape": tuple(w.shape)}


@st.cache_data(show_spinner="Computing accuracy at every bit width (once per setting)…", max_entries=64)
def curve(name: str, cfg_key: str) -> dict:
    """Accuracy at 1..16 weight bits and with ternary weights, for one scheme / granularity / activation setting."""
    cfg = replace(_cfg(cfg_key), bits=8, ternary=False)
    s = cache.sample(name)
    calib = ranges(name, cfg.activations.method, cfg.activations.percentile) if cfg.activations else None
    points = q.quality_by_bits(s.model, families.family_of(s).scorer(s), cfg, range(1, 17), calib)
    tern = slimcore.accuracy(q.quantize(s.model, config=replace(cfg, ternary=True), calibration=calib), s.test)
    return {"bits": [p.bits for p in points], "accuracy": [p.value for p in points], "ternary": tern}


def curve_key(cfg: q.QuantConfig) -> str:
    """The curve's cache key: the config without its bit width and ternary choice (the curve covers them all)."""
    return key(replace(cfg, bits=8, ternary=False))


@st.cache_resource(show_spinner="Building the real int8 model…")
def int8_model(name: str) -> int8_backend.Int8Model:
    """The real int8 model of a sample, built once per process and shared (read-only) by every session."""
    s = cache.sample(name)
    return int8_backend.int8_model(s.model, s.data.train.x[:CALIBRATION_EXAMPLES])


@st.cache_data(show_spinner=False)
def int8_figures(name: str) -> dict:
    """Measured accuracy and serialized size of the real int8 model."""
    r = int8_model(name)
    s = cache.sample(name)
    return {"accuracy": slimcore.accuracy(r.model, s.test), "size_bytes": slimcore.serialized_bytes(r.model),
            "kind": r.kind, "engine": r.engine, "notes": " ".join(r.notes)}


@st.cache_data(show_spinner=False)
def timings(name: str) -> dict[str, tuple[slimcore.Latency, slimcore.Latency]]:
    """Latency of fp32 and of real int8 at batch 1 and 256, timed side by side (round-robin, so that the machine's
    load hits both alike), once per process."""
    s = cache.sample(name)
    return slimcore.compare_latencies({"fp32": s.model, "int8": int8_model(name).model}, s.test)
