"""Cached loaders shared by all sessions. Cached models are read-only: compress copies, never these."""
from __future__ import annotations

import numpy as np
import streamlit as st

import slimcore
from slimcore import Sample


@st.cache_resource(show_spinner="Loading model…")
def sample(name: str) -> Sample:
    """A sample model with its data and card, loaded once per process and shared (read-only) by every session."""
    return slimcore.load_sample(name)


@st.cache_data(show_spinner="Measuring baseline…")
def baseline(name: str) -> slimcore.Measurement:
    """Baseline figures of a sample model (accuracy, counts, size), measured once per process; timing apart."""
    s = sample(name)
    return slimcore.measure(s.model, s.test, timing=False)


@st.cache_data(show_spinner=False)
def baseline_latency(name: str) -> tuple[slimcore.Latency, slimcore.Latency]:
    """Latency of a sample model at batch 1 and 256, timed once per process (pages time it after drawing the rest)."""
    s = sample(name)
    return slimcore.latencies(s.model, s.test, max_seconds=0.5)  # a short budget: the browser needs the CPU too


@st.cache_data(show_spinner=False)
def examples(name: str, n: int = 12) -> dict:
    """The first n test inputs with labels, predictions and confidences."""
    s = sample(name)
    x, y = s.test.x[:n], s.test.y[:n]
    probs = slimcore.predict(s.model, x).softmax(1)
    conf, pred = probs.max(1)
    return {"x": x.numpy(), "y": y.tolist(), "pred": pred.tolist(), "conf": conf.tolist()}


@st.cache_data(show_spinner=False)
def layer_weights(name: str, layer: str) -> np.ndarray:
    """A copy of one layer's weights as a flat numpy array."""
    return slimcore.weight_layers(sample(name).model)[layer].weight.detach().numpy().ravel().copy()
