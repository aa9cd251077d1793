"""Sensitivity lab, for any model family: each group of layers (a classifier's layers; an encoder's (transformer
layer x kind of Linear) cells, or whole kinds) compressed alone — pruned or fake-quantized — and scored by the
family's metric; then a per-group allocation that meets a budget of that metric (accuracy points, or mean cosine),
measured against a uniform setting of the same size."""
from collections.abc import Sequence

import numpy as np
import pandas as pd
import streamlit as st

from slimcore import plots
from slimcore import pruning as P
from slimcore import sensitivity as SE
from slimcore.families import family_of
from slimui import compare, lessons, projector, state, urlstate
from slimui import tradeoffs as ui
from slimui.pruning import score_delta
from slimui.urlstate import Bool, Choice, Float, Int

KINDS = {"prune": "pruning", "quantize": "quantization"}

s, teacher = state.current()
state.require_layers(s, "Sensitivity")
name, fam = s.name, family_of(s)
metric, opts = fam.metric, ui.choices(name)
where = f"{len(fam.split(s, ui.SPLIT)):,} held-out {'validation examples' if fam.name == 'classifier' else 'examples'}"
groups = fam.layer_groups(s.model)
grid_layout = any(g.column for g in groups)   # groups laid out as (layer x kind): one setting, a 2-D heatmap
st.title("Sensitivity lab")
if not urlstate.projector():   # projector mode: the explanations folded away
    st.caption(f"Which layers can be compressed hard, and which break the model? Each group of layers "
               f"({len(groups)} here) is compressed **alone**, the others left as they are, and the model's "
               f"{metric.name} is measured on {where}."
               + f" From that scan, an allocation gives every group its own setting — as much compression as your "
                 f"{metric.short} budget allows — and the allocated model is then built and **measured**."
               + ("" if fam.name == "classifier" else " Masks and fake quantization are **simulations**: the weights "
                                                      "stay dense fp32."))
URL = urlstate.Spec(  # the settings kept in the link (?sens_budget=2...); advanced ones are hidden in teacher mode
    Choice("sens_kind", list(KINDS)), Choice("sens_method", list(P.METHODS), advanced=True),
    Choice("sens_granularity", list(ui.GRANULARITIES), advanced=True), Float("sens_budget", *ui.budget_range(metric)),
    Float("sens_ratio", 0.5, 0.05, 0.95, 0.05), Int("sens_bits", 4, 2, 16), Bool("sens_whole", False))
URL.load()

c1, c2, c3 = st.columns([2, 2, 3])
kind = c1.radio("Compress one group at a time by", list(KINDS), format_func=KINDS.get, key="sens_kind",
                horizontal=True)
method = URL.default("sens_method") if teacher else c2.selectbox(
    "Pruning method", list(P.METHODS), format_func=lambda m: P.METHODS[m], key="sens_method", disabled=kind != "prune",
    help="Unstructured, within the layer: its lowest-scored weights go.")
assert method is not None   # a selectbox with options always has one chosen
granularity = URL.default("sens_granularity") if teacher else c2.radio(
    "Quantization grid", list(ui.GRANULARITIES), key="sens_granularity", horizontal=True, disabled=kind != "quantize",
    help="Symmetric k-bit grid, one scale per tensor or per channel.")
settings: tuple[float, ...] = ()
whole = False
if grid_layout:   # one setting at a time: every cell is one evaluation of a slow model
    if kind == "prune":
        settings = (round(float(c3.slider("Prune ratio (each layer of the group)", 0.05, 0.95, step=0.05,
                                          key="sens_ratio", help="The lowest-scored fraction (by the method) of "
                                                                 "each layer's weights set to zero (unstructured, "
                                                                 "within the layer).")),
                          2),)
    else:
        settings = (int(c3.slider("Weight bits (each layer of the group)", 2, 16, key="sens_bits",
                                  help="A symmetric k-bit grid fitted to each weight matrix (or output channel).")),)
    whole = c3.toggle("Whole groups (across all layers)", key="sens_whole",
                      help="Compress one kind of layer in every transformer layer at once, instead of one cell.")
_, lo, hi, step = ui.budget_range(metric)
budget = c3.slider(f"{metric.short.capitalize()} budget: the largest drop you accept "
                   f"({'points' if metric.percent else metric.short})", lo, hi, step=step, key="sens_budget",
                   format=None if metric.percent else "%.3f",
                   help="Measured on the data the scan is scored on (the validation split; an encoder's quick set), "
                        "the one the allocation is chosen on; the test split is kept out of the choice and reported "
                        "beside it.")
URL.save()
setting = compare.setting(URL)
compare.toolbar("Sensitivity", setting, ui.sensitivity_presets(name), teacher, name)
lessons.banner("Sensitivity", lambda: ui.sensitivity_figures(name, compare.values(setting, teacher)))
with state.friendly_errors():
    compare.panel("Sensitivity", setting, lambda v: ui.sensitivity_figures(name, v), teacher, name)
    cfg = ui.scan_config(name, compare.values(setting, teacher))
todo = ui.groups(name, whole)
unit = "prune ratio" if kind == "prune" else "weight bits"
if opts.slow and not ui.scan_started(name, cfg):   # not computed yet, by anyone: offered, not started unasked
    offer = st.empty()  # the offer goes away once taken: the scan's progress replaces it
    with offer.container():
        st.info(f"{len(todo) * len(cfg.values)} evaluations on {where}, a few seconds each: "
                f"{cfg.describe(cfg.values[0])}.")
        go = st.button(f"Scan the {len(todo)} groups", key="sens_scan", type="primary")
    if not go:
        st.stop()
    offer.empty()

with state.friendly_errors():
    ui.where()
    sens = ui.scan_later(name, cfg)   # in the background: None (its progress drawn) until it is done
if sens is None:
    st.stop()

base = sens.attrs["base_score"]
done = "pruned" if kind == "prune" else "quantized"
left, right = st.columns([3, 2])
if not grid_layout:   # rows: layers, columns: settings, cells: the score
    layers = list(dict.fromkeys(sens.group))
    values = sorted(sens.setting.unique(), reverse=kind == "quantize")   # from gentle to harsh
    scores = sens.pivot(index="group", columns="setting", values="score").loc[layers, values]
    labels = [ui.setting_name(kind, v) for v in values]
    heat = plots.sensitivity_heatmap(layers, labels, scores.to_numpy(), base,
                                     f"Validation {metric.short} (%) with one layer {done} alone", unit)
    left.plotly_chart(heat.update_layout(height=projector.height(heat.layout.height or 450)), key="sens_heatmap")
    xs, x_title = (values, unit) if kind == "quantize" else ([v * 100 for v in values], "% of its weights removed")
    right.plotly_chart(plots.line_chart(xs, {n: list(scores.loc[n]) for n in layers}, "The same, one line per layer",
                                        x_title, f"validation {metric.short}", percent=metric.percent,
                                        height=max(300, 60 * len(layers) + 120)), key="sens_curves")
    how = P.METHODS[method] if kind == "prune" else f"symmetric, {granularity}"
    st.caption(f"{how.capitalize()}. Original model: {metric.format(base)} on the validation split. Each cell is one "
               "real evaluation of the model with only that layer changed; the most fragile layers turn red first. "
               "Computed once per model and setting (one cached scan per layer).")
else:   # rows: transformer layers, columns: kinds of Linear, cells: the drop at the one setting
    drops = SE.heat(sens)
    heat = plots.drop_heatmap(drops.to_numpy(), list(drops.index), list(drops.columns),
                              f"Drop in {metric.short}, one group {done} alone", "layer group", "transformer layer",
                              f"original − {metric.short}")
    left.plotly_chart(heat.update_layout(height=projector.height(heat.layout.height or 450)), key="sens_heatmap")
    table = pd.DataFrame({"group": sens.group, f"drop in {metric.short}": sens.score_drop, metric.short: sens.score}
                         | ({"worst cosine": [d.worst_cosine for d in sens.detail],
                             "Spearman": [d.spearman for d in sens.detail],
                             "top-1 agreement": [d.top1_agreement for d in sens.detail]}
                            if sens.detail.notna().all() and hasattr(sens.detail.iloc[0], "spearman") else {}))
    table = table.sort_values(f"drop in {metric.short}", ascending=False, kind="stable")
    right.dataframe(table.style.format({c: "{:.1%}" if c == "top-1 agreement" else "{:.4f}"
                                        for c in table.columns if c != "group"}), hide_index=True, height=520)
    worst = table.iloc[0]
    by_kind = np.nanmean(drops.to_numpy(), axis=0)
    st.caption(f"{cfg.describe(cfg.values[0]).capitalize()}. Measured most sensitive: **{worst['group']}** (drop "
               f"{worst[f'drop in {metric.short}']:.4f}). Mean drop per kind of layer: "
               + ", ".join(f"{c} {v:.4f}" for c, v in zip(drops.columns, by_kind)) + ". Each cell is one real "
               "evaluation with only that group changed; groups interact, so drops do not simply add up.")

# Per-group settings under a budget of the family's metric: slow families wait for a click, as the scan does
st.subheader(f"Allocation for a drop of at most {ui.drop_text(metric, budget)}")
if opts.slow and not ui.allocation_started(name, cfg, float(budget)):
    st.info(f"Plans the settings, then builds and measures the allocated model and the uniform ones on {where} and "
            f"on the test split: about a minute.")
    if not st.button("Allocate under the budget", key="sens_allocate", type="primary"):
        st.stop()
with state.friendly_errors():
    alloc = ui.allocation_later(name, cfg, float(budget))   # in the background: None (a placeholder) until done
if alloc is None:
    st.stop()
if alloc.message:
    st.warning(alloc.message)
uniform = ui.nearest_uniform(alloc)
groups_set = list(alloc.result.settings)
st.markdown("**The allocated model**, built and evaluated, beside the uniform setting of the same size:")
assert alloc.result.test_accuracy is not None and alloc.base_test_accuracy is not None   # measured on test too
m = st.columns(4)
m[0].metric("Drop, validation (measured)", ui.drop_text(metric, alloc.drop),
            f"budget {budget:.1f} pt" if metric.percent else f"budget {budget:.3f}", delta_color="off",
            delta_arrow="off",
            help=f"The allocated model built and evaluated: {metric.format(alloc.result.accuracy)} against "
                 f"{metric.format(alloc.base_accuracy)}. The plan predicted "
                 f"{ui.drop_text(metric, alloc.predicted_drop)} (per-group drops added up); {alloc.tries} plan(s) "
                 "measured until one met the budget.")
m[1].metric(f"Test {metric.short} (measured)", metric.format(alloc.result.test_accuracy),
            **score_delta(metric, alloc.result.test_accuracy, alloc.base_test_accuracy),
            help=f"Held-out test split, never used to choose; original {metric.format(alloc.base_test_accuracy)}.")
m[2].metric("Size (modelled)", f"{alloc.result.size_bytes / 1024:,.1f} KiB",
            f"{alloc.base_bytes / alloc.result.size_bytes:.2f}x smaller", delta_color="off", delta_arrow="off",
            help=alloc.result.size_detail)
m[3].metric("Uniform, same size: drop", ui.drop_text(metric, (alloc.base_accuracy - uniform.accuracy) * metric.scale),
            f"{uniform.size_bytes / 1024:,.1f} KiB (modelled)", delta_color="off", delta_arrow="off",
            help=f"{uniform.name.capitalize()}, a uniform setting of the same overall size: "
                 + ("the same number of weights removed, spread evenly over the layers." if kind == "prune" else
                    "the whole bit width next to the allocation's mean bits per weight."))
left, right = st.columns([3, 2])
series: dict[str, Sequence[float]]
if kind == "prune":
    series = {o.name: [o.settings[n] * 100 for n in groups_set] for o in (alloc.result, *alloc.uniform)}
    axis_title, fmt = "% of the layer's weights removed", "{:.0f} %"
else:
    series = {o.name: [o.settings[n] for n in groups_set] for o in (alloc.result, *alloc.uniform)}
    axis_title, fmt = "bits per weight (32 = left fp32)", "{:.0f}"
left.plotly_chart(plots.grouped_bars(groups_set, series, "Setting per layer: allocated against uniform",
                                     "layer group" if grid_layout else "layer", axis_title, text_format=fmt),
                  key="sens_alloc")
cost = ("the examples it loses on its own" if metric.percent else
        f"its own drop in {metric.short} (counted in steps of {metric.quantum:g})")
with right:
    st.markdown(f"**How it is chosen.** Each group may keep its weights or take any scanned setting; a setting "
                f"costs {cost} (from the scan) and saves "
                f"{'the weights it removes' if kind == 'prune' else 'the bits it saves'}. The plan that saves the "
                "most while its costs add up to no more than the budget is found exactly (a small knapsack). "
                "Groups interact, so the plan is then **built and measured**; if the measured drop is over "
                "budget, the plan is made again with less room — leaving every group as it was always fits.")
    st.caption(f"Tries: {alloc.tries} · predicted drop {ui.drop_text(metric, alloc.predicted_drop)}, measured "
               f"{ui.drop_text(metric, alloc.drop)}. {metric.short.capitalize()} is measured; sizes are modelled "
               "from bit counts "
               + ("(sparse storage of the kept fp32 weights)." if kind == "prune" else
                  "(each layer's weights densely at its bit width, biases fp32, plus the scales)."))
st.dataframe(ui.allocation_table(alloc), hide_index=True, width="stretch")
