"""The Sensitivity lab on the text sample (minilm): each (transformer layer, layer group) cell of Linear layers is
pruned or fake-quantized ALONE and the drop in mean cosine to the original embeddings is measured on the quick set;
a 6 x 4 heatmap and a sorted table. Each cell is a cached piece, so a scan shows progress and a revisit is instant."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from slimcore import plots
from slimcore import text as T
from slimcore import text_quant as TQ
from slimcore.text import TextSample

from . import cache, state, urlstate
from . import text as ui
from .quant import GRANULARITIES
from .urlstate import Choice, Float, Int

KINDS = {"prune": "pruning", "quantize": "fake quantization"}
DONE = "text_sens_done"   # session key: the scan settings this session has asked for (shown without a new click)


@st.cache_data(show_spinner=False, max_entries=4096)
def cell(name: str, kind: str, ratio: float, bits: int, per_channel: bool, layer: int, group: str) -> T.TextQuality:
    """One cell compressed alone, measured on the quick set."""
    model = cache.sample(name).model
    cfg = TQ.CellConfig(kind, ratio, bits, per_channel)
    variant = TQ.cell_variant(model, cfg, TQ.select(model, [group], [layer]))
    return T.evaluate(variant, ui.split(name), ui.reference(name))


def scan(name: str, cfg: TQ.CellConfig) -> list[TQ.CellRow]:
    """Every cell, piece by piece (each cached), with a progress bar between them."""
    depth = len(cache.sample(name).model.encoder.layer)
    cells = [(i, g) for i in range(depth) for g in T.GROUPS]
    bar = st.progress(0.0, "Compressing one cell at a time…")
    rows = []
    for k, (i, g) in enumerate(cells):
        rows.append(TQ.CellRow(i, g, cell(name, cfg.kind, cfg.ratio, cfg.bits, cfg.per_channel, i, g)))
        bar.progress((k + 1) / len(cells), f"Measured {k + 1} of {len(cells)} cells…")
    bar.empty()
    return rows


def page(s: TextSample, teacher: bool) -> None:
    name = s.name
    st.title("Sensitivity lab")
    st.caption("Which Linear layers of the sentence encoder can be compressed hard, and which move its embeddings? "
               "Each cell — one layer group (attention q/k/v, attention output, FFN in, FFN out) of one of the six "
               "transformer layers — is compressed **alone**, everything else left as it is, and the encoder is "
               f"evaluated on {ui.where(name)}. A cell's figure is the drop in mean cosine to the original embeddings "
               "(1 − mean cosine; 0 = unchanged). Masks and fake quantization are **simulations**: the weights stay "
               "dense fp32.")
    url = urlstate.Spec(Choice("sens_kind", list(KINDS)), Float("sens_ratio", 0.5, 0.05, 0.95, 0.05),
                        Int("sens_bits", 4, 2, 16), Choice("sens_granularity", list(GRANULARITIES), advanced=True))
    url.load()
    c1, c2, c3 = st.columns([2, 3, 2])
    kind = c1.radio("Compress each cell by", list(KINDS), format_func=KINDS.get, key="sens_kind", horizontal=True)
    if kind == "prune":
        ratio = c2.slider("Prune ratio (each Linear of the cell)", 0.05, 0.95, step=0.05, key="sens_ratio",
                          help="The smallest-|w| fraction of each Linear layer's weights set to zero (L1, "
                               "unstructured, within the layer).")
        bits, per_channel = url.default("sens_bits"), False
    else:
        bits = c2.slider("Weight bits (each Linear of the cell)", 2, 16, key="sens_bits",
                         help="A symmetric k-bit grid fitted to each weight matrix (or each output channel).")
        ratio = url.default("sens_ratio")
        per_channel = False if teacher else GRANULARITIES[c3.radio(
            "Quantization grid", list(GRANULARITIES), key="sens_granularity", horizontal=True,
            help="Symmetric k-bit grid, one scale per weight matrix or per output channel.")]
    url.save()
    with state.friendly_errors():
        cfg = TQ.CellConfig(kind, round(float(ratio), 2), int(bits), bool(per_channel))
    done = st.session_state.setdefault(DONE, [])
    if cfg not in done:
        offer = st.empty()  # the offer goes away once taken: the scan's progress replaces it
        with offer.container():
            st.info(f"24 evaluations on the quick set, about 10–20 s: {cfg.describe()}.")
            go = st.button("Scan the 24 cells", key="text_sens_scan", type="primary")
        if not go:
            return
        offer.empty()
        done.append(cfg)
    with state.friendly_errors():
        rows = scan(name, cfg)
    grid = TQ.drop_grid(rows)
    layers = [f"layer {i}" for i in range(grid.shape[0])]
    groups = [T.GROUP_LABELS[g] for g in T.GROUPS]
    left, right = st.columns([3, 2])
    left.plotly_chart(plots.drop_heatmap(grid, layers, groups, f"Drop in mean cosine, one cell {TQ.KINDS[kind]} alone",
                                         "layer group", "transformer layer", "1 − mean cosine"), key="text_sens_heat")
    frame = pd.DataFrame([{"transformer layer": r.layer, "group": T.GROUP_LABELS[r.group],
                           "drop in mean cosine": r.drop, "mean cosine": r.quality.mean_cosine,
                           "worst cosine": r.quality.worst_cosine, "Spearman": r.quality.spearman,
                           "top-1 agreement": r.quality.top1_agreement} for r in rows])
    frame = frame.sort_values("drop in mean cosine", ascending=False, kind="stable")
    right.dataframe(frame.style.format({"drop in mean cosine": "{:.4f}", "mean cosine": "{:.4f}",
                                        "worst cosine": "{:.4f}", "Spearman": "{:.4f}", "top-1 agreement": "{:.1%}"}),
                    hide_index=True, height=520)
    by_group = np.nanmean(grid, axis=0)
    worst = frame.iloc[0]
    st.caption(f"{cfg.describe().capitalize()}. Measured most sensitive cell: **{worst['group']} of layer "
               f"{worst['transformer layer']}** (drop {worst['drop in mean cosine']:.4f}). Mean drop per group over the "
               "six layers: " + ", ".join(f"{g} {v:.4f}" for g, v in zip(groups, by_group)) + ". Each cell is one "
               "real evaluation with only that cell changed; cells interact, so drops do not simply add up.")
