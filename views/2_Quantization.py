"""Quantization lab, any model family: a bit-width slider with the grid over the weights, quality against bits, and
simulated vs real int8 side by side."""
import math

import streamlit as st

from slimcore import plots
from slimcore.recipe import Int8Config, Recipe
from slimui import compare, lessons, projector, state, text_quant, urlstate, work
from slimui import quant as ui
from slimui.components import Timed, metric_slots
from slimui.export import export_panel
from slimui.urlstate import Bool, Choice, Int

s, teacher = state.current()
state.require_layers(s, "Quantization")
name = s.name
fam = ui.family(name)
metric = fam.metric
panel = text_quant if fam.name == "encoder" else None   # the encoder's own figures: embedding quality, groups, why
acts = ui.activations_supported(name)
layers = list(ui.layers(name))
st.title("Quantization lab")
if not urlstate.projector():   # projector mode: the explanations folded away
    st.caption(f"Move the bit width and watch the grid the weights of the model's {len(layers)} compressible layers "
               f"are rounded onto, what each bit costs in {metric.short} on held-out data, and how the simulation "
               "compares with real int8 models. Fake quantization is a **simulation**: rounded weights are still "
               "stored and multiplied in fp32.")
URL = urlstate.Spec(  # the settings kept in the link (?bit_width=4...); advanced ones are hidden in teacher mode
    Int("bit_width", 8, 1, 16), Bool("ternary"), Choice("scheme", list(ui.SCHEMES)),
    Choice("granularity", list(ui.GRANULARITIES)), Choice("quant_target", ui.TARGETS, advanced=True),
    Choice("act_bits", list(range(2, 17)), 8, advanced=True),
    Choice("calibration", list(ui.CALIBRATION_METHODS), advanced=True),
    Choice("rounding", list(ui.ROUNDING), advanced=True), Choice("quant_layer", layers))
URL.load()
setting = compare.setting(URL, "quant_layer")

c1, c2, c3, c4 = st.columns([3, 2, 2, 2])
bits = c1.slider("Bit width", 1, 16, urlstate.shown("bit_width"), key="bit_width",
                 help="Bits per weight: 2 to 16 is a uniform grid of 2^k − 1 (symmetric) or 2^k (asymmetric) levels; "
                      "1 is binary, sign(w) × mean|w|.")
ternary = c1.checkbox("Ternary weights {−a, 0, +a}", key="ternary",
                      help="Zero out |w| ≤ 0.7 · mean|w|, the rest become ±a. Overrides the bit width for weights.")
scheme = c2.radio("Scheme", list(ui.SCHEMES), key="scheme", horizontal=True,
                  help="Symmetric: zero point 0, grid symmetric about 0. Asymmetric: the grid spans [min, max] with an "
                       "integer zero point. Binary and ternary have no zero point: the scheme does not apply to them.")
granularity = c2.radio("Granularity", list(ui.GRANULARITIES), key="granularity", horizontal=True,
                       help="One scale for the whole tensor, or one per output channel.")
target, act_bits, calibration, rounding = (URL.default(k) for k in ("quant_target", "act_bits", "calibration",
                                                                     "rounding"))
if not teacher:  # in teacher mode activations, calibration and rounding stay at their defaults
    if acts:
        target = c3.radio("Quantize", ui.TARGETS, key="quant_target")
        act_bits = c3.select_slider("Activation bits", list(range(2, 17)), key="act_bits",
                                    disabled=target != ui.TARGETS[1],
                                    help="Bits of every Linear/Conv input (per tensor, asymmetric).")
        calibration = c4.selectbox("Activation calibration", list(ui.CALIBRATION_METHODS), key="calibration",
                                   disabled=target != ui.TARGETS[1],
                                   help=f"Input ranges observed on {ui.CALIBRATION_EXAMPLES} training inputs: the "
                                        "full range, or a percentile range that clips rare outliers.")
    else:
        c3.caption(f"Weights only: activation quantization is not available for {fam.label} yet.")
    rounding = c4.selectbox("Rounding", list(ui.ROUNDING), key="rounding",
                            help="Stochastic rounding rounds up with probability equal to the fraction: unbiased on "
                                 "average, noisier per weight.")
URL.save()
compare.toolbar("Quantization", setting, ui.PRESETS, teacher, name)

with state.friendly_errors():
    cfg = ui.config(bits, ternary, scheme, granularity, target, act_bits, calibration, rounding)
    base = ui.original(name)
    with work.spinner("Quantizing and measuring", "quant_variant", name):
        now = ui.variant(name, ui.key(cfg))
    errors = {e.name: e for e in now["errors"]}
    lessons.banner("Quantization", lambda: ui.figures(name, cfg, real=True))
    layer = st.session_state.get("quant_layer", layers[0])
    if layer not in layers:  # another model's layer, kept from before a model switch
        layer = st.session_state["quant_layer"] = layers[0]
    detail = ui.layer_detail(name, ui.key(cfg), layer)

big = urlstate.projector()
top = st.container() if big else None   # projector mode: the main chart (quality against bits) under the slider
score = now["score"]
weights_label = ("ternary" if cfg.ternary else "binary" if cfg.bits == 1 else f"{cfg.bits}-bit")
if (cfg.ternary or cfg.bits == 1) and not cfg.symmetric:
    st.info("Binary and ternary weights are ±a (and 0): there is no zero point, so *asymmetric* does not apply to "
            "them; granularity does (one a per tensor or per output channel).")
if cfg.ternary and cfg.rounding == "stochastic":
    st.info("Ternary and binary weights are set by thresholds, not rounding: the rounding choice does not apply.")
st.markdown(f"**Fake quantization: simulated** — {cfg.describe()}; measured on {score.examples:,} held-out "
            "examples.")
err = errors[layer]
sqnr = "∞ dB (exact)" if math.isinf(err.sqnr_db) and err.sqnr_db > 0 else f"{err.sqnr_db:.1f} dB"
cols = metric_slots(5)
cols[0].metric(f"{metric.short.capitalize()} (simulated)", metric.format(score.value), **ui.score_delta(score, base),
               help=f"{metric.help} Of the fake-quantized model ({cfg.describe()}), on {score.examples:,} held-out "
                    "examples; change against fp32.")
cols[1].metric(f"fp32 {metric.short} (measured)", metric.format(base.value),
               help="The original model on the same examples.")
cols[2].metric(f"Size at {weights_label} (modelled)", ui.fmt_bytes(now["size"].bytes),
               f"{ui.fp32_bytes(name) / now['size'].bytes:.2f}× smaller than fp32", delta_color="off",
               delta_arrow="off",
               help=f"Modelled from bit counts: {now['size'].detail}.")
# the layer's name goes in the help: an encoder's ("encoder.layer.0.attention.self.query") cut the labels
cols[3].metric("SQNR, chosen layer", sqnr, help=f"Of {layer}: 10·log10(mean w² / mean (w − ŵ)²) over its weights.")
cols[4].metric("Distinct values, layer", f"{err.distinct:,}",
               help=f"In {layer}, among its {err.numel:,} quantized weights; MSE {err.mse:.3g}, largest error "
                    f"{err.max_abs:.3g}.")
if panel:
    panel.quality(score, base, name)
with state.friendly_errors():
    compare.panel("Quantization", setting, lambda v: ui.figures(name, ui.setting_config(v)), teacher, name)

st.selectbox("Layer to inspect", layers, key="quant_layer")
shape = " × ".join(map(str, detail["shape"]))
left, right = st.columns(2)
with left:
    st.plotly_chart(plots.levels_histogram(detail["w"], detail["levels"], f"{layer} ({shape}): fp32 weights and the "
                                           f"{weights_label} grid", note=detail["note"]), key="q_levels")
    bound = " (bound of the widest channel)" if cfg.per_channel and detail["half_step"] else ""
    st.plotly_chart(plots.error_histogram(detail["q"] - detail["w"], detail["half_step"],
                                          f"{layer}: quantization error{bound}"), key="q_error")
with right:
    per = f" (one grid per channel, {len(detail['levels'])} levels each)" if cfg.per_channel else ""
    st.plotly_chart(plots.quantized_histogram(detail["q"], f"{layer} after quantization{per}"), key="q_values")
    st.plotly_chart(plots.sqnr_bars(layers, [errors[n].sqnr_db for n in layers], layer,
                                    f"SQNR per layer ({weights_label} weights)"), key="q_sqnr")

with state.friendly_errors():
    line = ui.curve(name, ui.curve_key(cfg))   # None (a placeholder drawn) until it is computed
left, right = st.columns(2)
if line is not None:
    act_note = f", A{cfg.activations.bits}" if cfg.activations else ""
    title = f"{metric.short.capitalize()} vs weight bits, simulated ({scheme}, {granularity}{act_note})"
    here = math.log2(3) if cfg.ternary else cfg.bits
    if metric.percent:
        fig = plots.bits_curve(line["bits"], [p.value for p in line["scores"]], (here, score.value), base.value,
                               {"ternary": line["ternary"].value}, title, symmetric=cfg.symmetric)
    else:
        series = panel.curve_series(line["scores"]) if panel else {metric.short: [p.value for p in line["scores"]]}
        fig = plots.line_chart(line["bits"], series, title, "weight bits", f"{metric.short} (to the original)",
                               marker=here)
    if big:
        fig.update_layout(height=projector.height(420))
    (top or left).plotly_chart(fig, key="q_curve")
    left.caption(f"The curve is computed once per scheme, granularity, activation and rounding setting "
                 f"({len(line['bits']) + 1} quantized models evaluated on {score.examples:,} held-out examples), "
                 f"then kept: moving the slider only moves the marker. Ternary: "
                 f"{metric.format(line['ternary'].value)}."
                 + (f" A{cfg.activations.bits}: {cfg.activations.bits}-bit activations at every point."
                    if cfg.activations else ""))
if not big:   # projector mode: the explanations folded away
    right.markdown("**Reading the figures.** SQNR (signal-to-quantization-noise ratio) rises by about 6 dB per bit: "
                 "each bit halves the grid step. Per channel, small-range channels get their own fine grid; per "
                 "tensor, the widest channel sets the step for all. Binary and ternary keep only the sign (and "
                 "zero), scaled per channel. Where the curve falls off a cliff, the model stops working: compare "
                 "2 and 3 bits across schemes.")

st.subheader("Simulated vs real int8")
timed = Timed("quant_retime", teacher)
detail_cols = panel.detail if panel else None
sim = (weights_label, score, now["size"].bytes)
with state.friendly_errors():
    int8 = ui.int8_all(name)   # built in the background: None (a placeholder drawn) until then
timed.show(ui.int8_table(name, *sim, int8, None, detail_cols))
engines = st.empty()
if int8 is not None:
    st.caption(f"Real int8 in two engines, torch.ao and ONNX Runtime, measured on {base.examples:,} held-out "
               "examples; size: each int8 model's file (torch.ao: torch.save of its state dict; ONNX Runtime: its int8 "
               "ONNX file). It does not follow the slider.")
    engines.markdown(ui.engines_note(name, int8, None))
    with st.expander("What each model holds: what is int8, what stays fp32"):
        for label, f in int8.items():
            kind = "fp32" if f["kind"] == "fp32" else f"{f['kind']} int8"
            engine = "ONNX Runtime" if f["engine"] == "onnxruntime" else f"torch.ao, {f['engine']} kernels"
            st.caption(f"**{label}** ({kind}, {engine}): {f['notes']}")

if panel:
    panel.sections(name, cfg)

explained = st.expander("How the grid is built") if big else st.container()   # projector mode: folded away
explained.subheader("How the grid is built")
f1, f2 = explained.columns(2)
with f1:
    st.markdown("**Uniform k-bit grid**: scale *s*, integer zero point *z*, integer codes *q* from q_min to q_max.")
    st.latex(r"q = \operatorname{clamp}\big(\operatorname{round}(w / s) + z,\ q_{\min},\ q_{\max}\big)")
    st.latex(r"\hat w = s\,(q - z)")
    st.markdown(r"**Symmetric**: $z = 0$, codes $-(2^{k-1} - 1) \ldots 2^{k-1} - 1$: a grid symmetric about 0.")
    st.latex(r"s = \frac{\max |w|}{2^{k-1} - 1}")
    st.markdown(r"**Asymmetric**: codes $0 \ldots 2^k - 1$ over the range [min, max], widened to include 0.")
    st.latex(r"s = \frac{\max(w, 0) - \min(w, 0)}{2^k - 1}")
    st.latex(r"z = -\operatorname{round}\big(\min(w, 0) / s\big)")
    st.markdown("Round to nearest (ties to even), or stochastic: up with probability equal to the fraction. Per "
                "channel, each output channel gets its own s and z. Biases stay fp32.")
with f2:
    st.markdown("**Binary and ternary**, with *a* per output channel (or per tensor):")
    st.latex(r"\text{binary: } \hat w = a\,\operatorname{sign}(w), \qquad a = \operatorname{mean}|w|")
    st.latex(r"\text{ternary: } \hat w = a\,\operatorname{sign}(w)\,[\,|w| > \Delta\,]")
    st.latex(r"\Delta = 0.7\,\operatorname{mean}|w|, \qquad a = \operatorname{mean}_{|w| > \Delta} |w|")
    st.latex(r"\text{SQNR} = 10 \log_{10} \frac{\sum w^2}{\sum (w - \hat w)^2}\ \text{dB} \approx 6.02\,k + c")
    st.markdown((f"**Activations** (when on): each Linear/Conv input is rounded onto a per-tensor asymmetric grid "
                 f"whose range was calibrated on {ui.CALIBRATION_EXAMPLES} training inputs. " if acts else "")
                + "**Real int8** is another model, built and run by an int8 engine, ONNX Runtime or PyTorch's torch.ao "
                "(dynamic: activations quantized on the fly; static: activation ranges calibrated on training inputs, "
                "for models with convolutions).")



def timing_table(lat: dict) -> None:
    assert int8 is not None   # timed once the int8 models are built
    timed.show(ui.int8_table(name, *sim, int8, lat, detail_cols))
    engines.markdown(ui.engines_note(name, int8, lat))
    if panel:
        panel.why(timed, name, lat)
    else:
        timed.explain(f"{metric.help} Fake-quantized weights are fp32 numbers run by the same dense fp32 kernels, so "
                      "the simulated model is exactly as fast, and as large on disk, as fp32; its size at k bits is "
                      "modelled. Latency: median of timed runs on this server's CPU, fp32 and int8 timed side by "
                      "side, once per model.", [b for per in lat.values() for b in per.values()])


if int8 is not None:   # timed once the int8 models are built
    timed.measure(ui.timing(name), timing_table)

if not teacher:  # a lecture needs the figures, not the files
    simulated = Recipe(name, quant=cfg)
    export_panel(name, simulated, {f"simulated {cfg.bits}-bit (fake quantization)": simulated,
                                   **{f"real {k}": Recipe(name, int8=Int8Config.from_variant(v))
                                      for k, v in ui.int8_variants(name).items()}})
