"""Pruning lab: a prune-ratio slider with live histograms, masks and the real effect on size, speed and accuracy."""
import pandas as pd
import streamlit as st

from slimcore import plots, weight_layers
from slimcore import pruning as P
from slimcore.recipe import Recipe
from slimui import cache, state, urlstate
from slimui import pruning as ui
from slimui import text as text_ui
from slimui import text_pruning
from slimui.components import Timed, delta
from slimui.export import export_panel
from slimui.urlstate import Bool, Choice, Float, Int

s, teacher = state.current()
if text_ui.is_text(s):
    text_pruning.page(s, teacher)
    st.stop()
name = s.name
st.title("Pruning lab")
st.caption("Move the prune ratio and watch which weights go, what accuracy it costs on the held-out test split, and "
           "what it really buys: masked weights keep dense tensors; removed channels make the model smaller.")
URL = urlstate.Spec(  # the settings kept in the link (?prune_ratio=0.8...); advanced ones are hidden in teacher mode
    Float("prune_ratio", 0.5, 0.0, 0.99, 0.01), Choice("prune_method", list(P.METHODS)),
    Choice("prune_scope", list(P.SCOPES)), Bool("prune_structured"), Choice("prune_norm", [1, 2], advanced=True),
    Choice("prune_layer", list(weight_layers(s.model))), Int("prune_steps", 5, 1, 20, advanced=True),
    Int("prune_epochs", 2, 0, 10, advanced=True))
URL.load()

c1, c2, c3, c4 = st.columns([3, 2, 2, 2])
ratio = c1.slider("Prune ratio", 0.0, 0.99, step=0.01, key="prune_ratio",
                  help="Fraction of weights removed (unstructured), or of each layer's output channels (structured).")
method = c2.selectbox("Method", list(P.METHODS), format_func=P.METHODS.get, key="prune_method")
scope = c3.radio("Scope", list(P.SCOPES), format_func=P.SCOPES.get, key="prune_scope", horizontal=True,
                 help="Per layer: every layer loses the same fraction. Global: one ranking over all layers.")
structured = c4.toggle("Structured", key="prune_structured",
                       help="Remove whole output channels (conv filters, neurons) instead of single weights.")
norm = URL.default("prune_norm") if teacher else c4.radio("Channel norm", [1, 2], format_func=lambda n: f"L{n}",
                                                          key="prune_norm", horizontal=True, disabled=not structured)
URL.save()

with state.friendly_errors():
    cfg = P.PruneConfig(ratio, method, scope, structured, norm)
    base = cache.baseline(name)
    now = ui.result(name, cfg)[0]

layers = list(now.layer_sparsity)
if now.emptied:
    st.warning(f"At this ratio every weight of {', '.join(now.emptied)} is removed: "
               f"{'that layer' if len(now.emptied) == 1 else 'those layers'} now output a constant, whatever the input, "
               "and the model can only guess. Lower the ratio, or prune per layer.")
if now.small_note:
    st.warning(f"{now.small_note.capitalize()}. Every other figure stands.")
cols = st.columns(5)
cols[0].metric("Test accuracy", f"{now.accuracy:.2%}", **delta((now.accuracy - base.accuracy) * 100, "{:+.2f} pt"),
               help=f"Measured on {len(s.test)} held-out test examples; change against the unpruned model.")
cols[1].metric("Non-zero parameters", f"{now.nonzeros:,}", **delta(now.nonzeros - base.nonzeros, "{:+,}", True),
               help=f"Of {now.params:,} parameters; {now.removed:,} of {now.weights:,} Linear/Conv weights removed "
                    "(biases are kept, except those of removed channels).")
cols[2].metric("Dense size (measured)", f"{now.dense_bytes / 1024:,.1f} KiB",
               **delta((now.dense_bytes - base.size_bytes) / 1024, "{:+,.1f} KiB", True),
               help="torch.save of the masked model: zeros cost as much as any other float.")
cols[3].metric("Sparse size (modelled)", f"{now.sparse.bytes / 1024:,.1f} KiB",
               help=f"Modelled from bit counts, storage format {now.sparse.format}: {now.sparse.detail}.")
if now.small_bytes is not None:
    cols[4].metric("Thin model (measured)", f"{now.small_bytes / 1024:,.1f} KiB",
                   **delta((now.small_bytes - base.size_bytes) / 1024, "{:+,.1f} KiB", True),
                   help=f"The channel-pruned model: torch.save of the model with channels removed at ratio {ratio:.2f}: {now.small_params:,} "
                        f"parameters, test accuracy {now.small_accuracy:.2%}.")
st.caption(f"Sparse size is **modelled** as `{now.sparse.format}` storage ({now.sparse.detail}); the other "
           "sizes are **measured** bytes of real files.")

left, right = st.columns(2)
with left:
    chosen = st.selectbox("Layer to inspect", layers, key="prune_layer")
    lay = ui.layer(name, cfg, chosen)
    st.plotly_chart(plots.weight_histogram(cache.layer_weights(name, chosen), f"{chosen}: all weights and those kept",
                                           threshold=lay["threshold"] if method == "l1" and not structured else None,
                                           after=lay["after"]), key="prune_hist")
with right:
    st.plotly_chart(plots.mask_heatmap(lay["mask"], f"{chosen} mask"), key="prune_mask")

left, right = st.columns(2)
with left:
    sparsity = [now.layer_sparsity[n] * 100 for n in layers]
    st.plotly_chart(plots.layer_bars(layers, sparsity, f"Weights removed per layer ({P.SCOPES[scope]})",
                                     "% of the layer's weights"), key="prune_layers")
with right:
    xs, ys = ui.curve(name, method, scope, structured, norm)
    tuned = st.session_state.get("prune_tuned", {}).get(ui.tuned_key(name, cfg))
    extra = {"gradual + fine-tuned": ([t.amount for t in tuned], [t.accuracy for t in tuned])} if tuned else None
    st.plotly_chart(plots.accuracy_curve(xs, ys, (ratio, now.accuracy), f"Accuracy against prune ratio "
                                         f"({P.METHODS[method]}, {P.SCOPES[scope]}{', structured' if structured else ''})",
                                         reference=base.accuracy, extra=extra), key="prune_curve")
    st.caption("One-shot curve: computed once per model and method, then cached.")

st.subheader("What it buys: the real models, timed")
timed = Timed("prune_retime", lambda: ui.latencies.clear(name, cfg), teacher)
lat = timed.measure("Timing the real models side by side…", lambda: ui.latencies(name, cfg))
rows = [("original (dense)", base.params, base.nonzeros, base.size_bytes, base.accuracy, *lat["original"]),
        ("masked (dense kernels, zeros kept)", now.params, now.nonzeros, now.dense_bytes, now.accuracy,
         *lat["masked"])]
if "channels" in lat:
    rows.append(("channels removed (structured, same ratio)", now.small_params, now.small_params, now.small_bytes,
                 now.small_accuracy, *lat["channels"]))
timed.show(pd.DataFrame([{
    "model": r[0], "parameters": r[1], "non-zeros": r[2], "size, KiB (measured)": round(r[3] / 1024, 1),
    "test accuracy, %": round(r[4] * 100, 2), "latency b=1, ms": round(r[5].median_ms, 3),
    "latency b=256, ms": round(r[6].median_ms, 3), "b=256 spread (IQR), ms": round(r[6].iqr_ms, 3)} for r in rows]))
b256 = lat["original"][1]
speed = [b256.median_ms / r[6].median_ms for r in rows[1:]]
timed.explain(f"At batch 256 the masked model runs at **{speed[0]:.2f}x** the original's speed — dense kernels "
              "multiply the zeros too" + (f" — while the model with channels removed runs at **{speed[1]:.2f}x**"
                                          f" ({' / '.join(f'{n} {sh[0]}' for n, sh in now.small_shapes.items())} "
                                          "output channels)" if len(speed) > 1 else "")
              + f". Latency: median of up to {b256.repeats} timed runs after {b256.warmup} warm-up each, the models "
              f"timed in turn, {b256.threads} thread(s), on this server's CPU; the original's spread (IQR) was "
              f"{b256.iqr_ms / b256.median_ms:.0%} of its median, so smaller differences are noise.",
              [b for r in rows for b in r[5:7]], markdown=True)

st.subheader("Gradual pruning with fine-tuning")
g1, g2, g3 = st.columns([1, 1, 2])
steps = URL.default("prune_steps") if teacher else g1.number_input("Steps", 1, 20, key="prune_steps",
                                                                    help="Pruning steps along the cubic schedule.")
epochs = URL.default("prune_epochs") if teacher else g2.number_input("Fine-tuning epochs per step", 0, 10,
                                                                     key="prune_epochs")
g3.markdown(f"Prunes a copy of **{state.label(name)}** to ratio **{ratio:.2f}** in {steps} steps (sparsity "
            f"s_t = s_f (1 - (1 - t/n)^3)), fine-tuning {epochs} epoch(s) on the training split after each step with "
            "the pruned weights held at zero. Moving any control stops a run.")
if st.button("Prune gradually and fine-tune", key="prune_finetune", type="primary"):
    with state.friendly_errors():
        gcfg = P.GradualConfig(cfg, int(steps), int(epochs))
        bar = st.progress(0.0, "Pruning and fine-tuning…")
        res = ui.gradual(name, gcfg, lambda step, frac: bar.progress(frac, f"step {step.step}/{steps}: ratio "
                                                                          f"{step.amount:.2f}, test accuracy "
                                                                          f"{step.accuracy:.2%}"))
        st.session_state.setdefault("prune_tuned", {})[ui.tuned_key(name, cfg)] = res
        st.rerun()
tuned = st.session_state.get("prune_tuned", {}).get(ui.tuned_key(name, cfg))
if tuned:
    last = tuned[-1]
    st.success(f"Your last run, gradual pruning to {last.amount:.2f} with fine-tuning: test accuracy "
               f"**{last.accuracy:.2%}** (original {base.accuracy:.2%}). The green curve above shows each step.")
    st.dataframe(pd.DataFrame([{"step": t.step, "prune ratio": round(t.amount, 3), "sparsity": round(t.sparsity, 3),
                                "accuracy right after pruning, %": round(t.oneshot_accuracy * 100, 2),
                                "after fine-tuning, %": round(t.accuracy * 100, 2),
                                "validation, %": round(t.val_accuracy * 100, 2), "seconds": round(t.seconds, 2)}
                               for t in tuned]), hide_index=True)

with st.expander("How the methods choose what to prune", expanded=False):
    st.markdown("Each weight $w$ gets a score; the lowest-scored fraction $p$ is removed (its mask entry set to 0).")
    st.latex(r"\text{L1 magnitude: } s = |w| \qquad \text{Random: } s \sim U(0,1) \qquad "
             r"\text{Taylor: } s = \left| w \cdot \frac{\partial L}{\partial w} \right|")
    st.markdown(f"Taylor importance estimates how much the loss would change if the weight were zeroed, from one "
                f"gradient on {ui.CALIBRATION} training examples. **Per layer** removes $p$ of every layer; **global** "
                "ranks all weights together, so layers with many small weights lose more. **Structured** scores "
                "each output channel by the norm of its weights' scores,")
    st.latex(r"S_c = \Big(\sum_{i \in c} s_i^{\,q}\Big)^{1/q}, \quad q \in \{1, 2\}")
    st.markdown("and removes whole channels — together with the inputs of the next layer that read them — so the "
                "tensors really shrink and dense kernels do less work. The output layer keeps every class. A channel "
                "ratio $p$ on two consecutive layers removes about $1 - (1 - p)^2$ of the weights between them.")

if not teacher:  # a lecture needs the figures, not the files
    export_panel(name, Recipe(name, prune=cfg))
