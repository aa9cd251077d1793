"""Home page of the text sample (minilm): its card, measured baseline figures, layers and what its embeddings do."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from slimcore import plots
from slimcore import text as T
from slimcore.text import TextSample

from . import cache
from . import text as ui
from .components import Timed

SHOWN = 12  # sentences in the similarity picture: the first six paraphrase pairs of the test split


@st.cache_data(show_spinner=False)
def layer_rows(name: str) -> list[dict]:
    """The encoder's parameters by layer: the embedding tables, then the 36 Linear layers with their group."""
    m = cache.sample(name).model
    rows = [{"layer": n, "group": "embeddings", "weight shape": " x ".join(map(str, p.shape)), "parameters": p.numel()}
            for n, p in m.named_parameters() if n.startswith("embeddings.") and p.dim() == 2]
    for n, lin in T.linear_layers(m).items():
        rows.append({"layer": n, "group": T.GROUP_LABELS[T.group_of(n)],
                     "weight shape": " x ".join(map(str, lin.weight.shape)),
                     "parameters": lin.weight.numel() + lin.bias.numel()})
    return rows


@st.cache_data(show_spinner=False)
def weights(name: str, layer: str) -> np.ndarray:
    """A copy of one Linear layer's weights as a flat array."""
    return T.linear_layers(cache.sample(name).model)[layer].weight.detach().numpy().ravel().copy()


@st.cache_data(show_spinner="Embedding the held-out sentences…")
def neighbours(name: str) -> dict:
    """Cosine similarities among the first sentences of the test split, and each one's nearest neighbour in it."""
    sp = ui.split(name, quick=False)
    emb = ui.reference(name, quick=False)
    sim = (emb[:SHOWN] @ emb[:SHOWN].T).numpy()
    near = T.nearest(emb)
    rows = [{"sentence": sp.texts[i], "topic": sp.topics[i], "nearest neighbour (of all test sentences)": sp.texts[int(near[i])],
             "cosine": round(float(emb[i] @ emb[int(near[i])]), 3),
             "is its paraphrase": sp.groups[i] >= 0 and sp.groups[int(near[i])] == sp.groups[i]} for i in range(SHOWN)]
    return {"sim": sim, "labels": list(sp.texts[:SHOWN]), "rows": rows}


def page(s: TextSample, teacher: bool) -> None:
    name, card = s.name, s.card
    sent = card["sentences"]
    st.subheader(f"{name}: {card['model']} — {card['architecture']}")
    c1, c2 = st.columns([3, 2])
    c1.markdown(f"**What it does:** {card['task']}.  \n**Source:** {card['source']}.  \n**Trained by:** "
                f"{card['trained_by']}.  \n**Licence:** {card['license']}.  \n**Encoder:** {card['encoder']}.  \n"
                f"**Evaluation:** {card['evaluation']} — {sent['test']} held-out test sentences ({sent['test_pairs']} "
                f"pairs), of which the first {sent['quick']} form the quick set the sliders use; {sent['train']} "
                "training sentences (for distillation and calibration only).  \n"
                f"**Published reference (other measurement, context only):** {card['reference']}")
    with c2.expander("Module"):
        st.code(str(s.model), language="text")

    with st.spinner("Measuring the original encoder…"):
        full = ui.original_quality(name, quick=False)
        size = ui.size_bytes(name)
    cols = st.columns(5)
    cols[0].metric("Parameters", f"{card['parameters']:,}",
                   help="Of which 11.9 M are the embedding tables (a lookup, not a matrix product).")
    cols[1].metric("Size (measured)", f"{size / 2**20:,.1f} MiB", help="Measured: bytes of the state dict written by torch.save.")
    cols[2].metric("Paraphrase found (top-1)", f"{full.paraphrase_top1:.1%}",
                   help=f"Measured on {ui.where(name, False)}: how often a sentence's nearest neighbour is its own "
                        "paraphrase. The compression labs compare every compressed encoder with this original.")
    lat_cols = cols[3].empty(), cols[4].empty()  # filled last: timing waits for the figures
    timed = Timed("text_home_retime", lambda: ui.original_latency.clear(name), teacher, table=False)

    st.subheader("Layers")
    rows = layer_rows(name)
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", height=260)
    left, right = st.columns(2)
    with left:
        linear = [r["layer"] for r in rows if r["group"] != "embeddings"]
        layer = st.selectbox("Layer to inspect", linear, key="text_home_layer")
        w = weights(name, layer)
        st.plotly_chart(plots.weight_histogram(w, title=f"{layer}: {w.size:,} weights"), key="text_home_hist")
    with right:
        groups = pd.DataFrame(rows).groupby("group", sort=False)["parameters"].sum()
        st.plotly_chart(plots.layer_bars(list(groups.index), list(groups.values), "Parameters per group", "parameters"),
                        key="text_home_groups")

    st.subheader("What its embeddings do")
    nb = neighbours(name)
    left, right = st.columns([3, 2])
    left.plotly_chart(plots.similarity_heatmap(nb["sim"], nb["labels"], f"Cosine similarity of the first {SHOWN} "
                                               "test sentences (six paraphrase pairs)"), key="text_home_sim")
    right.dataframe(pd.DataFrame(nb["rows"]), hide_index=True, height=460)

    b1, b32 = timed.measure("Timing…", lambda: ui.original_latency(name))
    lat_cols[0].metric("Latency b=1 (measured)", f"{b1.median_ms:.1f} ms", help=b1.describe())
    lat_cols[1].metric("Latency b=32 (measured)", f"{b32.median_ms:.1f} ms", help=b32.describe())
    timed.explain(f"Latency measured on this server's CPU on real test sentences: batch 1 is one median-length "
                  f"sentence ({b1.describe()}); batch 32 is 32 sentences spread over the lengths, padded to the "
                  f"longest ({b32.describe()}).", (b1, b32))
