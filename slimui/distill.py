"""State behind the Distillation page: the teacher's logits, and trained students kept by their full setting so that a
second request is instant. Only finished runs are kept: a run that is stopped midway leaves nothing behind."""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, replace

import streamlit as st
import torch
from torch import nn

import slimcore
from slimcore import distillation as D

from . import cache

GRID = (1.0, 2.0, 4.0, 8.0, 12.0, 16.0, 20.0)   # temperatures of the accuracy-against-temperature grid


@dataclass(frozen=True)
class RunKey:
    """Everything a trained student depends on."""

    teacher: str
    width: str
    cfg: D.DistillConfig


def scratch_key(key: RunKey) -> RunKey:
    """The same-budget student trained on labels alone (alpha = 0: the temperature plays no part)."""
    return replace(key, cfg=replace(key.cfg, alpha=0.0, temperature=1.0))


def at_temperature(key: RunKey, temperature: float) -> RunKey:
    """The same setting at another temperature (a point of the grid)."""
    return replace(key, cfg=replace(key.cfg, temperature=temperature))


@dataclass(frozen=True)
class Run:
    student: nn.Module
    history: tuple[D.Epoch, ...]
    test_accuracy: float


class RunStore:
    """Finished runs by key, shared by all sessions (a run is a pure function of its key), least recently used out."""

    def __init__(self, limit: int = 128) -> None:
        self._runs: OrderedDict[RunKey, Run] = OrderedDict()
        self._lock = threading.Lock()
        self.limit = limit

    def get(self, key: RunKey) -> Run | None:
        with self._lock:
            run = self._runs.get(key)
            if run is not None:
                self._runs.move_to_end(key)
            return run

    def put(self, key: RunKey, run: Run) -> None:
        with self._lock:
            self._runs[key] = run
            self._runs.move_to_end(key)
            while len(self._runs) > self.limit:
                self._runs.popitem(last=False)


@st.cache_resource
def store() -> RunStore:
    return RunStore()


def train(key: RunKey, on_epoch=None) -> Run:
    """The run for a key: from the store, or trained now (reporting each epoch) and then stored."""
    run = store().get(key)
    if run is not None:
        return run
    s = cache.sample(key.teacher)
    c = key.cfg
    student = D.make_student(key.teacher, D.WIDTHS[key.width], c.seed)
    res = D.distill(s.model, student, s.data, c.temperature, c.alpha, c.epochs, c.seed, on_epoch=on_epoch, lr=c.lr,
                    batch_size=c.batch_size, t_squared=c.t_squared)
    run = Run(res.student, res.history, slimcore.accuracy(res.student, s.test))
    store().put(key, run)
    return run


@st.cache_data(show_spinner=False)
def teacher_logits(name: str) -> torch.Tensor:
    """The teacher's logits on its test split."""
    s = cache.sample(name)
    return slimcore.predict(s.model, s.test.x)


@st.cache_data(show_spinner=False)
def student_params(name: str, width: str) -> int:
    return sum(p.numel() for p in D.student_architecture(name, D.WIDTHS[width]).parameters())


@st.cache_data(show_spinner=False, max_entries=64)
def compare(key: RunKey) -> dict[str, dict]:
    """Teacher, distilled and scratch student side by side: accuracy, parameters, measured size and latency."""
    s = cache.sample(key.teacher)
    runs = {"distilled student": store().get(key), "student from scratch": store().get(scratch_key(key))}
    models = {"teacher": s.model} | {k: r.student for k, r in runs.items()}
    lat = slimcore.compare_latencies(models, s.test)
    acc = {"teacher": slimcore.accuracy(s.model, s.test)} | {k: r.test_accuracy for k, r in runs.items()}
    return {k: {"test accuracy, %": round(acc[k] * 100, 2), "parameters": sum(p.numel() for p in m.parameters()),
                "size, KiB (measured)": round(slimcore.serialized_bytes(m) / 1024, 1),
                "latency b=1, ms": round(lat[k][0].median_ms, 3), "latency b=256, ms": round(lat[k][1].median_ms, 3)}
            for k, m in models.items()}
