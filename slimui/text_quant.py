"""The Quantization lab on the text sample (minilm): fake k-bit quantization of the encoder's Linear weights
(simulated, on the quick set), real dynamic int8 per tensor and per channel, and per channel with the word-embedding
table in 8 bits too (measured quality, size and latency), and which layer group is the most sensitive.

Cached pieces are plain records keyed by plain values; the int8 encoders are cached resources shared by every
session and only ever evaluated. Timing runs last, after everything else is drawn.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from slimcore import Latency, plots, serialized_bytes
from slimcore import text as T
from slimcore import text_quant as TQ
from slimcore.quantization import QuantConfig, modelled_bytes
from slimcore.text import TextSample

from . import cache, state, urlstate
from . import text as ui
from .components import Timed
from .quant import GRANULARITIES
from .urlstate import Choice, Int

DEFAULT_LAYER = "encoder.layer.5.output.dense"   # FFN out of the last layer: a wide weight range, a telling grid
INT8 = TQ.INT8_VARIANTS   # the real int8 encoders shown: label -> (per channel, word table in 8 bits)
METRICS = ("Mean cosine to original", "Worst cosine", "Top-1 neighbour agreement", "Spearman of pair similarities",
           "Paraphrase found (top-1)")


def _row(q: T.TextQuality) -> list[str]:
    return [f"{q.mean_cosine:.4f}", f"{q.worst_cosine:.4f}", f"{q.top1_agreement:.1%}", f"{q.spearman:.4f}",
            f"{q.paraphrase_top1:.1%}"]


# --------------------------------------------------------------------------------------------- cached pieces

@st.cache_data(show_spinner=False, max_entries=128)
def fake_quality(name: str, bits: int, per_channel: bool, quick: bool = True) -> T.TextQuality:
    """Measured quality of the fake-quantized encoder (a simulated model) on the quick set or the test split."""
    model = TQ.fake_quantized(cache.sample(name).model, QuantConfig(bits, per_channel=per_channel))
    return T.evaluate(model, ui.split(name, quick), ui.reference(name, quick))


@st.cache_data(show_spinner=False, max_entries=64)
def layer_grid(name: str, layer: str, bits: int, per_channel: bool) -> dict:
    return TQ.layer_grid(cache.sample(name).model, layer, QuantConfig(bits, per_channel=per_channel))


@st.cache_resource(show_spinner="Building the int8 encoder (torch.ao dynamic quantization)…")
def int8_model(name: str, per_channel: bool, embeddings: bool = False):
    """The real int8 encoder (all 36 Linear layers, and the word-embedding table with `embeddings`), built once per
    process and shared read-only."""
    return TQ.int8_text(cache.sample(name).model, per_channel, embeddings=embeddings)


@st.cache_data(show_spinner=False)
def int8_figures(name: str, per_channel: bool, embeddings: bool = False, quick: bool = True) -> dict:
    """Measured quality and serialized size of a real int8 encoder."""
    r = int8_model(name, per_channel, embeddings)
    return {"quality": T.evaluate(r.model, ui.split(name, quick), ui.reference(name, quick)),
            "size_bytes": serialized_bytes(r.model), "notes": " ".join(r.notes), "engine": r.engine}


@st.cache_data(show_spinner=False)
def timings(name: str) -> dict[str, tuple[Latency, Latency]]:
    """fp32 and the int8 encoders at batch 1 and 32 on real test sentences, timed side by side (round-robin)."""
    models = {"fp32": cache.sample(name).model, **{k: int8_model(name, *v).model for k, v in INT8.items()}}
    return T.latencies(models, ui.split(name, False), max_seconds=1.0)


@st.cache_data(show_spinner=False)
def kernels(name: str) -> list[TQ.KernelTime]:
    """The three Linear shapes timed alone, fp32 against int8, at batch 1's and batch 32's token counts."""
    x = T.timing_batches(ui.split(name, False), 32)
    return TQ.kernel_times(cache.sample(name).model, [x[1].numel(), x[32].numel()], max_seconds=0.5)


@st.cache_data(show_spinner=False, max_entries=512)
def group_piece(name: str, group: str, method: str, bits: int, per_channel: bool) -> T.TextQuality:
    """One layer group quantized alone (real int8 or fake k-bit), measured on the quick set."""
    model = TQ.group_variant(cache.sample(name).model, group, method, QuantConfig(bits, per_channel=per_channel))
    return T.evaluate(model, ui.split(name), ui.reference(name))


def _progress(label: str):
    bar = st.progress(0.0, label)
    return bar, lambda done, total: bar.progress(done / total, f"{label} {done} of {total}…")


def curve(name: str, per_channel: bool) -> dict[int, T.TextQuality]:
    """Quality at every bit width 2..16 (each point a cached piece, shared with the slider's own figures)."""
    bar, tick = _progress("Measuring every bit width (once per granularity):")
    out = {}
    for i, b in enumerate(TQ.CURVE_BITS):
        out[b] = fake_quality(name, b, per_channel)
        tick(i + 1, len(TQ.CURVE_BITS))
    bar.empty()
    return out


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


# ------------------------------------------------------------------------------------------------------- page

def _speed(lat: Latency, ref: Latency) -> str:
    return f"{lat.median_ms:.1f} ms (IQR {lat.iqr_ms:.1f}) · {ref.median_ms / lat.median_ms:.2f}× fp32"


def page(s: TextSample, teacher: bool) -> None:
    name = s.name
    layers = list(T.linear_layers(s.model))
    st.title("Quantization lab")
    st.caption("The sentence encoder's 36 Linear weight matrices (attention q/k/v and output, FFN in and out) rounded "
               "onto a k-bit grid. **Fake quantization is a simulation**: the rounded weights are stored and "
               "multiplied in fp32. The embedding tables (11.9 M of the 22.7 M parameters), LayerNorms and biases "
               "stay fp32. Below, the real int8 encoders run PyTorch's int8 kernels and are measured; one of them "
               "also stores the word-embedding table in 8 bits.")
    url = urlstate.Spec(Int("bit_width", 8, 2, 16), Choice("granularity", list(GRANULARITIES)),
                        Choice("quant_layer", layers, DEFAULT_LAYER))
    url.load()
    c1, c2, c3 = st.columns([3, 2, 3])
    bits = c1.slider("Weight bits", 2, 16, key="bit_width",
                     help="Bits per weight of every encoder Linear layer: a symmetric grid of 2^k − 1 levels.")
    per_channel = GRANULARITIES[c2.radio("Granularity", list(GRANULARITIES), key="granularity", horizontal=True,
                                         help="One grid per weight matrix, or one per output row of each.")]
    layer = c3.selectbox("Layer to inspect", layers, key="quant_layer",
                         format_func=lambda n: f"{n} ({T.GROUP_LABELS[T.group_of(n)]})")
    url.save()

    with state.friendly_errors():
        cfg = QuantConfig(bits, per_channel=per_channel)
        base = ui.original_quality(name)
        now = fake_quality(name, bits, per_channel)
        size = modelled_bytes(s.model, cfg, TQ.layers(s.model))
        grid = layer_grid(name, layer, bits, per_channel)
    st.markdown(f"**Fake quantization: simulated** — {cfg.describe()}; measured on {ui.where(name)}.")
    ui.show_quality(now, base, name)
    fp32_bytes = ui.size_bytes(name)
    linear = sum(lin.weight.numel() for lin in T.linear_layers(s.model).values())
    m = st.columns(5)
    m[0].metric(f"Size at {bits} bits (modelled)", f"{size.bytes / 2**20:,.1f} MiB",
                f"{fp32_bytes / size.bytes:.2f}× smaller", delta_color="off", delta_arrow="off",
                help=f"Modelled: {size.detail}.")
    m[1].metric("fp32 size (measured)", f"{fp32_bytes / 2**20:,.1f} MiB", help="torch.save of the state dict.")
    m[2].metric(f"Linear weights at {bits} bits (modelled)", f"{linear * bits / 8 / 2**20:,.1f} MiB",
                f"fp32: {linear * 4 / 2**20:,.1f} MiB", delta_color="off", delta_arrow="off",
                help=f"The {linear:,} weights of the 36 Linear layers at {bits} bits each, without their scales. The "
                     "fp32 embedding tables are most of what is left: they bound how small this encoder gets.")
    left, right = st.columns(2)
    shape = " × ".join(map(str, grid["shape"]))
    left.plotly_chart(plots.levels_histogram(grid["w"], grid["levels"], f"{layer} ({shape}): fp32 weights and the "
                                             f"{bits}-bit grid", note=grid["note"]), key="tq_levels")
    with right:
        line = curve(name, per_channel)
        st.plotly_chart(plots.line_chart(list(line), {"mean cosine": [q.mean_cosine for q in line.values()],
                                                      "worst cosine": [q.worst_cosine for q in line.values()],
                                                      "Spearman": [q.spearman for q in line.values()]},
                                         f"Fake quantization ({'per channel' if per_channel else 'per tensor'}, "
                                         "simulated) against bits, quick set", "weight bits", "to the original",
                                         marker=bits), key="tq_curve")
    st.caption("The curve is measured once per granularity (15 fake-quantized encoders on the quick set) and cached; "
               "the slider then reads its own point. The dashed line marks the current bit width.")

    st.subheader("Real int8 (dynamic, torch.ao)")
    with state.friendly_errors(), st.spinner("Building and evaluating the int8 encoders (once per process)…"):
        figs = {k: int8_figures(name, *v) for k, v in INT8.items()}
    timed = Timed("text_quant_retime", lambda: timings.clear(name), teacher)   # filled last
    _int8_table(timed, figs, base, fp32_bytes, None)
    st.caption(f"Quality on {ui.where(name)}. Size: torch.save of each state dict (measured). "
               f"{figs['int8 per channel, embeddings too']['notes']} Engine: {figs['int8 per channel']['engine']}. "
               "The per-tensor and plain per-channel rows keep the word-embedding table in fp32.")

    _groups_section(name, cfg)
    _full_split_section(name, cfg)

    lat = timed.measure("Timing fp32 and the int8 encoders, side by side (once per process)…", lambda: timings(name))
    _int8_table(timed, figs, base, fp32_bytes, lat)
    _why(timed, name, lat)


def _int8_table(timed: Timed, figs: dict, base: T.TextQuality, fp32_bytes: int, lat: dict | None) -> None:
    """Quality, size and speed first (what fits on screen), then the other quality figures."""
    cols = ["model", METRICS[0], "size (measured file)", "latency batch 1 (measured)", "latency batch 32 (measured)",
            *METRICS[1:]]
    f32 = lat["fp32"] if lat else None

    def row(label: str, q: T.TextQuality, size: str, timing: list[str]) -> list[str]:
        return [label, _row(q)[0], size, *(timing if lat else ["timing…"] * 2), *_row(q)[1:]]

    rows = [row("fp32 (original)", base, f"{fp32_bytes / 2**20:,.1f} MiB",
                [f"{b.median_ms:.1f} ms (IQR {b.iqr_ms:.1f})" for b in f32 or ()])]
    for k, f in figs.items():
        rows.append(row(f"real {k}", f["quality"], f"{f['size_bytes'] / 2**20:,.1f} MiB "
                        f"({fp32_bytes / f['size_bytes']:.2f}× smaller)", [_speed(lat[k][i], f32[i]) for i in (0, 1)]
                        if lat else []))
    timed.show(pd.DataFrame(rows, columns=cols))


def _why(timed: Timed, name: str, lat: dict) -> None:
    """The caption under the int8 table: the measured speed-ups and why batch 1 gains more than batch 32."""
    b1, b32 = (lat["fp32"][i].median_ms / lat["int8 per channel"][i].median_ms for i in (0, 1))
    x = T.timing_batches(ui.split(name, False), 32)
    one, many = lat["fp32"]
    text = (f"Latency measured on this server's CPU ({one.threads} thread(s)), fp32 and int8 timed round-robin: "
            f"batch 1 is one median-length sentence ({x[1].shape[1]} tokens), batch 32 is 32 sentences padded to "
            f"{x[32].shape[1]} tokens. Int8 per channel is **{b1:.2f}×** as fast as fp32 at batch 1 and "
            f"**{b32:.2f}×** at batch 32. ")
    text += ("Batch 1 gains more here. " if b1 > b32 else
             "This time batch 1 did not gain more than batch 32, as it usually does on this machine: small timings "
             "suffer most from a busy CPU. ")
    text += ("Why: at batch 1 each Linear multiplies a few token rows by its whole weight matrix, so reading the "
             "weights dominates, and int8 weights are a quarter of the bytes (the 36 layers' int8 weights, 10 MiB, "
             "fit in this CPU's 32 MiB L3 cache; their fp32 weights, 40 MiB, do not). At batch 32 the matrix "
             "products are large and bound by arithmetic, where fp32 kernels are efficient and this CPU's int8 "
             "kernels (AVX2, no VNNI: no single int8 dot-product instruction) measure only about 1.6–2× faster per "
             "Linear; each input is quantized first, and attention, GELU and LayerNorm stay fp32 and cost the same. "
             "The expander below times each Linear shape alone.")
    timed.explain(text, [b for pair in lat.values() for b in pair])
    with st.expander("Why batch 32 gains less: each Linear shape timed alone (measured)"):
        if st.button("Time the three Linear shapes", key="text_quant_kernels") or st.session_state.get("tq_kernels"):
            st.session_state["tq_kernels"] = True
            with st.spinner("Timing fp32 and int8 matrix products…"):
                ks = kernels(name)
            st.dataframe(pd.DataFrame([{"Linear (in × out)": k.shape, "token rows": k.tokens,
                                        "fp32 (ms)": round(k.fp32.median_ms, 3), "int8 (ms)": round(k.int8.median_ms, 3),
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
    series = {m: list(frame[frame.method == m]["drop in mean cosine"]) for m in dict.fromkeys(frame.method)}
    left.plotly_chart(plots.grouped_bars([T.GROUP_LABELS[g] for g in T.GROUPS], series,
                                         f"Drop in mean cosine with one group quantized alone (bits {done[0]})",
                                         "layer group (alone)", "1 − mean cosine", text_format="{:.4f}"),
                      key="tq_groups")
    right.dataframe(frame.style.format({"drop in mean cosine": "{:.4f}", "mean cosine": "{:.4f}", "Spearman": "{:.4f}",
                                        "top-1 agreement": "{:.1%}"}), hide_index=True, height=460)
    worst = frame.loc[frame.groupby("method")["drop in mean cosine"].idxmax()]
    st.caption("Measured most sensitive group: " + "; ".join(f"{r.method}: **{r.group}** (drop {r['drop in mean cosine']:.4f})"
                                                           for _, r in worst.iterrows()) + ".")


def _full_split_section(name: str, cfg: QuantConfig) -> None:
    st.subheader("On the whole test split")
    done = st.session_state.get("tq_full")
    if st.button(f"Measure on the whole test split ({len(ui.split(name, False))} sentences)", key="text_quant_full"):
        done = st.session_state["tq_full"] = (cfg.bits, cfg.per_channel)
    if done is None:
        st.caption("The figures above are on the quick set, so that the slider stays fast. This measures the current "
                   "fake-quantized encoder and the three int8 encoders on every held-out sentence (a few seconds).")
        return
    bar, tick = _progress("Embedding the whole test split:")
    fake = fake_quality(name, *done, quick=False)
    tick(1, 1 + len(INT8))
    real = {}
    for i, (k, v) in enumerate(INT8.items()):
        real[k] = int8_figures(name, *v, quick=False)["quality"]
        tick(2 + i, 1 + len(INT8))
    bar.empty()
    full = QuantConfig(done[0], per_channel=done[1])
    rows = [[f"fake {full.describe()} (simulated)", *_row(fake)]] + [[f"real {k}", *_row(q)] for k, q in real.items()]
    st.dataframe(pd.DataFrame(rows, columns=["model", *METRICS]), hide_index=True, width="stretch")
    st.caption(f"Measured on {ui.where(name, False)}" + ("" if done == (cfg.bits, cfg.per_channel) else
               f" — for the setting when you pressed ({full.describe()}); press again for the current one") + ".")
