"""The Pruning lab on the text sample (minilm): remove single weights, FFN neurons or attention heads at one ratio
and see what it costs in embedding quality (measured against the original encoder) and what it buys (measured)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from slimcore import Latency, plots
from slimcore import text as T
from slimcore import text_prune as TP
from slimcore.text import TextSample

from . import cache, state, urlstate
from . import text as ui
from .components import Timed, delta
from .urlstate import Choice, Float

CURVE = (0.0, 0.25, 0.5, 0.75, 0.9)             # ratios of the quality curve (computed once per kind)
DEFAULT_LAYER = "encoder.layer.0.intermediate.dense"
CROP = (96, 384)                                  # rows x columns of a layer's mask drawn (a whole one is too big)
SHORT = {"attention.self.query": "q", "attention.self.key": "k", "attention.self.value": "v",
         "attention.output.dense": "attn-out", "intermediate.dense": "ffn-in", "output.dense": "ffn-out"}
SHORT_KIND = {"unstructured": "masked (L1)", "ffn": "FFN neurons removed", "heads": "heads removed"}
TEACHER_LAYER = {"unstructured": DEFAULT_LAYER, "ffn": DEFAULT_LAYER,     # teacher mode: a layer the kind changes
                 "heads": "encoder.layer.0.attention.output.dense"}
FULL = "text_prune_full"                          # session key: full-split results of this session, by setting


def short(layer: str) -> str:
    """'encoder.layer.3.attention.self.query' -> 'L3 q'."""
    return f"L{T.layer_index(layer)} {SHORT[layer.split('.', 3)[3]]}"


@st.cache_resource(show_spinner="Sorting every layer's weights by magnitude (once)…")
def _order(name: str) -> dict[str, np.ndarray]:
    return TP.sorted_magnitudes(cache.sample(name).model)


@st.cache_resource(show_spinner=False, max_entries=6)
def pruned(name: str, cfg: TP.TextPruneConfig) -> tuple[T.MiniLM, TP.PrunePlan]:
    """The pruned encoder and its plan (read-only, shared by sessions; the shared original is never touched)."""
    s = cache.sample(name)
    p = TP.plan(s.model, cfg, _order(name) if cfg.kind == "unstructured" else None)
    return TP.apply(s.model, p), p


@st.cache_data(show_spinner=False, max_entries=128)
def report(name: str, cfg: TP.TextPruneConfig) -> TP.TextPruneReport:
    """Quality on the quick set, counts and sizes of a setting."""
    model, p = pruned(name, cfg)
    return TP.measure(model, p, T.evaluate(model, ui.split(name, True), ui.reference(name, True)))


@st.cache_data(show_spinner=False)
def original(name: str) -> TP.TextPruneReport:
    """The original encoder's own figures, in the same record (nothing removed; quality against itself)."""
    model = cache.sample(name).model
    return TP.measure(model, TP.plan(model, TP.TextPruneConfig(0.0, "heads")), ui.original_quality(name, True))


@st.cache_data(show_spinner=False)
def _weights(name: str, layer: str) -> np.ndarray:
    return T.linear_layers(cache.sample(name).model)[layer].weight.detach().numpy().ravel().copy()


@st.cache_data(show_spinner=False, max_entries=256)
def layer_view(name: str, cfg: TP.TextPruneConfig, layer: str) -> dict:
    """One Linear layer under a setting: the weights kept, the magnitude cut, and the top-left corner of its mask."""
    w = T.linear_layers(cache.sample(name).model)[layer].weight.detach()
    mask = pruned(name, cfg)[1].masks[layer]
    return {"after": w[mask].numpy().copy(), "threshold": pruned(name, cfg)[1].thresholds.get(layer),
            "crop": mask[:CROP[0], :CROP[1]].numpy().copy(), "shape": tuple(w.shape),
            "removed": 1.0 - float(mask.float().mean())}


@st.cache_data(show_spinner=False, max_entries=8)
def curve(name: str, kind: str) -> list[T.TextQuality]:
    """One-shot quality on the quick set at each ratio of CURVE: the slider's own reports (so moving the slider to
    one of these ratios costs nothing afterwards); ratio 0 is the original."""
    return [ui.original_quality(name, True) if r == 0 else report(name, TP.TextPruneConfig(r, kind)).quality
            for r in CURVE]


@st.cache_data(show_spinner=False, max_entries=64)
def latencies(name: str, cfg: TP.TextPruneConfig) -> dict[str, tuple[Latency, Latency]]:
    """The original and the pruned encoder timed side by side at batch 1 and 32 on real test sentences."""
    s = cache.sample(name)
    return T.latencies({"original": s.model, "pruned": pruned(name, cfg)[0]}, ui.split(name, False), max_seconds=0.5)


def _mib(n: float) -> str:
    return f"{n / 2**20:,.2f} MiB"


def _controls(s: TextSample, teacher: bool) -> TP.TextPruneConfig:
    layers = list(T.linear_layers(s.model))
    url = urlstate.Spec(Float("prune_ratio", 0.3, 0.0, 0.95, 0.05), Choice("prune_kind", list(TP.KINDS)),
                        Choice("prune_layer", layers, default=DEFAULT_LAYER, advanced=True))
    url.load()
    c1, c2, c3 = st.columns([3, 3, 2])
    ratio = c1.slider("Prune ratio", 0.0, 0.95, step=0.05, key="prune_ratio",
                      help="The fraction removed in every layer: of each Linear layer's weights (unstructured), of "
                           "each layer's 1536 FFN neurons, or of its 12 attention heads (rounded to whole heads).")
    kind = c2.radio("What to remove", list(TP.KINDS), format_func=TP.KINDS.get, key="prune_kind",
                    horizontal=True, help="Single weights are masked (set to zero, tensors keep their shape); "
                                          "neurons and heads are removed for real (smaller Linear layers).")
    if not teacher:
        c3.selectbox("Layer to inspect", layers, format_func=short, key="prune_layer",
                     help="The Linear layer whose weights and mask are drawn below.")
    url.save()
    return TP.TextPruneConfig(round(float(ratio), 2), kind)


def _sizes(rep: TP.TextPruneReport, orig: TP.TextPruneReport) -> None:
    cols = st.columns(4)
    cols[0].metric("Parameters", f"{rep.params:,}", **delta(rep.params - orig.params, "{:+,}", True),
                   help="Counted in the pruned model: masking keeps every parameter; removing neurons or heads "
                        "removes theirs.")
    cols[1].metric("Non-zero parameters", f"{rep.nonzeros:,}", **delta(rep.nonzeros - orig.nonzeros, "{:+,}", True),
                   help="Counted: parameters that are not exactly zero (biases are kept).")
    label = "Thin model (measured)" if rep.thin else "Dense size (measured)"
    cols[2].metric(label, _mib(rep.size_bytes), **delta((rep.size_bytes - orig.size_bytes) / 2**20, "{:+,.2f} MiB", True),
                   help="Measured: bytes of the pruned model's state dict written by torch.save" +
                        (" (smaller Linear layers)." if rep.thin else " — zeros cost as much as any other float."))
    if rep.sparse is not None:
        cols[3].metric("Sparse size (modelled)", _mib(rep.sparse.bytes),
                       **delta((rep.sparse.bytes - orig.size_bytes) / 2**20, "{:+,.2f} MiB", True),
                       help=f"Modelled from bit counts, not a file: {rep.sparse.format} storage, {rep.sparse.detail} "
                            "(the embedding tables too).")
    else:
        sh = rep.shape
        kept = f"{sh['heads'][0]} of 12 heads" if rep.cfg.kind == "heads" else f"{sh['ffn'][0]} of 1536 neurons"
        cols[3].metric("Kept per layer", kept,
                       help=f"Read from the pruned model's weights: heads {'/'.join(map(str, sh['heads']))}, FFN "
                            f"neurons {'/'.join(map(str, sh['ffn']))} in layers 0-5 (the original: 12 heads, 1536).")


def removed_chart(rep: TP.TextPruneReport, cfg: TP.TextPruneConfig):
    """The bar chart of what a setting removed in each layer (also drawn by benchmarks/bench_text_pruning.py)."""
    if not rep.thin:
        names = [short(n) for n in rep.removed]
        return plots.layer_bars(names, [v * 100 for v in rep.removed.values()],
                                "Weights removed per Linear layer (L1, per layer)", "% of the layer's weights")
    total = 12 if cfg.kind == "heads" else 1536
    counts = [round(v * total) for v in rep.removed.values()]
    return plots.layer_bars(list(rep.removed), counts, f"{TP.UNIT[cfg.kind].capitalize()} removed per layer",
                            f"{TP.UNIT[cfg.kind]} removed (of {total})")


def units_map(p: TP.PrunePlan, cfg: TP.TextPruneConfig):
    """The map of the heads or FFN neurons each transformer layer keeps (also drawn by the benchmark)."""
    total = 12 if cfg.kind == "heads" else 1536
    kept = np.zeros((len(p.keep), total), dtype=bool)
    for i, k in enumerate(p.keep):
        kept[i, k.numpy()] = True
    fig = plots.mask_heatmap(kept, f"{TP.UNIT[cfg.kind].capitalize()} kept (light)")
    fig.update_layout(xaxis_title_text="head" if cfg.kind == "heads" else "FFN neuron",
                      yaxis_title_text="transformer layer", height=280)
    return fig


def _full_split(name: str, cfg: TP.TextPruneConfig) -> None:
    """The button that measures the current setting on the whole test split, and its result when there is one."""
    done = st.session_state.setdefault(FULL, {})
    key = f"{name}|{cfg}"
    n = len(ui.split(name, False))
    if st.button(f"Measure on the whole test split ({n} sentences)", key="text_prune_full_button"):
        bar = st.progress(0.0, "Embedding the whole test split with the pruned encoder…")
        ref = ui.reference(name, False)
        model = pruned(name, cfg)[0]
        done[key] = TP.evaluate_in_parts(model, ui.split(name, False), ref,
                                         on_part=lambda i, k: bar.progress(i / k, f"part {i} of {k} embedded"))
        bar.empty()
    if key in done:
        st.markdown(f"**The whole test split** ({ui.where(name, False)}), this setting:")
        ui.show_quality(done[key], ui.original_quality(name, False), name, quick=False)


def _buys(name: str, cfg: TP.TextPruneConfig, rep: TP.TextPruneReport, orig: TP.TextPruneReport,
          teacher: bool) -> None:
    st.subheader("What it buys: the original and the pruned encoder, timed")
    timed = Timed("text_prune_retime", lambda: latencies.clear(name, cfg), teacher)
    lat = timed.measure("Timing the two encoders side by side…", lambda: latencies(name, cfg))
    rows = [("original", orig, lat["original"]),
            (f"{SHORT_KIND[cfg.kind]} at {cfg.ratio:.2f}", rep, lat["pruned"])]
    timed.show(pd.DataFrame([{
        "model": label, "parameters": r.params, "non-zeros": r.nonzeros, "size, MiB (measured)": round(r.size_bytes / 2**20, 2),
        "mean cosine (quick set)": round(r.quality.mean_cosine, 4),
        "latency b=1, ms": round(b1.median_ms, 2), "b=1 IQR, ms": round(b1.iqr_ms, 2),
        "latency b=32, ms": round(b32.median_ms, 1), "b=32 IQR, ms": round(b32.iqr_ms, 1),
        "speed-up b=32": round(lat["original"][1].median_ms / b32.median_ms, 2)} for label, r, (b1, b32) in rows]))
    o32, p32 = lat["original"][1], lat["pruned"][1]
    speed = o32.median_ms / p32.median_ms
    why = ("the masked encoder keeps every dense tensor, so dense kernels multiply the zeros too: no real speed-up "
           "is expected" if not rep.thin else
           f"its Linear layers are really smaller ({rep.shape['heads'][0]} heads and {rep.shape['ffn'][0]} FFN neurons "
           "per layer), so there is less to compute")
    timed.explain(f"At batch 32 the pruned encoder runs at **{speed:.2f}x** the original's speed — {why}. Latency: "
                  f"median of up to {o32.repeats} timed runs after {o32.warmup} warm-up, the two encoders timed in "
                  f"turn on real test sentences (one of median length at batch 1; 32 spread over the lengths, padded, "
                  f"at batch 32), {o32.threads} thread(s), on this server's CPU; the original's spread (IQR) was "
                  f"{o32.iqr_ms / o32.median_ms:.0%} of its median, so smaller differences are noise.",
                  [b for pair in lat.values() for b in pair], markdown=True)


def page(s: TextSample, teacher: bool) -> None:
    """The whole lab for the text sample."""
    name = s.name
    st.title(f"Pruning lab — {name} (text)")
    st.caption("Move the prune ratio and choose what goes: single weights (masked to zero: the tensors keep their "
               "shape, so the model is neither smaller on disk nor faster — only a sparse format would be smaller), "
               "or whole FFN neurons or attention heads (removed for real: smaller Linear layers, a smaller and "
               "faster model). Quality is measured against the original encoder's embeddings of held-out sentences.")
    with state.friendly_errors():
        cfg = _controls(s, teacher)
        with st.spinner("Pruning and embedding the quick set…"):
            rep = report(name, cfg)
        base = ui.original_quality(name, True)
        orig = original(name)
    for note in rep.notes:
        st.warning(note)

    st.markdown(f"**Embedding quality**, measured on {ui.where(name, True)}, against the original encoder:")
    ui.show_quality(rep.quality, base, name, quick=True)
    _full_split(name, cfg)
    _sizes(rep, orig)
    st.caption("Sizes: **measured** bytes of torch.save files" +
               (f", except the sparse size, **modelled** as `{rep.sparse.format}` storage ({rep.sparse.detail})."
                if rep.sparse is not None else "; the thin model is a real, smaller encoder."))

    left, right = st.columns(2)
    with left:
        st.plotly_chart(removed_chart(rep, cfg), key="text_prune_layers")
    curve_slot = right.container()

    layer = TEACHER_LAYER[cfg.kind] if teacher else st.session_state.get("prune_layer", DEFAULT_LAYER)
    view = layer_view(name, cfg, layer)
    left, right = st.columns(2)
    with left:
        thr = view["threshold"] if not rep.thin else None
        st.plotly_chart(plots.weight_histogram(_weights(name, layer), f"{layer}: all weights and those kept",
                                               threshold=thr, after=view["after"]), key="text_prune_hist")
        st.caption(f"{view['removed']:.1%} of this layer's {view['shape'][0]} x {view['shape'][1]} weights removed"
                   + (f": every |w| up to {thr:.3g} (the dashed lines)." if thr else
                      ": whole rows or columns of removed units." if view["removed"] else
                      " — nothing is removed from this layer at this setting."))
    with right:
        if rep.thin:
            st.plotly_chart(units_map(pruned(name, cfg)[1], cfg), key="text_prune_units")
            st.caption("Scored by the L2 norm of every weight that computes or reads the unit; the lowest-scored go "
                       "in each layer.")
        else:
            r, c = view["crop"].shape
            st.plotly_chart(plots.mask_heatmap(view["crop"], f"{short(layer)} mask, rows 0-{r - 1} x columns 0-{c - 1}"),
                            key="text_prune_mask")

    with curve_slot:
        with st.spinner(f"Computing the quality curve for {TP.KINDS[cfg.kind]} (once per kind)…"):
            qs = curve(name, cfg.kind)
        fig = plots.line_chart(CURVE, {"mean cosine to original": [q.mean_cosine for q in qs],
                                       "top-1 neighbour agreement": [q.top1_agreement for q in qs],
                                       "paraphrase found (top-1)": [q.paraphrase_top1 for q in qs]},
                               f"Quality against prune ratio ({TP.KINDS[cfg.kind]})", "prune ratio",
                               "cosine / fraction", marker=cfg.ratio, height=340)
        fig.update_layout(legend_y=-0.32)   # below the axis title
        st.plotly_chart(fig, key="text_prune_curve")
        st.caption(f"One-shot (no fine-tuning), measured on the quick set at ratios {', '.join(map(str, CURVE))}; "
                   f"computed once per kind. Dashed: the current ratio (mean cosine {rep.quality.mean_cosine:.4f}).")

    _buys(name, cfg, rep, orig, teacher)
