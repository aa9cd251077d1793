"""The home page's family panels: the only part of the home that differs between model families. A classifier's card
and a gallery of test inputs with its predictions; a sentence encoder's card and a picture of what its embeddings do
(cosine similarities of test sentences and each one's nearest neighbour). Everything else on the home (metric row,
layer table, histogram, timing) is drawn once for every family by views/0_Home.py."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from slimcore import plots
from slimcore import text as T

from . import cache, work
from .components import timing_task

SHOWN = 12  # sentences in the similarity picture: the first six paraphrase pairs of the test split


@dataclass(frozen=True)
class Panel:
    """What one family draws on the home: its card (above the figures) and its picture (below them)."""

    card: Callable[[Any], None]
    picture: Callable[[Any, Any], None]   # (sample, its measurement: slimcore.Measurement)


# Classifiers ---------------------------------------------------------------------------------------------------------

def classifier_card(s: Any) -> None:
    card = s.card
    st.subheader(f"{s.name}: {card['architecture']}")
    c1, c2 = st.columns([3, 2])
    c1.markdown(f"**Dataset:** {card['dataset']} — {card['splits']['train']} train / {card['splits']['val']} "
                f"validation / {card['splits']['test']} test examples (split seed {card['splits']['split_seed']}).  \n"
                f"**Trained** with {card['training']['optimizer']} (lr {card['training']['lr']}, batch "
                f"{card['training']['batch_size']}, {card['training']['epochs']} epochs, seed "
                f"{card['training']['seed']}) by `{card['command']}`.  \n**Published reference (other data, context "
                f"only):** {card['reference']}")
    with c2.expander("Module"):
        st.code(card["module"], language="text")


def gallery(s: Any, m: Any) -> None:
    st.subheader("Test examples and predictions")
    ex = cache.examples(s.name)
    st.plotly_chart(plots.example_gallery(ex["x"], ex["y"], ex["pred"], ex["conf"]), key="home_examples")


# Sentence encoders ---------------------------------------------------------------------------------------------------

def encoder_card(s: Any) -> None:
    card, sent = s.card, s.card["sentences"]
    st.subheader(f"{s.name}: {card['model']} — {card['architecture']}")
    c1, c2 = st.columns([3, 2])
    c1.markdown(f"**What it does:** {card['task']}.  \n**Source:** {card['source']}.  \n**Trained by:** "
                f"{card['trained_by']}.  \n**Licence:** {card['license']}.  \n**Encoder:** {card['encoder']}.  \n"
                f"**Evaluation:** {card['evaluation']} — {sent['test']} held-out test sentences ({sent['test_pairs']} "
                f"pairs), of which the first {sent['quick']} form the quick set the sliders use; {sent['train']} "
                "training sentences (for distillation and calibration only).  \n"
                f"**Published reference (other measurement, context only):** {card['reference']}")
    with c2.expander("Module"):
        st.code(str(s.model), language="text")


@st.cache_data(show_spinner="Embedding the held-out sentences…")
def neighbours(name: str) -> dict:
    """Cosine similarities among the first sentences of the test split, and each one's nearest neighbour in it."""
    s = cache.text_sample(name)
    sp = s.test
    emb = T.embed(s.model, sp)
    sim = (emb[:SHOWN] @ emb[:SHOWN].T).numpy()
    near = T.nearest(emb)
    rows = [{"sentence": sp.texts[i], "topic": sp.topics[i],
             "nearest neighbour (of all test sentences)": sp.texts[int(near[i])],
             "cosine": round(float(emb[i] @ emb[int(near[i])]), 3),
             "is its paraphrase": sp.groups[i] >= 0 and sp.groups[int(near[i])] == sp.groups[i]} for i in range(SHOWN)]
    return {"sim": sim, "labels": list(sp.texts[:SHOWN]), "rows": rows}


def similarity(s: Any, m: Any) -> None:
    st.subheader("What its embeddings do")
    q = m.score.detail   # the original's own figures on the test split (slimcore.text.TextQuality)
    nb = neighbours(s.name)
    left, right = st.columns([3, 2])
    right.metric("Paraphrase found (top-1)", f"{q.paraphrase_top1:.1%}",
                 help=f"Measured on {q.sentences} held-out test sentences: how often a sentence's nearest neighbour is "
                      "its own paraphrase. The compression labs compare every compressed encoder with this original.")
    left.plotly_chart(plots.similarity_heatmap(nb["sim"], nb["labels"], f"Cosine similarity of the first {SHOWN} "
                                               "test sentences (six paraphrase pairs)"), key="home_sim")
    # full width, wrapped: in a side column a data grid cut every sentence and hid the columns after it
    st.table(pd.DataFrame(nb["rows"]), hide_index=True)


PANELS = {"classifier": Panel(classifier_card, gallery), "encoder": Panel(encoder_card, similarity)}


def panel(family: str) -> Panel:
    """The home panel of a model family."""
    return PANELS[family]


# What every family shows --------------------------------------------------------------------------------------------

def layer_rows(s: Any, m: Any) -> list[dict]:
    """The layer table: the compressible layers (slimcore.measure's), then any other weight matrix of the model that
    compression leaves alone (an encoder's embedding tables), each marked so."""
    rows = [{"layer": r.name, "type": r.kind, "weight shape": " x ".join(map(str, r.weight_shape)),
             "parameters": r.params, "non-zeros": r.nonzeros, "MACs / example": r.macs, "compressed": True}
            for r in m.layers]
    named = {r.name for r in m.layers}
    for n, p in s.model.named_parameters():
        if p.dim() >= 2 and n.rpartition(".")[0] not in named:
            rows.append({"layer": n, "type": "table (lookup)", "weight shape": " x ".join(map(str, p.shape)),
                         "parameters": p.numel(), "non-zeros": int(np.count_nonzero(p.detach().numpy())),
                         "MACs / example": 0, "compressed": False})
    return rows


def size_text(size: int) -> str:
    """Bytes as the home writes them: KiB below 10 MiB, MiB above."""
    return f"{size / 1024:,.1f} KiB" if size < 10 * 2**20 else f"{size / 2**20:,.1f} MiB"


def timing(name: str) -> work.Task:
    """The Home page's timed block: the model at batch 1 and at its family's large batch (cache.baseline_latency)."""
    return timing_task("Timing the model at batch 1 and a large batch", name, f"baseline|{name}",
                       lambda: cache.baseline_latency(name))
