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

GRID = D.GRID


@dataclass(frozen=True)
class RunKey:
    """Everything a trained student depends on."""

    teacher: str
    width: str
    cfg: D.DistillConfig


def run_key(teacher: str, width: str, cfg: D.DistillConfig) -> RunKey:
    """The key of a setting; with alpha = 0 the temperature plays no part, so it is set to 1 (the scratch run)."""
    return RunKey(teacher, width, replace(cfg, temperature=1.0) if cfg.alpha == 0 else cfg)


def scratch_key(key: RunKey) -> RunKey:
    """The same-budget student trained on labels alone (alpha = 0: the temperature plays no part)."""
    return replace(key, cfg=replace(key.cfg, alpha=0.0, temperature=1.0))


def at_temperature(key: RunKey, temperature: float) -> RunKey:
    """The same setting at another temperature (a point of the grid)."""
    return run_key(key.teacher, key.width, replace(key.cfg, temperature=temperature))


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


def train(key: RunKey, on_epoch=None, on_batch=None) -> Run:
    """The run for a key: from the store, or trained now (reporting each epoch) and then stored."""
    run = store().get(key)
    if run is not None:
        return run
    s = cache.sample(key.teacher)
    c = key.cfg
    student = D.make_student(s.model, D.WIDTHS[key.width], c.seed)
    res = D.distill(s.model, student, s.data, c.temperature, c.alpha, c.epochs, c.seed, on_epoch=on_epoch, lr=c.lr,
                    batch_size=c.batch_size, t_squared=c.t_squared, on_batch=on_batch)
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
    return sum(p.numel() for p in D.student_architecture(cache.sample(name).model, D.WIDTHS[width]).parameters())


@st.cache_data(show_spinner=False, max_entries=64)
def compare(key: RunKey) -> tuple[dict[str, dict], bool]:
    """Teacher, distilled and scratch student side by side: accuracy, parameters, measured size and latency; and
    whether any timing was noisy."""
    s = cache.sample(key.teacher)
    runs = {"distilled student": store().get(key), "student from scratch": store().get(scratch_key(key))}
    if any(r is None for r in runs.values()):
        raise ValueError("these students are no longer kept (the store holds the most recent runs): press Train")
    models = {"teacher": s.model} | {k: r.student for k, r in runs.items()}
    lat = slimcore.compare_latencies(models, s.test, max_seconds=0.5)
    acc = {"teacher": slimcore.accuracy(s.model, s.test)} | {k: r.test_accuracy for k, r in runs.items()}
    rows = {k: {"test accuracy, %": round(acc[k] * 100, 2), "parameters": sum(p.numel() for p in m.parameters()),
                "size, KiB (measured)": round(slimcore.serialized_bytes(m) / 1024, 1),
                "latency b=1, ms": round(lat[k][0].median_ms, 3), "latency b=256, ms": round(lat[k][1].median_ms, 3),
                "b=256 spread (IQR), ms": round(lat[k][1].iqr_ms, 3)}
            for k, m in models.items()}
    return rows, any(b1.noisy or b256.noisy for b1, b256 in lat.values())
