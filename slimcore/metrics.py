"""Measurement: the single source of every number the labs show (accuracy, counts, FLOPs, size, latency)."""
from __future__ import annotations

import io
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

import torch
from torch import nn

from .data import Split

WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)


def weight_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Layers whose weight matrices compression acts on (Linear and Conv), by dotted name, in forward order."""
    return {n: m for n, m in model.named_modules() if isinstance(m, WEIGHT_LAYERS)}


@torch.inference_mode()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 2048) -> torch.Tensor:
    """Logits of a model on inputs, in batches, without gradients."""
    return torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


def accuracy(model: nn.Module, split: Split) -> float:
    """Top-1 accuracy (a fraction in [0, 1]) on a split."""
    return float((predict(model, split.x).argmax(1) == split.y).float().mean())


def agreement(model: nn.Module, reference: nn.Module, x: torch.Tensor) -> float:
    """Fraction of inputs on which a model's top-1 prediction equals the reference model's."""
    return float((predict(model, x).argmax(1) == predict(reference, x).argmax(1)).float().mean())


@dataclass(frozen=True)
class LayerInfo:
    """One weight layer: its shape, parameter counts and multiply-accumulates for one input example."""

    name: str
    kind: str
    weight_shape: tuple[int, ...]
    params: int     # weight + bias elements
    nonzeros: int   # of those, how many are non-zero
    macs: int       # multiply-accumulates per example (dense kernels compute all of them, zeros included)

    @property
    def sparsity(self) -> float:
        return 1.0 - self.nonzeros / self.params if self.params else 0.0


def layer_table(model: nn.Module, example: tuple[int, ...] | torch.Tensor) -> list[LayerInfo]:
    """Per-layer shapes, parameters, non-zeros and MACs, found by one forward pass on a single example: a real one
    (a batch of one, e.g. a sentence's token ids), or zeros of an input shape."""
    layers = weight_layers(model)
    macs: dict[str, int] = {}

    def hook(name: str) -> Callable[[nn.Module, tuple[Any, ...], torch.Tensor], None]:
        def record(mod: nn.Module, inputs: tuple[Any, ...], out: torch.Tensor) -> None:
            w = cast(torch.Tensor, mod.weight)   # a Linear or Conv layer's (weight_layers)
            per_output = w[0].numel() if isinstance(mod, (nn.Conv1d, nn.Conv2d)) else w.shape[1]
            macs[name] = int(out.numel() * per_output)
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in layers.items()]
    try:
        with torch.inference_mode():
            model(example[:1] if isinstance(example, torch.Tensor) else torch.zeros((1, *example)))
    finally:
        for h in handles:
            h.remove()
    rows = []
    for name, m in layers.items():
        weight = cast(torch.Tensor, m.weight)   # a Linear or Conv layer's (weight_layers)
        tensors: list[torch.Tensor] = [t for t in (weight, getattr(m, "bias", None)) if t is not None]
        rows.append(LayerInfo(name, type(m).__name__, tuple(weight.shape), sum(t.numel() for t in tensors),
                              sum(int(torch.count_nonzero(t)) for t in tensors), macs.get(name, 0)))
    return rows


def flop_macs(model: nn.Module, example: torch.Tensor) -> int:
    """Multiply-accumulates of every operation of one forward pass on one example, as torch.utils.flop_counter counts
    them (FLOPs / 2: matrix products and convolutions, attention's included), for graphs whose matrix products are
    not all Linear or Conv layers (the shape rule of layer_table counts those only)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model(example[:1])
    return int(counter.get_total_flops()) // 2


def cpu_name() -> str:
    """This machine's CPU model, as /proc/cpuinfo names it (else what platform says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def serialized_bytes(model: nn.Module) -> int:
    """Measured size: bytes of the model's state dict as written by torch.save; for a model that runs a file of its
    own (an ONNX Runtime int8 model: `file_bytes()`), that file's length."""
    file_bytes = getattr(model, "file_bytes", None)
    if callable(file_bytes):
        return int(file_bytes())
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getbuffer().nbytes


def size_source(model: nn.Module) -> str:
    """What serialized_bytes measured for this model, in words."""
    return "the int8 ONNX file" if callable(getattr(model, "file_bytes", None)) else "torch.save of the state dict"


SPARSE_FORMATS = ("dense", "bitmask", "csr")


@dataclass(frozen=True)
class ModelledSize:
    """A size computed from bit counts (modelled, not measured), with the storage format it assumes."""

    bytes: float
    format: str
    value_bits: int
    detail: str

    label = "modelled"


def _matrix_bits(shape: tuple[int, ...], nnz: int, bits: int, fmt: str) -> int:
    """Bits to store one weight tensor, viewed as a (rows, columns) matrix, in a storage format."""
    n = math.prod(shape)
    rows, cols = shape[0], n // max(shape[0], 1)
    if fmt == "dense":
        return n * bits
    if fmt == "bitmask":           # one presence bit per position + the non-zero values
        return n + nnz * bits
    if fmt == "csr":               # values + a column index each + 32-bit row pointers
        return nnz * (bits + max(1, math.ceil(math.log2(max(cols, 2))))) + (rows + 1) * 32
    raise ValueError(f"unknown storage format {fmt!r}; known: {', '.join(SPARSE_FORMATS)}")


class HasStateDict(Protocol):
    """What modelled_size reads: a model's state dict (an nn.Module, or a stand-in holding other tensors)."""

    def state_dict(self) -> Mapping[str, torch.Tensor]: ...


def modelled_size(model: HasStateDict, bits: int = 32, fmt: str = "auto") -> ModelledSize:
    """Modelled size of the weight tensors at `bits` per value in a format (or the smallest, 'auto'); biases and other
    one-dimensional tensors are counted dense at 32 bits."""
    if not 1 <= bits <= 32:
        raise ValueError(f"bits must be in 1..32, got {bits}")
    tensors = [(t.shape, int(torch.count_nonzero(t))) for t in model.state_dict().values() if t.is_floating_point()]
    matrices = [(s, z) for s, z in tensors if len(s) >= 2]
    other_bits = sum(math.prod(s) * 32 for s, _ in tensors if len(s) < 2)
    formats = SPARSE_FORMATS if fmt == "auto" else (fmt,)
    best = min(formats, key=lambda f: sum(_matrix_bits(tuple(s), z, bits, f) for s, z in matrices))
    total = sum(_matrix_bits(tuple(s), z, bits, best) for s, z in matrices) + other_bits
    detail = {"dense": f"every weight at {bits} bits",
              "bitmask": f"1-bit presence mask + non-zero weights at {bits} bits",
              "csr": f"CSR: non-zero weights at {bits} bits + column indices + 32-bit row pointers"}[best]
    return ModelledSize(total / 8, best, bits, detail + "; biases fp32")


@dataclass(frozen=True)
class Latency:
    """Wall-clock forward latency of a real module: median and spread over timed repeats after warm-up."""

    median_ms: float
    iqr_ms: float   # interquartile range (p75 - p25)
    p10_ms: float
    p90_ms: float
    batch: int
    threads: int
    warmup: int
    repeats: int
    load: float = 0.0   # the machine's 1-minute load average when timing ended

    @property
    def per_example_us(self) -> float:
        return self.median_ms * 1000 / self.batch

    @property
    def noisy(self) -> bool:
        """True when the figure should be taken again before it is trusted: the spread is large against the median
        (IQR above a quarter of it), or the machine was loaded beyond its cores (a steady load slows every run
        alike and leaves the spread small)."""
        return self.iqr_ms > 0.25 * self.median_ms or self.load > (os.cpu_count() or 1)

    def describe(self) -> str:
        return (f"{self.median_ms:.3f} ms median (IQR {self.iqr_ms:.3f} ms) at batch {self.batch}, "
                f"{self.threads} thread(s), {self.repeats} repeats after {self.warmup} warm-up")


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block with n torch threads, then restore the thread count."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def compare_latency(models: dict[str, nn.Module], example: torch.Tensor, batch: int = 1, threads: int | None = None,
                    warmup: int = 5, repeats: int = 30, max_seconds: float = 2.0) -> dict[str, Latency]:
    """Time model(x) for several models round-robin (A B C A B C ...), so that a change in the machine's load hits
    them alike, on a batch built by repeating real examples; stops early (>= 5 repeats each) after max_seconds."""
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    reps = -(-batch // len(example))
    x = example.repeat((reps,) + (1,) * (example.dim() - 1))[:batch].contiguous()
    threads = threads or torch.get_num_threads()
    times: dict[str, list[float]] = {k: [] for k in models}
    with torch_threads(threads), torch.inference_mode():
        for model in models.values():
            for _ in range(warmup):
                model(x)
        deadline = time.perf_counter() + max_seconds
        for i in range(repeats):
            for k, model in models.items():
                t0 = time.perf_counter()
                model(x)
                times[k].append((time.perf_counter() - t0) * 1000)
            if i >= 4 and time.perf_counter() > deadline:
                break
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    out = {}
    for k, ts in times.items():
        q = statistics.quantiles(ts, n=20, method="inclusive")  # 5 % steps
        out[k] = Latency(statistics.median(ts), q[14] - q[4], q[1], q[17], batch, threads, warmup, len(ts), load)
    return out


def latency(model: nn.Module, example: torch.Tensor, batch: int = 1, threads: int | None = None, warmup: int = 5,
            repeats: int = 30, max_seconds: float = 2.0) -> Latency:
    """Time model(x) on a batch built by repeating real examples: median and spread after warm-up."""
    return compare_latency({"model": model}, example, batch, threads, warmup, repeats, max_seconds)["model"]


def latencies(model: nn.Module, test: Split, repeats: int = 30, max_seconds: float = 2.0) -> tuple[Latency, Latency]:
    """Latency at batch 1 and at batch 256 on real test inputs."""
    example = test.x[:256]
    return (latency(model, example, 1, repeats=repeats, max_seconds=max_seconds),
            latency(model, example, 256, repeats=repeats, max_seconds=max_seconds))


def compare_latencies(models: dict[str, nn.Module], test: Split, repeats: int = 30,
                      max_seconds: float = 2.0) -> dict[str, tuple[Latency, Latency]]:
    """Latency at batch 1 and at batch 256 of several models timed side by side (round-robin) on real test inputs."""
    example = test.x[:256]
    b1, b256 = (compare_latency(models, example, b, repeats=repeats, max_seconds=max_seconds) for b in (1, 256))
    return {k: (b1[k], b256[k]) for k in models}
