"""The Quantization lab's panels for sentence encoders (minilm), where the pictures differ from a classifier's: the
embedding-quality detail figures, why int8 gains more at batch 1 (each Linear shape timed alone), which layer group
is the most sensitive, and the figures on the whole test split. Everything else is slimui.quant's, for any family.
"""
from __future__ import annotations

import json
from collections.abc import Sequence

import pandas as pd
import streamlit as st

from slimcore import plots
from slimcore import text as T
from slimcore import text_quant as TQ
from slimcore.families import Score
from slimcore.quantization import QuantConfig

from . import cache
from . import quant as qui
from . import text as ui
from .components import Timed

METRICS = ("Mean cosine to original", "Worst cosine", "Top-1 neighbour agreement", "Spearman of pair similarities",
           "Paraphrase found (top-1)")


def _row(q: T.TextQuality) -> list[str]:
    return [f"{q.mean_cosine:.4f}", f"{q.worst_cosine:.4f}", f"{q.top1_agreement:.1%}", f"{q.spearman:.4f}",
            f"{q.paraphrase_top1:.1%}"]


def detail(score: Score) -> dict[str, str]:
    """The int8 table's detail columns: the embedding-quality figures after the mean cosine."""
    return dict(zip(METRICS[1:], _row(score.detail)[1:]))


def curve_series(scores: list[Score]) -> dict[str, list[float]]:
    """The quality-vs-bits curve's lines: mean and worst cosine, and Spearman of pair similarities."""
    return {"mean cosine": [s.detail.mean_cosine for s in scores],
            "worst cosine": [s.detail.worst_cosine for s in scores], "Spearman": [s.detail.spearman for s in scores]}


def quality(score: Score, base: Score, name: str) -> None:
    """The five embedding-quality figures of the simulated encoder (measured on the quick set)."""
    ui.show_quality(score.detail, base.detail, name)


# --------------------------------------------------------------------------------------------- cached pieces

@st.cache_data(show_spinner=False)
def kernels(name: str) -> list[TQ.KernelTime]:
    """The three Linear shapes timed alone, fp32 against int8, at batch 1's and batch 32's token counts."""
    x = T.timing_batches(ui.split(name, False), 32)
    return TQ.kernel_times(cache.text_sample(name).model, [x[1].numel(), x[32].numel()], max_seconds=0.5)


@st.cache_data(show_spinner=False, max_entries=512)
def group_piece(name: str, group: str, method: str, bits: int, per_channel: bool) -> T.TextQuality:
    """One layer group quantized alone (real int8 or fake k-bit), measured on the quick set."""
    model = TQ.group_variant(cache.text_sample(name).model, group, method, QuantConfig(bits, per_channel=per_channel))
    return T.evaluate(model, ui.split(name), ui.reference(name))


def _progress(label: str):
    bar = st.progress(0.0, label)
    return bar, lambda done, total: bar.progress(done / total, f"{label} {done} of {total}…")


def groups(name: str, bits: int, per_channel: bool) -> pd.DataFrame:
    """The per-group table: each group quantized alone by each method (cached pieces, progress between them)."""
    cfg = QuantConfig(bits, per_channel=per_channel)
    bar, tick = _progress("Quantizing one group at a time:")
    rows, total = [], len(T.GROUPS) * len(TQ.GROUP_METHODS)
    for g in T.GROUPS:
        for m in TQ.GROUP_METHODS:
            q = group_piece(name, g, m, bits, per_channel)
            rows.append({"group": T.GROUP_LABELS[g], "method": TQ.method_label(m, cfg),
                         "drop in mean cosine": 1.0 - q.mean_cosine, "mean cosine": q.mean_cosine,
                         "Spearman": q.spearman, "top-1 agreement": q.top1_agreement})
            tick(len(rows), total)
    bar.empty()
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------------- panels

def sections(name: str, cfg: QuantConfig) -> None:
    """The encoder's sections under the int8 table: the layer-group scan, then the whole test split."""
    _groups_section(name, cfg)
    _full_split_section(name, cfg)


def why(timed: Timed, name: str, lat: dict) -> None:
    """The caption under the int8 table: the measured speed-ups and why batch 1 gains more than batch 32."""
    small, large = sorted(lat["fp32"])
    per_channel = "int8 per channel"
    b1, b32 = (lat["fp32"][b].median_ms / lat[per_channel][b].median_ms for b in (small, large))
    x = T.timing_batches(ui.split(name, False), large)
    one = lat["fp32"][small]
    text = (f"Latency measured on this server's CPU ({one.threads} thread(s)), fp32 and int8 timed round-robin: "
            f"batch {small} is one median-length sentence ({x[small].shape[1]} tokens), batch {large} is {large} "
            f"sentences padded to {x[large].shape[1]} tokens. torch.ao's int8 per channel is **{b1:.2f}×** as fast "
            f"as fp32 at batch {small} and **{b32:.2f}×** at batch {large}. ")
    text += (f"Batch {small} gains more here. " if b1 > b32 else
             f"This time batch {small} did not gain more than batch {large}, as it usually does on this machine: "
             "small timings suffer most from a busy CPU. ")
    text += (f"Why: at batch {small} each Linear multiplies a few token rows by its whole weight matrix, so reading "
             "the weights dominates, and int8 weights are a quarter of the bytes (the encoder Linears' int8 weights "
             "fit in this CPU's 32 MiB L3 cache; their fp32 weights do not). At larger batches the matrix products "
             "are large and bound by arithmetic, where fp32 kernels are efficient and this CPU's int8 kernels (AVX2, "
             "no VNNI: no single int8 dot-product instruction) measure only about 1.6–2× faster per Linear; each "
             "input is quantized first, and attention, GELU and LayerNorm stay fp32 and cost the same. The expander "
             "below times each Linear shape alone.")
    timed.explain(text, [b for per in lat.values() for b in per.values()])
    with st.expander(f"Why batch {large} gains less: each Linear shape timed alone (measured)"):
        if st.button("Time the three Linear shapes", key="text_quant_kernels") or st.session_state.get("tq_kernels"):
            st.session_state["tq_kernels"] = True
            with st.spinner("Timing fp32 and int8 matrix products…"):
                ks = kernels(name)
            st.dataframe(pd.DataFrame([{"Linear (in × out)": k.shape, "token rows": k.tokens,
                                        "fp32 (ms)": round(k.fp32.median_ms, 3),
                                        "int8 (ms)": round(k.int8.median_ms, 3),
                                        "int8 speed-up": f"{k.speedup:.2f}×"} for k in ks]), hide_index=True)
            st.caption("Layer 0's real weights, normal-noise inputs with as many rows as the timed batches have "
                       "tokens; median of round-robin repeats, int8 per channel.")


def _groups_section(name: str, cfg: QuantConfig) -> None:
    st.subheader("Which layer group is the most sensitive?")
    st.caption("One group at a time is quantized (its Linear layers in all six transformer layers), the other groups "
               f"stay fp32; each row is one evaluation on {ui.where(name)}. Published context (another measurement, "
               "not ours): with dynamic int8, the FFN output projections are reported to be the most sensitive.")
    done = st.session_state.get("tq_groups")
    label = (f"Measure the groups at {cfg.bits} bits" if done is None else
             f"Measure again at {cfg.bits} bits {'per channel' if cfg.per_channel else 'per tensor'}")
    if st.button(label, key="text_quant_groups", disabled=done == (cfg.bits, cfg.per_channel)):
        done = st.session_state["tq_groups"] = (cfg.bits, cfg.per_channel)
    if done is None:
        st.info("Twelve evaluations (four groups × three methods), about 10 s: press the button.")
        return
    frame = groups(name, *done)
    left, right = st.columns([3, 2])
    series: dict[str, Sequence[float]] = {m: list(frame[frame.method == m]["drop in mean cosine"])
                                          for m in dict.fromkeys(frame.method)}
    left.plotly_chart(plots.grouped_bars([T.GROUP_LABELS[g] for g in T.GROUPS], series,
                                         f"Drop in mean cosine with one group quantized alone (bits {done[0]})",
                                         "layer group (alone)", "1 − mean cosine", text_format="{:.4f}"),
                      key="tq_groups")
    right.dataframe(frame.style.format({"drop in mean cosine": "{:.4f}", "mean cosine": "{:.4f}", "Spearman": "{:.4f}",
                                        "top-1 agreement": "{:.1%}"}), hide_index=True, height=460)
    worst = frame.loc[frame.groupby("method")["drop in mean cosine"].idxmax()]
    st.caption("Measured most sensitive group: "
               + "; ".join(f"{r.method}: **{r.group}** (drop {r['drop in mean cosine']:.4f})"
                           for _, r in worst.iterrows()) + ".")


def _full_split_section(name: str, cfg: QuantConfig) -> None:
    st.subheader("On the whole test split")
    done = st.session_state.get("tq_full")
    if st.button(f"Measure on the whole test split ({len(ui.split(name, False))} sentences)", key="text_quant_full"):
        done = st.session_state["tq_full"] = qui.key(cfg)
    if done is None:
        st.caption("The figures above are on the quick set, so that the slider stays fast. This measures the current "
                   "fake-quantized encoder and the real int8 encoders on every held-out sentence (a few seconds).")
        return
    labels = qui.int8_labels(name)
    bar, tick = _progress("Embedding the whole test split:")
    fake = qui.fake_score(name, done, "test").detail
    tick(1, 1 + len(labels))
    real = {}
    for i, k in enumerate(labels):
        real[k] = qui.int8_figures(name, k, "test")["score"].detail
        tick(2 + i, 1 + len(labels))
    bar.empty()
    full = QuantConfig.from_dict(json.loads(done))
    rows = [[f"fake {full.describe()} (simulated)", *_row(fake)]] + [[f"real {k}", *_row(q)] for k, q in real.items()]
    st.dataframe(pd.DataFrame(rows, columns=["model", *METRICS]), hide_index=True, width="stretch")
    st.caption(f"Measured on {ui.where(name, False)}" + ("" if done == qui.key(cfg) else
               f" — for the setting when you pressed ({full.describe()}); press again for the current one") + ".")
