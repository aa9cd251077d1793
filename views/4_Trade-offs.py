"""Trade-offs lab, for any model family: the family's headline score against size (latency and MACs where the family
counts them) over a grid of prune settings x precisions, the Pareto frontier, any configuration inspected, timed and
sent to its lab, and Deep Compression on the model stage by stage beside the published stages."""
import math

import pandas as pd
import streamlit as st

from slimcore import plots
from slimcore import pruning as P
from slimcore import tradeoffs as TR
from slimcore.families import family_of
from slimcore.recipe import Recipe
from slimui import cache, compare, lessons, projector, state, urlstate
from slimui import pruning as prune_ui
from slimui import text as text_ui
from slimui import tradeoffs as ui
from slimui.export import export_panel
from slimui.urlstate import Bool, Choice, Choices

s, teacher = state.current()
state.require_layers(s, "Trade-offs")
name, fam = s.name, family_of(s)
metric, opts = fam.metric, ui.choices(name)
unit, scale = opts.size_unit
methods_known = list(P.METHODS)
precisions_known = TR.precisions(fam.name)
structure = " or ".join(fam.unit_kinds.values())
real = ", or a real int8 engine" if TR.REAL.get(fam.name) else ""
st.title("Trade-offs")
if not urlstate.projector():   # projector mode: the explanations folded away
    st.caption(f"How small and how fast can **{state.label(name)}** get before it stops being good enough? Every "
               f"point is one configuration — a prune ratio (single weights, or whole {structure}) followed by a "
               f"precision (fp32, fake-quantized k-bit{real}) — scored by its {metric.name} on "
               f"{len(fam.split(s, 'quick')):,} held-out examples. The frontier joins the configurations that nothing "
               "else beats on both axes.")
URL = urlstate.Spec(  # the settings kept in the link (?tradeoff_x=macs...); advanced ones are hidden in teacher mode
    Choices("tradeoff_methods", list(methods_known), ["l1"], advanced=True), Bool("tradeoff_structured", True),
    Choices("tradeoff_ratios", list(opts.ratios), list(opts.default_ratios), advanced=True),
    Choices("tradeoff_precisions", list(precisions_known), list(opts.default_precisions), advanced=True),
    Choice("tradeoff_scope", list(P.SCOPES), advanced=True),
    Choice("tradeoff_granularity", list(ui.GRANULARITIES), opts.granularity, advanced=True),
    Choice("tradeoff_x", list(opts.axes)),
    Choice("tradeoff_pipe_prune", list(opts.pipeline.amounts), opts.pipeline.amount),
    Choice("tradeoff_pipe_bits", list(opts.pipeline.bits), opts.pipeline.default_bits))
URL.load()

c1, c2, c3, c4 = st.columns([3, 2, 2, 2])
methods = URL.default("tradeoff_methods") if teacher or len(methods_known) == 1 else c1.multiselect(
    "Pruning methods", list(methods_known), format_func=lambda m: P.METHODS[m], key="tradeoff_methods", wrap=True)
structured = c2.toggle("Structured too", key="tradeoff_structured",
                       help=f"Add models with whole {structure} removed (structured: the tensors really shrink).")
scope = URL.default("tradeoff_scope") if teacher else c3.radio(
    "Scope", list(P.SCOPES), format_func=P.SCOPES.get, key="tradeoff_scope", horizontal=True)
granularity = URL.default("tradeoff_granularity") if teacher else c4.radio(
    "Quantization grid", list(ui.GRANULARITIES), key="tradeoff_granularity", horizontal=True,
    help="Fake quantization: a symmetric k-bit grid, one scale per tensor or per output channel.")
if teacher:
    ratios, precisions = URL.default("tradeoff_ratios"), URL.default("tradeoff_precisions")
else:
    # full width: in half a column the chips of nine precisions were cut; folded away in projector mode (the chart
    # must share the screen with the controls)
    grid_box = st.expander("Prune ratios and precisions of the grid") if urlstate.projector() else st.container()
    r1, r2 = grid_box.container(), grid_box.container()
    ratios = r1.multiselect("Prune ratios", list(opts.ratios), key="tradeoff_ratios", format_func=lambda r: f"{r:.0%}",
                            wrap=True)   # in a column the chips would scroll in one row: most of them out of sight
    precisions = r2.multiselect("Precisions", list(precisions_known), key="tradeoff_precisions",
                                format_func=TR.precision_label, wrap=True)
axis = st.radio(f"{metric.short.capitalize()} against", list(opts.axes), key="tradeoff_x", horizontal=True,
                format_func={"size": "size", "latency": "latency (real fp32 models)", "MACs": "MACs"}.get)
URL.save()
big = urlstate.projector()
chart_slot = st.container() if big else None   # projector mode: the main chart right under the controls
setting = compare.setting(URL, "tradeoff_x", "tradeoff_point")
compare.toolbar("Trade-offs", setting, ui.tradeoff_presets(name), teacher, name, keep=tuple(setting.params))
lessons.banner("Trade-offs", lambda: ui.tradeoff_figures(name, compare.values(setting, teacher)))
with state.friendly_errors():
    compare.panel("Trade-offs", setting, lambda v: ui.tradeoff_figures(name, v), teacher, name)
if not methods or not ratios or not precisions:
    st.info("Choose at least one pruning method, one prune ratio and one precision to sweep.")
    ui.pipeline_section(name)   # it needs no grid
    st.stop()

with state.friendly_errors():
    cfg = ui.grid_config(name, compare.values(setting, teacher))
assert cfg is not None   # None: nothing to sweep, and the page stopped above
todo = cfg.pieces()
if opts.slow and not ui.grid_started(name, cfg):   # not computed yet, by anyone: offered, not started unasked
    offer = st.empty()  # the offer goes away once taken: the build's progress replaces it
    with offer.container():
        st.info(f"{len(todo) * len(cfg.precisions)} points to build and measure: a few seconds each on this server "
                "(each is kept once built, for every visitor and across restarts).")
        go = st.button(f"Build the {len(todo) * len(cfg.precisions)} points", key="tradeoff_run", type="primary")
    if not go:
        ui.pipeline_section(name)   # it needs no grid
        st.stop()
    offer.empty()
with state.friendly_errors():
    base = cache.baseline(name)
    ui.where()
    frame = ui.grid_later(name, cfg)   # built in the background: None (its progress drawn) until then
    if frame is None:
        ui.pipeline_section(name)
        st.stop()
    timed_key = (name, cfg)
    if axis == "latency" or timed_key in st.session_state.get("tradeoff_timed", []):
        st.session_state.setdefault("tradeoff_timed", []).append(timed_key)
        lat = ui.latencies_later(name, cfg)   # timed in the background
        if lat is None:
            ui.pipeline_section(name)
            st.stop()
        frame = ui.with_latency(frame, lat)

base_score = ui.base_score(name, "quick").value
column, x_title, x_unit, x_scale, log_x = ui.AXES[axis]
if axis == "size":
    x_unit, x_scale = unit, scale
valid = frame.dropna(subset=["score"])
shown = valid.dropna(subset=[column]).reset_index(drop=True)
front = ui.frontier(shown, column)
on_size_front = set(ui.frontier(valid, "size_bytes").config)
best = ui.best_within(valid, base_score)
within = "1 point" if metric.percent else "0.01"

m = st.columns(4)
m[0].metric("Configurations", f"{len(frame):,}", help=f"{len(todo)} prune settings × {len(cfg.precisions)} "
            f"precisions (the unpruned model once); {len(frame) - len(valid)} without a model.")
m[1].metric(f"On the {axis} frontier", f"{len(front):,}")
m[2].metric("Original size (measured)", f"{base.size_bytes * scale:,.1f}{unit}", help="torch.save of the state dict.")
if best is not None:
    m[3].metric(f"Smallest within {within}", f"{best.size_bytes * scale:,.1f}{unit}",
                f"{prune_ui.times_smaller(base.size_bytes, best.size_bytes)} ({best.size_label})", delta_color="off",
                delta_arrow="off", help=f"{best.config}: {metric.name} {metric.format(best.score)} (original "
                                        f"{metric.format(base_score)}).")

options = list(valid.config)
front_default = list(ui.frontier(valid, "size_bytes").config)
URL.add(Choice("tradeoff_point", options, best.config if best is not None else front_default[-1]))  # known only now
left, right = st.columns([3, 2])
with right:
    pick = st.selectbox("Configuration (★ = on the size frontier)", options, key="tradeoff_point",
                        format_func=lambda c: ("★ " if c in on_size_front else "") + c)
    URL.save()
    row = valid.set_index("config").loc[pick]
    d = st.columns(2)
    named = metric.name if len(metric.name) <= 20 else metric.short   # "mean cosine to the original" was cut
    d[0].metric(f"{named.capitalize()} (measured)", metric.format(row.score),
                **prune_ui.score_delta(metric, row.score, base_score), help=f"{metric.name.capitalize()}.")
    d[1].metric(f"Size ({row.size_label})", f"{row.size_bytes * scale:,.1f}{unit}",
                prune_ui.times_smaller(base.size_bytes, row.size_bytes), delta_color="off", delta_arrow="off",
                help=row.size_rule)
    if not math.isnan(row.macs):
        d[0].metric("MACs (counted)", f"{row.macs:,.0f}", f"{row.macs / base.macs:.0%} of the original",
                    delta_color="off", delta_arrow="off", help="Multiply-accumulates per example, as dense kernels "
                    "compute them: every MAC of a masked layer, fewer when channels are removed.")
    if "latency" in opts.axes:
        latency = "not timed" if math.isnan(row.latency_ms) else f"{row.latency_ms:.3f} ms"
        d[1].metric("Latency (measured)", latency, help="At batch 256. " + (row.latency_label or "Choose the latency "
                    "axis to time the real fp32 models."))
    st.caption(f"Non-zero weights: {row.nonzeros:,} · {row.size_rule}.")
    b1, b2 = st.columns(2)
    recipe = Recipe.from_sweep_row(name, row, ui.GRANULARITIES[granularity])
    if b1.button("Open in Pruning", key="tradeoff_to_pruning", width="stretch", disabled=recipe.prune is None,
                 help="Sets the Pruning lab's ratio, method, scope and what is removed to this configuration."
                 if recipe.prune is not None else "This configuration prunes nothing.") and recipe.prune is not None:
        st.session_state.update(prune_ui.panel(fam).settings(recipe.prune))
        st.switch_page("views/1_Pruning.py")
    if b2.button("Open in Quantization", key="tradeoff_to_quant", width="stretch",
                 disabled=row.bits == ui.FP32, help="Sets the Quantization lab's bit width and grid (it "
                                                    "quantizes the unpruned model)." if row.bits != ui.FP32 else
                 "This configuration keeps fp32 weights: there is no bit width to send."):
        st.session_state.update(bit_width=int(row.bits), ternary=False, scheme="symmetric", granularity=granularity)
        st.switch_page("views/2_Quantization.py")
    if not teacher:
        export_panel(name, recipe, narrow=True)
with left:
    idx = {c: i for i, c in enumerate(shown.config)}
    labels = shown.size_label if axis == "size" else ["measured" if axis == "latency" else "counted"] * len(shown)
    notes = shown.size_rule if axis == "size" else shown.latency_label if axis == "latency" else shown.note
    fig = plots.tradeoff_scatter(
        shown[column] * x_scale, shown.score, list(shown.config), list(shown.precision), list(labels),
        [idx[c] for c in front.config], idx.get(pick),
        f"{metric.name.capitalize()} against {x_title} ({', '.join(methods)}, {P.SCOPES[scope]}, {granularity})",
        x_title, x_unit, log_x and (axis != "size" or opts.log_size), base_score, list(notes),
        y_title=metric.name, percent=metric.percent)
    if big:
        fig.update_layout(height=projector.height(fig.layout.height or 480))
    (chart_slot or st).plotly_chart(fig, key="tradeoff_chart")
if axis == "size":
    st.caption("**Filled** markers: measured size (torch.save of a real model: the original, structurally pruned "
               "models at fp32, real int8 models). **Open**: modelled from bit counts — weights at k bits in the "
               "smallest of dense, bitmask or CSR storage, the rest fp32, plus the scales. Fake-quantized weights are "
               "a simulation: fp32 in memory.")
elif axis == "latency":
    st.caption("Only real models can be timed: the fp32 ones (masked weights in dense tensors, or channels removed). "
               "Fake-quantized configurations run the same fp32 kernels, so they have no latency of their own. "
               "Median of timed runs at batch 256 on this server's CPU, all models in turn; ~10 % is noise.")
else:
    st.caption("MACs are counted from the layer shapes: dense kernels compute every multiply-accumulate of a masked "
               "layer, zeros included, so only removing channels lowers them. Quantization leaves them as they are.")
if fam.name == "encoder":   # what the encoder's sizes bunch up above: its word-embedding table
    table_w = cache.text_sample(name).model.embeddings.word_embeddings.weight
    real_emb = "int8+emb" in set(frame.precision)
    st.caption(f"About half of the original's {base.size_bytes / 2**20:.1f} MiB is the word-embedding table "
               f"({table_w.shape[0]:,} x {table_w.shape[1]}), which neither pruning nor quantizing the Linear layers "
               "touches: that is why their sizes bunch up; " + (
                   f"the points of precision *{TR.precision_label('int8+emb')}* store it in 8 bits as well, and only "
                   "they go below that." if real_emb else
                   f"choose the precision *{TR.precision_label('int8+emb')}* to store it in 8 bits as well."))
    if row.detail is not None:
        st.subheader(f"Chosen: {pick}")
        text_ui.show_quality(row.detail, text_ui.original_quality(name), name)

point = (row.prune if row.prune_ratio else "unstructured", row.method, float(row.prune_ratio), row.precision,
         ui.GRANULARITIES[granularity])
asked = st.session_state.setdefault("tradeoff_point_timed", [])
if st.button("Time this point against the original", key="tradeoff_time") and (name, point) not in asked:
    asked.append((name, point))
if (name, point) in asked:
    point_lat = ui.point_latency_later(name, *point)   # timed in the background: None (a placeholder) until then
    if point_lat is not None:
        st.dataframe(pd.DataFrame([{"model": k} | {f"batch {b}, ms": round(v.median_ms, 3) for b, v in per.items()}
                                   | {f"batch {b} IQR, ms": round(v.iqr_ms, 3) for b, v in per.items()}
                                   for k, per in point_lat.items()]), hide_index=True)
        largest = max(fam.timing_batches)
        st.caption(f"Measured on this server's CPU, round-robin, on real held-out inputs. Speed-up at batch {largest}: "
                   f"{point_lat['original'][largest].median_ms / point_lat['point'][largest].median_ms:.2f}x. Masked "
                   "weights and fake quantization run the same dense fp32 kernels as the original.")

st.subheader("Every experiment")
st.dataframe(ui.table(frame, on_size_front, metric, opts.size_unit), hide_index=True, width="stretch", height=320)
st.download_button("Download the experiments (CSV)", ui.csv(frame), file_name=f"slimlab-tradeoffs-{name}.csv",
                   mime="text/csv", key="tradeoff_csv")

ui.pipeline_section(name)
