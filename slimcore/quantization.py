"""Quantization, simulated: k-bit uniform affine fake quantization, binary, ternary and fixed point, applied to copies
of models; activation ranges calibrated on a batch; per-layer error (MSE, SQNR).

Fake quantization rounds every weight to a point of a k-bit grid and stores the result back in fp32: it shows what
the grid costs in accuracy, not what int8 kernels cost or save (see `slimcore.int8` for the real, deployable model).

Grids (the integer codes q, from qmin to qmax; the value of a code is (q - zero_point) * scale):
- symmetric: signed "narrow range" codes -(2^(k-1) - 1) .. 2^(k-1) - 1, zero point 0, scale = max|x| / qmax. The grid
  is symmetric about 0 (2^k - 1 levels; the code -2^(k-1) is never used), as TensorRT and TF Lite do for weights.
- asymmetric: unsigned codes 0 .. 2^k - 1, scale = (max - min) / (2^k - 1) over a range widened to include 0, integer
  zero point = qmin - round(min / scale), as PyTorch's MinMaxObserver does; 0 is exactly representable in both.
Rounding: x -> clamp(round(x * (1 / scale)) + zero_point, qmin, qmax), half to even, in float32 — the arithmetic of
`torch.fake_quantize_per_tensor_affine`, so the two agree bit for bit given the same scale and zero point.
Quantizing again on the same grid changes nothing; refitting the grid to a quantized tensor changes nothing for
symmetric grids, but an asymmetric grid's integer zero point can shift it by up to half a step and clip one end of the
range (by at most half a step), so a refit may move values by up to one step.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, TypeVar, cast

import numpy as np
import torch
from torch import nn

from .families.base import Score, Scorer
from .metrics import ModelledSize, weight_layers

BITS_RANGE = (2, 16)          # uniform affine grids; 1 bit is binary (quantize() only)
ROUNDINGS = ("nearest", "stochastic")
CALIBRATIONS = ("minmax", "percentile")
CALIBRATION = 512             # training inputs that calibrate activation ranges (the labs and recipes alike)
TERNARY_THRESHOLD = 0.7       # ternary: zero out |w| <= 0.7 * mean|w| (Li & Liu 2016, "Ternary weight networks")
_TINY = torch.finfo(torch.float32).tiny  # a scale floor that keeps 1 / scale finite
M = TypeVar("M", bound=nn.Module)


def check_bits(bits: int, low: int = BITS_RANGE[0], high: int = BITS_RANGE[1], what: str = "bits") -> None:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not low <= bits <= high:
        raise ValueError(f"{what} must be a whole number from {low} to {high}, got {bits!r}")


def _check_finite(t: torch.Tensor, what: str = "the tensor") -> None:
    if not t.is_floating_point():
        raise ValueError(f"{what} must be a floating-point tensor, got {t.dtype}")
    if t.numel() and not bool(torch.isfinite(t).all()):
        raise ValueError(f"NaN or infinite values in {what}: quantization needs finite numbers")


def _channel_view(t: torch.Tensor, axis: int | None) -> torch.Tensor:
    """The tensor as (channels, values per channel) for a per-channel axis, or (1, all values) per tensor."""
    if axis is None:
        return t.reshape(1, -1)
    if not -t.dim() <= axis < t.dim():
        raise ValueError(f"axis {axis} is out of range for a tensor of shape {tuple(t.shape)}")
    if t.shape[axis] == 0:
        return t.new_zeros((0, 0))
    return t.movedim(axis, 0).reshape(t.shape[axis], -1)


def _broadcast(v: torch.Tensor, t: torch.Tensor, axis: int | None) -> torch.Tensor:
    """Per-channel values shaped to broadcast against t along axis (a scalar per tensor)."""
    if axis is None:
        return v.reshape(())
    shape = [1] * t.dim()
    shape[axis] = -1
    return v.reshape(shape)


def qrange(bits: int, symmetric: bool = True) -> tuple[int, int]:
    """Integer codes of a k-bit grid: (-(2^(k-1) - 1), 2^(k-1) - 1) symmetric, (0, 2^k - 1) asymmetric."""
    check_bits(bits)
    return (-(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1) if symmetric else (0, 2 ** bits - 1)


@dataclass(frozen=True, eq=False)
class QParams:
    """A k-bit grid: scale (float32) and integer zero point, one per tensor (shape ()) or per channel (shape (C,))."""

    scale: torch.Tensor        # float32
    zero_point: torch.Tensor   # int32; 0 for symmetric grids
    qmin: int
    qmax: int
    bits: int
    symmetric: bool
    axis: int | None = None    # the channel axis, or None for one grid per tensor

    def grid(self) -> torch.Tensor:
        """Every representable value: shape (levels,) per tensor, (C, levels) per channel."""
        codes = torch.arange(self.qmin, self.qmax + 1, dtype=torch.float32)
        return (codes - self.zero_point.float().reshape(-1, 1)) * self.scale.reshape(-1, 1) if self.axis is not None \
            else (codes - float(self.zero_point)) * self.scale

    def clip_range(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Lowest and highest representable values (per channel when per channel)."""
        zp = self.zero_point.float()
        return (self.qmin - zp) * self.scale, (self.qmax - zp) * self.scale


def qparams_from_range(lo: torch.Tensor, hi: torch.Tensor, bits: int, symmetric: bool = True,
                       axis: int | None = None) -> QParams:
    """The grid for values in [lo, hi] (tensors, per channel or scalar); the range is widened to include 0."""
    qmin, qmax = qrange(bits, symmetric)
    lo = torch.minimum(torch.as_tensor(lo, dtype=torch.float32), torch.zeros(()))
    hi = torch.maximum(torch.as_tensor(hi, dtype=torch.float32), torch.zeros(()))
    if symmetric:
        span = torch.maximum(-lo, hi)
        scale = span / qmax
        zero_point = torch.zeros_like(scale, dtype=torch.int32)
    else:
        span = hi - lo
        scale = span / float(qmax - qmin)
        safe = torch.where(span > 0, scale, torch.ones_like(scale)).clamp_min(_TINY)
        zero_point = (qmin - torch.round(lo / safe)).clamp(qmin, qmax).to(torch.int32)
    scale = torch.where(span > 0, scale.clamp_min(_TINY), torch.ones_like(scale))  # all-zero: any scale keeps 0 at 0
    return QParams(scale.to(torch.float32), zero_point, qmin, qmax, bits, symmetric, axis)


def qparams(tensor: torch.Tensor, bits: int, symmetric: bool = True, axis: int | None = None) -> QParams:
    """The min/max grid of a tensor: one scale and zero point per tensor (axis None) or per channel along axis."""
    check_bits(bits)
    _check_finite(tensor)
    v = _channel_view(tensor.detach().float(), axis)
    if tensor.numel() == 0:  # nothing to fit: the unit grid
        zeros = torch.zeros(v.shape[0] if axis is not None else ())
        return qparams_from_range(zeros, zeros, bits, symmetric, axis)
    lo, hi = v.amin(1), v.amax(1)
    if axis is None:
        lo, hi = lo[0], hi[0]
    return qparams_from_range(lo, hi, bits, symmetric, axis)


def apply_qparams(tensor: torch.Tensor, qp: QParams, rounding: str = "nearest",
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Fake-quantize a tensor onto a given grid: (clamp(round(x / scale) + zero_point, qmin, qmax) - zero_point)
    * scale."""
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {', '.join(ROUNDINGS)}, got {rounding!r}")
    x = tensor.detach().float()
    scale = _broadcast(qp.scale, x, qp.axis)
    zp = _broadcast(qp.zero_point, x, qp.axis).float()
    y = x * (1.0 / scale)
    if rounding == "nearest":
        y = torch.round(y)  # half to even, as std::nearbyint in PyTorch's kernel
    else:                   # stochastic: round up with probability equal to the fraction (unbiased)
        y = torch.floor(y + torch.rand(x.shape, generator=generator, dtype=torch.float32))
    return ((y + zp).clamp(qp.qmin, qp.qmax) - zp) * scale


def fake_quantize(tensor: torch.Tensor, bits: int, symmetric: bool = True, axis: int | None = None,
                  rounding: str = "nearest", generator: torch.Generator | None = None) -> torch.Tensor:
    """A new tensor rounded to a k-bit (2..16) uniform grid fitted to its min/max, per tensor or per channel (axis)."""
    return apply_qparams(tensor, qparams(tensor, bits, symmetric, axis), rounding, generator)


def binarize(tensor: torch.Tensor, axis: int | None = 0) -> torch.Tensor:
    """Binary weights: sign(w) * mean|w| per channel along axis (per tensor when None); w = 0 counts as positive."""
    _check_finite(tensor)
    x = tensor.detach().float()
    if x.numel() == 0:
        return x.clone()
    alpha = _broadcast(_channel_view(x.abs(), axis).mean(1), x, axis)
    return torch.where(x >= 0, alpha, -alpha)


def _ternary_parts(x: torch.Tensor, axis: int | None, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Ternary mask (|w| above threshold * mean|w|) and per-channel magnitude a = mean |w| over the mask."""
    a = x.abs()
    delta = threshold * _broadcast(_channel_view(a, axis).mean(1), x, axis)
    mask = a > delta
    kept = _channel_view(a * mask, axis).sum(1)
    count = _channel_view(mask, axis).sum(1)
    alpha = torch.where(count > 0, kept / count.clamp_min(1), torch.zeros_like(kept))
    return mask, alpha


def ternarize(tensor: torch.Tensor, axis: int | None = 0, threshold: float = TERNARY_THRESHOLD) -> torch.Tensor:
    """Ternary weights {-a, 0, +a}: zero where |w| <= threshold * mean|w|, else sign(w) * a with a = mean of the kept
    |w|; per channel along axis (per tensor when None)."""
    _check_finite(tensor)
    x = tensor.detach().float()
    if x.numel() == 0:
        return x.clone()
    mask, alpha = _ternary_parts(x, axis, threshold)
    return torch.sign(x) * mask * _broadcast(alpha, x, axis)


def fixed_point(tensor: torch.Tensor, int_bits: int, frac_bits: int) -> torch.Tensor:
    """Signed fixed point Qm.n (1 sign + m integer + n fraction bits): round to a multiple of 2^-n, saturate at
    -2^m .. 2^m - 2^-n."""
    check_bits(int_bits, 0, 31, "int_bits")
    check_bits(frac_bits, 0, 31, "frac_bits")
    if int_bits + frac_bits > 31:
        raise ValueError(f"Q{int_bits}.{frac_bits} needs {int_bits + frac_bits + 1} bits; at most 32 are supported")
    _check_finite(tensor)
    step = 2.0 ** -frac_bits
    lo, hi = -(2 ** (int_bits + frac_bits)), 2 ** (int_bits + frac_bits) - 1
    return torch.round(tensor.detach().double() / step).clamp(lo, hi).mul(step).float()


def levels(tensor: torch.Tensor, bits: int, symmetric: bool = True, axis: int | None = None,
           ternary: bool = False) -> torch.Tensor:
    """The grid values a tensor is quantized onto: shape (levels,) per tensor, (C, levels) per channel. bits=1 is
    binary (-a, +a) and ternary=True gives (-a, 0, +a), with a per channel or per tensor as the quantizer uses it."""
    _check_finite(tensor)
    x = tensor.detach().float()
    if ternary or bits == 1:
        if ternary:
            _, a = _ternary_parts(x, axis, TERNARY_THRESHOLD)
            grid = torch.stack([-a, torch.zeros_like(a), a], 1)
        else:
            a = _channel_view(x.abs(), axis).mean(1)
            grid = torch.stack([-a, a], 1)
        return grid if axis is not None else grid[0]
    return qparams(x, bits, symmetric, axis).grid()


@dataclass(frozen=True)
class ActivationConfig:
    """Fake quantization of the input of every quantized layer, with ranges calibrated on a batch."""

    bits: int = 8                 # 2..16
    method: str = "minmax"        # "minmax": the observed range; "percentile": clip the rare extremes
    percentile: float = 99.99     # with "percentile": keep values between the (100 - p)th and pth percentiles
    symmetric: bool = False       # activations after ReLU are >= 0: an asymmetric grid does not waste half its codes

    def __post_init__(self) -> None:
        check_bits(self.bits, what="activation bits")
        if self.method not in CALIBRATIONS:
            raise ValueError(f"calibration method must be one of {', '.join(CALIBRATIONS)}, got {self.method!r}")
        if not 50.0 < self.percentile <= 100.0:
            raise ValueError(f"percentile must be in (50, 100], got {self.percentile}")


@dataclass(frozen=True)
class QuantConfig:
    """How to quantize a model's Linear/Conv weights (and, optionally, their inputs). Biases stay fp32."""

    bits: int = 8                      # 1 = binary (sign x mean|w|), 2..16 = uniform affine grid
    symmetric: bool = True             # zero point 0 and a grid symmetric about 0; False: min/max + integer zero point
    per_channel: bool = False          # one grid per output channel (axis 0) instead of one per tensor
    rounding: str = "nearest"          # or "stochastic": round up with probability equal to the fraction
    ternary: bool = False              # weights in {-a, 0, +a} (overrides bits for the weights)
    seed: int = 0                      # stochastic rounding seed (layers drawn in forward order)
    skip: tuple[str, ...] = ()         # layers left in fp32, by dotted name
    activations: ActivationConfig | None = None  # None: weights only

    def __post_init__(self) -> None:
        check_bits(self.bits, 1, BITS_RANGE[1])
        for name in ("symmetric", "per_channel", "ternary"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.rounding not in ROUNDINGS:
            raise ValueError(f"rounding must be one of {', '.join(ROUNDINGS)}, got {self.rounding!r}")
        if isinstance(self.skip, str) or not all(isinstance(s, str) for s in self.skip):
            raise ValueError("skip must be a sequence of layer names")
        object.__setattr__(self, "skip", tuple(self.skip))

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready): the inverse of from_dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QuantConfig:
        """A config from plain data (for example JSON, session state or a URL)."""
        d = dict(data)
        if isinstance(d.get("activations"), dict):
            d["activations"] = ActivationConfig(**d["activations"])
        d["skip"] = tuple(d.get("skip", ()))
        return cls(**d)

    @property
    def weight_bits(self) -> int:
        """Bits per weight code: 2 for ternary (3 levels), else bits."""
        return 2 if self.ternary else self.bits

    def describe(self) -> str:
        if self.ternary:
            w = "ternary weights {-a, 0, +a}"
        elif self.bits == 1:
            w = "binary weights {-a, +a}"
        else:
            w = f"{self.bits}-bit {'symmetric' if self.symmetric else 'asymmetric'} weights"
        w += ", per channel" if self.per_channel else ", per tensor"
        if self.activations:
            a = self.activations
            w += f"; {a.bits}-bit activations ({a.method}{f' {a.percentile:g}' if a.method == 'percentile' else ''})"
        return w


def _axis(cfg: QuantConfig) -> int | None:
    return 0 if cfg.per_channel else None


def quantize_tensor(w: torch.Tensor, cfg: QuantConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """One weight tensor quantized as cfg says (axis 0 is the output channel)."""
    if cfg.ternary:
        return ternarize(w, _axis(cfg))
    if cfg.bits == 1:
        return binarize(w, _axis(cfg))
    return fake_quantize(w, cfg.bits, cfg.symmetric, _axis(cfg), cfg.rounding, generator)


def weight_qparams(w: torch.Tensor, cfg: QuantConfig) -> QParams | None:
    """The uniform grid a weight tensor gets under cfg (None for binary and ternary, which have no affine grid)."""
    if cfg.ternary or cfg.bits == 1:
        return None
    return qparams(w, cfg.bits, cfg.symmetric, _axis(cfg))


def layer_grid(w: torch.Tensor, cfg: QuantConfig, quantized: torch.Tensor | None = None) -> dict[str, Any]:
    """What the labs draw of one layer under cfg: its fp32 weights "w" and quantized weights "q" (flattened; pass the
    model's own `quantized` tensor when stochastic rounding drew it), the grid "levels" (per channel: the widest
    channel's, said in "note"), half the largest grid step "half_step" (None for binary and ternary) and "shape"."""
    w = w.detach()
    q = quantize_tensor(w, cfg) if quantized is None else quantized
    grid = levels(w, cfg.bits, cfg.symmetric, _axis(cfg), cfg.ternary)
    note = ""
    if grid.dim() == 2:  # per channel: the grid of the channel with the widest range
        widest = int((grid.amax(1) - grid.amin(1)).argmax())
        grid = grid[widest]
        note = f"levels of output channel {widest}, the widest of {w.shape[0]}; each channel has its own grid"
    qp = weight_qparams(w, cfg)
    return {"w": w.numpy().ravel().copy(), "q": q.detach().numpy().ravel().copy(), "levels": grid.numpy().copy(),
            "half_step": None if qp is None else float(qp.scale.max()) / 2, "note": note, "shape": tuple(w.shape)}


def _weight(layer: nn.Module) -> torch.Tensor:
    """A Linear/Conv layer's weight (nn.Module's attribute lookup types it as a tensor or a submodule)."""
    return cast(torch.Tensor, layer.weight)


def _targets(model: nn.Module, skip: Iterable[str],
             layers: Mapping[str, nn.Module] | None = None) -> dict[str, nn.Module]:
    layers = weight_layers(model) if layers is None else dict(layers)
    if not layers:
        raise ValueError("this model has no Linear or Conv layers: there are no weights to quantize")
    unknown = [s for s in skip if s not in layers]
    if unknown:
        raise ValueError(f"cannot skip unknown layer(s) {', '.join(unknown)}; layers with weights: {', '.join(layers)}")
    for name, m in layers.items():
        _check_finite(_weight(m), f"the weights of layer {name!r}")
    return {n: m for n, m in layers.items() if n not in skip}


def quantized_weights(model: nn.Module, cfg: QuantConfig,
                      layers: Mapping[str, nn.Module] | None = None) -> dict[str, torch.Tensor]:
    """New quantized weight tensors by parameter name ("fc1.weight"), for every quantized layer: the given `layers`
    (a model family's compressible layers, or a chosen few of them; default every Linear/Conv), less cfg.skip.
    The model is only read."""
    gen = torch.Generator().manual_seed(cfg.seed) if cfg.rounding == "stochastic" else None
    return {f"{n}.weight": quantize_tensor(_weight(m), cfg, gen) for n, m in _targets(model, cfg.skip, layers).items()}


def copy_with(model: M, new: dict[str, torch.Tensor]) -> M:
    """A deep copy of model whose named parameters are replaced by new tensors (the old ones are never copied)."""
    params = dict(model.named_parameters())
    memo = {id(params[n]): nn.Parameter(t, requires_grad=params[n].requires_grad) for n, t in new.items()}
    return copy.deepcopy(model, memo)


Ranges = dict[str, tuple[float, float]]


@torch.inference_mode()
def calibrate(model: nn.Module, x: torch.Tensor, method: str = "minmax", percentile: float = 99.99) -> Ranges:
    """Input range (low, high) of every Linear/Conv layer on a calibration batch, observed on a private copy."""
    if method not in CALIBRATIONS:
        raise ValueError(f"calibration method must be one of {', '.join(CALIBRATIONS)}, got {method!r}")
    if len(x) == 0:
        raise ValueError("the calibration batch is empty")
    probe = copy.deepcopy(model)  # hooks go on a copy: the given (possibly shared) model is never touched
    seen: dict[str, list[torch.Tensor]] = {}

    def observe(name: str) -> Callable[[nn.Module, tuple[Any, ...]], None]:
        def hook(mod: nn.Module, args: tuple[Any, ...]) -> None:
            seen.setdefault(name, []).append(args[0].detach().reshape(-1))
        return hook

    for name, m in weight_layers(probe).items():
        m.register_forward_pre_hook(observe(name))
    probe(x)
    ranges: Ranges = {}
    for name, parts in seen.items():
        v = torch.cat(parts)
        _check_finite(v, f"the input of layer {name!r}")
        if method == "minmax":
            ranges[name] = (float(v.min()), float(v.max()))
        else:
            lo, hi = np.percentile(v.numpy(), [100.0 - percentile, percentile])
            ranges[name] = (float(lo), float(hi))
    return ranges


def _activation_hook(qp: QParams) -> Callable[[nn.Module, tuple[Any, ...]], tuple[Any, ...]]:
    def hook(mod: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        return (apply_qparams(args[0], qp), *args[1:])
    return hook


def activation_qparams(ranges: Ranges, act: ActivationConfig) -> dict[str, QParams]:
    """The per-tensor grid of each layer's input from its calibrated range."""
    return {n: qparams_from_range(torch.tensor(lo), torch.tensor(hi), act.bits, act.symmetric)
            for n, (lo, hi) in ranges.items()}


def quantize(model: M, bits: int = 8, symmetric: bool = True, per_channel: bool = False,
             rounding: str = "nearest", ternary: bool = False, skip: Sequence[str] = (),
             activations: ActivationConfig | None = None, calibration: torch.Tensor | Ranges | None = None,
             seed: int = 0, config: QuantConfig | None = None,
             layers: Mapping[str, nn.Module] | None = None) -> M:
    """A new model whose Linear/Conv weights (or those of the given `layers`: a model family's compressible layers,
    or a few of them) are fake-quantized (bits=1: binary; ternary=True: ternary); biases stay fp32. With
    `activations`, each quantized layer's input is fake-quantized too, on ranges from `calibration` (a batch of
    inputs, or ranges from `calibrate`). The given model is never changed. `config` overrides the keywords."""
    cfg = config or QuantConfig(bits, symmetric, per_channel, rounding, ternary, seed, tuple(skip), activations)
    out = copy_with(model, quantized_weights(model, cfg, layers))
    if cfg.activations is not None:
        if calibration is None:
            raise ValueError("activation quantization needs a calibration batch (or ranges from calibrate())")
        a = cfg.activations
        ranges = calibration if isinstance(calibration, dict) else calibrate(model, calibration, a.method, a.percentile)
        grids = activation_qparams(ranges, a)
        for name, m in weight_layers(out).items():
            if name not in cfg.skip and name in grids:
                m.register_forward_pre_hook(_activation_hook(grids[name]))
    return out


@dataclass(frozen=True)
class LayerError:
    """Quantization error of one layer's weights: MSE and signal-to-quantization-noise ratio."""

    name: str
    numel: int
    mse: float            # mean of (w - q)^2
    max_abs: float        # largest |w - q|
    sqnr_db: float        # 10 log10(mean w^2 / mean (w - q)^2); inf when the error is exactly zero
    distinct: int         # distinct values among the quantized weights


def sqnr_db(original: torch.Tensor, quantized: torch.Tensor) -> float:
    """Signal-to-quantization-noise ratio in dB; inf when quantization changed nothing, -inf for a zero signal."""
    w, q = original.detach().double(), quantized.detach().double()
    noise = float(((w - q) ** 2).mean()) if w.numel() else 0.0
    signal = float((w ** 2).mean()) if w.numel() else 0.0
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def layer_error(name: str, original: torch.Tensor, quantized: torch.Tensor) -> LayerError:
    diff = (original.detach().double() - quantized.detach().double())
    n = original.numel()
    return LayerError(name, n, float((diff ** 2).mean()) if n else 0.0, float(diff.abs().max()) if n else 0.0,
                      sqnr_db(original, quantized), int(torch.unique(quantized).numel()))


def layer_errors(model: nn.Module, quantized: nn.Module | dict[str, torch.Tensor],
                 layers: Mapping[str, nn.Module] | None = None) -> list[LayerError]:
    """Per-layer weight error between a model and its quantized copy (or its quantized weight dict), over the given
    `layers` of the model (a family's compressible layers; default every Linear/Conv)."""
    layers = weight_layers(model) if layers is None else layers
    new = quantized if isinstance(quantized, dict) else dict(quantized.named_parameters())
    return [layer_error(n, _weight(m), new.get(f"{n}.weight", _weight(m))) for n, m in layers.items()]


@dataclass(frozen=True)
class BitsPoint:
    """The quality of the model quantized at one bit width (measured on held-out data, of a simulated model)."""

    bits: int
    score: Score
    config: QuantConfig = field(compare=False)

    @property
    def value(self) -> float:
        return self.score.value


def quality_by_bits(model: nn.Module, score: Scorer, cfg: QuantConfig, bits: Iterable[int] = range(1, 17),
                    calibration: torch.Tensor | Ranges | None = None, layers: Mapping[str, nn.Module] | None = None,
                    on_progress: Callable[[int, int], None] | None = None) -> list[BitsPoint]:
    """The headline quality (a family's scorer: accuracy, mean cosine) against weight bit width, other settings as in
    cfg (ternary is ignored: it has no bit width), quantizing the given `layers` (default every Linear/Conv).
    Activation ranges are calibrated once and reused for every bit width."""
    base = replace(cfg, ternary=False)
    if base.activations is not None and isinstance(calibration, torch.Tensor):
        calibration = calibrate(model, calibration, base.activations.method, base.activations.percentile)
    bits, out = list(bits), []
    for b in bits:
        c = replace(base, bits=b)
        out.append(BitsPoint(b, score(quantize(model, config=c, calibration=calibration, layers=layers)), c))
        if on_progress:
            on_progress(len(out), len(bits))
    return out


def _others(model: nn.Module, cfg: QuantConfig, targets: Mapping[str, nn.Module]) -> str:
    """What the values that stay at 32 bits are, in words."""
    kinds = [("biases", any(getattr(m, "bias", None) is not None for m in targets.values())),
             ("layers left out", bool(cfg.skip)),
             ("embedding tables", any(isinstance(m, nn.Embedding) for m in model.modules())),
             ("norm layers", any(isinstance(m, (nn.LayerNorm, nn.BatchNorm1d, nn.BatchNorm2d))
                                 for m in model.modules()))]
    return ", ".join(k for k, present in kinds if present) or "none"


def modelled_bytes(model: nn.Module, cfg: QuantConfig, layers: Mapping[str, nn.Module] | None = None) -> ModelledSize:
    """Modelled size of the quantized model stored densely: the weights of the quantized layers (`layers`, default
    every Linear/Conv, less cfg.skip) at their bit width, plus one fp32 scale (and an int32 zero point when
    asymmetric) per tensor or output channel; every other value (biases, layers left out, embedding tables, norms)
    at 32 bits."""
    targets = _targets(model, cfg.skip, layers)
    weights = sum(_weight(m).numel() for m in targets.values())
    rest = sum(t.numel() for t in model.state_dict().values() if t.is_floating_point()) - weights
    grids = sum(_weight(m).shape[0] if cfg.per_channel else 1 for m in targets.values())
    per_grid = 4 if (cfg.symmetric or cfg.ternary or cfg.bits == 1) else 8
    wb = cfg.weight_bits
    detail = (f"{weights:,} weights at {wb} bits" + (" (ternary: 3 levels in 2 bits)" if cfg.ternary else "")
              + f" + {grids:,} scale{'s' if grids != 1 else ''}" + (" and zero points" if per_grid == 8 else "")
              + f" ({grids * per_grid:,} B); the other {rest:,} values fp32 ({_others(model, cfg, targets)})")
    return ModelledSize(weights * wb / 8 + grids * per_grid + rest * 4, "dense", wb, detail)
