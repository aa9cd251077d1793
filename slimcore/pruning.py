"""Pruning: score weights, choose what to remove (masks), and build the pruned model. Never mutates its input.

Unstructured pruning zeroes single weights: the tensors keep their shape, so dense kernels do the same work.
Structured pruning removes whole output channels (conv filters, neurons) and, with them, the matching inputs of the
next layer: the model really gets smaller. Masks are boolean tensors shaped like the weights, True = kept.
"""
from __future__ import annotations

import copy
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, cast

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from .data import Split
from .families import Family, Score, Scorer, Tuning, family_of, get
from .families.classifier import accuracy_scorer
from .metrics import ModelledSize, modelled_size, serialized_bytes, weight_layers

METHODS = {"l1": "L1 magnitude |w|", "random": "random (seeded)", "taylor": "first-order Taylor |w · ∂L/∂w|"}
SCOPES = {"layer": "per layer", "global": "global"}
SHORT = {"l1": "L1", "random": "random", "taylor": "Taylor"}   # the methods in a chart title
CALIBRATION = 256   # training examples that Taylor importance is computed on (the labs, sweeps and recipes alike)

Masks = dict[str, torch.Tensor]


@dataclass(frozen=True)
class PruneConfig:
    """What to prune and how. Plain data: it survives JSON, URLs and session state."""

    amount: float = 0.5              # fraction removed: of weights (unstructured) or of output channels (structured)
    method: str = "l1"               # how weights are scored: see METHODS
    scope: str = "layer"             # "layer": each layer loses `amount`; "global": one ranking across all layers
    structured: bool = False         # remove whole output channels / neurons instead of single weights
    norm: int = 1                    # structured: a channel's score is the L1 or L2 norm of its weights' scores
    skip: tuple[str, ...] = ()       # layers left untouched
    overrides: tuple[tuple[str, float], ...] = ()  # (layer, amount) pairs pruned at their own ratio
    seed: int = 0                    # for "random"
    unit: str = "channels"           # structured: the kind of unit removed (a family's unit_kinds: channels;
                                     # heads, ffn)

    def __post_init__(self) -> None:
        if not 0.0 <= self.amount < 1.0:
            raise ValueError(f"prune ratio must be in [0, 1), got {self.amount}")
        if self.method not in METHODS:
            raise ValueError(f"unknown pruning method {self.method!r}; known: {', '.join(METHODS)}")
        if self.scope not in SCOPES:
            raise ValueError(f"unknown scope {self.scope!r}; known: {', '.join(SCOPES)}")
        if self.norm not in (1, 2):
            raise ValueError(f"structured norm must be 1 or 2, got {self.norm}")
        for layer, amount in self.overrides:
            if not 0.0 <= amount < 1.0:
                raise ValueError(f"prune ratio for {layer} must be in [0, 1), got {amount}")


def _weight(layer: nn.Module) -> torch.Tensor:
    """A compressible layer's weight (Family.layers: Linear/Conv layers; nn.Module's attribute lookup types it as a
    tensor or a submodule)."""
    return cast(torch.Tensor, layer.weight)


def _bias(layer: nn.Module) -> torch.Tensor | None:
    """A compressible layer's bias, None when it has none."""
    return cast("torch.Tensor | None", layer.bias)


def weight_scores(model: nn.Module, method: str, calibration: Split | None = None, seed: int = 0,
                  family: Family | None = None) -> dict[str, torch.Tensor]:
    """Importance of every weight of the family's compressible layers (higher = more important), shaped like the
    weights. `family` (default: classifiers) gives the layers and, for "taylor", the loss differentiated on the
    `calibration` batch (Family.importance_loss)."""
    family = family if family is not None else get("classifier")
    layers = family.layers(model)
    if method == "l1":
        return {n: _weight(m).detach().abs() for n, m in layers.items()}
    if method == "random":
        gen = torch.Generator().manual_seed(seed)
        return {n: torch.rand(_weight(m).shape, generator=gen) for n, m in layers.items()}
    if method == "taylor":
        if calibration is None or len(calibration) == 0:
            raise ValueError("Taylor importance needs a calibration batch")
        loss = family.importance_loss(calibration)
        net = copy.deepcopy(model)  # functional_call swaps tensors into the module it runs: never the shared one
        params = {k: v.detach().requires_grad_(True) for k, v in net.named_parameters()}
        buffers = dict(net.named_buffers())
        # The loss only calls its model: a functional call of the private copy stands in for it.
        value = loss(lambda *x: functional_call(net, (params, buffers), x))  # type: ignore[arg-type]
        names = [f"{n}.weight" for n in layers]
        grads = torch.autograd.grad(value, [params[k] for k in names])
        return {n: (params[k].detach() * g).abs() for n, k, g in zip(layers, names, grads)}
    raise ValueError(f"unknown pruning method {method!r}; known: {', '.join(METHODS)}")


def calibration_batch(sample: Any, method: str) -> Any:
    """The batch a method's weight scores need on a loaded sample of any family: Taylor, the first CALIBRATION
    examples of the family's calibration split (in the family's split type, Family.split); the other methods none."""
    if method != "taylor":
        return None
    fam = family_of(sample)
    return fam.split(sample, "calibration").head(CALIBRATION)


def sample_scores(sample: Any, method: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """weight_scores of a loaded sample's model with its family's layers and loss (the Pruning lab's, the grid's,
    the sensitivity scan's and the allocation's)."""
    return weight_scores(sample.model, method, calibration_batch(sample, method), seed, family=family_of(sample))


def lowest(scores: torch.Tensor, amount: float) -> torch.Tensor:
    """Keep-mask removing the round(amount * n) lowest scores, as torch.nn.utils.prune's L1Unstructured counts them.
    The cut is found by a linear-time partition (np.partition) instead of a top-k sort; ties at the cut go in index
    order."""
    flat = scores.detach().reshape(-1).numpy()
    k = round(amount * flat.size)
    if k == 0:
        return torch.ones(scores.shape, dtype=torch.bool)
    cut = np.partition(flat, k - 1)[k - 1]   # the k-th smallest score
    keep = flat > cut
    ties = np.flatnonzero(flat == cut)
    keep[ties[k - int((flat < cut).sum()):]] = True  # prune only as many tied scores as needed to remove exactly k
    return torch.from_numpy(keep).view(scores.shape)


def _channel_scores(scores: torch.Tensor, norm: int) -> torch.Tensor:
    """One score per output channel: the L1 or L2 norm of its weights' scores."""
    channel: torch.Tensor = scores.reshape(scores.shape[0], -1).norm(p=norm, dim=1)   # Tensor.norm: not annotated
    return channel


def _keep_channels(channel: torch.Tensor, amount: float) -> torch.Tensor:
    """Keep-mask over channels keeping the n - round(amount * n) highest, as torch.nn.utils.prune's LnStructured
    does."""
    n = channel.numel()
    keep = torch.zeros(n, dtype=torch.bool)
    keep[torch.topk(channel, k=n - round(amount * n), largest=True).indices] = True
    return keep


def output_layer(model: nn.Module) -> str:
    """The last weight layer: its outputs are the model's outputs, so structured pruning never removes them."""
    return list(weight_layers(model))[-1]


_COUPLED: weakref.WeakKeyDictionary[nn.Module, Structure] = weakref.WeakKeyDictionary()
_COUPLED_LOCK = threading.Lock()


@dataclass(frozen=True)
class Structure:
    """What torch-pruning's dependency graph says about a model's channels: which weight layers' output channels are
    tied (a residual add sums them channel by channel), and which BatchNorm layers normalise each layer's outputs."""

    coupled: tuple[tuple[str, ...], ...]
    norms: dict[str, tuple[str, ...]]
    locked: tuple[str, ...] = ()   # layers whose channels cannot be removed (a reshape into heads, a stream that
                                   # weights outside any layer also write: a ViT's class token): kept whole


def structure(model: nn.Module) -> Structure:
    """The model's channel structure, read (once per model object) for models that say their input shape
    (`model.input_shape`: residual samples, uploads); a model that does not is taken as a chain: no ties."""
    shape = getattr(model, "input_shape", None)
    if shape is None:
        return Structure((), {})
    with _COUPLED_LOCK:
        if model in _COUPLED:
            return _COUPLED[model]
    import torch_pruning as tp

    twin = copy.deepcopy(model).eval()
    graph = _dependency_graph(twin, torch.zeros((1, *shape)))
    layers = weight_layers(twin)
    names = {id(m): n for n, m in twin.named_modules()}
    found, norms = [], {}
    outs_fn = (tp.prune_conv_out_channels, tp.prune_linear_out_channels)
    for group in graph.get_all_groups(root_module_types=[nn.Conv1d, nn.Conv2d, nn.Linear]):
        outs, bns = [], []
        for dep, _ in group:
            module = dep.target.module
            n = names.get(id(module))
            if n in layers and dep.handler in outs_fn and n not in outs:
                outs.append(n)
            elif isinstance(module, nn.modules.batchnorm._BatchNorm) and n is not None and n not in bns:
                bns.append(n)
        if len(outs) > 1 and len({int(_weight(layers[n]).shape[0]) for n in outs}) == 1:
            found.append(tuple(sorted(outs, key=list(layers).index)))
        for n in outs:
            norms[n] = tuple(bns)
    found.sort(key=lambda g: list(layers).index(g[0]))   # in forward order
    result = Structure(tuple(found), norms, _locked(model, tuple(found), torch.zeros((2, *shape))))
    with _COUPLED_LOCK:
        _COUPLED[model] = result
    return result


def _locked(model: nn.Module, coupled: tuple[tuple[str, ...], ...], x: torch.Tensor) -> tuple[str, ...]:
    """The layers whose output channels cannot be removed: found by removing one channel of every unit (a coupled
    set, or a layer) and running the model; only when that fails, unit by unit."""
    layers = weight_layers(model)
    last = list(layers)[-1]
    tied = {n for g in coupled for n in g}
    units = [g for g in coupled if last not in g] + [(n,) for n in layers if n not in tied and n != last]
    units = [u for u in units if all(int(_weight(layers[n]).shape[0]) > 1 for n in u)]
    followers = {n for g in coupled for n in g[1:]}

    def works(chosen: list[tuple[str, ...]]) -> bool:
        keep = {n: torch.ones_like(_weight(m), dtype=torch.bool) for n, m in layers.items()}
        for u in chosen:
            for n in u:
                keep[n][0] = False
        try:
            small = _split(model, keep, x[:1], followers)[0]
            with torch.inference_mode():
                small(x)
            return True
        except Exception:   # torch-pruning could not follow the graph, or the thin model does not run
            return False

    if not units or works(units):
        return ()
    return tuple(n for u in units if not works([u]) for n in u)




def coupled_layers(model: nn.Module) -> tuple[tuple[str, ...], ...]:
    """Weight layers whose output channels are tied together (see structure): structured pruning keeps or removes
    a channel in all of them at once."""
    return structure(model).coupled


def _units(model: nn.Module, names: list[str], structured: bool) -> list[tuple[str, ...]]:
    """The layers pruning decides on together: structured, each set of coupled layers is one unit; else one each."""
    coupled = coupled_layers(model) if structured else ()
    seen: set[str] = set()
    units: list[tuple[str, ...]] = []
    for group in coupled:
        members = tuple(n for n in group if n in names)
        if len(members) > 1:
            units.append(members)
            seen.update(members)
    return units + [(n,) for n in names if n not in seen]


def masks(model: nn.Module, cfg: PruneConfig, calibration: Split | None = None,
          scores: dict[str, torch.Tensor] | None = None) -> Masks:
    """Keep-masks (True = kept) for every weight layer under a configuration. Pass `scores` to reuse them.
    Structured: coupled layers (coupled_layers) keep the same channels, chosen by the sum of their channel scores
    (each layer's mean per weight, so layers of different fan-in weigh alike); a skip or override on one of them
    applies to all."""
    scores = scores if scores is not None else weight_scores(model, cfg.method, calibration, cfg.seed)
    overrides = dict(cfg.overrides)
    unknown = sorted((set(cfg.skip) | set(overrides)) - set(scores))
    if unknown:
        raise ValueError(f"unknown layer(s) {', '.join(unknown)}; layers with weights: {', '.join(scores)}")
    skip = set(cfg.skip) | ({output_layer(model)} if cfg.structured else set())
    out = {n: torch.ones_like(s, dtype=torch.bool) for n, s in scores.items()}
    if cfg.structured:
        skip |= set(structure(model).locked)
    units = [u for u in _units(model, list(scores), cfg.structured) if not skip & set(u)]
    own = {u: next(overrides[n] for n in u if n in overrides) for u in units if set(u) & set(overrides)}
    pooled = [u for u in units if u not in own]
    if cfg.scope == "layer":
        own |= {u: cfg.amount for u in pooled}
        pooled = []

    def unit_channels(u: tuple[str, ...]) -> torch.Tensor:
        if len(u) == 1:
            return _channel_scores(scores[u[0]], cfg.norm)
        pooled_scores: torch.Tensor = sum(_channel_scores(scores[n], cfg.norm) / scores[n][0].numel() ** (1 / cfg.norm)
                                          for n in u)
        return pooled_scores

    def set_channels(u: tuple[str, ...], keep: torch.Tensor) -> None:
        for n in u:
            out[n] = keep.view(-1, *[1] * (scores[n].dim() - 1)).expand_as(scores[n]).clone()

    for u, amount in own.items():
        if cfg.structured:
            set_channels(u, _keep_channels(unit_channels(u), amount))
        else:
            out[u[0]] = lowest(scores[u[0]], amount)
    if pooled and cfg.amount > 0:
        if cfg.structured:  # channels of layers with different fan-in compare by their mean (L1) or RMS (L2) score
            per = [_channel_scores(scores[u[0]], cfg.norm) / scores[u[0]][0].numel() ** (1 / cfg.norm) if len(u) == 1
                   else unit_channels(u) / len(u) for u in pooled]
            keep = lowest(torch.cat(per), cfg.amount)
            for u, k in zip(pooled, torch.split(keep, [p.numel() for p in per])):
                set_channels(u, k)
        else:
            names = [u[0] for u in pooled]
            keep = lowest(torch.cat([scores[n].reshape(-1) for n in names]), cfg.amount)
            for n, k in zip(names, torch.split(keep, [scores[n].numel() for n in names])):
                out[n] = k.view(scores[n].shape)
    return out


def channel_keep(mask: torch.Tensor) -> torch.Tensor:
    """Which output channels a mask keeps (any weight of the channel kept)."""
    return mask.reshape(mask.shape[0], -1).any(dim=1)


def masked_parameters(model: nn.Module, keep: Masks, structured: bool = False) -> dict[str, torch.Tensor]:
    """The model's parameters with pruned weights zeroed (and, structured, the biases of removed channels and the
    scale and shift of the BatchNorm after them, so a removed channel gives exactly zero, as it does once removed), as
    new tensors: evaluate them with torch.func.functional_call on a private copy of the module (it swaps them in)."""
    params = {k: v.detach() for k, v in model.named_parameters()}
    norms = structure(model).norms if structured else {}
    for n, m in keep.items():
        params[f"{n}.weight"] = params[f"{n}.weight"] * m
        if structured:
            channels = channel_keep(m)
            for t in [f"{n}.bias"] + [f"{b}.{k}" for b in norms.get(n, ()) for k in ("weight", "bias")]:
                if t in params and params[t].shape == channels.shape:
                    params[t] = params[t] * channels
    return params


def apply_masks(model: nn.Module, keep: Masks, structured: bool = False) -> nn.Module:
    """A new dense model (same shapes) with the pruned weights set to zero."""
    new = copy.deepcopy(model)
    with torch.no_grad():
        for k, v in masked_parameters(model, keep, structured).items():
            new.get_parameter(k).copy_(v)
    return new.eval()


def _dependency_graph(model: nn.Module, example: torch.Tensor) -> Any:
    """torch-pruning's dependency graph of a model (a copy of ours: tracing needs gradients switched on)."""
    import torch_pruning as tp

    model.requires_grad_(True)  # the graph is traced through autograd
    with torch.enable_grad():
        return tp.DependencyGraph().build_dependency(model, example_inputs=example[:1], verbose=False)


def _channel_groups(model: nn.Module, keep: Masks, example: torch.Tensor, followers: set[str] | None = None
                    ) -> tuple[nn.Module, dict[str, nn.Module], list[Any]]:
    """A copy of the model, its weight layers, and for every layer losing channels the torch-pruning group that
    removes them (the layer's output channels and every input that reads them)."""
    import torch_pruning as tp

    if followers is None:   # one group removes a tie's channels
        followers = {n for group in coupled_layers(model) for n in group[1:]}
    new = copy.deepcopy(model).eval()
    graph = _dependency_graph(new, example)
    layers = weight_layers(new)
    groups = []
    for n, m in keep.items():
        if n in followers:
            continue
        drop = (~channel_keep(m)).nonzero().flatten().tolist()
        if not drop:
            continue
        if len(drop) == m.shape[0]:
            raise ValueError(f"cannot remove every channel of {n}")
        fn = tp.prune_linear_out_channels if isinstance(layers[n], nn.Linear) else tp.prune_conv_out_channels
        groups.append(graph.get_pruning_group(layers[n], fn, idxs=drop))
    return new, layers, groups


def split_channels(model: nn.Module, keep: Masks, example: torch.Tensor) -> tuple[nn.Module, Masks]:
    """Remove the channels that channel masks drop, from one dependency graph: (the new, smaller model; the masks
    extended to everything that removal takes away, i.e. also the input columns of every layer that read a removed
    channel, through flatten and element-wise ops). The dense model those masks give holds exactly the weights of
    the smaller model."""
    return _split(model, keep, example)


def _split(model: nn.Module, keep: Masks, example: torch.Tensor, followers: set[str] | None = None
           ) -> tuple[nn.Module, Masks]:
    frozen = {k for k, p in model.named_parameters() if not p.requires_grad}
    new, layers, groups = _channel_groups(model, keep, example, followers)
    names = {id(m): n for n, m in layers.items()}
    effective = {n: m.clone() for n, m in keep.items()}
    for group in groups:
        for item in group:
            target = item.dep.target.module
            if id(target) in names and getattr(item.dep.handler, "__name__", "") == "prune_in_channels":
                effective[names[id(target)]][:, item.idxs] = False
        group.prune()
    for k, p in new.named_parameters():
        p.requires_grad_(k not in frozen)
    return new, effective


def effective_masks(model: nn.Module, keep: Masks, example: torch.Tensor) -> Masks:
    """Channel masks extended to what removing those channels really takes away (see split_channels)."""
    return split_channels(model, keep, example)[1]


def remove_channels(model: nn.Module, keep: Masks, example: torch.Tensor) -> nn.Module:
    """A new, smaller dense model with the channels that channel masks drop physically removed, together with the
    inputs of every layer that consumed them (found by torch-pruning's dependency graph)."""
    return split_channels(model, keep, example)[0]


def prune(model: nn.Module, amount: float, method: str = "l1", scope: str = "layer", *, structured: bool = False,
          norm: int = 1, skip: tuple[str, ...] = (), overrides: dict[str, float] | None = None, seed: int = 0,
          calibration: Split | None = None, example: torch.Tensor | None = None) -> nn.Module:
    """A new pruned model. Unstructured: same shapes, pruned weights zero. Structured: channels removed for real
    (needs `example`, one input batch, to trace the model). `calibration` (inputs + labels) is needed for "taylor"."""
    cfg = PruneConfig(amount, method, scope, structured, norm, tuple(skip), tuple((overrides or {}).items()), seed)
    keep = masks(model, cfg, calibration)
    if not structured:
        return apply_masks(model, keep)
    if example is None:
        raise ValueError("structured pruning needs an example input to trace the model")
    return remove_channels(model, keep, example)


def sparsity(keep: Masks) -> float:
    """Fraction of weights removed over all masked layers."""
    total = sum(m.numel() for m in keep.values())
    return 1.0 - sum(int(m.sum()) for m in keep.values()) / total if total else 0.0


def _scoring(scorer: Scorer | Split, family: Family | None, example: torch.Tensor | None
             ) -> tuple[Scorer, Family, torch.Tensor | None]:
    """A scorer, the family and an example input: a labelled Split stands for a classifier scored by accuracy on it."""
    if isinstance(scorer, Split):
        return accuracy_scorer(scorer), family or get("classifier"), scorer.x[:1] if example is None else example
    if family is None:
        raise ValueError("pruning a model with a scorer needs its family (slimcore.families)")
    return scorer, family, example


def prune_model(model: nn.Module, cfg: PruneConfig, family: Family, example: torch.Tensor | None = None,
                calibration: Split | None = None, scores: dict[str, torch.Tensor] | None = None) -> nn.Module:
    """A new pruned model of any family: unstructured, same shapes with the pruned weights zero; structured, the
    units of cfg.unit removed for real (family.remove_units; `example` traces the model where it needs one)."""
    keep = family.prune_masks(model, cfg, scores, calibration)
    if not cfg.structured:
        return apply_masks(model, keep)
    return family.remove_units(model, cfg.unit, keep, example)[0]


def _variant(model: nn.Module, cfg: PruneConfig, family: Family, example: torch.Tensor | None,
             scores: dict[str, torch.Tensor] | None, calibration: Split | None) -> nn.Module:
    """prune_model's model, or, where units cannot all be removed (a layer would lose every one), the masked one."""
    try:
        return prune_model(model, cfg, family, example, calibration, scores)
    except ValueError:
        return apply_masks(model, family.prune_masks(model, cfg, scores, calibration), structured=True)


def quality_curve(model: nn.Module, scorer: Scorer | Split, cfg: PruneConfig, ratios: tuple[float, ...], *,
                  family: Family | None = None, example: torch.Tensor | None = None, calibration: Split | None = None,
                  scores: dict[str, torch.Tensor] | None = None) -> list[Score]:
    """The family's one-shot quality (no fine-tuning) at each prune ratio: the model prune_model builds (masked
    instead where a layer would lose every unit), scored; ratio 0 is the model itself. Weight scores are computed
    once for all ratios (or taken from `scores`)."""
    scorer, family, example = _scoring(scorer, family, example)
    if scores is None and cfg.method != "l1" and any(ratios):
        scores = weight_scores(model, cfg.method, calibration, cfg.seed, family)
    return [scorer(model) if r == 0 else scorer(_variant(model, replace(cfg, amount=r), family, example, scores,
                                                         calibration)) for r in ratios]


@dataclass(frozen=True)
class Thin:
    """The model with whole units really removed (smaller tensors): measured."""

    score: Score
    params: int
    nonzeros: int
    size_bytes: int                        # measured: torch.save of the smaller model
    shapes: dict[str, tuple[int, ...]]     # weight shape of each compressible layer
    units: dict[str, int]                  # units kept where the family has them (UnitGroup.where -> count)


@dataclass(frozen=True)
class PruneReport:
    """The figures of one configuration on any family. `score` is the family's headline quality of the pruned model
    (when units are removed for real, of the thin model, which computes what the masked one does); counts and the
    measured `size_bytes` are those of the masked dense model (same shapes as the original, pruned weights zero);
    `sparse` is modelled. `thin` is the model with units really removed: the configuration's own when structured,
    and for comparison, when unstructured, the family's units (cfg.unit) removed at the same ratio."""

    cfg: PruneConfig
    score: Score
    params: int
    nonzeros: int
    weights: int                          # weights of the compressible layers the masks cover
    removed: int                          # of those, how many were removed
    size_bytes: int                       # measured: torch.save of the masked dense model
    sparse: ModelledSize                  # modelled: sparse storage of the masked dense model
    layer_sparsity: dict[str, float]      # fraction of each compressible layer's weights removed
    unit_removed: dict[str, float]        # structured: fraction of the units removed where the family has them
    thresholds: dict[str, float | None]   # unstructured l1: the largest |w| removed per layer (None: nothing)
    emptied: tuple[str, ...]              # layers that lost every weight
    notes: tuple[str, ...]                # what the page must say about this setting
    thin: Thin | None
    thin_note: str                        # why there is no thin model, when there is none


def _thin(model: nn.Module, cfg: PruneConfig, keep: Masks, family: Family, example: torch.Tensor | None
          ) -> tuple[nn.Module | None, Masks | None, str]:
    try:
        thin, effective = family.remove_units(model, cfg.unit, keep, example)
        return thin, effective, ""
    except ValueError as e:
        return None, None, f"no {cfg.unit.removesuffix('s')}-pruned model at this ratio: {e}"


def evaluate(model: nn.Module, cfg: PruneConfig, scorer: Scorer | Split, *, family: Family | None = None,
             example: torch.Tensor | None = None, calibration: Split | None = None,
             scores: dict[str, torch.Tensor] | None = None) -> tuple[PruneReport, nn.Module, nn.Module | None]:
    """Prune a model of any family under a configuration and measure it: (report, masked dense model, thin model or
    None). `scorer` is the family's (families.Family.scorer); a labelled Split stands for a classifier's accuracy on
    it. The one computation behind a slider move on the Pruning page, its benchmark, the CLI and recipes."""
    scorer, family, example = _scoring(scorer, family, example)
    if scores is None and cfg.method != "l1":   # computed once for the comparison's masks too
        scores = weight_scores(model, cfg.method, calibration, cfg.seed, family)
    keep = family.prune_masks(model, cfg, scores, calibration)   # what the family lacks fails here, in one line
    thin, note = None, ""
    structured = cfg if cfg.structured else replace(cfg, structured=True)
    if structured.unit in family.unit_kinds:
        units = keep if cfg.structured else family.prune_masks(model, structured, scores, calibration)
        thin, effective, note = _thin(model, structured, units, family, example)
        if cfg.structured and effective is not None:
            keep = effective  # what removing the units takes from the next layers too
    dense = apply_masks(model, keep, cfg.structured)
    weights = sum(m.numel() for m in keep.values())
    thin_figures = None if thin is None else Thin(
        scorer(thin), sum(p.numel() for p in thin.parameters()),
        sum(int(torch.count_nonzero(p)) for p in thin.parameters()), serialized_bytes(thin),
        {n: tuple(_weight(m).shape) for n, m in family.layers(thin).items()},
        {g.where: g.count for g in family.units(thin, structured.unit)})
    unit_removed, notes = {}, []
    if cfg.structured and thin_figures is not None:   # there is a thin model
        before = {g.where: g.count for g in family.units(model, cfg.unit)}
        unit_removed = {w: 1.0 - thin_figures.units[w] / n for w, n in before.items()}
        gone = [w for w, n in thin_figures.units.items() if n == 0]
        if gone:
            notes.append(f"At this ratio every one of the {family.unit_kinds[cfg.unit]} of {', '.join(gone)} is "
                         "removed: those layers add only their output bias, whatever the input. Lower the ratio to "
                         "keep at least one.")
    thresholds = {} if cfg.structured or cfg.method != "l1" else {n: threshold(model, keep, n) for n in keep}
    report = PruneReport(
        cfg, thin_figures.score if cfg.structured and thin_figures else scorer(dense),
        sum(p.numel() for p in dense.parameters()), sum(int(torch.count_nonzero(p)) for p in dense.parameters()),
        weights, weights - sum(int(m.sum()) for m in keep.values()), serialized_bytes(dense), modelled_size(dense),
        layer_sparsity(keep), unit_removed, thresholds, tuple(n for n, m in keep.items() if not m.any()),
        tuple(notes), thin_figures, note)
    return report, dense, thin


# Gradual pruning with fine-tuning (Zhu & Gupta 2017) ------------------------------------------------------------------

def cubic_schedule(final: float, steps: int, initial: float = 0.0) -> list[float]:
    """Sparsity after each of `steps` steps: s_t = s_f + (s_i - s_f) * (1 - t / n)^3, ending exactly at s_f."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return [final + (initial - final) * (1 - t / steps) ** 3 for t in range(1, steps + 1)]


@dataclass(frozen=True)
class GradualConfig:
    """Gradual pruning to `prune.amount` over `steps` steps, fine-tuning `epochs` epochs after each step."""

    prune: PruneConfig
    steps: int = 5
    epochs: int = 2          # fine-tuning epochs after each pruning step
    lr: float = 5e-4         # Adam
    batch_size: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.epochs < 0:
            raise ValueError(f"need steps >= 1 and epochs >= 0, got {self.steps} and {self.epochs}")
        if not self.lr > 0 or self.batch_size < 1:
            raise ValueError(f"need lr > 0 and batch_size >= 1, got {self.lr} and {self.batch_size}")


@dataclass(frozen=True)
class GradualStep:
    """The state after one pruning step and its fine-tuning; scores are the family's headline metric (accuracy for
    classifiers, mean cosine to the original for encoders)."""

    step: int
    amount: float            # the schedule's ratio for this step
    sparsity: float          # weights actually zero over the pruned layers
    oneshot: float           # test score right after pruning, before fine-tuning
    score: float             # test score after fine-tuning
    val_score: float         # validation score after fine-tuning (the family's validation split)
    seconds: float


@dataclass(frozen=True)
class GradualResult:
    model: nn.Module         # dense, pruned weights zero; structured, the units are masked, not removed (the caller
                             # removes them: Family.remove_units on it with `masks`)
    masks: Masks
    steps: tuple[GradualStep, ...]
    cancelled: bool


def gradual_prune(sample: Any, cfg: GradualConfig, on_step: Callable[[GradualStep, float], None] | None = None,
                  should_stop: Callable[[], bool] | None = None, *, tuning: Tuning | None = None,
                  scorers: tuple[Scorer, Scorer] | None = None) -> GradualResult:
    """Prune a copy of a sample's model (any family) along the cubic schedule, fine-tuning between steps on what the
    family trains on (Family.tuning) with the pruned weights held at zero. Deterministic for a seed.
    `on_step(step, fraction_done)` reports progress; `should_stop()` cancels (checked every batch), returning what was
    done so far. `tuning` and `scorers` (test, validation) are the family's, when already built."""
    fam = family_of(sample)
    tuning = tuning if tuning is not None else fam.tuning(sample)
    test, val = scorers if scorers is not None else (fam.scorer(sample, "test"), fam.scorer(sample, "validation"))
    gen = torch.Generator().manual_seed(cfg.seed)  # a private generator: sessions run in threads of one process
    net = copy.deepcopy(sample.model).requires_grad_(False)  # our own copy: the given model may be shared and frozen
    params = tuning.parameters(net)
    for p in params:
        p.requires_grad_(True)
    calib = fam.split(sample, "calibration").head(CALIBRATION)
    keep: Masks = {n: torch.ones_like(_weight(m), dtype=torch.bool) for n, m in fam.layers(net).items()}
    done: list[GradualStep] = []
    opt = torch.optim.Adam(params, lr=cfg.lr)
    for t, amount in enumerate(cubic_schedule(cfg.prune.amount, cfg.steps), start=1):
        t0 = time.perf_counter()
        scores = weight_scores(net.eval(), cfg.prune.method, calib, cfg.prune.seed + t, family=fam)
        # What is pruned stays pruned: its score goes below every live one (scores are >= 0; a unit's is a norm).
        floor = 0.0 if cfg.prune.structured else -1.0
        scores = {n: torch.where(keep[n], s, torch.full_like(s, floor)) for n, s in scores.items()}
        keep = fam.prune_masks(net, replace(cfg.prune, amount=amount), scores, calib)
        _hold(net, keep, cfg.prune.structured, fam)
        oneshot = test(net.eval()).value
        for _ in range(cfg.epochs):
            net.train()
            order = torch.randperm(tuning.examples, generator=gen)
            for i in range(0, len(order), cfg.batch_size):
                if should_stop is not None and should_stop():
                    return GradualResult(net.eval(), keep, tuple(done), True)
                loss = tuning.loss(net, order[i:i + cfg.batch_size])
                opt.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]  # torch's Tensor.backward has no annotations
                opt.step()
                _hold(net, keep, cfg.prune.structured, fam)
        net.eval()
        step = GradualStep(t, amount, sparsity(keep), oneshot, test(net).value, val(net).value,
                           time.perf_counter() - t0)
        done.append(step)
        if on_step is not None:
            on_step(step, t / cfg.steps)
    return GradualResult(net.eval(), keep, tuple(done), False)


def _hold(net: nn.Module, keep: Masks, structured: bool, family: Family) -> None:
    """Zero the pruned weights of a model being fine-tuned (the family's layers), in place: the model is our own copy.
    Structured, also the biases of rows that keep no weight (removed units: channels, heads' q/k/v rows, neurons)."""
    layers = family.layers(net)
    with torch.no_grad():
        for n, m in keep.items():
            _weight(layers[n]).mul_(m)
            bias = _bias(layers[n])
            if structured and bias is not None:
                bias.mul_(channel_keep(m))


def threshold(model: nn.Module, keep: Masks, layer: str) -> float | None:
    """The largest |w| removed from a layer (the magnitude cut), or None if nothing was removed."""
    w = _weight(model.get_submodule(layer)).detach()
    removed = w[~keep[layer]].abs()
    return float(removed.max()) if removed.numel() else None


def layer_sparsity(keep: Masks) -> dict[str, float]:
    """Fraction of each layer's weights removed."""
    return {n: 1.0 - float(m.float().mean()) for n, m in keep.items()}


__all__ = ["METHODS", "SCOPES", "SHORT", "PruneConfig", "GradualConfig", "GradualStep", "GradualResult",
           "weight_scores", "calibration_batch", "sample_scores", "masks", "masked_parameters", "apply_masks",
           "remove_channels", "effective_masks", "split_channels", "prune", "sparsity", "layer_sparsity",
           "prune_model", "quality_curve", "Thin", "PruneReport", "evaluate", "cubic_schedule", "gradual_prune",
           "threshold", "output_layer", "channel_keep"]
