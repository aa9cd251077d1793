"""Distillation lab: a temperature slider that softens the teacher live, and students trained while you watch."""
import time

import numpy as np
import pandas as pd
import streamlit as st

from slimcore import distillation as D
from slimcore import plots
from slimui import cache, state, urlstate
from slimui import distill as ui
from slimui import text as text_ui
from slimui import text_distill
from slimui.components import Timed
from slimui.urlstate import Choice, Float, Int

s, teacher = state.current()
if text_ui.is_text(s):
    text_distill.page(s, teacher)
    st.stop()
name = s.name
st.title("Distillation lab")
st.caption(f"A small student learns from **{state.label(name)}**'s outputs softened by a temperature. The probabilities below follow "
           "the slider instantly; students are trained on demand and kept, so a setting trained once comes back at once.")
URL = urlstate.Spec(  # the settings kept in the link (?temperature=8...); advanced ones are hidden in teacher mode
    Float("temperature", 4.0, 1.0, 20.0, 0.5), Float("alpha", 0.5, 0.0, 1.0, 0.05, advanced=True),
    Choice("student", list(D.WIDTHS)), Int("epochs", 10, 1, 100, advanced=True),
    Int("seed", 0, 0, 10_000, advanced=True), Int("example", 0, 0, len(s.test) - 1))
URL.load()

c1, c2, c3, c4, c5 = st.columns([3, 2, 2, 1, 1])
temperature = c1.slider("Temperature", 1.0, 20.0, step=0.5, key="temperature",
                        help="T in softmax(z / T): 1 is the teacher's ordinary output; higher is softer.")
alpha = URL.default("alpha") if teacher else c2.slider("Alpha (weight of the soft targets)", 0.0, 1.0, step=0.05,
                                                         key="alpha")
width = c3.selectbox("Student size", list(D.WIDTHS), key="student",
                     format_func=lambda w: f"{w} width · {ui.student_params(name, w):,} parameters")
epochs = URL.default("epochs") if teacher else c4.number_input("Epochs", 1, 100, key="epochs")
seed = URL.default("seed") if teacher else c5.number_input("Seed", 0, 10_000, key="seed")
URL.save()
with state.friendly_errors():
    key = ui.run_key(name, width, D.DistillConfig(float(temperature), float(alpha), int(epochs), int(seed)))

st.subheader("What the temperature does to the teacher's output")
logits = ui.teacher_logits(name)
left, right = st.columns([1, 3])
with left:
    i = st.number_input("Test example", 0, len(s.test) - 1, key="example")
    y = int(s.test.y[i])
    st.plotly_chart(plots.example_gallery(s.test.x[i:i + 1].numpy(), [y], [int(logits[i].argmax())],
                                          [float(D.soften(logits[i], 1.0).max())], cols=1), key="distill_input")
p1, pt = D.soften(logits[i], 1.0), D.soften(logits[i], temperature)
h = (float(D.entropy_bits(p1)), float(D.entropy_bits(pt)))
with right:
    st.plotly_chart(plots.soft_targets(p1.tolist(), pt.tolist(), temperature, h, y), key="distill_soft")
wrong = [c for c in np.argsort(-pt.numpy()) if c != y]
st.markdown(f"**Dark knowledge** — the wrong classes as the teacher ranks them for this **{y}**: "
            + ", ".join(f"{c} ({float(pt[c]):.2%} at T = {temperature:g}, {float(p1[c]) * 100:.2g} % at T = 1)"
                        for c in wrong[:4])
            + f". Entropy rises from {h[0]:.2f} to {h[1]:.2f} bits (at most {np.log2(len(p1)):.2f}): at T = 1 these "
            "similarities are nearly invisible; softened, the student can learn them.")

st.subheader("Train a student")
st.markdown(f"Trains a **{width}-width** student ({ui.student_params(name, width):,} parameters, teacher "
            f"{sum(p.numel() for p in s.model.parameters()):,}) for {epochs} epochs with the distillation loss, and the "
            "same student from the same initialisation on labels alone (the same budget), for comparison.")
run, scratch = ui.store().get(key), ui.store().get(ui.scratch_key(key))
if st.button("Train", key="train", type="primary", disabled=run is not None and scratch is not None):
    bar = st.progress(0.0, "Preparing… (the first training in a server process also loads PyTorch's optimizer "
                           "machinery: about 2 s, once)")
    live = st.empty()
    for label, k in (("distilled", key), ("from scratch", ui.scratch_key(key))):
        seen: list[D.Epoch] = []

        def show(e: D.Epoch, label=label, seen=seen) -> None:  # called after every epoch
            seen.append(e)
            done = e.epoch / epochs / 2 + (0.5 if label == "from scratch" else 0.0)
            bar.progress(done, f"Student {label}: epoch {e.epoch}/{epochs}, validation accuracy {e.val_accuracy:.1%}")
            live.plotly_chart(plots.line_chart([r.epoch for r in seen], {"train": [r.train_accuracy for r in seen],
                                                                         "validation": [r.val_accuracy for r in seen]},
                                               f"Student {label}: accuracy while training", "epoch", "accuracy",
                                               percent=True))
        last = [time.monotonic()]

        def tick(frac: float, label=label, last=last) -> None:  # after every batch: a live bar, four times a second
            if time.monotonic() - last[0] > 0.25:
                last[0] = time.monotonic()
                bar.progress(frac / 2 + (0.5 if label == "from scratch" else 0.0), f"Student {label}: training…")
        with state.friendly_errors():
            ui.train(k, on_epoch=show, on_batch=tick)
    st.rerun()

if run is None or scratch is None:
    st.info("No student trained for this setting yet: press **Train** (about a second per epoch at most on these "
            "models). Any setting trained before, by anyone on this server, shows at once.")
else:
    ep = [e.epoch for e in run.history]
    a, b = st.columns(2)
    a.plotly_chart(plots.line_chart(ep, {"soft (KL at T)": [e.soft_loss for e in run.history],
                                         "hard (cross-entropy)": [e.hard_loss for e in run.history],
                                         "total": [e.loss for e in run.history]},
                                    "Distilled student: loss parts per epoch", "epoch", "loss"), key="distill_loss")
    b.plotly_chart(plots.line_chart(ep, {"distilled: validation": [e.val_accuracy for e in run.history],
                                         "scratch: validation": [e.val_accuracy for e in scratch.history],
                                         "distilled: train": [e.train_accuracy for e in run.history]},
                                    "Accuracy per epoch", "epoch", "accuracy", percent=True), key="distill_acc")
    timed = Timed("distill_retime", lambda: ui.compare.clear(key), teacher)
    with state.friendly_errors():
        table, noisy = timed.measure("Timing teacher and students side by side…", lambda: ui.compare(key))
    timed.show(pd.DataFrame([{"model": k} | v for k, v in table.items()]))
    gain = table["distilled student"]["test accuracy, %"] - table["student from scratch"]["test accuracy, %"]
    timed.explain(f"On the {len(s.test)} held-out test examples the distilled student is **{gain:+.2f} points** "
                  "against the one trained on labels alone — for this seed; seeds differ by about a point on these "
                  "small sets, so compare several before concluding. Sizes are measured (torch.save); latency is "
                  "measured side by side on this server's CPU (median of timed runs after warm-up, batch 1 and 256).",
                  noisy=noisy, markdown=True)

st.subheader("Student accuracy against temperature")
points = {t: ui.store().get(ui.at_temperature(key, t)) for t in ui.GRID}
ready = {t: r for t, r in points.items() if r is not None}
base = ui.store().get(ui.scratch_key(key))
if ready:
    st.plotly_chart(plots.line_chart(list(ready), {"distilled": [r.history[-1].val_accuracy for r in ready.values()]}
                                     | ({"from scratch": [base.history[-1].val_accuracy] * len(ready)} if base else {}),
                                     f"Validation accuracy of the {width} student by temperature (alpha {alpha:g}, "
                                     f"{epochs} epochs, seed {seed})", "temperature", "validation accuracy", percent=True,
                                     marker=temperature), key="distill_grid")
st.caption(f"A grid of {len(ui.GRID)} temperatures ({', '.join(f'{t:g}' for t in ui.GRID)}), each a full training "
           f"run computed once per setting and kept: {len(ready)} of {len(ui.GRID)} ready. Validation accuracy, so "
           "that choosing T does not peek at the test split. The dashed line is the slider's temperature.")
if alpha == 0:
    st.info("With alpha = 0 the student learns from the labels alone: the temperature plays no part.")
elif len(ready) < len(ui.GRID) and st.button(f"Compute the {len(ui.GRID) - len(ready)} missing grid points",
                                           key="grid"):
    bar = st.progress(0.0, "Training the grid…")
    with state.friendly_errors():
        for n, (t, r) in enumerate(points.items()):
            if r is None:
                ui.train(ui.at_temperature(key, t))
            bar.progress((n + 1) / len(points), f"T = {t:g} done")
        ui.train(ui.scratch_key(key))
    st.rerun()

with st.expander("The distillation loss, and why T²"):
    st.latex(r"p_i^{(T)} = \frac{e^{z_i / T}}{\sum_j e^{z_j / T}}, \qquad "
             r"\mathcal{L} = \alpha\, T^2\, \mathrm{KL}\big(p^{(T)}_{\text{teacher}} \,\|\, p^{(T)}_{\text{student}}\big)"
             r" + (1 - \alpha)\, \mathrm{CE}\big(z_{\text{student}}, y\big)")
    st.markdown("Dividing the logits by T > 1 flattens the teacher's distribution, so the small probabilities it "
                "gives wrong classes — which digits look alike — carry signal. The gradient of the soft term with "
                "respect to the student's logits is (p_student − p_teacher) / T, and for large T its size falls as "
                "1 / T²; multiplying by T² keeps the soft and hard terms on the same scale whatever T is (Hinton, "
                "Vinyals & Dean 2015). Alpha = 0 is ordinary training on labels.")
