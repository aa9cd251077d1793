"""Pruning lab, for every model family: a prune-ratio slider with live histograms, masks and the real effect on size,
speed and quality (the family's: accuracy, or cosine to the original encoder)."""
import pandas as pd
import streamlit as st

import slimcore
from slimcore import plots
from slimcore import pruning as P
from slimcore.graph import coupled_note
from slimcore.recipe import Recipe
from slimui import compare, lessons, projector, state, urlstate, work
from slimui import pruning as ui
from slimui.components import Timed, delta, metric_slots
from slimui.export import export_panel

s, teacher = state.current()
state.require_layers(s, "Pruning")
name, fam = s.name, slimcore.family_of(s)
panel = ui.panel(fam)
st.title(panel.title)
if not urlstate.projector():   # projector mode: the explanations folded away
    st.caption(panel.caption)
with state.friendly_errors():
    cfg = panel.controls(s, teacher)
    setting = compare.setting(urlstate.page_spec(), "prune_layer", "prune_steps", "prune_epochs")
    compare.toolbar("Pruning", setting, panel.presets, teacher, name)
    lessons.banner("Pruning", lambda: ui.figures(name, cfg))
    with work.spinner("Pruning and measuring", "prune_report", name):
        now = ui.report(name, cfg)
    base = ui.original(name)
    if panel.positions:   # a slow model: the other slider positions are prepared in the background
        ui.prefetch(name, cfg, panel.positions)
big = urlstate.projector()
curve_slot = st.container() if big else None   # projector mode: the main chart right under the slider

if now.emptied:
    st.warning(f"At this ratio every weight of {', '.join(now.emptied)} is removed: "
               f"{'that layer' if len(now.emptied) == 1 else 'those layers'} now output a constant, whatever the "
               "input, and the model can only guess. Lower the ratio, or prune per layer.")
for note in now.notes:
    st.warning(note)
if now.thin_note:
    st.warning(f"{now.thin_note.capitalize()}. Every other figure stands.")

metric, unit = fam.metric, fam.unit_kinds.get(cfg.unit, "units").split(" (")[0]
cols = metric_slots(6 if cfg.structured and now.thin is not None else 5)
cols[0].metric(metric.name.capitalize(), metric.format(now.score.value),
               **ui.score_delta(metric, now.score.value, base.score.value),
               help=f"{metric.help} {now.score}; change against the unpruned model.")
cols[1].metric("Non-zero parameters", f"{now.nonzeros:,}", **delta(now.nonzeros - base.nonzeros, "{:+,}", True),
               help=f"Of {now.params:,} parameters; {now.removed:,} of {now.weights:,} weights of the compressible "
                    "layers removed (biases are kept, except those of removed units).")
cols[2].metric("Dense size (measured)", ui.size(now.size_bytes),
               **ui.size_delta(now.size_bytes - base.size_bytes, base.size_bytes),
               help="torch.save of the masked model: zeros cost as much as any other float.")
cols[3].metric("Sparse size (modelled)", ui.size(now.sparse.bytes),
               help=f"Modelled from bit counts, storage format {now.sparse.format}: {now.sparse.detail}.")
if now.thin is not None:
    cols[4].metric("Thin model (measured)", ui.size(now.thin.size_bytes),
                   **ui.size_delta(now.thin.size_bytes - base.size_bytes, base.size_bytes),
                   help=f"The model with {unit} removed for real at ratio {cfg.amount:.2f}: torch.save of it, "
                        f"{now.thin.params:,} parameters, {metric.short} {metric.format(now.thin.score.value)}; "
                        f"{unit} kept per layer: {' / '.join(map(str, now.thin.units.values()))}.")
if len(cols) == 6 and now.thin is not None:   # (six: a thin model)
    kept, total = list(now.thin.units.values()), [g.count for g in fam.units(s.model, cfg.unit)]
    cols[5].metric("Kept per layer", f"{kept[0]} of {total[0]} {unit}" if len(set(kept)) == len(set(total)) == 1
                   else f"{' / '.join(map(str, kept))} of {' / '.join(map(str, total))}",
                   help=f"Read from the thin model's weights: {unit} per layer, of the original's.")
st.caption(f"Sparse size is **modelled** as `{now.sparse.format}` storage ({now.sparse.detail}); the other "
           "sizes are **measured** bytes of real files.")
with state.friendly_errors():
    compare.panel("Pruning", setting, lambda v: ui.figures(name, panel.config(v)), teacher, name)
if panel.detail is not None:
    panel.detail(name, now)
ui.full_split(name, cfg)

left, right = st.columns(2)
with left:
    counts = {g.where: g.count for g in fam.units(s.model, cfg.unit)} if cfg.structured else {}
    if now.unit_removed and len(set(counts.values())) == 1:   # units of one size everywhere: count them
        st.plotly_chart(plots.layer_bars(list(now.unit_removed), [round(v * counts[w]) for w, v in
                                                                  now.unit_removed.items()],
                                         f"{ui.sentence(unit)} removed per layer",
                                         f"{unit} removed (of {max(counts.values())})"), key="prune_layers")
    else:
        st.plotly_chart(plots.layer_bars([panel.short(n) for n in now.layer_sparsity],
                                         [v * 100 for v in now.layer_sparsity.values()],
                                         f"Weights removed per layer ({P.SCOPES[cfg.scope]})",
                                         "% of the layer's weights"), key="prune_layers")
    if cfg.structured and (tied := coupled_note(s.model)):
        st.caption(tied)
curve_slot = curve_slot or right.container()

layers = list(fam.layers(s.model))
# The layer beside the histogram is a basic control (shown in teacher mode too); a family that picks it among its
# advanced controls (panel.pick_layer False) shows its default layer in teacher mode.
chosen = (panel.default_layer(s, cfg) if (teacher and not panel.pick_layer) or "prune_layer" not in st.session_state
          else st.session_state["prune_layer"])
left, right = st.columns(2)
with left:
    if panel.pick_layer:
        chosen = st.selectbox("Layer to inspect", layers, key="prune_layer")
    view = ui.layer(name, cfg, chosen, panel.crop)
    cut = view["threshold"] if cfg.method == "l1" and not cfg.structured else None
    st.plotly_chart(plots.weight_histogram(ui.weights(name, chosen), f"{chosen}: all weights and those kept",
                                           threshold=cut, after=view["after"]), key="prune_hist")
    st.caption(f"{view['removed']:.1%} of this layer's {' x '.join(map(str, view['shape']))} weights removed"
               + (f": every |w| up to {cut:.3g} (the dashed lines)." if cut else
                  f": whole rows or columns of removed {unit}." if view["removed"] else
                  " — nothing is removed from this layer at this setting."))
with right:
    st.plotly_chart(panel.picture(name, cfg, chosen, view, now), key="prune_mask")

with curve_slot:
    qs = ui.curve(name, cfg, panel.curve)   # None (a placeholder drawn) until it is computed
if qs is not None:
    fig = panel.curve_figure(name, cfg, now, qs, base.score.value)
    if big:
        fig.update_layout(height=projector.height(420))
    curve_slot.plotly_chart(fig, key="prune_curve")
    curve_slot.caption(f"One-shot (no fine-tuning), measured at ratios {', '.join(map(str, panel.curve))}; computed "
               f"once per model and method, then cached. Current ratio: {metric.short} "
               f"{metric.format(now.score.value)}.")

st.subheader("What it buys: the real models, timed")
timed = Timed("prune_retime", teacher)
small, large = fam.timing_batches[0], fam.timing_batches[-1]


def timing_table(lat: dict) -> None:
    rows = [("original (dense)", "original", base.params, base.nonzeros, base.size_bytes, base.score.value)]
    if "masked" in lat:
        rows.append(("masked (dense kernels, zeros kept)", "masked", now.params, now.nonzeros, now.size_bytes,
                     now.score.value))
    if "thin" in lat:
        assert now.thin is not None   # a thin model timed: the report has its figures
        rows.append((f"{unit} removed ({'this setting' if cfg.structured else 'structured, same ratio'})", "thin",
                     now.thin.params, now.thin.nonzeros, now.thin.size_bytes, now.thin.score.value))
    timed.show(pd.DataFrame([{
        "model": label, "parameters": params, "non-zeros": nonzeros, "size (measured)": ui.size(size_bytes),
        f"{metric.short}": metric.format(value), f"b={small}, ms": round(lat[key][small].median_ms, 3),
        f"b={large}, ms": round(lat[key][large].median_ms, 3),
        f"IQR b={large}, ms": round(lat[key][large].iqr_ms, 3),
        f"speed-up b={large}": round(lat["original"][large].median_ms / lat[key][large].median_ms, 2)}
        for label, key, params, nonzeros, size_bytes, value in rows]))
    ref = lat["original"][large]
    speed = {key: ref.median_ms / lat[key][large].median_ms for _, key, *_ in rows[1:]}
    parts = []
    if "masked" in speed:
        parts.append(f"the masked model runs at **{speed['masked']:.2f}x** the original's speed — dense kernels "
                     "multiply the zeros too: no real speed-up is expected")
    if "thin" in speed:
        assert now.thin is not None
        parts.append(f"the model with {unit} removed runs at **{speed['thin']:.2f}x** "
                     f"({' / '.join(map(str, now.thin.units.values()))} {unit} kept per layer: it is really smaller)")
    timed.explain(f"At batch {large} " + ", while ".join(parts) + ". Latency (b = batch size, in ms): median of up to "
                  f"{ref.repeats} timed "
                  f"runs after {ref.warmup} warm-up each, the models timed in turn on real held-out inputs, "
                  f"{ref.threads} thread(s), on this server's CPU; the original's spread (IQR) was "
                  f"{ref.iqr_ms / ref.median_ms:.0%} of its median, so smaller differences are noise.",
                  [b for key in lat for b in lat[key].values()], markdown=True)


timed.measure(ui.timing(name, cfg), timing_table)

st.subheader("Gradual pruning with fine-tuning")
grad = panel.gradual
g1, g2, g3 = st.columns([1, 1, 2])
for key, value in (("prune_steps", grad.steps), ("prune_epochs", grad.epochs)):
    st.session_state.setdefault(key, value)   # the family's default where the link or a visit has set none
steps = grad.steps if teacher else g1.number_input("Steps", 1, 20, key="prune_steps",
                                                   help="Pruning steps along the cubic schedule.")
epochs = grad.epochs if teacher else g2.number_input("Fine-tuning epochs per step", 0, 10, key="prune_epochs")
g3.markdown(f"Prunes a copy of **{state.label(name)}** to ratio **{cfg.amount:.2f}** in {steps} steps (sparsity "
            f"s_t = s_f (1 - (1 - t/n)^3)), fine-tuning {epochs} epoch(s) {grad.trains} after each step with the "
            f"pruned weights held at zero (Adam, learning rate {grad.lr:g}, batches of {grad.batch_size}). A step "
            f"takes {grad.step_time} here. Moving any control stops a run.")
if st.button("Prune gradually and fine-tune", key="prune_finetune", type="primary"):
    with state.friendly_errors():
        gcfg = P.GradualConfig(cfg, int(steps), int(epochs), lr=grad.lr, batch_size=grad.batch_size)
        bar = st.progress(0.0, f"Pruning and fine-tuning, step 1 of {steps} (a step takes {grad.step_time})…")
        res = ui.gradual(name, gcfg, lambda step, frac: bar.progress(
            frac, f"step {step.step}/{steps} done: ratio {step.amount:.2f}, test {metric.short} "
                  f"{metric.format(step.score)} ({step.seconds:.0f} s)"))
        st.session_state.setdefault("prune_tuned", {})[ui.tuned_key(name, cfg)] = res
        st.rerun()
tuned = ui.tuned(name, cfg)
if tuned:
    last = tuned[-1]
    pct, places = (", %", 2) if metric.percent else ("", 4)

    def shown(v: float) -> float:
        return round(v * metric.scale, places)

    st.success(f"Your last run, gradual pruning to {last.amount:.2f} with fine-tuning: test {metric.short} "
               f"**{metric.format(last.score)}** (original {metric.format(base.score.value)}, one-shot at this ratio "
               f"{metric.format(last.oneshot)}). The fine-tuned curve above shows each step.")
    st.dataframe(pd.DataFrame([{"step": t.step, "prune ratio": round(t.amount, 3), "sparsity": round(t.sparsity, 3),
                                f"{metric.short} right after pruning{pct}": shown(t.oneshot),
                                f"after fine-tuning{pct}": shown(t.score),
                                f"validation{pct}": shown(t.val_score), "seconds": round(t.seconds, 2)}
                               for t in tuned]), hide_index=True)
    if cfg.structured:
        st.caption(f"The fine-tuned model keeps its {unit} masked (zero rows and columns); removing them for real "
                   "computes the same.")

with st.expander("How the methods choose what to prune", expanded=False):
    st.markdown("Each weight $w$ gets a score; the lowest-scored fraction $p$ is removed (its mask entry set to 0).")
    st.latex(r"\text{L1 magnitude: } s = |w| \qquad \text{Random: } s \sim U(0,1) \qquad "
             r"\text{Taylor: } s = \left| w \cdot \frac{\partial L}{\partial w} \right|")
    st.markdown(f"Taylor importance estimates how much the loss would change if the weight were zeroed, from one "
                f"gradient on {ui.CALIBRATION} training examples. **Per layer** removes $p$ of every layer; **global** "
                "ranks all weights together, so layers with many small weights lose more. **Structured** scores "
                "each unit by the norm of its weights' scores,")
    st.latex(r"S_c = \Big(\sum_{i \in c} s_i^{\,q}\Big)^{1/q}, \quad q \in \{1, 2\}")
    st.markdown(f"and removes whole units ({', '.join(fam.unit_kinds.values())}) — together with the inputs of the "
                "next layer that read them — so the tensors really shrink and dense kernels do less work. A "
                "classifier's output layer keeps every class; an encoder's heads and FFN neurons are scored by the "
                "L2 norm of every weight that computes or reads them. A ratio $p$ on two consecutive layers removes "
                "about $1 - (1 - p)^2$ of the weights between them.")

if not teacher:  # a lecture needs the figures, not the files
    export_panel(name, Recipe(name, prune=cfg))
