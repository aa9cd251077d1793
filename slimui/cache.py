"""Cached loaders shared by all sessions. Cached models are read-only: compress copies, never these."""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import cast

import numpy as np
import streamlit as st
import torch
from torch import nn

import slimcore
from slimcore import Sample, SampleError
from slimcore import upload as U
from slimcore.families import family_of
from slimcore.text import TextSample

UPLOADS_KEPT = 8  # uploaded models kept in memory (the oldest go first); each is named by a hash of its bytes
# Bytes every session's uploads may take in memory together (their weights and data tensors, as expanded, not as
# compressed in the file): a new upload makes room by dropping the oldest; one larger than this is refused.
UPLOAD_BUDGET = 600 * 10**6
AnySample = Sample | TextSample   # a classifier sample or a sentence encoder (slimcore.text): see text_sample()


@st.cache_resource(show_spinner="Loading model…")
def _sample(name: str) -> AnySample:
    return slimcore.load_sample(name)


class UploadStore:
    """Uploaded models by content name, shared by sessions (read-only): a name is a hash of the bytes, so one
    session can only reach another's upload by holding the same file. Keeps the most recent UPLOADS_KEPT, and at
    most `budget` bytes of them all together (their card's memory_bytes: weights and data as held in memory)."""

    def __init__(self, budget: int = UPLOAD_BUDGET) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[str, AnySample] = OrderedDict()
        self.budget = budget

    def held(self) -> int:
        """Bytes the kept uploads take in memory."""
        with self._lock:
            return sum(_bytes(s) for s in self._items.values())

    def get(self, name: str) -> AnySample | None:
        with self._lock:
            if name in self._items:
                self._items.move_to_end(name)
            return self._items.get(name)

    def put(self, s: AnySample) -> None:
        with self._lock:
            self._items[s.name] = s
            self._items.move_to_end(s.name)
            while len(self._items) > UPLOADS_KEPT or (
                    len(self._items) > 1 and sum(_bytes(s) for s in self._items.values()) > self.budget):
                self._items.popitem(last=False)   # the oldest first; the newest always stays (it fits: see add_upload)


def _bytes(s: AnySample) -> int:
    return int(s.card.get("memory_bytes", 0))


@st.cache_resource
def uploads() -> UploadStore:
    return UploadStore()


def add_upload(model: bytes, filename: str | None, data: bytes | None = None, data_filename: str | None = None,
               architecture: str | None = None) -> AnySample:
    """Read an upload (slimcore.load_upload: never unpickles code) and keep it; raises slimcore.upload.UploadError.
    `architecture`: the named architecture (slimcore.architectures) a state dict holds weights for."""
    name = U.upload_name(model, data, architecture)
    s = uploads().get(name)
    if s is None:
        s = U.load_upload(model, filename, data, data_filename, budget=uploads().budget, architecture=architecture)
        uploads().put(s)
    return s


def sample(name: str) -> AnySample:
    """A model with its data and card, shared (read-only) by every session: a shipped sample (loaded once per
    process), or an upload still kept in memory."""
    if U.is_upload(name):
        s = uploads().get(name)
        if s is None:
            raise SampleError("this uploaded model is no longer on the server (it restarted, or newer uploads took "
                              "its place): upload it again on the home page")
        return s
    return _sample(name)


def text_sample(name: str) -> TextSample:
    """sample() where the caller knows the model is a sentence encoder (the text labs' code)."""
    s = sample(name)
    assert isinstance(s, TextSample), f"{name} is not a sentence encoder"
    return s


def classifier_sample(name: str) -> Sample:
    """sample() where the caller knows the model is a classifier (its data has inputs x and labels y)."""
    s = sample(name)
    assert isinstance(s, Sample), f"{name} is not a classifier"
    return s


def weight(layer: nn.Module) -> torch.Tensor:
    """A compressible layer's weight (Family.layers: Linear/Conv layers; nn.Module's attribute lookup types it as a
    tensor or a submodule)."""
    return cast(torch.Tensor, layer.weight)


@st.cache_data(show_spinner="Measuring baseline…")
def baseline(name: str) -> slimcore.Measurement:
    """Baseline figures of a sample model (accuracy, counts, size), measured once per process; timing apart."""
    from . import work
    return work.kept("baseline", name, None, lambda: slimcore.measure(sample(name), timing=False))


def baseline_latency(name: str) -> dict[int, slimcore.Latency]:
    """Latency of a sample model at its family's batch sizes ({batch: Latency}: 1 and 256 for classifiers, 1 and 32
    sentences for encoders); pages time it in the background worker (components.Timed), once per process."""
    s = sample(name)
    return slimcore.time_models(s, {"model": s.model}, max_seconds=0.5)["model"]  # short: the browser needs the CPU


@st.cache_data(show_spinner=False)
def examples(name: str, n: int = 12) -> dict:
    """The first n test inputs with labels, predictions and confidences."""
    s = classifier_sample(name)
    x, y = s.test.x[:n], s.test.y[:n]
    probs = slimcore.predict(s.model, x).softmax(1)
    conf, pred = probs.max(1)
    return {"x": x.numpy(), "y": y.tolist(), "pred": pred.tolist(), "conf": conf.tolist()}


@st.cache_data(show_spinner=False)
def layer_weights(name: str, layer: str) -> np.ndarray:
    """A copy of one compressible layer's weights (its family's layers) as a flat numpy array."""
    s = sample(name)
    return weight(family_of(s).layers(s.model)[layer]).detach().numpy().ravel().copy()
