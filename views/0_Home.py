"""SlimLab home: upload a model or take the one picked in the sidebar, and see its card, its layers and its
measured baseline figures."""
import pandas as pd
import streamlit as st

from slimcore import plots
from slimui import cache, state, text_home
from slimui import text as text_ui
from slimui import upload as up
from slimui.components import Timed

s, teacher = state.current()
name = s.name
card = s.card

st.title("SlimLab — see what compression costs and buys")
st.caption("Pick a model in the sidebar, then open a lab. Every figure here is computed live by `slimcore` on "
           "held-out data and the real model.")

with st.expander("Upload your own model", expanded=not state.my_uploads()):
    up.upload_form()

if text_ui.is_text(s):
    text_home.page(s, teacher)
    st.stop()
if card.get("source") == "upload":
    up.upload_card(s)
else:
    st.subheader(f"{name}: {card['architecture']}")
    c1, c2 = st.columns([3, 2])
    with c1:
        st.markdown(f"**Dataset:** {card['dataset']} — {card['splits']['train']} train / {card['splits']['val']} "
                    f"validation / {card['splits']['test']} test examples (split seed {card['splits']['split_seed']}).  \n"
                    f"**Trained** with {card['training']['optimizer']} (lr {card['training']['lr']}, batch "
                    f"{card['training']['batch_size']}, {card['training']['epochs']} epochs, seed "
                    f"{card['training']['seed']}) by `{card['command']}`.  \n**Published reference (other data, context "
                    f"only):** {card['reference']}")
    with c2:
        with st.expander("Module"):
            st.code(card["module"], language="text")

with state.friendly_errors():
    m = cache.baseline(name)
    ex = cache.examples(name)

cols = st.columns(5)
cols[0].metric("Test accuracy", f"{m.accuracy:.2%}", help=f"Measured: top-1 on {len(s.test)} held-out test examples.")
cols[1].metric("Parameters", f"{m.params:,}", help=f"{m.nonzeros:,} non-zero.")
cols[2].metric("MACs per example", f"{m.macs:,}", help="Counted from the layer shapes: multiply-accumulates of the Linear/Conv layers for one input, as dense kernels compute them.")
cols[3].metric("Size (measured)", f"{m.size_bytes / 1024:,.1f} KiB", help="Measured: bytes of the state dict written by torch.save.")
latency_metric = cols[4].empty()  # filled last: timing waits for the figures
timed = Timed("home_retime", lambda: cache.baseline_latency.clear(name), teacher, table=False)

st.subheader("Layers")
table = pd.DataFrame([{"layer": r.name, "type": r.kind, "weight shape": " x ".join(map(str, r.weight_shape)),
                       "parameters": r.params, "non-zeros": r.nonzeros, "MACs / example": r.macs} for r in m.layers])
st.dataframe(table, hide_index=True, width="stretch")

left, right = st.columns(2)
with left:
    layer = st.selectbox("Layer to inspect", [r.name for r in m.layers], key="home_layer")
    w = cache.layer_weights(name, layer)
    st.plotly_chart(plots.weight_histogram(w, title=f"{layer}: {w.size:,} weights"), key="home_hist")
with right:
    st.plotly_chart(plots.layer_bars(table["layer"], table["parameters"], "Parameters per layer", "parameters"),
                    key="home_params")

st.subheader("Test examples and predictions")
st.plotly_chart(plots.example_gallery(ex["x"], ex["y"], ex["pred"], ex["conf"]), key="home_examples")

b1, b256 = timed.measure("Timing…", lambda: cache.baseline_latency(name))
latency_metric.metric("Latency (measured)", f"{b1.median_ms:.3f} ms", help=b1.describe())
timed.explain(f"Latency (measured on this server's CPU) at batch 256: {b256.median_ms:.2f} ms median (IQR "
              f"{b256.iqr_ms:.2f} ms), {b256.per_example_us:.2f} µs per example; batch 1: {b1.describe()}.", (b1, b256))
