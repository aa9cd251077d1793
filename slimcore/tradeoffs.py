"""The Trade-offs grid of any model family: every prune setting (kind x method x ratio) at every precision, scored by
the family's scorer against its size, in one frame with the same columns for every family (slimcore.sweep.COLUMNS):
config, prune, method, structured, scope, prune_ratio, precision, bits, score (frame.attrs["metric"] names it),
size_bytes with size_label ("measured" | "modelled") and size_rule, params, nonzeros, macs (NaN where not counted),
latency (NaN until timed, the reason in latency_label), note, detail (the family's detail record).

The grid is computed one prune setting (a "piece") at a time, so a caller can cache pieces, report progress between
them and stop early. The page (through slimui.tradeoffs), `python -m slimcore sweep` and the benchmarks call these, so
their numbers agree.

How each family's points are built (the rules are written beside every size):
- classifiers: slimcore.sweep's fast path (variants as tensor dicts, channel-pruned models for real): size measured
  for real fp32 models (the original, channel-pruned), modelled from bit counts otherwise; MACs counted;
- sentence encoders: the labs' own models (slimcore.prune, slimcore.quantization, the real int8 engine): fp32 after
  structured pruning and real int8 measured (torch.save); fp32 after unstructured pruning modelled sparse storage;
  k-bit fake quantization modelled (k bits per Linear weight plus the scales). MACs are not counted (they depend on
  the sentence length).
"""
from __future__ import annotations

import importlib
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import pandas as pd
import torch
from torch import nn

from .api import prune as prune_sample
from .executor import Executor, InProcess
from .families import family_of, unsupported
from .metrics import modelled_size, serialized_bytes
from .pruning import METHODS, PruneConfig, prune_model, sample_scores
from .quantization import QuantConfig, modelled_bytes, quantize

_sweep = importlib.import_module(".sweep", __package__)  # the module: the package exports the function `sweep`

RATIOS: tuple[float, ...] = _sweep.PRUNE_RATIOS     # 20 prune ratios, 0 .. 0.95
BITS: tuple[int, ...] = _sweep.BITS                 # 7 bit widths: fp32, 16, 8, 6, 4, 3, 2
FP32: int = _sweep.FP32
CALIBRATION: int = _sweep.CALIBRATION  # training examples Taylor scores are computed on
COLUMNS: list[str] = _sweep.COLUMNS
# Real int8 precisions (a real engine, measured), by family: key -> what it is. "k-bit" precisions are fake (simulated).
REAL = {"encoder": {"int8": "real int8 (torch.ao, dynamic, per channel)",
                    "int8+emb": "real int8 (torch.ao, per channel), word embeddings 8-bit too"}}

Piece = tuple[str, str, float]   # (prune kind: "unstructured" or a unit kind, method, prune ratio)


def precision(bits: int) -> str:
    """A bit width as a precision: 32 -> "fp32", k -> "k-bit" (fake quantization)."""
    return str(_sweep.precision(bits))


def precisions(family: str) -> tuple[str, ...]:
    """Every precision a family's grid can build: fp32, its real engines, and fake k-bit grids."""
    return ("fp32", *REAL.get(family, {}), *(_sweep.precision(b) for b in BITS if b != FP32))


def precision_label(p: str) -> str:
    """A precision in words: fp32, the real engine, or 'k-bit fake quant (simulated)'."""
    for real in REAL.values():
        if p in real:
            return real[p]
    return p if p == "fp32" else f"{p} fake quant (simulated)"


def bits_of(p: str) -> int:
    """The weight bits of a precision (32 for fp32, 8 for the real int8 engines)."""
    if p == "fp32":
        return FP32
    m = re.fullmatch(r"(\d+)-bit", p)
    return int(m.group(1)) if m else 8


@dataclass(frozen=True)
class GridConfig:
    """Which points to build: each prune kind by each method at each ratio (ratio 0, the unpruned model, once), each
    at every precision. Kinds are "unstructured" or a family's unit kinds; precisions "fp32", "k-bit" (fake, 1..16)
    or a family's real engine ("int8", "int8+emb")."""

    kinds: tuple[str, ...] = ("unstructured",)
    methods: tuple[str, ...] = ("l1",)
    ratios: tuple[float, ...] = RATIOS
    precisions: tuple[str, ...] = tuple(_sweep.precision(b) for b in BITS)
    scope: str = "layer"             # classifiers: "layer" or "global" ranking
    per_channel: bool = False        # fake quantization: one scale per output channel (else per tensor)

    def __post_init__(self) -> None:
        if not (self.kinds and self.methods and self.ratios and self.precisions):
            raise _sweep.SweepError("the grid is empty: give at least one prune kind, method, ratio and precision")
        for r in self.ratios:
            if not 0.0 <= r < 1.0:
                raise _sweep.SweepError(f"prune ratios must be in [0, 1), got {r}")
        for p in self.precisions:
            if re.fullmatch(r"\d+-bit", p) and not 1 <= bits_of(p) <= 16:
                raise _sweep.SweepError(f"bit widths must be 1..16, or fp32 for no quantization; got {bits_of(p)}")
            if p != "fp32" and not any(p in real for real in REAL.values()) and not re.fullmatch(r"\d+-bit", p):
                raise _sweep.SweepError(f"unknown precision {p!r}; known: fp32, 1-bit .. 16-bit (fake) and the real "
                                        f"engines {', '.join(sorted({k for r in REAL.values() for k in r}))}")

    @property
    def bits(self) -> tuple[int, ...]:
        return tuple(bits_of(p) for p in self.precisions)

    def check(self, family: Any) -> None:
        """A one-line ValueError for what the family cannot build."""
        kinds = ("unstructured", *family.unit_kinds)
        for k in self.kinds:
            if k not in kinds:
                raise unsupported(f"pruning {k!r}", family, kinds)
        for m in self.methods:
            if m not in METHODS:
                raise unsupported(f"pruning method {m!r}", family, list(METHODS))
        real = [p for p in self.precisions if p in {k for r in REAL.values() for k in r}]
        for p in real:
            if p not in REAL.get(family.name, {}):
                raise unsupported(f"the real engine {p!r} in the grid", family, list(REAL.get(family.name, {})))

    def pieces(self) -> list[Piece]:
        """The prune settings, one piece each; ratio 0 (the unpruned model) once, under the first kind and method."""
        return [(k, m, float(r)) for k in self.kinds for m in self.methods for r in self.ratios
                if r or (k, m) == (self.kinds[0], self.methods[0])]


def quant(per_channel: bool) -> QuantConfig:
    """The grid of the fake-quantized rows: symmetric k-bit, one scale per tensor or per output channel."""
    return QuantConfig(per_channel=per_channel)


def scores(sample: Any, method: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """The weight scores of a method on any family's model (pruning.sample_scores: the Pruning lab's)."""
    return sample_scores(sample, method, seed)


def piece(sample: Any, cfg: GridConfig, kind: str, method: str, ratio: float, split: str = "quick",
          method_scores: dict[str, torch.Tensor] | None = None,
          on_point: Callable[[str], None] | None = None) -> pd.DataFrame:
    """One prune setting at every precision of cfg, scored on the family's `split` ("quick": a classifier's test
    split, an encoder's quick set). `method_scores` reuses a classifier method's weight scores (see `scores`)."""
    fam = family_of(sample)
    cfg.check(fam)
    if fam.name == "classifier":
        frame = _sweep.sweep(sample.model, fam.split(sample, split), (ratio,), cfg.bits, (method,),
                             (kind != "unstructured",), cfg.scope, quant(cfg.per_channel),
                             calibration=fam.split(sample, "calibration").head(CALIBRATION),
                             scores=None if method_scores is None else {method: method_scores})
    else:
        frame = _built_rows(sample, fam, cfg, kind, method, ratio, split, on_point, method_scores)
    frame.attrs.update(metric=fam.metric, examples=len(fam.split(sample, split)))
    return frame


def build(sample: Any, kind: str, ratio: float, precision: str, per_channel: bool = True,
          method: str = "l1", method_scores: dict[str, torch.Tensor] | None = None,
          scope: str = "layer") -> tuple[nn.Module, float, str, str]:
    """The real model of one point of a built grid with its size: (model, bytes, "measured" | "modelled", rule)."""
    fam = family_of(sample)
    cfg = PruneConfig(ratio, method, scope, structured=kind != "unstructured",
                      unit=kind if kind != "unstructured" else "channels", norm=2 if kind != "unstructured" else 1)
    pruned = sample.model if not ratio else prune_sample(sample, cfg) if method_scores is None else \
        prune_model(sample.model, cfg, fam, fam.example(sample), scores=method_scores)
    if precision == "fp32":
        if kind == "unstructured" and ratio:
            m = modelled_size(pruned)
            return pruned, m.bytes, "modelled", f"sparse storage ({m.format}): {m.detail}"
        return pruned, float(serialized_bytes(pruned)), "measured", "torch.save of the fp32 model"
    if precision in REAL.get(fam.name, {}):
        from . import text_quant as TQ  # the encoder's real int8 engine
        from .text import MiniLM
        q = TQ.int8_text(cast(MiniLM, pruned), per_channel=True, embeddings=precision == "int8+emb").model
        table = ", word embeddings 8-bit per row" if precision == "int8+emb" else ""
        return q, float(serialized_bytes(q)), "measured", f"torch.save of the int8 model{table} (zeros stored like " \
                                                          "any weight)"
    qc = QuantConfig(bits_of(precision), per_channel=per_channel)
    m = modelled_bytes(pruned, qc, fam.layers(pruned))
    return quantize(pruned, config=qc, layers=fam.layers(pruned)).eval(), m.bytes, "modelled", m.detail


def _built_rows(sample: Any, fam: Any, cfg: GridConfig, kind: str, method: str, ratio: float, split: str,
                on_point: Callable[[str], None] | None,
                method_scores: dict[str, torch.Tensor] | None = None) -> pd.DataFrame:
    """One prune setting's points built as real models and scored (families without a fast sweep path)."""
    scorer, rows = fam.scorer(sample, split), []
    unit = "weights" if kind == "unstructured" else fam.unit_kinds[kind]
    for p in cfg.precisions:
        net, size, how, rule = build(sample, kind, ratio, p, cfg.per_channel, method, method_scores, cfg.scope)
        sc = scorer(net)
        layers = fam.layers(net) if p == "fp32" or p not in REAL.get(fam.name, {}) else {}
        rows.append(dict(config=_sweep.label(method, ratio, unit, p), prune="none" if not ratio else kind,
                         method=method, structured=kind != "unstructured", scope=cfg.scope, prune_ratio=ratio,
                         precision=p, bits=bits_of(p), score=sc.value, size_bytes=size, size_label=how, size_rule=rule,
                         params=sum(t.numel() for t in net.parameters()),
                         nonzeros=sum(int(torch.count_nonzero(m.weight)) for m in layers.values()) if layers else 0,
                         macs=math.nan, latency_ms=math.nan, latency_label="not timed: time a point on its own",
                         note="MACs not counted: they depend on the sentence length", detail=sc.detail))
        if on_point is not None:
            on_point(rows[-1]["config"])
    return pd.DataFrame(rows, columns=COLUMNS)


def combine(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The pieces' rows as one table (columns of COLUMNS)."""
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    frame = pd.concat(frames, ignore_index=True)
    frame.attrs.update({k: frames[0].attrs.get(k) for k in ("metric", "examples")})
    return frame


def _piece(shared: tuple[Any, ...], p: Piece) -> tuple[pd.DataFrame, float]:
    """One piece of a grid where an executor runs it (this process or a cluster's worker), with its seconds."""
    sample, cfg, split, scored = shared
    t0 = time.perf_counter()
    frame = piece(sample, cfg, *p, split=split, method_scores=scored.get(p[1]))
    return frame, time.perf_counter() - t0


def pieces(sample: Any, cfg: GridConfig, todo: Sequence[Piece] | None = None, split: str = "quick",
           method_scores: Mapping[str, dict[str, torch.Tensor] | None] | None = None,
           executor: Executor | None = None,
           on_piece: Callable[[Piece, pd.DataFrame, float], None] | None = None,
           tick: Callable[[], None] | None = None) -> list[pd.DataFrame]:
    """Pieces of the grid (default: all of them, cfg.pieces()) computed by `executor` (default: this process), in
    the order of `todo`; `on_piece(piece, frame, seconds)` is called as each one is finished, in the order they
    finish, and `tick()` while a cluster computes and nothing has finished for a while. Weight scores are computed
    once here (or given, by method) and shared by every piece."""
    fam = family_of(sample)
    cfg.check(fam)
    todo = list(cfg.pieces() if todo is None else todo)
    scored = dict(method_scores or {})
    scored.update({m: scores(sample, m) for m in {p[1] for p in todo} if m not in scored})

    def done(i: int, result: tuple[pd.DataFrame, float]) -> None:
        if on_piece is not None:
            on_piece(todo[i], *result)

    return [f for f, _ in (executor or InProcess()).map(_piece, (sample, cfg, split, scored), todo, done, tick)]


def grid(sample: Any, cfg: GridConfig = GridConfig(), split: str = "quick",
         on_progress: Callable[[int, int], None] | None = None, executor: Executor | None = None) -> pd.DataFrame:
    """The whole grid of any family, piece by piece (in this process, or on a cluster: `executor`), reporting
    (done, total) pieces as they finish."""
    total, count = len(cfg.pieces()), 0

    def tick(_p: Piece, _frame: pd.DataFrame, _seconds: float) -> None:
        nonlocal count
        count += 1
        if on_progress is not None:
            on_progress(count, total)

    return combine(pieces(sample, cfg, split=split, executor=executor, on_piece=tick))


def check_timing(family: Any) -> None:
    """A one-line ValueError when a family's grid cannot be timed as a whole (encoders: one point at a time, each
    timing of the 90 MB encoder takes seconds)."""
    if family.name != "classifier":
        raise unsupported("timing a whole grid", family, ["classifiers (time one point at a time)"])


def latencies(sample: Any, frame: pd.DataFrame,
              method_scores: Mapping[str, dict[str, torch.Tensor] | None] | None = None
              ) -> dict[str, tuple[float, str]]:
    """Latency at batch 256 of every real fp32 model of a classifier's grid (masked or channel-pruned), rebuilt and
    timed round-robin: {configuration name: (median ms, label)}. Encoders time one point at a time."""
    check_timing(family_of(sample))
    fp32 = frame[(frame.bits == FP32) & frame.score.notna()].reset_index(drop=True)
    timed = _sweep.time_rows(sample.model, sample.data, fp32, scores=method_scores)
    return {r.config: (r.latency_ms, r.latency_label) for r in timed.itertuples()}


def with_latency(frame: pd.DataFrame, timed: dict[str, tuple[float, str]] | None) -> pd.DataFrame:
    """The frame with the measured latencies filled in (k-bit rows keep their reason for having none)."""
    if not timed:
        return frame
    out = frame.copy()
    hit = out.config.isin(timed)
    out.loc[hit, "latency_ms"] = [timed[c][0] for c in out.config[hit]]
    out.loc[hit, "latency_label"] = [timed[c][1] for c in out.config[hit]]
    return out


def csv(frame: pd.DataFrame) -> bytes:
    """The raw grid rows as CSV (sizes in bytes, the score as the family writes it, labels beside the numbers; the
    detail records left out)."""
    text: str = frame.drop(columns=["detail"], errors="ignore").to_csv(index=False)
    return text.encode()


__all__ = ["RATIOS", "BITS", "FP32", "CALIBRATION", "COLUMNS", "REAL", "GridConfig", "check_timing", "precision",
           "precisions",
           "precision_label", "bits_of", "quant", "scores", "piece", "pieces", "build", "combine", "grid", "latencies",
           "with_latency", "csv"]
