"""SlimLab home: upload a model or take the one picked in the sidebar, and see its card, its measured baseline
figures, its layers and a picture of what it does. One page for every model family: only the family's panel (its card
and its picture: digits and predictions, or sentence similarities) differs (slimui.home)."""
import pandas as pd
import streamlit as st

from slimcore import plots
from slimcore.families import family_of
from slimui import cache, home, state
from slimui import upload as up
from slimui.components import Timed, metric_slots

s, teacher = state.current()
name = s.name
panel = home.panel(family_of(s).name)

st.title("SlimLab — see what compression costs and buys")
st.caption("Pick a model in the sidebar, then open a lab. Every figure here is computed live by `slimcore` on "
           "held-out data and the real model.")
st.page_link("views/6_Lessons.py", label="New to compression? Start with a guided lesson", icon=":material/school:")

with st.expander("Upload your own model"):   # closed: the chosen model's card comes first
    up.upload_form()

if s.card.get("source") == "upload":
    up.upload_card(s)
else:
    panel.card(s)

with state.friendly_errors():
    m = cache.baseline(name)

score, metric = m.score, m.score.metric
rows = home.layer_rows(s, m)
other = sum(r["parameters"] for r in rows if not r["compressed"])
cols = metric_slots(5)
cols[0].metric(metric.name[:1].upper() + metric.name[1:], metric.format(score.value),
               help=f"{metric.help} On {score.examples:,} held-out test examples." + (
                   "" if metric.percent else " The original against itself: the labs compare every compressed model "
                                             "with it."))
cols[1].metric("Parameters", f"{m.params:,}", help=f"{m.nonzeros:,} non-zero." + (
    f" {other:,} of them in tables that compression leaves alone (a lookup, not a matrix product)." if other else ""))
cols[2].metric("MACs per example", f"{m.macs:,}", help="Counted from the layer shapes on one real test input: "
               "multiply-accumulates of the compressible layers for it, as dense kernels compute them." + (
                   f" Every operation of the graph, as torch.utils.flop_counter counts them: {m.all_macs:,}."
                   if m.all_macs is not None else ""))
cols[3].metric("Size (measured)", home.size_text(m.size_bytes), help="Measured: bytes of the state dict written by "
               "torch.save.")
latency_metric = cols[4].empty()  # filled last: timing waits for the figures
timed = Timed("home_retime", teacher, table=False)

st.subheader("Layers")
table = pd.DataFrame(rows)
st.dataframe(table.drop(columns="compressed"), hide_index=True, width="stretch", height=min(400, 38 + 35 * len(rows)))

left, right = st.columns(2)
with left:
    layer = st.selectbox("Layer to inspect", [r.name for r in m.layers], key="home_layer")
    w = cache.layer_weights(name, layer)
    st.plotly_chart(plots.weight_histogram(w, title=f"{layer}: {w.size:,} weights"), key="home_hist")
with right:
    st.plotly_chart(plots.layer_bars(table["layer"], table["parameters"], "Parameters per layer", "parameters"),
                    key="home_params")

panel.picture(s, m)


def show_latency(lat: dict) -> None:
    small, big = lat[min(lat)], lat[max(lat)]
    latency_metric.metric("Latency (measured)", f"{small.median_ms:.3f} ms", help=small.describe())
    timed.explain(f"Latency (measured on this server's CPU, on real test inputs) at batch {big.batch}: "
                  f"{big.median_ms:.2f} ms median (IQR {big.iqr_ms:.2f} ms), {big.per_example_us:.2f} µs per example; "
                  f"batch 1: {small.describe()}.", lat.values())


latency_metric.metric("Latency (measured)", "timing…", help="Timed in the background once the page is drawn.")
timed.measure(home.timing(name), show_latency)
