"""Sensitivity lab: each layer compressed alone (pruned at a range of ratios, or quantized at a range of bit widths),
and a per-layer allocation that meets an accuracy budget, measured against a uniform setting of the same size."""
import streamlit as st

from slimcore import plots
from slimcore import pruning as P
from slimui import state, text_sensitivity, urlstate
from slimui import text as text_ui
from slimui import tradeoffs as ui
from slimui.urlstate import Choice, Float

KINDS = {"prune": "pruning", "quantize": "quantization"}

s, teacher = state.current()
if text_ui.is_text(s):
    text_sensitivity.page(s, teacher)
    st.stop()
name = s.name
st.title("Sensitivity lab")
st.caption("Which layers can be compressed hard, and which break the model? Each layer is compressed **alone**, the "
           f"others left as they are, and the model is evaluated on the {len(s.data.val)} validation examples. From "
           "that scan, an allocation gives every layer its own setting — as much compression as your accuracy budget "
           "allows — and the allocated model is then built and **measured**.")
URL = urlstate.Spec(  # the settings kept in the link (?sens_budget=2...); advanced ones are hidden in teacher mode
    Choice("sens_kind", list(KINDS)), Choice("sens_method", list(P.METHODS), advanced=True),
    Choice("sens_granularity", list(ui.GRANULARITIES), advanced=True), Float("sens_budget", 1.0, 0.0, 5.0, 0.1))
URL.load()

c1, c2, c3 = st.columns([2, 2, 3])
kind = c1.radio("Compress one layer at a time by", list(KINDS), format_func=KINDS.get, key="sens_kind",
                horizontal=True)
method = URL.default("sens_method") if teacher else c2.selectbox(
    "Pruning method", list(P.METHODS), format_func=P.METHODS.get, key="sens_method", disabled=kind != "prune",
    help="Unstructured, within the layer: its lowest-scored weights go.")
granularity = URL.default("sens_granularity") if teacher else c2.radio(
    "Quantization grid", list(ui.GRANULARITIES), key="sens_granularity", horizontal=True, disabled=kind != "quantize",
    help="Symmetric k-bit grid, one scale per tensor or per channel.")
budget = c3.slider("Accuracy budget: the largest drop you accept (points)", 0.0, 5.0, step=0.1, key="sens_budget",
                   help="Measured on the validation split, the one the allocation is chosen on; the test split is "
                        "kept out of the choice and reported beside it.")
URL.save()
per_channel = ui.GRANULARITIES[granularity]
unit = "prune ratio" if kind == "prune" else "weight bits"

with state.friendly_errors():
    bar = st.progress(0.0, "Scanning the layers…")
    sens = ui.scan(name, kind, method, per_channel, on_progress=lambda done, total: bar.progress(
        done / total, f"Scanned {done} of {total} layers…"))
    bar.empty()
    alloc = ui.allocation(name, kind, method, per_channel, float(budget))

base = sens.attrs["base_accuracy"]
layers = list(dict.fromkeys(sens.layer))
settings = sorted(sens.setting.unique(), reverse=kind == "quantize")   # from gentle to harsh
grid = sens.pivot(index="layer", columns="setting", values="accuracy").loc[layers, settings]
labels = [ui.setting_name(kind, v) for v in settings]
how = f"{P.METHODS[method]}" if kind == "prune" else f"symmetric, {granularity}"

done = "pruned" if kind == "prune" else "quantized"
left, right = st.columns([3, 2])
left.plotly_chart(plots.sensitivity_heatmap(layers, labels, grid.to_numpy(), base,
                                            f"Validation accuracy (%) with one layer {done} alone", unit),
                  key="sens_heatmap")
xs, x_title = (settings, unit) if kind == "quantize" else ([v * 100 for v in settings], "% of its weights removed")
right.plotly_chart(plots.line_chart(xs, {n: list(grid.loc[n]) for n in layers}, "The same, one line per layer",
                                    x_title, "validation accuracy", percent=True,
                                    height=max(300, 60 * len(layers) + 120)), key="sens_curves")
st.caption(f"{how.capitalize()}. Original model: {base:.2%} on the validation split. Each cell is one real evaluation "
           "of the model with only that layer changed; the most fragile layers turn red first. Computed once per "
           "model and setting (one cached scan per layer).")

st.subheader(f"Allocation for a drop of at most {budget:.1f} points")
if alloc.message:
    st.warning(alloc.message)
uniform = min(alloc.uniform, key=lambda o: abs(o.size_bytes - alloc.result.size_bytes))
st.markdown("**The allocated model**, built and evaluated, beside the uniform setting of the same size:")
m = st.columns(4)
m[0].metric("Drop, validation (measured)", f"{alloc.drop:.2f} pt",
            f"budget {budget:.1f} pt", delta_color="off", delta_arrow="off",
            help=f"The allocated model built and evaluated: {alloc.result.accuracy:.2%} against "
                 f"{alloc.base_accuracy:.2%}. The plan predicted {alloc.predicted_drop:.2f} pt (per-layer drops "
                 f"added up); {alloc.tries} plan(s) measured until one met the budget.")
m[1].metric("Test accuracy (measured)", f"{alloc.result.test_accuracy:.2%}",
            f"{(alloc.result.test_accuracy - alloc.base_test_accuracy) * 100:+.2f} pt",
            help=f"Held-out test split, never used to choose; original {alloc.base_test_accuracy:.2%}.")
m[2].metric("Size (modelled)", f"{alloc.result.size_bytes / 1024:,.1f} KiB",
            f"{alloc.base_bytes / alloc.result.size_bytes:.2f}x smaller", delta_color="off", delta_arrow="off",
            help=alloc.result.size_detail)
m[3].metric("Uniform, same size: drop", f"{(alloc.base_accuracy - uniform.accuracy) * 100:.2f} pt",
            f"{uniform.size_bytes / 1024:,.1f} KiB (modelled)", delta_color="off", delta_arrow="off",
            help=f"{uniform.name.capitalize()}, a uniform setting of the same overall size: "
                 + ("the same number of weights removed, spread evenly over the layers." if kind == "prune" else
                    "the whole bit width next to the allocation's mean bits per weight."))

left, right = st.columns([3, 2])
if kind == "prune":
    series = {o.name: [o.settings[n] * 100 for n in layers] for o in (alloc.result, *alloc.uniform)}
    axis_title, fmt = "% of the layer's weights removed", "{:.0f} %"
else:
    series = {o.name: [o.settings[n] for n in layers] for o in (alloc.result, *alloc.uniform)}
    axis_title, fmt = "bits per weight (32 = left fp32)", "{:.0f}"
left.plotly_chart(plots.grouped_bars(layers, series, "Setting per layer: allocated against uniform", "layer",
                                     axis_title, text_format=fmt), key="sens_alloc")
with right:
    st.markdown(f"**How it is chosen.** Each layer may keep its weights or take any scanned setting; a setting costs "
                f"the examples it loses on its own (from the scan) and saves "
                f"{'the weights it removes' if kind == 'prune' else 'the bits it saves'}. The plan that saves the "
                "most while its costs add up to no more than the budget is found exactly (a small knapsack). Layers "
                "interact, so the plan is then **built and measured**; if the measured drop is over budget, the "
                "plan is made again with less room — leaving every layer as it was always fits.")
    st.caption(f"Tries: {alloc.tries} · predicted drop {alloc.predicted_drop:.2f} pt, measured {alloc.drop:.2f} pt. "
               "Accuracy is measured; sizes are modelled from bit counts "
               + ("(sparse storage of the kept fp32 weights)." if kind == "prune" else
                  "(each layer's weights densely at its bit width, biases fp32, plus the scales)."))
st.dataframe(ui.allocation_table(alloc), hide_index=True, width="stretch")
