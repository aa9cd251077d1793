"""Trade-offs lab: accuracy against size, latency and MACs over a grid of prune ratios x bit widths, the Pareto
frontier, any configuration sent to its lab, and Deep Compression stage by stage beside the published stages."""
import math

import streamlit as st

from slimcore import plots
from slimcore import pruning as P
from slimcore.recipe import Recipe
from slimui import cache, state, text_tradeoffs, urlstate
from slimui import text as text_ui
from slimui import tradeoffs as ui
from slimui.export import export_panel
from slimui.urlstate import Bool, Choice, Choices

s, teacher = state.current()
if text_ui.is_text(s):
    text_tradeoffs.page(s, teacher)
    st.stop()
name = s.name
st.title("Trade-offs")
st.caption(f"How small and how fast can **{state.label(name)}** get before it stops being good enough? Every point is one "
           f"configuration — a prune ratio ({len(ui.RATIOS)} from 0 to {max(ui.RATIOS):.2f}) followed by a bit width "
           f"(fp32 and {len(ui.BITS) - 1} fake-quantized widths) — evaluated on the {len(s.test)} held-out test "
           "examples. The frontier joins the configurations that nothing else beats on both axes.")
URL = urlstate.Spec(  # the settings kept in the link (?tradeoff_x=macs...); advanced ones are hidden in teacher mode
    Choices("tradeoff_methods", list(P.METHODS), ["l1"], advanced=True), Bool("tradeoff_structured", True),
    Choice("tradeoff_scope", list(P.SCOPES), advanced=True),
    Choice("tradeoff_granularity", list(ui.GRANULARITIES), advanced=True), Choice("tradeoff_x", list(ui.AXES)),
    Choice("tradeoff_pipe_prune", [0.8, 0.9, 0.92, 0.95], 0.92), Choice("tradeoff_pipe_bits", [3, 4, 5, 6], 4))
URL.load()

c1, c2, c3, c4 = st.columns([3, 2, 2, 2])
methods = URL.default("tradeoff_methods") if teacher else c1.multiselect(
    "Pruning methods", list(P.METHODS), format_func=P.METHODS.get, key="tradeoff_methods")
structured = c2.toggle("Add channel pruning", key="tradeoff_structured",
                       help="Add channel-pruned models (structured: the tensors really shrink) to the grid.")
scope = URL.default("tradeoff_scope") if teacher else c3.radio(
    "Scope", list(P.SCOPES), format_func=P.SCOPES.get, key="tradeoff_scope", horizontal=True)
granularity = URL.default("tradeoff_granularity") if teacher else c4.radio(
    "Quantization grid", list(ui.GRANULARITIES), key="tradeoff_granularity", horizontal=True,
    help="Symmetric k-bit grid, one scale per tensor or per output channel.")
axis = st.radio("Accuracy against", list(ui.AXES), key="tradeoff_x", horizontal=True,
                format_func={"size": "size", "latency": "latency (real fp32 models)", "MACs": "MACs"}.get)
URL.save()
if not methods:
    st.info("Choose at least one pruning method to sweep.")
    st.stop()

kinds = (False, True) if structured else (False,)
grid = (name, tuple(methods), kinds, scope, ui.GRANULARITIES[granularity])
with state.friendly_errors():
    base = cache.baseline(name)
    bar = st.progress(0.0, "Sweeping the grid…")
    frame = ui.sweep(*grid, on_progress=lambda done, total: bar.progress(
        done / total, f"Swept {done} of {total} prune settings, each at {len(ui.BITS)} bit widths…"))
    bar.empty()
    timed_key = "|".join(map(str, grid[:4]))
    if axis == "latency" or timed_key in st.session_state.get("tradeoff_timed", set()):
        with st.spinner("Timing every real fp32 model side by side at batch 256 (once per grid)…"):
            frame = ui.with_latency(frame, ui.latencies(*grid))
        st.session_state.setdefault("tradeoff_timed", set()).add(timed_key)

column, x_title, unit, scale, log_x = ui.AXES[axis]
valid = frame.dropna(subset=["accuracy"])
shown = valid.dropna(subset=[column]).reset_index(drop=True)
front = ui.frontier(shown, column)
on_size_front = set(ui.frontier(valid, "size_bytes").config)
best = ui.best_within(valid, base.accuracy)

m = st.columns(4)
m[0].metric("Configurations", f"{len(frame):,}", help=f"{len(ui.pieces(tuple(methods), kinds))} prune settings × "
            f"{len(ui.BITS)} bit widths (the unpruned model once); {len(frame) - len(valid)} without a model.")
m[1].metric(f"On the {axis} frontier", f"{len(front):,}")
m[2].metric("Original size (measured)", f"{base.size_bytes / 1024:,.1f} KiB", help="torch.save of the state dict.")
if best is not None:
    m[3].metric("Smallest within 1 point", f"{best.size_bytes / 1024:,.1f} KiB",
                f"{base.size_bytes / best.size_bytes:.1f}x smaller ({best.size_label})", delta_color="off",
                delta_arrow="off",
                help=f"{best.config}: test accuracy {best.accuracy:.2%} (original {base.accuracy:.2%}).")

options = list(valid.config)
URL.add(Choice("tradeoff_point", options, best.config if best is not None else options[0]))  # known only now
left, right = st.columns([3, 2])
with right:
    pick = st.selectbox("Configuration (★ = on the size frontier)", options, key="tradeoff_point",
                        format_func=lambda c: ("★ " if c in on_size_front else "") + c)
    URL.save()
    row = valid.set_index("config").loc[pick]
    d = st.columns(2)
    d[0].metric("Test accuracy (measured)", f"{row.accuracy:.2%}", f"{(row.accuracy - base.accuracy) * 100:+.2f} pt")
    d[1].metric(f"Size ({row.size_label})", f"{row.size_bytes / 1024:,.1f} KiB",
                f"{base.size_bytes / row.size_bytes:.1f}x smaller", delta_color="off", delta_arrow="off",
                help=row.size_detail)
    d[0].metric("MACs (counted)", f"{row.macs:,.0f}", f"{row.macs / base.macs:.0%} of the original",
                delta_color="off", delta_arrow="off", help="Multiply-accumulates per example, as dense kernels "
                "compute them: every MAC of a masked layer, fewer when channels are removed.")
    lat = "not timed" if math.isnan(row.latency_ms) else f"{row.latency_ms:.3f} ms"
    d[1].metric("Latency b=256 (measured)", lat, help=row.latency_label or "Choose the latency axis to time "
                "the real fp32 models.")
    st.caption(f"Non-zero weights: {row.nonzeros:,} · {row.size_detail}.")
    b1, b2 = st.columns(2)
    if b1.button("Open in Pruning", key="tradeoff_to_pruning", width="stretch",
                 help="Sets the Pruning lab's ratio, method, scope and structured switch to this configuration."):
        st.session_state.update(prune_ratio=float(row.prune_ratio), prune_method=row.method, prune_scope=scope,
                                prune_structured=bool(row.structured))
        st.switch_page("views/1_Pruning.py")
    if b2.button("Open in Quantization", key="tradeoff_to_quant", width="stretch",
                 disabled=row.bits == ui.FP32, help="Sets the Quantization lab's bit width and grid (it quantizes "
                                                    "the unpruned model)." if row.bits != ui.FP32 else
                 "This configuration keeps fp32 weights: there is no bit width to send."):
        st.session_state.update(bit_width=int(row.bits), ternary=False, scheme="symmetric", granularity=granularity)
        st.switch_page("views/2_Quantization.py")
    if not teacher:
        export_panel(name, Recipe.from_sweep_row(name, row, ui.GRANULARITIES[granularity]))
with left:
    idx = {c: i for i, c in enumerate(shown.config)}
    labels = shown.size_label if axis == "size" else ["measured" if axis == "latency" else "counted"] * len(shown)
    notes = shown.size_detail if axis == "size" else shown.latency_label if axis == "latency" else shown.note
    fig = plots.tradeoff_scatter(
        shown[column] * scale, shown.accuracy, list(shown.config),
        ["fp32" if b == ui.FP32 else f"{b}-bit" for b in shown.bits], list(labels), [idx[c] for c in front.config],
        idx.get(pick), f"Test accuracy against {x_title} ({', '.join(methods)}, {P.SCOPES[scope]}, {granularity})",
        x_title, unit, log_x, base.accuracy, list(notes))
    st.plotly_chart(fig, key="tradeoff_chart")
if axis == "size":
    st.caption("**Filled** markers: measured size (torch.save of a real model: the original, channel-pruned models "
               "at fp32). **Open**: modelled from bit counts — weights at k bits in the smallest of dense, bitmask "
               "or CSR storage, biases fp32, plus the scales. Fake-quantized weights are a simulation: fp32 in memory.")
elif axis == "latency":
    st.caption("Only real models can be timed: the fp32 ones (masked weights in dense tensors, or channels removed). "
               "Fake-quantized configurations run the same fp32 kernels, so they have no latency of their own. "
               "Median of timed runs at batch 256 on this server's CPU, all models in turn; ~10 % is noise.")
else:
    st.caption("MACs are counted from the layer shapes: dense kernels compute every multiply-accumulate of a masked "
               "layer, zeros included, so only removing channels lowers them. Quantization leaves them as they are.")

st.subheader("Every experiment")
st.dataframe(ui.table(frame, on_size_front), hide_index=True, width="stretch", height=320)
st.download_button("Download the experiments (CSV)", ui.csv(frame), file_name=f"slimlab-tradeoffs-{name}.csv",
                   mime="text/csv", key="tradeoff_csv")

st.subheader(f"Deep Compression, stage by stage, on {ui.PIPELINE_MODEL}")
st.caption("Prune with fine-tuning → share weights by k-means → Huffman-code (Han, Mao & Dally 2016). Each "
           "stage of ours writes a real byte stream: its size is **measured** (the stream's length) and its accuracy "
           "is that of the model decoded from it. The published stages are **reference** only: another model, on "
           "28×28 MNIST, on other hardware.")
p1, p2, p3 = st.columns([2, 2, 3])
amount = p1.select_slider("Prune amount", [0.8, 0.9, 0.92, 0.95], key="tradeoff_pipe_prune")
bits = p2.select_slider("Weight-sharing bits", [3, 4, 5, 6], key="tradeoff_pipe_bits")
p3.caption("Fine-tuning is seeded: each setting is run once (a few seconds) and then kept for every visitor.")
stages = ui.pipeline_runs().get((amount, bits))
if stages is None:
    running = st.status(f"Running Deep Compression on {ui.PIPELINE_MODEL}…", expanded=True)
    with state.friendly_errors(), running as box:
        stages = ui.run_pipeline(amount, bits, on_stage=lambda st_: box.write(
            f"{st_.name}: {st_.bytes / 1024:,.1f} KiB ({st_.ratio:.1f}x), test accuracy {st_.accuracy:.2%}"))
        box.update(label="Deep Compression finished", state="complete", expanded=False)
reference = f"published: {ui.PUBLISHED['source']} (reference)"
ours = f"ours: {ui.PIPELINE_MODEL}, bytes {stages[-1].label}"
n = len(stages)
series = {ours: [st_.ratio for st_ in stages], reference: (list(ui.PUBLISHED["ratios"]) + [None] * n)[:n]}
w1, w2 = st.columns(2)
w1.plotly_chart(plots.pipeline_waterfall([st_.name for st_ in stages], [st_.bytes for st_ in stages],
                                         [st_.accuracy for st_ in stages], [st_.label for st_ in stages],
                                         f"{ui.PIPELINE_MODEL}: bytes after each stage"), key="tradeoff_waterfall")
w2.plotly_chart(plots.grouped_bars([st_.name for st_ in stages], series, "Compression ratio after each stage",
                                   "stage", "times smaller than the original", text_format="{:.1f}x",
                                   hover="%{x}: %{y:.1f}x", colors=[plots.KEPT, "#9ca3af"]), key="tradeoff_reference")
st.dataframe(ui.stage_table(stages), hide_index=True, width="stretch")
st.caption(f"Ours: {stages[-1].ratio:.1f}x smaller at {stages[-1].accuracy:.2%} test accuracy (original "
           f"{stages[0].accuracy:.2%}). The published ratios (grey) are the paper's for {ui.PUBLISHED['source']} "
           f"({ui.PUBLISHED['detail']}): context only, not our result.")
