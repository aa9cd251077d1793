"""The Pruning page's glue for every model family: cached calls into slimcore.pruning, and the two family panels
(the controls and pictures that really differ: a classifier's method / scope / channel toggle and weight mask; an
encoder's single weights / FFN neurons / heads and its map of the units kept). Every number comes from slimcore;
nothing here mutates a cached model."""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch
from torch import nn

import slimcore
from slimcore import Latency, jobs, plots
from slimcore import pruning as P
from slimcore import text as T
from slimcore import text_prune as TP
from slimcore.families import Family, Metric, Score, family_of

from . import cache, urlstate, work
from . import text as text_ui
from .compare import Figure
from .components import delta, timing_task
from .urlstate import Bool, Choice, Float, Int

CALIBRATION = P.CALIBRATION            # training examples that Taylor importance is computed on
FULL = "text_prune_full"               # session key: whole-test-split results of this session, by setting


def family(name: str) -> Family:
    return family_of(cache.sample(name))


# ------------------------------------------------------------------------------------------------ cached figures

@st.cache_resource(show_spinner=False)
def scorer(name: str) -> Callable[[nn.Module], Score]:
    """The family's scorer on the quick split (classifiers: the test split; encoders: the quick set), built once."""
    s = cache.sample(name)
    return family_of(s).scorer(s, "quick")


def _calibration(name: str, method: str):
    return P.calibration_batch(cache.sample(name), method)


@st.cache_resource(show_spinner=False, max_entries=4)
def scores(name: str, method: str, seed: int = 0) -> dict[str, torch.Tensor] | None:
    """Weight scores of a sample model for a method (read-only, shared); None for l1 (the magnitudes themselves)."""
    if method == "l1":
        return None
    return P.sample_scores(cache.sample(name), method, seed)   # the family's layers and loss


def _evaluate(name: str, cfg: P.PruneConfig) -> tuple[P.PruneReport, nn.Module, nn.Module | None]:
    s = cache.sample(name)
    fam = family_of(s)
    return P.evaluate(s.model, cfg, scorer(name), family=fam, example=fam.example(s),
                      calibration=_calibration(name, cfg.method), scores=scores(name, cfg.method, cfg.seed))


@st.cache_resource(show_spinner=False, max_entries=2)
def result(name: str, cfg: P.PruneConfig) -> tuple[P.PruneReport, nn.Module, nn.Module | None]:
    """A configuration's report and its models, masked and thin (read-only, shared by sessions). Few are kept: a
    masked encoder is a whole copy of it; the page reads its figures from report(), which keeps many."""
    return _evaluate(name, cfg)


@st.cache_resource(show_spinner=False, max_entries=256)
def report(name: str, cfg: P.PruneConfig) -> P.PruneReport:
    """A configuration's report (its figures, no models: small), shared by sessions and kept on disk."""
    return work.kept("prune_report", name, cfg, lambda: result(name, cfg)[0])


def positions(name: str, cfg: P.PruneConfig, ratios: tuple[float, ...]) -> None:
    """Every slider position's report of this setting, now (what prefetch does in the background, as one piece of
    work: the warm-up's)."""
    for r in ratios:
        c = replace(cfg, amount=r)

        def compute(c: P.PruneConfig = c) -> P.PruneReport:
            return _evaluate(name, c)[0]
        work.kept("prune_report", name, c, compute)


def prefetch(name: str, cfg: P.PruneConfig, ratios: tuple[float, ...]) -> None:
    """The reports of every slider position of this setting, computed in the background (after what visitors wait
    for; the nearest positions first, one job each, so a visitor's job never waits long behind them) and kept on
    disk, so that moving the slider of a slow model reads its figures instead of computing them. Not in inline mode
    (the tests): speculative work shows nothing, and there it would run in the page."""
    if work.worker().inline or os.environ.get("SLIMLAB_PREFETCH") == "0":
        return
    for r in sorted(ratios, key=lambda r: abs(r - cfg.amount)):
        c = replace(cfg, amount=r)
        if c != cfg and not work.on_disk("prune_report", name, c):
            def fetch(progress: jobs.Progress, c: P.PruneConfig = c) -> P.PruneReport:   # c: run later, bound now
                return work.kept("prune_report", name, c,
                                 lambda: _evaluate(name, c)[0])   # its figures only: no models kept
            work.submit(work.Task(f"prune_prefetch|{name}|{c}", fetch,
                                  "Preparing another slider position", "prune_prefetch", name, keep=64),
                        priority=work.PREFETCH)


def positions_task(name: str, cfg: P.PruneConfig, ratios: tuple[float, ...]) -> work.Task:
    """Every slider position of a setting in one job (the warm-up's: positions())."""
    return work.Task(f"warm_positions|{name}|{replace(cfg, amount=0.0)}", lambda progress: positions(name, cfg, ratios),
                     "Preparing every slider position", "warm_positions", name)


@dataclass(frozen=True)
class Original:
    """The unpruned model's own figures, as the page compares with them."""

    score: Score
    params: int
    nonzeros: int
    size_bytes: int   # measured: torch.save


@st.cache_data(show_spinner=False)
def original(name: str) -> Original:
    model = cache.sample(name).model
    return Original(scorer(name)(model), sum(p.numel() for p in model.parameters()),
                    sum(int(torch.count_nonzero(p)) for p in model.parameters()), slimcore.serialized_bytes(model))


@st.cache_resource(show_spinner=False, max_entries=4)
def masks(name: str, cfg: P.PruneConfig) -> P.Masks:
    """Keep-masks as the page draws them (read-only, shared): structured ones extended to what removing the units
    also takes away (the next layer's inputs), when they can be removed."""
    s = cache.sample(name)
    fam = family_of(s)
    keep = fam.prune_masks(s.model, cfg, scores(name, cfg.method, cfg.seed), _calibration(name, cfg.method))
    if cfg.structured:
        try:
            return fam.remove_units(s.model, cfg.unit, keep, fam.example(s))[1]
        except ValueError:  # every unit of a layer removed: the page says so; show the masks as they are
            return keep
    return keep


@st.cache_data(show_spinner=False, max_entries=24)   # a MiniLM layer's kept weights: ~3 MB an entry
def layer(name: str, cfg: P.PruneConfig, layer_name: str, crop: tuple[int, int] | None = None) -> dict:
    """One layer's kept weights, its mask (or its top-left `crop` corner), the share removed and the magnitude cut."""
    model = cache.sample(name).model
    w = cache.weight(family(name).layers(model)[layer_name]).detach()
    keep = masks(name, cfg)[layer_name]
    mask = keep if crop is None else keep[:crop[0], :crop[1]]
    return {"after": w[keep].numpy().copy(), "mask": mask.numpy().copy(), "shape": tuple(w.shape),
            "removed": 1.0 - float(keep.float().mean()), "threshold": P.threshold(model, masks(name, cfg), layer_name)}


@st.cache_data(show_spinner=False)
def weights(name: str, layer_name: str) -> np.ndarray:
    return cache.weight(family(name).layers(cache.sample(name).model)[layer_name]).detach().numpy().ravel().copy()


def curve(name: str, cfg: P.PruneConfig, ratios: tuple[float, ...]) -> list[Score] | None:
    """One-shot quality at each ratio for a setting (its own ratio aside: computed once per model and method, kept on
    disk), without fine-tuning; computed in the background: None, with a placeholder drawn, until it is there."""
    qs = work.later(curve_task(name, cfg, ratios))
    if qs is not None:
        st.caption(f"Quality curve: {work.origin('prune_curve', name, (replace(cfg, amount=0.0), ratios))}.")
    return qs


def curve_task(name: str, cfg: P.PruneConfig, ratios: tuple[float, ...]) -> work.Task:
    base = replace(cfg, amount=0.0)
    return work.Task(f"prune_curve|{name}|{base}|{ratios}", lambda progress: curve_now(name, base, ratios),
                     "Computing the quality curve (once per model and method)", "prune_curve", name,
                     guess=2.0 if family(name).name == "classifier" else 20.0)


def curve_now(name: str, cfg: P.PruneConfig, ratios: tuple[float, ...]) -> list[Score]:
    """The curve itself, from disk when this model's was computed before."""
    def compute() -> list[Score]:
        s = cache.sample(name)
        fam = family_of(s)
        return P.quality_curve(s.model, scorer(name), cfg, ratios, family=fam, example=fam.example(s),
                               calibration=_calibration(name, cfg.method), scores=scores(name, cfg.method, cfg.seed))
    return work.kept("prune_curve", name, (cfg, ratios), compute)


def timed_models(name: str, cfg: P.PruneConfig) -> dict[str, nn.Module]:
    """The models the timed table compares: the original, the masked one (not when units are removed: it computes
    what the thin one does) and the thin one."""
    _, dense, thin = result(name, cfg)
    return ({"original": cache.sample(name).model} | ({} if cfg.structured and thin is not None else {"masked": dense})
            | ({"thin": thin} if thin is not None else {}))


def latencies(name: str, cfg: P.PruneConfig) -> dict[str, dict[int, Latency]]:
    """Latency of the timed models at the family's batch sizes, timed side by side on real held-out inputs (the
    page times them in the background: components.Timed)."""
    return slimcore.time_models(cache.sample(name), timed_models(name, cfg), max_seconds=0.5)  # a short budget


def timing(name: str, cfg: P.PruneConfig) -> work.Task:
    """The Pruning page's timed block: latencies() in the background."""
    return timing_task("Timing the real models side by side", name, f"prune|{name}|{cfg}",
                       lambda: latencies(name, cfg), guess=3.0 if family(name).name == "classifier" else 15.0)


def tuned_key(name: str, cfg: P.PruneConfig) -> str:
    """Where this session keeps a fine-tuned run for a model and method (any ratio: its curve stays visible)."""
    return f"{name}|{replace(cfg, amount=0.0)}"


def gradual(name: str, cfg: P.GradualConfig, on_step) -> tuple[P.GradualStep, ...]:
    """Run gradual pruning with fine-tuning on a sample model (on a copy); return its steps."""
    return slimcore.api.prune_gradually(cache.sample(name), cfg, on_step=on_step).steps


def tuned(name: str, cfg: P.PruneConfig) -> tuple[P.GradualStep, ...] | None:
    """This session's last fine-tuned run for a model and method (tuned_key), if any."""
    return st.session_state.get("prune_tuned", {}).get(tuned_key(name, cfg))


def sentence(words: str) -> str:
    """Words as the start of a sentence, acronyms kept: 'FFN neurons' stays, 'attention heads' -> 'Attention heads'."""
    return words[:1].upper() + words[1:]


def _large(n: float) -> bool:
    return abs(n) >= 8 * 2**20


def size(n: float) -> str:
    """Bytes as the page writes them: KiB for small models, MiB for large ones."""
    return f"{n / 2**20:,.2f} MiB" if _large(n) else f"{n / 1024:,.1f} KiB"


def size_delta(n: float, like: float) -> dict:
    """st.metric's delta arguments for a change of size, in the unit `like` (a size) is written in."""
    return delta(n / 2**20, "{:+,.2f} MiB", True) if _large(like) else delta(n / 1024, "{:+,.1f} KiB", True)


def times_smaller(before: float, after: float) -> str:
    """A size change in words: "4.1x smaller", "1.3x larger", or "same size" when it rounds to no change."""
    ratio = before / after if after else math.inf
    if round(ratio, 1) == 1.0:
        return "same size"
    return f"{ratio:.1f}x smaller" if ratio > 1 else f"{1 / ratio:.1f}x larger"


def score_delta(metric: Metric, value: float, reference: float) -> dict:
    """st.metric's delta arguments for a change of the family's headline, written by the family's Metric."""
    return delta(0.0, metric.delta(value, reference).replace("{", "{{"), not metric.higher_is_better)


# ---------------------------------------------------------------------------------------------------- the panels

@dataclass(frozen=True)
class Gradual:
    """A family's defaults for gradual pruning with fine-tuning (pruning.GradualConfig), and what the page says of
    them: what fine-tuning trains on and how long a step takes here."""

    steps: int = 5
    epochs: int = 2
    lr: float = 5e-4                  # Adam
    batch_size: int = 64
    trains: str = "on the training split (cross-entropy with its labels)"
    step_time: str = "a second or less"   # measured on this 2-core server


def _no_config(values: dict) -> P.PruneConfig:
    raise ValueError("this family's panel reads no settings")


@dataclass(frozen=True)
class Panel:
    """What the Pruning page does differently for one family, and nothing else: its caption, its controls (they
    return the PruneConfig and keep their URL state), the curve's ratios and figure, the layer shown by default, the
    picture beside the histogram (a weight mask; an encoder's map of the units kept), and the headline's detail."""

    title: str
    caption: str
    curve: tuple[float, ...]
    controls: Callable[[Any, bool], P.PruneConfig]
    picture: Callable[[str, P.PruneConfig, str, dict, P.PruneReport], go.Figure]
    curve_figure: Callable[[str, P.PruneConfig, P.PruneReport, list[Score], float], go.Figure]
    default_layer: Callable[[Any, P.PruneConfig], str]
    short: Callable[[str], str] = str
    crop: tuple[int, int] | None = None              # the corner of a large layer's mask drawn (None: all of it)
    pick_layer: bool = True                          # the layer is chosen beside its histogram (else in controls)
    detail: Callable[[str, P.PruneReport], None] | None = None   # the headline's detail figures, where it has some
    settings: Callable[[P.PruneConfig], dict] = lambda cfg: {}    # the controls' session keys that give a config
    gradual: Gradual = Gradual()                     # gradual pruning's defaults for the family
    positions: tuple[float, ...] = ()                # slider positions prepared in the background (slow families)
    config: Callable[[dict], P.PruneConfig] = _no_config   # a setting (the controls' values by key) as a PruneConfig
    presets: dict = field(default_factory=dict)      # named settings: mild / aggressive / breaks it


def _classifier_controls(s: Any, teacher: bool) -> P.PruneConfig:
    url = urlstate.Spec(  # the settings kept in the link (?prune_ratio=0.8...); advanced ones hidden in teacher mode
        Float("prune_ratio", 0.5, 0.0, 0.99, 0.01), Choice("prune_method", list(P.METHODS)),
        Choice("prune_scope", list(P.SCOPES)), Bool("prune_structured"), Choice("prune_norm", [1, 2], advanced=True),
        Choice("prune_layer", list(family_of(s).layers(s.model))), Int("prune_steps", 5, 1, 20, advanced=True),
        Int("prune_epochs", 2, 0, 10, advanced=True))
    url.load()
    c1, c2, c3, c4 = st.columns([3, 2, 2, 2])
    ratio = c1.slider("Prune ratio", 0.0, 0.99, urlstate.shown("prune_ratio"), step=0.01, key="prune_ratio",
                      help="Fraction of weights removed (unstructured), or of each layer's output channels "
                           "(structured).")
    method = c2.selectbox("Method", list(P.METHODS), format_func=lambda m: P.METHODS[m], key="prune_method")
    scope = c3.radio("Scope", list(P.SCOPES), format_func=P.SCOPES.get, key="prune_scope", horizontal=True,
                     help="Per layer: every layer loses the same fraction. Global: one ranking over all layers.")
    structured = c4.toggle("Structured", key="prune_structured",
                           help="Remove whole output channels (conv filters, neurons) instead of single weights.")
    norm = url.default("prune_norm") if teacher else c4.radio(
        "Channel norm", [1, 2], format_func=lambda n: f"L{n}", key="prune_norm", horizontal=True,
        disabled=not structured)
    url.save()
    return _classifier_config(dict(prune_ratio=ratio, prune_method=method, prune_scope=scope,
                                   prune_structured=structured, prune_norm=norm))


def _classifier_config(v: dict) -> P.PruneConfig:
    return P.PruneConfig(v["prune_ratio"], v["prune_method"], v["prune_scope"], v["prune_structured"],
                         v["prune_norm"])


def _classifier_picture(name: str, cfg: P.PruneConfig, layer_name: str, view: dict, rep: P.PruneReport) -> go.Figure:
    return plots.mask_heatmap(view["mask"], f"{layer_name} mask")


def _classifier_curve(name: str, cfg: P.PruneConfig, rep: P.PruneReport, qs: list[Score], base: float) -> go.Figure:
    run = tuned(name, cfg)
    extra: dict[str, tuple[Sequence[float], Sequence[float]]] | None = (
        {"gradual + fine-tuned": ([t.amount for t in run], [t.score for t in run])} if run else None)
    return plots.accuracy_curve(CLASSIFIER.curve, [q.value for q in qs], (cfg.amount, rep.score.value),
                                f"Accuracy against prune ratio ({P.METHODS[cfg.method]}, {P.SCOPES[cfg.scope]}"
                                f"{', structured' if cfg.structured else ''})", reference=base, extra=extra)


CLASSIFIER = Panel(
    "Pruning lab",
    "Move the prune ratio and watch which weights go, what accuracy it costs on the held-out test split, and what it "
    "really buys: masked weights keep dense tensors; removed channels make the model smaller.",
    tuple(round(r / 20, 2) for r in range(20)) + (0.97, 0.99), _classifier_controls, _classifier_picture,
    _classifier_curve, lambda s, cfg: st.session_state.get("prune_layer") or list(family_of(s).layers(s.model))[0],
    settings=lambda cfg: dict(prune_ratio=round(cfg.amount, 2), prune_method=cfg.method, prune_scope=cfg.scope,
                              prune_structured=cfg.structured, prune_norm=cfg.norm),
    config=_classifier_config,
    presets={"mild": dict(prune_ratio=0.3), "aggressive": dict(prune_ratio=0.8, prune_scope="global"),
             "breaks it": dict(prune_ratio=0.7, prune_structured=True)})


SHORT = {"attention.self.query": "q", "attention.self.key": "k", "attention.self.value": "v",
         "attention.output.dense": "attn-out", "intermediate.dense": "ffn-in", "output.dense": "ffn-out"}


def short(layer_name: str) -> str:
    """'encoder.layer.3.attention.self.query' -> 'L3 q'."""
    return f"L{T.layer_index(layer_name)} {SHORT[layer_name.split('.', 3)[3]]}"


def _encoder_layer(s: Any, unit: str) -> str:
    """A layer a kind of pruning changes: the first FFN input (single weights, neurons), the first attention
    output (heads); read from the family's unit groups."""
    where = family_of(s).units(s.model, "heads" if unit == "heads" else "ffn")[0].where
    return f"{where}.output.dense" if unit == "heads" else f"{where}.dense"


def _encoder_controls(s: Any, teacher: bool) -> P.PruneConfig:
    layers = list(family_of(s).layers(s.model))
    url = urlstate.Spec(Float("prune_ratio", 0.3, 0.0, 0.95, 0.05), Choice("prune_kind", list(TP.KINDS)),
                        Choice("prune_method", list(P.METHODS)), Choice("prune_scope", list(P.SCOPES)),
                        Choice("prune_norm", [1, 2], default=2, advanced=True),
                        Choice("prune_layer", layers, default=_encoder_layer(s, "ffn"), advanced=True))
    url.load()
    c1, c2, c3, c4 = st.columns([3, 3, 2, 2])
    sizes = {g.kind: g.count for k in ("heads", "ffn") for g in family_of(s).units(s.model, k)[:1]}
    ratio = c1.slider("Prune ratio", 0.0, 0.95, urlstate.shown("prune_ratio"), step=0.05, key="prune_ratio",
                      help=f"The fraction removed: of the Linear layers' weights (unstructured), of the "
                           f"{sizes['ffn']} FFN neurons, or of the {sizes['heads']} attention heads per layer "
                           "(rounded to whole heads) — in every layer, or over all layers together (global).")
    kind = c2.radio("What to remove", list(TP.KINDS), format_func=TP.KINDS.get, key="prune_kind",
                    horizontal=True, help="Single weights are masked (set to zero, tensors keep their shape); "
                                          "neurons and heads are removed for real (smaller Linear layers).")
    method = c3.selectbox("Method", list(P.METHODS), format_func=lambda m: P.METHODS[m], key="prune_method",
                          help="How weights are scored; a unit's score is the norm of its weights' scores. Taylor "
                               "differentiates the paraphrase ranking loss on the training sentences.")
    scope = c4.radio("Scope", list(P.SCOPES), format_func=P.SCOPES.get, key="prune_scope", horizontal=True,
                     help="Per layer: every layer loses the same fraction. Global: one ranking over all layers "
                          "(each keeps at least one head or neuron).")
    norm = url.default("prune_norm") if teacher else c4.radio(
        "Unit norm", [1, 2], format_func=lambda n: f"L{n}", key="prune_norm", horizontal=True,
        disabled=kind == "unstructured")
    if not teacher:
        c3.selectbox("Layer to inspect", layers, format_func=short, key="prune_layer",
                     help="The Linear layer whose weights and mask are drawn below.")
    url.save()
    return _encoder_config(dict(prune_ratio=ratio, prune_kind=kind, prune_method=method, prune_scope=scope,
                                prune_norm=norm))


def _encoder_config(v: dict) -> P.PruneConfig:
    cfg = TP.config(round(float(v["prune_ratio"]), 2), v["prune_kind"])
    return replace(cfg, method=v["prune_method"], scope=v["prune_scope"],
                   norm=int(v["prune_norm"]) if cfg.structured else cfg.norm)


def kept_map(keep: P.Masks, model: nn.Module, fam: Family, unit: str) -> go.Figure:
    """The map of the heads or FFN neurons each transformer layer keeps (also drawn by the benchmark)."""
    kept = TP.kept_units(cast(T.MiniLM, model), unit, keep)   # an encoder (what has heads and FFN neurons)
    grid = np.zeros((len(kept), max(g.count for g in fam.units(model, unit))), dtype=bool)
    for i, k in enumerate(kept):
        grid[i, k.numpy()] = True
    fig = plots.mask_heatmap(grid, f"{sentence(fam.unit_kinds[unit])} kept (light)")
    fig.update_layout(xaxis_title_text="head" if unit == "heads" else "FFN neuron",
                      yaxis_title_text="transformer layer", height=280)
    return fig


def _encoder_picture(name: str, cfg: P.PruneConfig, layer_name: str, view: dict, rep: P.PruneReport) -> go.Figure:
    if cfg.structured:
        return kept_map(masks(name, cfg), cache.sample(name).model, family(name), cfg.unit)
    r, c = view["mask"].shape
    return plots.mask_heatmap(view["mask"], f"{short(layer_name)} mask, rows 0-{r - 1} x columns 0-{c - 1}")


def _encoder_curve(name: str, cfg: P.PruneConfig, rep: P.PruneReport, qs: list[Score], base: float) -> go.Figure:
    kind = TP.kind(cfg)
    fig = plots.line_chart(ENCODER.curve, {"mean cosine to original": [q.detail.mean_cosine for q in qs],
                                           "top-1 neighbour agreement": [q.detail.top1_agreement for q in qs],
                                           "paraphrase found (top-1)": [q.detail.paraphrase_top1 for q in qs]},
                           f"Quality against prune ratio ({TP.KINDS[kind].split(' (')[0]}, {P.SHORT[cfg.method]}, "
                           f"{P.SCOPES[cfg.scope]})", "prune ratio", "cosine / fraction",
                           marker=cfg.amount, height=340)
    run = tuned(name, cfg)
    if run:
        fig.add_scatter(x=[t.amount for t in run], y=[t.score for t in run], mode="lines+markers",
                        name="gradual + fine-tuned (mean cosine)", line=dict(color="#16a34a", dash="dash"))
    fig.update_layout(legend_y=-0.32)   # below the axis title
    return fig


def _encoder_detail(name: str, rep: P.PruneReport) -> None:
    st.markdown(f"**Embedding quality**, measured on {text_ui.where(name, True)}, against the original encoder:")
    text_ui.show_quality(rep.score.detail, original(name).score.detail, name, quick=True)


ENCODER = Panel(
    "Pruning lab",
    "Move the prune ratio and choose what goes: single weights (masked to zero: the tensors keep their shape, so the "
    "model is neither smaller on disk nor faster — only a sparse format would be smaller), or whole FFN neurons or "
    "attention heads (removed for real: smaller Linear layers, a smaller and faster model). Quality is measured "
    "against the original encoder's embeddings of held-out sentences.",
    (0.0, 0.25, 0.5, 0.75, 0.9), _encoder_controls, _encoder_picture, _encoder_curve,
    lambda s, cfg: _encoder_layer(s, cfg.unit), short, (96, 400), False, _encoder_detail,
    lambda cfg: dict(prune_ratio=round(cfg.amount * 20) / 20, prune_kind=TP.kind(cfg), prune_method=cfg.method,
                     prune_scope=cfg.scope) | ({"prune_norm": cfg.norm} if cfg.structured else {}),
    gradual=Gradual(4, 2, 3e-4, 32, "on the training sentences (MSE of the embeddings to the original encoder's; the "
                    "transformer layers learn, the embedding tables stay)", "about 10-15 s (2 epochs of 240 sentences, "
                    "then the test and quick sets embedded)"),
    positions=tuple(round(i * 0.05, 2) for i in range(20)), config=_encoder_config,
    presets={"mild": dict(prune_ratio=0.2), "aggressive": dict(prune_ratio=0.5, prune_kind="ffn"),
             "breaks it": dict(prune_ratio=0.9, prune_kind="heads")})

PANELS = {"classifier": CLASSIFIER, "encoder": ENCODER}


def panel(fam: Family) -> Panel:
    """The family's panel (a new family adds one entry)."""
    return PANELS[fam.name]


def full_split(name: str, cfg: P.PruneConfig) -> None:
    """Where the quick split is not the whole test split (encoders): the button that measures the current setting on
    the whole test split, and its result when there is one."""
    s = cache.sample(name)
    fam = family_of(s)
    test = fam.split(s, "test")
    if fam.split(s, "quick") is test:
        return
    done = st.session_state.setdefault(FULL, {})
    key = f"{name}|{cfg}"
    if st.button(f"Measure on the whole test split ({len(test)} sentences)", key="text_prune_full_button"):
        bar = st.progress(0.0, "Embedding the whole test split with the pruned encoder…")
        _, dense, thin = result(name, cfg)

        def on_part(i: int, k: int) -> None:
            bar.progress(i / k, f"part {i} of {k} embedded")
        pruned = cast(T.MiniLM, thin if cfg.structured and thin is not None else dense)   # a pruned encoder
        done[key] = TP.evaluate_in_parts(pruned, test, text_ui.reference(name, False), on_part=on_part)
        bar.empty()
    if key in done:
        st.markdown(f"**The whole test split** ({text_ui.where(name, False)}), this setting:")
        text_ui.show_quality(done[key], text_ui.original_quality(name, False), name, quick=False)


def figures(name: str, cfg: P.PruneConfig) -> dict[str, Figure]:
    """A setting's headline figures, as the page's metrics show them (A/B comparison, lessons): the same cached
    report."""
    rep, metric = report(name, cfg), family(name).metric
    out = {"score": Figure(metric.name.capitalize(), rep.score.value, "percent" if metric.percent else "number",
                           metric.higher_is_better, "measured"),
           "nonzeros": Figure("Non-zero parameters", rep.nonzeros, "count", False, "counted"),
           "removed": Figure("Weights removed", rep.removed / max(rep.weights, 1), "percent", None, "counted"),
           "dense_bytes": Figure("Dense size", rep.size_bytes, "bytes", False, "measured"),
           "sparse_bytes": Figure("Sparse size", rep.sparse.bytes, "bytes", False, "modelled")}
    base = original(name)
    out["dense_share"] = Figure("Dense file, share of the original's", rep.size_bytes / base.size_bytes, "percent",
                                False, "measured")
    if rep.layer_sparsity:
        out["most_removed"] = Figure("Most pruned layer: weights removed", max(rep.layer_sparsity.values()),
                                     "percent", None, "counted")
        out["least_removed"] = Figure("Least pruned layer: weights removed", min(rep.layer_sparsity.values()),
                                      "percent", None, "counted")
    if rep.thin is not None:
        out["thin_bytes"] = Figure("Thin model size", rep.thin.size_bytes, "bytes", False, "measured")
        out["thin_share"] = Figure("Thin file, share of the original's", rep.thin.size_bytes / base.size_bytes,
                                   "percent", False, "measured")
        out["thin_params"] = Figure("Thin model parameters", rep.thin.params, "count", False, "counted")
    lat = work.done(timing(name, cfg))   # the page's timed block, when it has run (never waited for)
    if lat is not None:
        big = family(name).timing_batches[-1]
        for key, label in (("masked", "Masked model"), ("thin", "Thin model")):
            if key in lat:
                noisy = lat["original"][big].noisy or lat[key][big].noisy
                out[f"speedup_{key}"] = Figure(f"{label}: speed-up at batch {big}", lat["original"][big].median_ms
                                               / lat[key][big].median_ms, "ratio", True,
                                               "measured" + (", noisy: a wide spread between runs" if noisy else ""))
    return out
