"""Pruning the sentence encoder (minilm): what differs from a classifier's pruning, and nothing more.

The encoder takes the one PruneConfig (slimcore.pruning) and is pruned by pruning.evaluate / quality_curve like any
model; this module holds the two things only an encoder has, which its family (families.SentenceEncoder) exposes:
- how structured units are scored and masked: the `amount` fraction of FFN neurons (unit "ffn") or of attention
  heads (unit "heads") with the lowest L1/L2 norm of the scores of every weight that computes or reads them
  (neuron: its intermediate.dense row and output.dense column; head: its q/k/v rows and attention-output columns)
  go, in each transformer layer or ranked over all of them; the masks are whole rows and columns on the original
  shapes. The weight scores are pruning.weight_scores of any method (L1 |w|, random, Taylor on the paraphrase loss);
- how those units are removed for real: sliced out of the Linear layers, so the encoder really shrinks.
Unstructured pruning is the classifiers' rule (pruning.masks: any method and scope, skips and overrides).
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from typing import cast

import torch
from torch import nn

from . import text as T
from .families import get, unsupported
from .pruning import Masks, PruneConfig, apply_masks, weight_scores
from .pruning import masks as weight_masks

KINDS = {"unstructured": "single weights (unstructured)", "ffn": "FFN neurons (structured)",
         "heads": "attention heads (structured)"}   # the Pruning page's "What to remove" on an encoder
UNIT = get("encoder").unit_kinds   # the units structured pruning removes, in words ({"heads": "attention heads", ...})


def config(amount: float, kind: str = "unstructured") -> PruneConfig:
    """The PruneConfig of one of KINDS at a ratio: structured kinds are units scored by their L2 norm."""
    if kind not in KINDS:
        raise ValueError(f"unknown text pruning kind {kind!r}; known: {', '.join(KINDS)}")
    if isinstance(amount, bool) or not isinstance(amount, (int, float)):
        raise ValueError(f"prune ratio must be a number in [0, 1), got {amount!r}")
    return PruneConfig(amount, structured=kind != "unstructured", unit=kind, norm=2)


def kind(cfg: PruneConfig) -> str:
    """Which of KINDS a config is."""
    return cfg.unit if cfg.structured else "unstructured"


def check(cfg: PruneConfig) -> None:
    """Refuse, in one line, what the encoder family does not support."""
    fam = get("encoder")
    if cfg.structured and cfg.unit not in fam.unit_kinds:
        raise unsupported(f"structured pruning of {cfg.unit!r}", fam, list(fam.unit_kinds))
    if cfg.structured and (cfg.skip or cfg.overrides):
        raise unsupported("skipped or overridden Linear layers when removing heads or FFN neurons", fam,
                          ["skips and overrides with single weights (unstructured)"])


# ---------------------------------------------------------------------------------------------------- importance

def _power(s: torch.Tensor, norm: int) -> torch.Tensor:
    return s.pow(2) if norm == 2 else s.abs()


def _root(s: torch.Tensor, norm: int) -> torch.Tensor:
    return s.sqrt() if norm == 2 else s


def neuron_scores(model: T.MiniLM, scores: dict[str, torch.Tensor] | None = None, norm: int = 2) -> list[torch.Tensor]:
    """Per transformer layer, one score per FFN neuron: the L1 or L2 norm of the scores of its intermediate.dense row
    and its output.dense column together (scores: pruning.weight_scores; default |w|, so L2 is the weights' norm)."""
    scores = scores if scores is not None else weight_scores(model, "l1", family=get("encoder"))
    out = []
    for i in range(len(model.encoder.layer)):
        p = f"encoder.layer.{i}."
        rows, cols = scores[p + "intermediate.dense"], scores[p + "output.dense"]
        out.append(_root(_power(rows, norm).sum(1) + _power(cols, norm).sum(0), norm))
    return out


def head_scores(model: T.MiniLM, scores: dict[str, torch.Tensor] | None = None, norm: int = 2) -> list[torch.Tensor]:
    """Per transformer layer, one score per attention head: the L1 or L2 norm of the scores of its query, key and
    value rows and its attention-output columns together."""
    scores = scores if scores is not None else weight_scores(model, "l1", family=get("encoder"))
    out = []
    for i in range(len(model.encoder.layer)):
        p = f"encoder.layer.{i}.attention."
        rows = sum(_power(scores[p + f"self.{m}"], norm).sum(1) for m in ("query", "key", "value"))
        per_dim = rows + _power(scores[p + "output.dense"], norm).sum(0)
        out.append(_root(per_dim.view(-1, model.head_dim).sum(1), norm))
    return out


def _keep_top(scores: torch.Tensor, ratio: float) -> torch.Tensor:
    """Indices (ascending) of the n - round(ratio x n) highest scores."""
    n = scores.numel()
    kept = torch.topk(scores, n - round(ratio * n), largest=True).indices
    return kept.sort().values


def _keep_global(scores: list[torch.Tensor], ratio: float) -> list[torch.Tensor]:
    """One ranking over the units of every layer (units of a kind have the same size, so their norms compare):
    round(ratio x all) of the lowest go, but each layer keeps its best unit (a layer without heads or neurons
    would be no layer). Indices ascending, per layer."""
    best = torch.cat([torch.arange(s.numel()) == s.argmax() for s in scores])   # never ranked among those to go
    order = torch.argsort(torch.cat(scores).masked_fill(best, float("inf")), stable=True)
    keep = torch.ones(best.numel(), dtype=torch.bool)
    keep[order[:min(round(ratio * best.numel()), best.numel() - len(scores))]] = False
    return [k.nonzero().flatten() for k in torch.split(keep, [s.numel() for s in scores])]


# --------------------------------------------------------------------------------------------------------- masks

def _linear(m: nn.Module) -> nn.Linear:
    """One of T.linear_layers (typed as plain Modules)."""
    return cast(nn.Linear, m)


def _unit_masks(model: T.MiniLM, unit: str, keep: list[torch.Tensor]) -> Masks:
    """Keep-masks on the original shapes that keeping only these heads or neurons amounts to."""
    out: Masks = {}
    for i, (module, kept) in enumerate(zip(model.encoder.layer, keep)):
        layer = cast(T.Layer, module)   # a ModuleList yields plain Modules
        p = f"encoder.layer.{i}."
        if unit == "ffn":
            mask = torch.zeros(layer.intermediate.dense.out_features, dtype=torch.bool)
            mask[kept] = True
            out[p + "intermediate.dense"] = mask[:, None].expand_as(layer.intermediate.dense.weight).clone()
            out[p + "output.dense"] = mask[None, :].expand_as(layer.output.dense.weight).clone()
        else:
            mask = torch.zeros(layer.attention.self.query.out_features // model.head_dim, dtype=torch.bool)
            mask[kept] = True
            dims = mask.repeat_interleave(model.head_dim)
            for m in ("query", "key", "value"):
                w = getattr(layer.attention.self, m).weight
                out[p + f"attention.self.{m}"] = dims[:, None].expand_as(w).clone()
            out[p + "attention.output.dense"] = dims[None, :].expand_as(layer.attention.output.dense.weight).clone()
    layers = T.linear_layers(model)
    return {n: out[n] if n in out else torch.ones(_linear(m).weight.shape, dtype=torch.bool) for n, m in layers.items()}


def masks(model: T.MiniLM, cfg: PruneConfig, scores: dict[str, torch.Tensor] | None = None) -> Masks:
    """Keep-masks (True = kept) on every encoder Linear layer from weight scores (pruning.weight_scores of cfg.method;
    default |w|): unstructured, pruning.masks' own rule (per layer or global, skips, overrides); structured, the whole
    rows and columns of the heads or FFN neurons whose scores' L1/L2 norm (cfg.norm) is lowest, in each transformer
    layer (scope "layer") or over all of them (scope "global", each layer keeping its best unit)."""
    check(cfg)
    if scores is None and (cfg.method != "l1" or not cfg.structured):
        scores = weight_scores(model, cfg.method, None, cfg.seed, family=get("encoder"))
    if not cfg.structured:
        return weight_masks(model, cfg, scores=scores)
    unit_scores = (neuron_scores if cfg.unit == "ffn" else head_scores)(model, scores, cfg.norm)
    kept = [_keep_top(s, cfg.amount) for s in unit_scores] if cfg.scope == "layer" else \
        _keep_global(unit_scores, cfg.amount)
    return _unit_masks(model, cfg.unit, kept)


def kept_units(model: T.MiniLM, unit: str, keep: Masks) -> list[torch.Tensor]:
    """Per transformer layer, the indices (ascending) of the heads or FFN neurons that keep-masks keep."""
    out = []
    for i in range(len(model.encoder.layer)):
        if unit == "ffn":
            out.append(keep[f"encoder.layer.{i}.intermediate.dense"].any(1).nonzero().flatten())
        else:
            dims = keep[f"encoder.layer.{i}.attention.self.query"].any(1)
            out.append(dims.view(-1, model.head_dim).any(1).nonzero().flatten())
    return out


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
        lin = _linear(m)
        lin.out_features, lin.in_features = lin.weight.shape
    return out.eval()


def remove_units(model: T.MiniLM, unit: str, keep: Masks) -> T.MiniLM:
    """A new, thinner encoder without the heads or FFN neurons that keep-masks drop: their rows of q/k/v (or of
    intermediate.dense) and their columns of attention.output.dense (or of output.dense) are sliced out."""
    old = {k: v.detach() for k, v in model.state_dict().items()}
    new: dict[str, torch.Tensor] = {}
    for i, kept in enumerate(kept_units(model, unit, keep)):
        pre = f"encoder.layer.{i}."
        if unit == "ffn":
            rows: tuple[str, ...] = ("intermediate.dense.weight", "intermediate.dense.bias")
            columns = ("output.dense.weight",)
        else:
            d = model.head_dim
            kept = (kept[:, None] * d + torch.arange(d)).reshape(-1)   # the heads' dimensions
            rows = tuple(f"attention.self.{m}.{k}" for m in ("query", "key", "value") for k in ("weight", "bias"))
            columns = ("attention.output.dense.weight",)
        new |= {pre + k: old[pre + k][kept] for k in rows} | {pre + k: old[pre + k][:, kept] for k in columns}
    return build(model, {k: new[k] if k in new else v.clone() for k, v in old.items()})


def prune_text(model: T.MiniLM, cfg: PruneConfig) -> T.MiniLM:
    """A pruned copy of the encoder (the given one is never changed): masked (unstructured) or thinner (units)."""
    keep = masks(model, cfg)
    return remove_units(model, cfg.unit, keep) if cfg.structured else _encoder(apply_masks(model, keep))


def _encoder(m: nn.Module) -> T.MiniLM:
    """A copy of an encoder, typed as one (pruning.apply_masks returns a deep copy of the model it is given)."""
    return cast(T.MiniLM, m)


# --------------------------------------------------------------------------------------------------- measurement

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


def thin_parameters(shape: dict[str, list[int]], vocab: int = 30522, hidden: int = 384, positions: int = 512,
                    head_dim: int = T.HEAD_DIM, type_vocab: int = 2) -> int:
    """Parameters of an encoder of a given shape, by arithmetic (embedding tables, then per layer: q/k/v and the
    attention output, the FFN in and out, two LayerNorms). The size defaults are minilm's."""
    total = (vocab + positions + type_vocab) * hidden + 2 * hidden
    for h, f in zip(shape["heads"], shape["ffn"]):
        d = h * head_dim
        total += 3 * (hidden * d + d) + (d * hidden + hidden) + (hidden * f + f) + (f * hidden + hidden) + 4 * hidden
    return total


__all__ = ["KINDS", "UNIT", "config", "kind", "check", "neuron_scores", "head_scores", "masks", "kept_units", "build",
           "remove_units", "prune_text", "evaluate_in_parts", "thin_parameters"]
