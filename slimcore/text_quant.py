"""Quantization of the text encoder (minilm): k-bit fake quantization of its 36 encoder Linear weight matrices
(simulated), real dynamic int8 of them (torch.ao through slimcore.int8, measured), and sensitivity scans that change
one group of Linear layers alone and measure how far the embeddings move on held-out sentences.

What is quantized: the weight matrices of the encoder's Linear layers (attention q/k/v and output, FFN in and out).
The embedding tables (11.9 M of the 22.7 M parameters), the LayerNorms and all biases stay fp32, in the simulation
and in the int8 model alike, except when the int8 model is asked to store its word-embedding table (11.7 M
parameters, half the fp32 file) in 8 bits too: one byte per weight with a float scale and offset per row, looked up
and dequantized row by row (weight-only: no int8 arithmetic there). The given (shared) model is never changed: every
variant is a new MiniLM.
"""
from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, replace
from typing import Any, cast

import torch
from torch import nn

from . import int8 as int8_backend
from . import quantization as Q
from . import text as T
from .metrics import Latency, compare_latency
from .quantization import BITS_RANGE, QuantConfig, quantize

CURVE_BITS = tuple(range(BITS_RANGE[0], BITS_RANGE[1] + 1))   # the bit widths of the cosine-vs-bits curve
Progress = Callable[[int, int], None] | None


# ------------------------------------------------------------------------------------------- layers and config

def select(model: nn.Module, groups: Iterable[str] | None = None, layers: Iterable[int] | None = None) -> list[str]:
    """Dotted names of the encoder Linear layers in the given groups (T.GROUPS keys) and transformer layers
    (0-based); all of them when a filter is None."""
    names = list(T.linear_layers(model))
    if groups is not None:
        groups = set(groups)
        unknown = groups - set(T.GROUPS)
        if unknown:
            raise ValueError(f"unknown layer group(s) {', '.join(sorted(unknown))}; known: {', '.join(T.GROUPS)}")
        names = [n for n in names if T.group_of(n) in groups]
    if layers is not None:
        layers = set(layers)
        depth = len(cast(T.MiniLM, model).encoder.layer)
        if not layers <= set(range(depth)):
            raise ValueError(f"transformer layers are numbered 0 to {depth - 1}, got {sorted(layers)}")
        names = [n for n in names if T.layer_index(n) in layers]
    return names


def layers(model: nn.Module, names: Collection[str] | None = None) -> dict[str, nn.Module]:
    """The encoder Linear layers to quantize by dotted name: all 36 by default, or the named ones."""
    linears = T.linear_layers(model)
    if names is None:
        return linears
    unknown = [n for n in names if n not in linears]
    if unknown:
        raise ValueError(f"not encoder Linear layers: {', '.join(unknown[:3])}")
    return {n: linears[n] for n in names}


def fake_quantized(model: T.MiniLM, cfg: QuantConfig, only: Collection[str] | None = None) -> T.MiniLM:
    """A new encoder whose Linear weights (all, or only the named layers) are rounded onto the k-bit grid and stored
    back in fp32 (slimcore.quantization.quantize on the encoder's layers): a simulation of the grid's error, run by
    the same fp32 kernels."""
    return quantize(model, config=cfg, layers=layers(model, only)).eval()


def layer_grid(model: nn.Module, layer: str, cfg: QuantConfig) -> dict[str, Any]:
    """One Linear layer's fp32 weights, quantized weights and the grid levels (per channel: the widest channel's)."""
    linears = T.linear_layers(model)
    if layer not in linears:
        raise ValueError(f"{layer!r} is not an encoder Linear layer; known: {', '.join(list(linears)[:3])}, …")
    return Q.layer_grid(_linear(linears[layer]).weight, cfg)


def _linear(m: nn.Module) -> nn.Linear:
    """One of T.linear_layers (typed as plain Modules) of an fp32 encoder."""
    return cast(nn.Linear, m)


# -------------------------------------------------------------------------------------------------- real int8

WORD_TABLE = "embeddings.word_embeddings"
INT8_VARIANTS = int8_backend.VARIANTS["encoder"]   # the real int8 encoders the Quantization lab shows, by label


def int8_text(model: T.MiniLM, per_channel: bool, groups: Collection[str] | None = None,
              embeddings: bool = False) -> int8_backend.Int8Model:
    """The deployable dynamic int8 encoder: the Linear layers of the given groups (all 36 by default) run int8
    kernels (torch.ao, weights per tensor or per channel); with `embeddings`, the word-embedding table is stored in 8
    bits too (per row, weight-only); everything else stays fp32. The given model is not changed."""
    only = None if groups is None else set(select(model, groups))
    r = int8_backend.dynamic_int8(model, per_channel, only)
    if not embeddings:
        return r
    from torch.ao.quantization import float_qparams_weight_only_qconfig, quantize_dynamic

    rows, width = cast(nn.Embedding, r.model.get_submodule(WORD_TABLE)).weight.shape
    with int8_backend.quiet():  # r.model is our own fresh copy: quantized in place
        quantize_dynamic(  # type: ignore[no-untyped-call]  # torch.ao's function has no annotations
            r.model, {WORD_TABLE: float_qparams_weight_only_qconfig}, inplace=True)
    note = (f"The word-embedding table ({rows:,} x {width}) is stored in 8 bits too: one byte per weight, with a "
            "float scale and offset for each row (quint8, weight-only); a lookup dequantizes the rows it needs. The "
            "position and token-type tables stay fp32.")
    return replace(r, notes=(*r.notes, note))


@int8_backend.builds("encoder")
def _int8_encoder(sample: Any, variant: int8_backend.Int8Variant) -> int8_backend.Int8Model:
    """slimcore.int8.build for sentence encoders: dynamic int8 of every encoder Linear (static has no encoder path)."""
    if variant.kind == "static":
        raise ValueError("static int8 is not available for sentence encoders; supported: dynamic")
    return int8_text(sample.model, variant.per_channel, embeddings=variant.embeddings)


# -------------------------------------------------------------------------------------------- sensitivity scans

@dataclass(frozen=True)
class GroupRow:
    """One layer group compressed alone, all six transformer layers of it (measured on held-out sentences)."""

    group: str            # a T.GROUPS key
    method: str           # one of GROUP_METHODS
    label: str            # the method in words ("real int8 per channel", "fake 4-bit per tensor (simulated)")
    layers: int           # Linear layers changed
    quality: T.TextQuality

    @property
    def drop(self) -> float:
        """How far the mean cosine to the original fell: 1 - mean cosine."""
        return 1.0 - self.quality.mean_cosine


GROUP_METHODS = ("int8 per tensor", "int8 per channel", "fake")   # how a group is quantized alone


def method_label(method: str, cfg: QuantConfig) -> str:
    """A group method in words ("fake" names cfg's bit width and granularity, and says it is simulated)."""
    if method not in GROUP_METHODS:
        raise ValueError(f"method must be one of {', '.join(GROUP_METHODS)}, got {method!r}")
    if method == "fake":
        return f"fake {cfg.bits}-bit {'per channel' if cfg.per_channel else 'per tensor'} (simulated)"
    return f"real {method}"


def group_variant(model: T.MiniLM, group: str, method: str, cfg: QuantConfig) -> nn.Module:
    """A new encoder with ONLY one group's Linear layers (in all six transformer layers) quantized: real dynamic
    int8 per tensor or per channel, or fake-quantized as cfg says; every other Linear stays fp32."""
    if method not in GROUP_METHODS:
        raise ValueError(f"method must be one of {', '.join(GROUP_METHODS)}, got {method!r}")
    if method == "fake":
        return fake_quantized(model, cfg, select(model, [group]))
    return int8_text(model, method == "int8 per channel", [group]).model


def group_sensitivity(model: T.MiniLM, split: T.TextSplit, reference: torch.Tensor, cfg: QuantConfig,
                      on_progress: Progress = None) -> list[GroupRow]:
    """Each layer group quantized ALONE (the others fp32) by each of GROUP_METHODS: 12 evaluations of the split."""
    rows, total = [], len(T.GROUPS) * len(GROUP_METHODS)
    for g in T.GROUPS:
        for method in GROUP_METHODS:
            q = T.evaluate(group_variant(model, g, method, cfg), split, reference)
            rows.append(GroupRow(g, method, method_label(method, cfg), len(select(model, [g])), q))
            if on_progress:
                on_progress(len(rows), total)
    return rows


# ---------------------------------------------------------------------------------------- why int8 gains so much

SHAPES = {"qkv": "attention.self.query", "ffn_in": "intermediate.dense", "ffn_out": "output.dense"}


@dataclass(frozen=True)
class KernelTime:
    """One Linear layer's matrix product timed alone, fp32 (nn.Linear) against an engine's dynamic int8 kernel
    (torch.ao's, or ONNX Runtime's MatMulInteger with its activation quantization)."""

    layer: str            # the real layer whose weights were used
    shape: str            # "in x out"
    tokens: int           # rows of the input: sentences x padded tokens
    fp32: Latency
    int8: Latency

    @property
    def speedup(self) -> float:
        return self.fp32.median_ms / self.int8.median_ms


def kernel_times(model: T.MiniLM, tokens: Iterable[int], per_channel: bool = True, repeats: int = 30,
                 max_seconds: float = 1.0, seed: int = 0, engine: str = "torch") -> list[KernelTime]:
    """fp32 against int8 time of the encoder's three Linear shapes (384x384, 384x1536, 1536x384; layer 0's real
    weights) on inputs of each number of token rows, timed side by side (round-robin), int8 in `engine` ("torch":
    torch.ao; "onnxruntime"). Inputs: normal noise (the time of a matrix product does not depend on the values)."""
    tokens = list(tokens)
    if engine not in int8_backend.ENGINES:
        raise ValueError(f"engine must be one of {', '.join(int8_backend.ENGINES)}, got {engine!r}")
    out = []
    gen = torch.Generator().manual_seed(seed)
    for _group, end in SHAPES.items():
        name = f"encoder.layer.0.{end}"
        lin = _linear(T.linear_layers(model)[name])
        fp32 = nn.Sequential(nn.Linear(lin.in_features, lin.out_features)).eval()
        fp32[0].load_state_dict(lin.state_dict())
        if engine == "onnxruntime":
            from . import ort_int8

            example = torch.zeros(2, lin.in_features)
            q: nn.Module = ort_int8.OrtModel(ort_int8.dynamic(ort_int8.fp32_onnx(fp32, example), per_channel,
                                                              embeddings=False))
        else:
            q = int8_backend.dynamic_int8(fp32, per_channel).model
        for n in tokens:
            x = torch.randn(n, lin.in_features, generator=gen)
            t = compare_latency({"fp32": fp32, "int8": q}, x, n, repeats=repeats, max_seconds=max_seconds)
            out.append(KernelTime(name, f"{lin.in_features}x{lin.out_features}", n, t["fp32"], t["int8"]))
    return out
