"""Shared glue of the text labs (the `minilm` encoder): cached reference embeddings, baseline figures, and the row of
embedding-quality metrics that every text lab shows in the same words."""
from __future__ import annotations

import streamlit as st
import torch

from slimcore import Latency, serialized_bytes
from slimcore import text as T

from . import cache
from .components import delta, metric_slots


def is_text(s) -> bool:
    """True for the text sample (a slimcore.text.TextSample)."""
    return getattr(s, "kind", "") == "text"


def split(name: str, quick: bool = True) -> T.TextSplit:
    """The quick set (the sliders' held-out sentences) or the whole test split."""
    s = cache.text_sample(name)
    return s.data.quick_set if quick else s.test


@st.cache_resource(show_spinner="Embedding the held-out sentences with the original model…")
def reference(name: str, quick: bool = True) -> torch.Tensor:
    """The original encoder's embeddings of the quick set or the whole test split (shared, read-only)."""
    return T.embed(cache.sample(name).model, split(name, quick))


@st.cache_data(show_spinner=False)
def original_quality(name: str, quick: bool = True) -> T.TextQuality:
    """The original against itself: cosine and agreement are 1 by definition; paraphrase top-1 is its own score."""
    ref = reference(name, quick)
    return T.quality(ref, ref, split(name, quick))


@st.cache_data(show_spinner=False)
def size_bytes(name: str) -> int:
    """Measured: torch.save of the original encoder's state dict."""
    return serialized_bytes(cache.sample(name).model)


@st.cache_data(show_spinner=False)
def original_latency(name: str) -> tuple[Latency, Latency]:
    """The original encoder at batch 1 and 32 on real test sentences (timed once per process)."""
    return T.latencies({"original": cache.sample(name).model}, split(name, False), max_seconds=1.0)["original"]


def where(name: str, quick: bool = True) -> str:
    """Which sentences a figure was measured on, in words."""
    sp = split(name, quick)
    return (f"{len(sp)} held-out sentences ({'the quick set' if quick else 'the whole test split'}: "
            f"{sum(1 for p in sp.pairs if p[2] == 'paraphrase')} paraphrase, "
            f"{sum(1 for p in sp.pairs if p[2] == 'contrast')} contrast and "
            f"{sum(1 for p in sp.pairs if p[2] == 'unrelated')} unrelated pairs)")


def show_quality(q: T.TextQuality, base: T.TextQuality, name: str, quick: bool = True, cols=None) -> None:
    """The five embedding-quality metrics, measured against the original encoder's embeddings."""
    cols = cols if cols is not None else metric_slots(5)
    on = where(name, quick)
    cols[0].metric("Mean cosine to original", f"{q.mean_cosine:.4f}",
                   help=f"Measured: cosine similarity of each compressed embedding to the original's, averaged "
                        f"over {on}. 1 means unchanged.")
    cols[1].metric("Worst cosine", f"{q.worst_cosine:.4f}",
                   help=f"Measured: the lowest of those cosines, for: “{q.worst_sentence[:160]}”")
    cols[2].metric("Neighbour agreement", f"{q.top1_agreement:.1%}",
                   help=f"Measured: top-1 neighbour agreement, how often a sentence's nearest neighbour (by cosine, "
                        f"among {q.sentences}) is the same sentence as under the original encoder.")
    cols[3].metric("Pair-rank Spearman", f"{q.spearman:.4f}",
                   help=f"Measured: Spearman rank correlation of the {q.pairs} pair similarities (paraphrase, "
                        "contrast, unrelated) with the original's. 1 means every pair keeps its rank.")
    cols[4].metric("Paraphrase found (top-1)", f"{q.paraphrase_top1:.1%}",
                   **delta((q.paraphrase_top1 - base.paraphrase_top1) * 100, "{:+.1f} pt"),
                   help="Measured against ground truth: how often a sentence's nearest neighbour is its own paraphrase "
                        f"(the original encoder: {base.paraphrase_top1:.1%}).")
