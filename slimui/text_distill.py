"""The Distillation lab on the text sample (minilm): a shallower encoder, started from the teacher's own layers, learns
to embed sentences as the teacher does. The temperature picture follows the slider at once; training is on demand."""
from __future__ import annotations

import time
from collections import OrderedDict

import numpy as np
import pandas as pd
import streamlit as st

from slimcore import plots, serialized_bytes
from slimcore import text as T
from slimcore import text_distill as TD
from slimcore.text import TextSample

from . import cache, state, urlstate
from . import text as ui
from .components import Timed
from .urlstate import Choice, Float, Int

TEMPERATURES = (0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0)  # log-spaced
LRS = (3e-5, 1e-4, 3e-4, 1e-3)
BATCHES = (8, 16, 32, 64)
DEFAULT = TD.TextDistillConfig()
RUNS = "text_distill_runs"   # session key: this session's finished runs, by (model, config)
KEEP = 3                     # runs kept per session (a 3-layer student is ~66 MiB)
SECONDS_FIXED, SECONDS_PER_LAYER_EPOCH = 7.0, 2.2   # rough run time on 2 idle cores (see estimate)
RELATION = {"variant": "a variant of it", "paraphrase": "its paraphrase (or a variant)", "other": "another group"}


@st.cache_resource(show_spinner=False, max_entries=5)
def untrained(name: str, layers: int) -> T.MiniLM:
    """The student before training: the teacher's embeddings and chosen layers (shared, read-only)."""
    return TD.student_from_teacher(cache.sample(name).model, layers)


@st.cache_data(show_spinner=False)
def student_card(name: str, layers: int) -> dict:
    """The untrained student's architecture, counts, measured size and quality on the quick set."""
    m = untrained(name, layers)
    return {"architecture": T.architecture(m), "kept": TD.kept_layers(len(cache.sample(name).model.encoder.layer), layers),
            "parameters": TD.parameters(m), "bytes": serialized_bytes(m),
            "quick": T.evaluate(m, ui.split(name, True), ui.reference(name, True))}


@st.cache_data(show_spinner=False)
def teacher_card(name: str) -> dict:
    m = cache.sample(name).model
    return {"layers": len(m.encoder.layer), "parameters": TD.parameters(m), "bytes": ui.size_bytes(name)}


@st.cache_data(show_spinner=False, max_entries=16)
def first_batch(name: str, seed: int, batch_size: int) -> dict:
    """The first training batch of a run (sentences, variants, group) and the teacher's similarity rows for it."""
    s = cache.sample(name)
    pool = TD.training_pool(s.data.train, seed)
    idx = TD.batches(pool, batch_size, seed, 0)[0]
    emb = TD.embed_ids(s.model, tuple(pool.ids[i] for i in idx))
    return {"texts": [pool.texts[i] for i in idx], "kind": [pool.kind[i] for i in idx],
            "source": [pool.source[i] for i in idx], "group": [pool.group[i] for i in idx],
            "ids": tuple(pool.ids[i] for i in idx), "teacher": TD.similarity_logits(emb).numpy()}


@st.cache_data(show_spinner=False, max_entries=32)
def student_rows(name: str, layers: int, seed: int, batch_size: int) -> np.ndarray:
    """The untrained student's similarity rows for the same batch."""
    emb = TD.embed_ids(untrained(name, layers), first_batch(name, seed, batch_size)["ids"])
    return TD.similarity_logits(emb).numpy()


def softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    z = logits / temperature
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def kl_div(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p || q) in nats."""
    return float((p * (np.log(np.clip(p, 1e-30, None)) - np.log(np.clip(q, 1e-30, None)))).sum())


def runs() -> OrderedDict:
    return st.session_state.setdefault(RUNS, OrderedDict())


def keep_run(key: tuple, result: TD.TextDistillResult) -> None:
    store = runs()
    store[key] = {"result": result, "latency": None}
    store.move_to_end(key)
    while len(store) > KEEP:
        store.popitem(last=False)


def controls(teacher: bool) -> TD.TextDistillConfig | None:
    url = urlstate.Spec(Int("student_layers", DEFAULT.layers, 1, TD.MAX_LAYERS),
                        Choice("temperature", TEMPERATURES, DEFAULT.temperature),
                        Float("mse_weight", DEFAULT.alpha, 0.0, 1.0, 0.05, advanced=True),
                        Int("epochs", DEFAULT.epochs, 1, 20),
                        Choice("lr", LRS, DEFAULT.lr, advanced=True),
                        Choice("batch_size", BATCHES, DEFAULT.batch_size, advanced=True),
                        Int("seed", DEFAULT.seed, 0, 10_000, advanced=True))
    url.load()
    c = st.columns([2, 3, 2, 1])
    layers = c[0].slider("Student layers (of the teacher's 6)", 1, TD.MAX_LAYERS, key="student_layers",
                         help="The student keeps the teacher's first and last layers and others evenly spaced "
                              "between them, with all of its embedding tables.")
    temperature = c[1].select_slider(
        "Temperature T of the similarity softmax", TEMPERATURES, key="temperature", format_func=lambda t: f"{t:g}",
        help="softmax(S / T) over a sentence's cosine similarities to the other sentences of its batch. Cosines lie in "
             "[-1, 1], so useful temperatures are small: at 0.1 a cosine gap of 0.3 is a 20x probability ratio; above "
             "1 every row is close to uniform. Default 0.2: most of a sentence's mass goes to its own variants and its "
             "paraphrase, and the rest is still ranked. Log-spaced steps.")
    alpha = url.default("mse_weight") if teacher else c[2].slider(
        "Alpha (weight of the embedding MSE)", 0.0, 1.0, step=0.05, key="mse_weight",
        help="alpha x MSE to the teacher's embedding + (1 - alpha) x T² x KL of the similarity rows. 1: copy the "
             "embeddings only; 0: copy only how each sentence ranks the others of its batch.")
    epochs = c[3].number_input("Epochs", 1, 20, key="epochs")
    if teacher:
        lr, batch, seed = url.default("lr"), url.default("batch_size"), url.default("seed")
    else:
        a = st.columns([2, 2, 2, 3])
        lr = a[0].select_slider("Learning rate (AdamW)", LRS, key="lr", format_func=lambda v: f"{v:g}")
        batch = a[1].select_slider("Batch size (sentences)", BATCHES, key="batch_size")
        seed = a[2].number_input("Seed", 0, 10_000, key="seed",
                                 help="Draws the word-dropped variants and fragments, and the batch order.")
    url.save()
    with state.friendly_errors():
        return TD.TextDistillConfig(int(layers), float(temperature), float(alpha), int(epochs), float(lr), int(batch),
                                    int(seed))
    return None


def student_section(name: str, cfg: TD.TextDistillConfig) -> None:
    with st.spinner("Building the student from the teacher's layers…"):
        card, tc = student_card(name, cfg.layers), teacher_card(name)
    st.subheader("The student, before any training")
    c = st.columns(4)
    c[0].metric("Layers", f"{cfg.layers} of {tc['layers']}",
                help=f"Copied from the teacher's layers {', '.join(map(str, card['kept']))} (0-based); embeddings "
                     "copied too.")
    c[1].metric("Parameters", f"{card['parameters']:,}", f"{card['parameters'] / tc['parameters'] - 1:+.1%}",
                delta_color="off", help=f"Teacher: {tc['parameters']:,}. The embedding tables (11.9 M) stay whole.")
    c[2].metric("Size (measured)", f"{card['bytes'] / 2**20:,.1f} MiB", f"{card['bytes'] / tc['bytes'] - 1:+.1%}",
                delta_color="off", help=f"Measured: bytes of torch.save of the state dict (teacher "
                                        f"{tc['bytes'] / 2**20:,.1f} MiB).")
    c[3].metric("Speed-up (modelled)", f"~{tc['layers'] / cfg.layers:.1f}x", delta_color="off",
                help="Modelled: the ratio of transformer layers, which do nearly all the work. The measured latency "
                     "is in the table after training.")
    st.caption(f"{card['architecture']}, teacher layers {', '.join(map(str, card['kept']))} kept. Its quality "
               f"untrained, measured on {ui.where(name, True)}:")
    ui.show_quality(card["quick"], ui.original_quality(name, True), name, quick=True)


def temperature_section(name: str, cfg: TD.TextDistillConfig) -> None:
    st.subheader("What the temperature does: one sentence's view of its batch")
    b = first_batch(name, cfg.seed, cfg.batch_size)
    left, right = st.columns([3, 1])
    originals = [i for i, k in enumerate(b["kind"]) if k == "sentence"]
    anchor = right.selectbox("Anchor sentence (of the first training batch)", originals, key="text_anchor",
                             format_func=lambda i: b["texts"][i][:70])
    if anchor not in originals:
        anchor = originals[0]
    others = [j for j in range(len(b["texts"])) if j != anchor]
    rel = ["variant" if b["source"][j] == b["source"][anchor] else
           "paraphrase" if b["group"][j] == b["group"][anchor] else "other" for j in others]
    p_t = softmax(b["teacher"][anchor], cfg.temperature)
    p_s = softmax(student_rows(name, cfg.layers, cfg.seed, cfg.batch_size)[anchor], cfg.temperature)
    run = runs().get((name, cfg))
    if run is not None and "rows" not in run:   # this setting's trained student on the same batch (kept with the run)
        run["rows"] = TD.similarity_logits(TD.embed_ids(run["result"].student, b["ids"])).numpy()
    p_tr = softmax(run["rows"][anchor], cfg.temperature) if run is not None else None
    order = np.argsort(-b["teacher"][anchor], kind="stable")
    labels = [f"#{n + 1}{' ★' if rel[k] != 'other' else ''}" for n, k in enumerate(order)]
    series = {"teacher": (p_t[order] * 100).tolist(), f"untrained {cfg.layers}-layer student": (p_s[order] * 100).tolist()}
    if p_tr is not None:
        series["trained student (this setting)"] = (p_tr[order] * 100).tolist()
    fig = plots.grouped_bars(labels, series,
                             f"softmax(S / T) at T = {cfg.temperature:g}: the anchor against the {len(others)} other "
                             "sentences of its batch", "other sentences, most similar under the teacher first "
                             "(★ its own variants and its paraphrase)", "probability, %",
                             text_format="", hover="sentence %{x}: %{y:.3g} %", height=360)
    fig.layout.xaxis.type = "category"   # plotly would read "#1" as the number 1 and drop "#1 ★"
    left.plotly_chart(fig, key="text_distill_softmax")
    h = float(-(p_t * np.log2(np.clip(p_t, 1e-30, None))).sum())
    kl = kl_div(p_t, p_s)
    related = float(sum(p_t[k] for k in range(len(others)) if rel[k] != "other"))
    right.metric("Teacher's entropy", f"{h:.2f} bits", help=f"At most log2({len(others)}) = {np.log2(len(others)):.2f} "
                 "bits (uniform). 2^entropy is the number of sentences the distribution effectively spreads over.")
    right.metric("Mass on its variants and paraphrase", f"{related:.1%}",
                 help=f"{sum(r != 'other' for r in rel)} of the {len(others)} other sentences are variants of the "
                      "anchor or its paraphrase; the rest come from other paraphrase groups.")
    right.metric("T² · KL(teacher ‖ untrained student)", f"{cfg.temperature ** 2 * kl:.4f}",
                 help="This anchor's term of the similarity loss before training (KL in nats, times T²).")
    if p_tr is not None:
        right.metric("T² · KL(teacher ‖ trained student)", f"{cfg.temperature ** 2 * kl_div(p_t, p_tr):.4f}",
                     help="The same term for the student trained at this setting (on the train split, which this "
                          "batch comes from).")
    left.dataframe(pd.DataFrame([{"#": n + 1, "sentence": b["texts"][others[k]], "is": RELATION[rel[k]],
                                  "cosine (teacher)": round(float(b["teacher"][anchor][k]), 3),
                                  "teacher, %": round(float(p_t[k]) * 100, 2),
                                  "untrained student, %": round(float(p_s[k]) * 100, 2)}
                                 | ({"trained student, %": round(float(p_tr[k]) * 100, 2)} if p_tr is not None else {})
                                 for n, k in enumerate(order[:8])]), hide_index=True, width="stretch", height=320)
    st.caption(f"Measured: the teacher's cosines among the {len(b['texts'])} sentences of the first training batch "
               f"(train split: sentences, word-dropped variants and fragments, seed {cfg.seed}), divided by T and "
               "softmaxed; the students' likewise. Low T puts the mass on the nearest sentences — the "
               "student is taught which neighbours come first; high T flattens the row towards uniform, and T² · KL "
               "approaches half the variance of the cosine differences: a squared error on the whole row.")


def _live(bar, live, cfg: TD.TextDistillConfig, base: float):
    seen: list[TD.TextEpoch] = []
    last = [0.0]

    def progress(epoch: int, fraction: float) -> None:
        if fraction >= 1.0 or time.monotonic() - last[0] > 0.25:
            last[0] = time.monotonic()
            bar.progress(fraction, f"Epoch {max(epoch, 1)} of {cfg.epochs}: training on the train split…")

    def on_epoch(e: TD.TextEpoch) -> None:
        seen.append(e)
        live.plotly_chart(plots.line_chart([0] + [r.epoch for r in seen],
                                           {"quick set": [base] + [r.quick.mean_cosine for r in seen]},
                                           "Mean cosine to the teacher on the quick set (epoch 0: untrained)",
                                           "epoch", "mean cosine"), key=f"text_distill_live_{e.epoch}")
    return progress, on_epoch


def train_section(name: str, s: TextSample, cfg: TD.TextDistillConfig, teacher: bool):
    """The Distill button and, once this setting has a kept run, its results; returns the timing step that the page
    runs last (None without a run)."""
    st.subheader("Distill")
    key = (name, cfg)
    run = runs().get(key)
    st.markdown(f"Trains the {cfg.layers}-layer student for {cfg.epochs} epoch(s) on the **{len(s.data.train)} "
                f"train sentences** and a word-dropped variant and a fragment of each ({len(s.data.train) * 3} "
                f"sentences per epoch, batches of {cfg.batch_size}), labelled by the teacher's embeddings. Loss: "
                f"{cfg.alpha:g} x MSE of the embeddings + {1 - cfg.alpha:g} x T² x KL of the similarity rows at T = "
                f"{cfg.temperature:g}; AdamW, learning rate {cfg.lr:g}, seed {cfg.seed}. The embedding tables stay "
                "the teacher's; the transformer layers learn. Test sentences are never trained on.")
    if st.button("Distill", key="text_distill", type="primary", disabled=run is not None):
        bar = st.progress(0.0, "Embedding the training sentences with the teacher…")
        live = st.empty()
        progress, on_epoch = _live(bar, live, cfg, student_card(name, cfg.layers)["quick"].mean_cosine)
        with state.friendly_errors():
            result = TD.distill(s.model, s.data, cfg, progress, on_epoch,
                                references={"quick": ui.reference(name, True), "test": ui.reference(name, False)})
            keep_run(key, result)
            st.rerun()
        return None
    if run is None:
        st.info(f"No student trained for this setting in this session yet: press **Distill** (about "
                f"{estimate(cfg):.0f} s at this setting on 2 idle cores; longer when the machine is busy). Runs are "
                "kept for this session, so moving a slider back brings a finished one back.")
        return None
    return result_section(name, run, teacher)


def estimate(cfg: TD.TextDistillConfig) -> float:
    """Seconds a run takes on this kind of machine with its 2 cores idle (a rough model fitted to
    benchmarks/bench_text_distill.py): fixed work plus, per epoch, work that grows with the layers."""
    return SECONDS_FIXED + cfg.epochs * SECONDS_PER_LAYER_EPOCH * (cfg.layers + 0.5)


def result_section(name: str, run: dict, teacher: bool):
    """Curves and quality rows of a finished run; returns the step that times teacher and student and fills the
    comparison table, for the page to call after drawing everything else."""
    r: TD.TextDistillResult = run["result"]
    cfg, h = r.config, r.history
    ep = [0] + [e.epoch for e in h]
    a, b = st.columns(2)
    a.plotly_chart(plots.line_chart([e.epoch for e in h], {
        "total": [e.loss for e in h], f"embedding MSE (weight {cfg.alpha:g})": [e.embedding_loss for e in h],
        f"similarity part: T² x KL (weight {1 - cfg.alpha:g})": [cfg.temperature ** 2 * e.kl for e in h]},
        "Loss parts per epoch (mean over the epoch's batches)", "epoch", "loss"), key="text_distill_loss")
    b.plotly_chart(plots.line_chart(ep, {
        "mean cosine to teacher": [r.untrained_quick.mean_cosine] + [e.quick.mean_cosine for e in h],
        "Spearman of pair similarities": [r.untrained_quick.spearman] + [e.quick.spearman for e in h]},
        "Quick set (128 held-out sentences) after each epoch; 0 = untrained", "epoch", "vs the teacher"),
        key="text_distill_quick")
    took = sum(e.seconds for e in h)
    st.caption(f"Trained in {r.seconds:.1f} s measured ({took / len(h):.1f} s per epoch including the quick-set "
               f"check; {r.teacher_seconds:.1f} s embedding the {r.train_sentences} training sentences with the "
               "teacher), on this server's CPU.")
    base = ui.original_quality(name, False)
    st.markdown(f"**Trained student** — {ui.where(name, False)}:")
    ui.show_quality(r.test, base, name, quick=False)
    st.markdown("**Untrained student** (the same layers copied from the teacher, no training) — the same sentences:")
    ui.show_quality(r.untrained_test, base, name, quick=False)
    st.markdown(f"Training moved the mean cosine to the teacher from **{r.untrained_test.mean_cosine:.4f}** to "
                f"**{r.test.mean_cosine:.4f}**, and the Spearman of pair similarities from "
                f"{r.untrained_test.spearman:.4f} to {r.test.spearman:.4f}, on held-out sentences.")
    timed = Timed("text_distill_retime", lambda: run.update(latency=None), teacher)
    timed.table.caption("Teacher and student side by side: timed once the rest of the page is drawn…")
    return lambda: compare(name, run, timed)


def compare(name: str, run: dict, timed: Timed) -> None:
    """Time teacher and student (once per run, kept with it) and fill the comparison table in its placeholders."""
    r: TD.TextDistillResult = run["result"]
    cfg, base, tc = r.config, ui.original_quality(name, False), teacher_card(name)
    if run["latency"] is None:
        run["latency"] = timed.measure("Timing teacher and student side by side…", lambda: T.latencies(
            {"teacher": cache.sample(name).model, "student": r.student}, ui.split(name, False)))
    lat = run["latency"]
    rows = [{"model": "teacher", "layers": tc["layers"], "parameters": tc["parameters"],
             "size, MiB (measured)": round(tc["bytes"] / 2**20, 1), "mean cosine to teacher": 1.0,
             "paraphrase top-1, %": round(base.paraphrase_top1 * 100, 1)},
            {"model": f"student ({cfg.layers} layer{'s' if cfg.layers > 1 else ''}, trained)", "layers": cfg.layers,
             "parameters": TD.parameters(r.student),
             "size, MiB (measured)": round(serialized_bytes(r.student) / 2**20, 1),
             "mean cosine to teacher": round(r.test.mean_cosine, 4),
             "paraphrase top-1, %": round(r.test.paraphrase_top1 * 100, 1)}]
    for row, k in zip(rows, ("teacher", "student")):
        b1, b32 = lat[k]
        row |= {"latency b=1, ms": round(b1.median_ms, 2), "b=1 IQR, ms": round(b1.iqr_ms, 2),
                "latency b=32, ms": round(b32.median_ms, 1), "b=32 IQR, ms": round(b32.iqr_ms, 1)}
    timed.show(pd.DataFrame(rows))
    (b1t, b32t), (b1s, b32s) = lat["teacher"], lat["student"]
    text = (f"Quality on {ui.where(name, False)}. Size measured (torch.save of the state dict). Latency measured "
            f"side by side (round-robin, median and IQR) on this server's CPU, {b32t.threads} thread(s), on real test "
            f"sentences: batch 1 is one median-length sentence, batch 32 spans the lengths. Student speed-up: "
            f"{b1t.median_ms / b1s.median_ms:.2f}x at batch 1, {b32t.median_ms / b32s.median_ms:.2f}x at batch 32.")
    timed.explain(text, (b1t, b32t, b1s, b32s))


def session_runs(name: str) -> None:
    kept = [(k[1], v["result"]) for k, v in runs().items() if k[0] == name]
    if len(kept) > 1:
        st.markdown("**Runs kept in this session** (whole test split):")
        st.dataframe(pd.DataFrame([{"layers": c.layers, "T": c.temperature, "alpha": c.alpha, "epochs": c.epochs,
                                    "lr": c.lr, "batch": c.batch_size, "seed": c.seed,
                                    "mean cosine untrained": round(r.untrained_test.mean_cosine, 4),
                                    "mean cosine trained": round(r.test.mean_cosine, 4),
                                    "Spearman trained": round(r.test.spearman, 4),
                                    "paraphrase top-1 trained, %": round(r.test.paraphrase_top1 * 100, 1)}
                                   for c, r in kept]), hide_index=True, width="stretch")


def page(s: TextSample, teacher: bool) -> None:
    name = s.name
    st.title("Distillation lab")
    st.caption("A shallower copy of the encoder — the teacher's embeddings and some of its layers — is trained to "
               "embed sentences as the teacher does: close to each sentence's teacher embedding, and with the same "
               "in-batch similarity ranking, softened by a temperature.")
    cfg = controls(teacher)
    if cfg is None:
        return
    student_section(name, cfg)
    temperature_section(name, cfg)
    timing = train_section(name, s, cfg, teacher)
    session_runs(name)
    with st.expander("The loss, the temperature, and why T²"):
        st.latex(r"\mathcal{L} = \alpha\,\mathrm{MSE}(e_s, e_t) + (1 - \alpha)\, T^2\, "
                 r"\mathrm{KL}\big(\mathrm{softmax}(S_t / T) \,\|\, \mathrm{softmax}(S_s / T)\big), \quad S = E E^\top "
                 r"\text{ (diagonal left out)}")
        st.markdown("Each row of S holds a sentence's cosine similarities to the other sentences of its batch; the "
                    "softmax turns it into *which of them is most like me*, the teacher's dark knowledge about "
                    "sentences. The gradient of the KL term with respect to a similarity is (p_s − p_t) / T; at "
                    "large T the two distributions are near uniform and that gradient shrinks as 1 / T², so the "
                    "T² factor keeps it on one scale whatever T is (Hinton, Vinyals & Dean 2015). At large T, T² · KL "
                    "becomes half the variance of S_s − S_t along each row: a squared error between the similarity "
                    "matrices. At small T only the nearest sentences count, and T² damps a gradient that would "
                    "grow as 1 / T. The MSE term ties each student embedding to its own teacher embedding, which the "
                    "similarity term alone does not (any rotation keeps all similarities). For unit vectors the "
                    "MSE over 384 dimensions is 2 (1 − cos) / 384: measured here, 1 − cos itself dwarfs T² · KL so "
                    "much that alpha 0.5 and alpha 1 trained nearly the same student; with the MSE the two parts "
                    "are of one order, and alpha trades closeness of the embeddings (mean cosine) against the "
                    "neighbour ranking.")
    if timing is not None:   # last: the timing waits until every figure is drawn
        timing()
