"""Pruning the text encoder (minilm): single weights by magnitude, or whole FFN neurons or attention heads for real.

Three kinds, each applied per layer at one ratio:
- "unstructured": in each of the 36 encoder Linear layers, the `ratio` fraction of weights with the smallest |w| is
  set to zero (biases kept). The tensors keep their shape: dense kernels multiply the zeros too.
- "ffn": in each transformer layer, the `ratio` fraction of FFN neurons with the lowest importance is removed: its
  row of intermediate.dense and its column of output.dense go, so both Linear layers really shrink.
- "heads": in each transformer layer, round(ratio x 12) attention heads are removed: their 32 rows of query, key and
  value and their 32 columns of attention.output.dense go.

A unit's importance is the L2 norm of every weight that computes it or reads it (neuron: its in-row and out-column;
head: its q/k/v rows and attention-output columns). `plan` decides what goes, `apply` builds the new encoder, never
touching the given one; `evaluate` measures it against the original's embeddings.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from . import text as T
from .metrics import ModelledSize, modelled_size, serialized_bytes
from .pruning import lowest

KINDS = {"unstructured": "unstructured L1 (single weights)", "ffn": "FFN neurons (structured)",
         "heads": "attention heads (structured)"}
UNIT = {"ffn": "FFN neurons", "heads": "attention heads"}

Masks = dict[str, torch.Tensor]


@dataclass(frozen=True)
class TextPruneConfig:
    """What to prune in the text encoder. Plain data: it survives JSON, URLs and session state."""

    ratio: float = 0.3            # fraction removed in every layer: of each Linear's weights, or of its neurons/heads
    kind: str = "unstructured"    # see KINDS

    def __post_init__(self) -> None:
        if isinstance(self.ratio, bool) or not isinstance(self.ratio, (int, float)) or not 0.0 <= self.ratio < 1.0:
            raise ValueError(f"prune ratio must be a number in [0, 1), got {self.ratio!r}")
        if self.kind not in KINDS:
            raise ValueError(f"unknown text pruning kind {self.kind!r}; known: {', '.join(KINDS)}")

    @property
    def structured(self) -> bool:
        return self.kind != "unstructured"


# ---------------------------------------------------------------------------------------------------- importance

def neuron_scores(model: T.MiniLM) -> list[torch.Tensor]:
    """Per transformer layer, one score per FFN neuron: the L2 norm of its intermediate.dense row and its
    output.dense column together."""
    return [(l.intermediate.dense.weight.detach().pow(2).sum(1) + l.output.dense.weight.detach().pow(2).sum(0)).sqrt()
            for l in model.encoder.layer]


def head_scores(model: T.MiniLM) -> list[torch.Tensor]:
    """Per transformer layer, one score per attention head: the L2 norm of its 32 query, key and value rows and its
    32 attention-output columns together."""
    out = []
    for l in model.encoder.layer:
        a = l.attention
        rows = sum(m.weight.detach().pow(2).sum(1) for m in (a.self.query, a.self.key, a.self.value))
        per_dim = rows + a.output.dense.weight.detach().pow(2).sum(0)
        out.append(per_dim.view(-1, T.HEAD_DIM).sum(1).sqrt())
    return out


def _keep_top(scores: torch.Tensor, ratio: float) -> torch.Tensor:
    """Indices (ascending) of the n - round(ratio x n) highest scores."""
    n = scores.numel()
    kept = torch.topk(scores, n - round(ratio * n), largest=True).indices
    return kept.sort().values


# ------------------------------------------------------------------------------------------------------ the plan

def sorted_magnitudes(model: T.MiniLM) -> dict[str, np.ndarray]:
    """Each encoder Linear layer's |w| sorted ascending: computed once, it makes unstructured masks at any ratio cheap."""
    return {n: np.sort(m.weight.detach().abs().reshape(-1).numpy()) for n, m in T.linear_layers(model).items()}


def _magnitude_mask(w: torch.Tensor, ratio: float, order: np.ndarray | None) -> tuple[torch.Tensor, float]:
    """Keep-mask removing the round(ratio x n) smallest |w| of a layer (pruning.lowest's rule, as
    torch.nn.utils.prune.l1_unstructured counts them), and the cut: the largest |w| removed (0 if none). The sorted
    magnitudes give both without a partition."""
    a = w.detach().abs()
    k = round(ratio * a.numel())
    if k == 0:
        return torch.ones(a.shape, dtype=torch.bool), 0.0
    if order is not None:
        cut = float(order[k - 1])
        keep = a > cut
        if a.numel() - int(keep.sum()) == k:   # no tie at the cut: exactly the k smallest go
            return keep, cut
        return lowest(a, ratio), cut            # ties at the cut: as many as needed go, in index order
    keep = lowest(a, ratio)
    return keep, float(a[~keep].max())


@dataclass(frozen=True)
class PrunePlan:
    """What a configuration removes from an encoder. `masks` are keep-masks (True = kept) on the ORIGINAL weight
    shapes of the 36 Linear layers, for every kind (structured: whole rows and columns); `keep` lists, per
    transformer layer, the heads or FFN neurons kept (structured only); `removed` is the fraction removed per Linear
    layer (unstructured) or per transformer layer (structured)."""

    cfg: TextPruneConfig
    masks: Masks = field(repr=False)
    keep: tuple[torch.Tensor, ...] = field(repr=False)
    removed: dict[str, float]
    thresholds: dict[str, float] = field(default_factory=dict)   # unstructured: the largest |w| removed per layer
    notes: tuple[str, ...] = ()


def _structured_masks(model: T.MiniLM, kind: str, keep: list[torch.Tensor]) -> Masks:
    """Keep-masks on the original shapes that removing the kept-complement of heads or neurons amounts to."""
    out: Masks = {}
    for i, (layer, kept) in enumerate(zip(model.encoder.layer, keep)):
        p = f"encoder.layer.{i}."
        if kind == "ffn":
            unit = torch.zeros(layer.intermediate.dense.out_features, dtype=torch.bool)
            unit[kept] = True
            out[p + "intermediate.dense"] = unit[:, None].expand_as(layer.intermediate.dense.weight).clone()
            out[p + "output.dense"] = unit[None, :].expand_as(layer.output.dense.weight).clone()
        else:
            heads = layer.attention.self.query.out_features // T.HEAD_DIM
            unit = torch.zeros(heads, dtype=torch.bool)
            unit[kept] = True
            dims = unit.repeat_interleave(T.HEAD_DIM)
            for m in ("query", "key", "value"):
                w = getattr(layer.attention.self, m).weight
                out[p + f"attention.self.{m}"] = dims[:, None].expand_as(w).clone()
            out[p + "attention.output.dense"] = dims[None, :].expand_as(layer.attention.output.dense.weight).clone()
    for n, m in T.linear_layers(model).items():
        out.setdefault(n, torch.ones(m.weight.shape, dtype=torch.bool))
    return {n: out[n] for n in T.linear_layers(model)}


def plan(model: T.MiniLM, cfg: TextPruneConfig, order: dict[str, np.ndarray] | None = None) -> PrunePlan:
    """Decide what `cfg` removes from `model` (pass `order` = sorted_magnitudes(model) to reuse it across ratios)."""
    if cfg.kind == "unstructured":
        masks, removed, cut = {}, {}, {}
        for n, m in T.linear_layers(model).items():
            masks[n], cut[n] = _magnitude_mask(m.weight, cfg.ratio, order.get(n) if order else None)
            removed[n] = round(cfg.ratio * m.weight.numel()) / m.weight.numel()   # exactly that many go
        return PrunePlan(cfg, masks, (), removed, cut)
    scores = neuron_scores(model) if cfg.kind == "ffn" else head_scores(model)
    keep = [_keep_top(s, cfg.ratio) for s in scores]
    removed = {f"layer {i}": 1.0 - k.numel() / s.numel() for i, (k, s) in enumerate(zip(keep, scores))}
    notes = ()
    if any(k.numel() == 0 for k in keep):
        notes = ((f"At this ratio every {'attention head' if cfg.kind == 'heads' else 'FFN neuron'} of every layer is "
                  f"removed: the {'attention' if cfg.kind == 'heads' else 'feed-forward network'} of each layer adds "
                  "only its output bias, whatever the sentence. Lower the ratio to keep at least one."),)
    return PrunePlan(cfg, _structured_masks(model, cfg.kind, keep), tuple(keep), removed, {}, notes)


# ------------------------------------------------------------------------------------------------------ building

def build(like: T.MiniLM, state: dict[str, torch.Tensor]) -> T.MiniLM:
    """An encoder shaped by `state` (every parameter, by name), eval mode, frozen. It copies `like`'s modules but none
    of its tensors (no random initialisation either: that alone costs more than pruning), then sets each parameter
    to the given tensor, so the result shares nothing with `like`."""
    names = {k for k, _ in like.named_parameters()}
    if set(state) != names:
        raise KeyError(f"a state for this encoder needs exactly its parameters; differs at "
                       f"{', '.join(sorted(set(state) ^ names)[:3])}")
    out = copy.deepcopy(like, memo={id(t): None for t in like.parameters()})   # the modules only
    for k, v in state.items():
        module, _, attr = k.rpartition(".")
        setattr(out.get_submodule(module), attr, nn.Parameter(v, requires_grad=False))
    for m in T.linear_layers(out).values():
        m.out_features, m.in_features = m.weight.shape
    return out.eval()


def apply(model: T.MiniLM, p: PrunePlan) -> T.MiniLM:
    """The pruned encoder as a new model (every tensor a new copy; `model` is not touched): unstructured, a dense
    copy with the removed weights at zero; structured, a thinner encoder with smaller Linear layers."""
    old = {k: v.detach() for k, v in model.state_dict().items()}
    new: dict[str, torch.Tensor] = {}
    if p.cfg.kind == "unstructured":
        new = {f"{n}.weight": old[f"{n}.weight"] * m for n, m in p.masks.items()}
    for i, kept in enumerate(p.keep):
        pre = f"encoder.layer.{i}."
        if p.cfg.kind == "ffn":
            rows = ("intermediate.dense.weight", "intermediate.dense.bias")
            columns = ("output.dense.weight",)
        else:
            kept = (kept[:, None] * T.HEAD_DIM + torch.arange(T.HEAD_DIM)).reshape(-1)   # the heads' dimensions
            rows = tuple(f"attention.self.{m}.{k}" for m in ("query", "key", "value") for k in ("weight", "bias"))
            columns = ("attention.output.dense.weight",)
        new |= {pre + k: old[pre + k][kept] for k in rows} | {pre + k: old[pre + k][:, kept] for k in columns}
    return build(model, {k: new[k] if k in new else v.clone() for k, v in old.items()})


def prune_text(model: T.MiniLM, cfg: TextPruneConfig, order: dict[str, np.ndarray] | None = None) -> T.MiniLM:
    """A pruned copy of the encoder (the given one is never changed)."""
    return apply(model, plan(model, cfg, order))


# --------------------------------------------------------------------------------------------------- measurement

@dataclass(frozen=True)
class TextPruneReport:
    """A pruned encoder's figures: quality measured against the original's embeddings, sizes measured (serialized)
    or modelled (sparse storage, unstructured only)."""

    cfg: TextPruneConfig
    quality: T.TextQuality
    params: int                       # parameters of the pruned model (structured: fewer; unstructured: the same)
    nonzeros: int
    size_bytes: int                   # measured: torch.save of the pruned model (unstructured: dense tensors, zeros kept)
    sparse: ModelledSize | None       # modelled: sparse storage of the masked model (unstructured only)
    shape: dict[str, list[int]]       # heads and FFN neurons per transformer layer
    removed: dict[str, float]         # fraction removed per Linear layer (unstructured) or per transformer layer
    thresholds: dict[str, float]      # unstructured: the magnitude cut per Linear layer
    notes: tuple[str, ...]

    @property
    def thin(self) -> bool:
        """True when units were really removed (the model is smaller), False for masked (dense) weights."""
        return self.cfg.structured


def measure(pruned: T.MiniLM, p: PrunePlan, quality: T.TextQuality) -> TextPruneReport:
    """The report of a pruned encoder whose quality is already measured."""
    params = sum(t.numel() for t in pruned.parameters())
    nonzeros = sum(int(torch.count_nonzero(t)) for t in pruned.parameters())
    sparse = modelled_size(pruned) if p.cfg.kind == "unstructured" else None
    return TextPruneReport(p.cfg, quality, params, nonzeros, serialized_bytes(pruned), sparse, pruned.shape(),
                           dict(p.removed), dict(p.thresholds), p.notes)


def evaluate(model: T.MiniLM, cfg: TextPruneConfig, split: T.TextSplit, reference: torch.Tensor,
             order: dict[str, np.ndarray] | None = None) -> tuple[TextPruneReport, T.MiniLM, PrunePlan]:
    """Prune, embed the split, and compare with the original's embeddings of it (`reference`)."""
    p = plan(model, cfg, order)
    pruned = apply(model, p)
    return measure(pruned, p, T.evaluate(pruned, split, reference)), pruned, p


def quality_curve(model: T.MiniLM, kind: str, split: T.TextSplit, reference: torch.Tensor,
                  ratios: tuple[float, ...], order: dict[str, np.ndarray] | None = None) -> list[T.TextQuality]:
    """One-shot quality at each ratio for one kind (ratio 0 is the original itself: no need to embed it again)."""
    out = []
    for r in ratios:
        if r == 0:
            out.append(T.quality(reference, reference, split))
        else:
            out.append(T.evaluate(prune_text(model, TextPruneConfig(r, kind), order), split, reference))
    return out


def evaluate_in_parts(model: T.MiniLM, split: T.TextSplit, reference: torch.Tensor, parts: int = 4,
                      on_part: Callable[[int, int], None] | None = None) -> T.TextQuality:
    """T.evaluate on a large split, embedded in `parts` consecutive chunks so a page can show progress."""
    bounds = [round(i * len(split) / parts) for i in range(parts + 1)]
    chunks = []
    for i, (a, b) in enumerate(zip(bounds, bounds[1:])):
        part = T.TextSplit(split.texts[a:b], split.ids[a:b], split.topics[a:b], split.groups[a:b], ())
        chunks.append(T.embed(model, part) if b > a else torch.empty(0, reference.shape[1]))
        if on_part:
            on_part(i + 1, parts)
    return T.quality(torch.cat(chunks), reference, split)


def thin_parameters(shape: dict[str, list[int]], vocab: int = 30522, hidden: int = 384, positions: int = 512) -> int:
    """Parameters of an encoder of a given shape, by arithmetic (embedding tables, then per layer: q/k/v and the
    attention output, the FFN in and out, two LayerNorms)."""
    total = (vocab + positions + 2) * hidden + 2 * hidden
    for h, f in zip(shape["heads"], shape["ffn"]):
        d = h * T.HEAD_DIM
        total += 3 * (hidden * d + d) + (d * hidden + hidden) + (hidden * f + f) + (f * hidden + hidden) + 4 * hidden
    return total


__all__ = ["KINDS", "UNIT", "TextPruneConfig", "neuron_scores", "head_scores", "sorted_magnitudes", "PrunePlan", "plan",
           "build", "apply", "prune_text", "TextPruneReport", "measure", "evaluate", "quality_curve",
           "evaluate_in_parts", "thin_parameters"]
