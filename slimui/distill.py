"""State and family panels behind the Distillation page, for any model family.

One run is slimcore.distill(sample, DistillConfig): finished runs are kept by (model, config), shared by all sessions (a
run is a pure function of its key), so a setting trained once comes back at once; a run stopped midway leaves nothing.
What differs between families is drawn by a small panel each: the settings' ranges (a width choice against a number
of layers; temperatures around 4 for class logits, around 0.2 for cosines), the temperature picture (class
probabilities against one sentence's similarity row), and the baseline a student is compared with (classifiers: the
same student trained on labels alone; encoders: the untrained student, already made of the teacher's layers).
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

import numpy as np
import pandas as pd
import streamlit as st
import torch
from torch import nn

import slimcore
from slimcore import distillation as D
from slimcore import plots
from slimcore import text as T
from slimcore import text_distill as TD
from slimcore.families import Family, Score, family_of

from . import cache, experiments, projector, state, urlstate, work
from . import text as text_ui
from .compare import Figure
from .compare import values as page_values
from .components import Timed, delta, timing_task
from .urlstate import Choice, Float, Int

GRID = D.GRID                  # classifier temperatures of the accuracy-against-temperature grid
TEXT_TEMPERATURES = (0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0)  # log-spaced
TEXT_LRS = (3e-5, 1e-4, 3e-4, 1e-3)
TEXT_BATCHES = (8, 16, 32, 64)
SECONDS_FIXED, SECONDS_PER_LAYER_EPOCH = 7.0, 2.2   # encoder run time on 2 idle cores (see estimate)
RELATION = {"variant": "a variant of it", "paraphrase": "its paraphrase (or a variant)", "other": "another group"}
STORE_BYTES = 1 << 30          # trained students kept, in parameter bytes (an encoder student is ~50-80 MiB)


# ------------------------------------------------------------------------------------------------------ runs

@dataclass(frozen=True)
class RunKey:
    """Everything a trained student depends on."""

    teacher: str
    cfg: D.DistillConfig


def run_key(teacher: str, cfg: D.DistillConfig) -> RunKey:
    """The key of a setting; with alpha = 0 the temperature plays no part, so it is set to 1."""
    return RunKey(teacher, replace(cfg, temperature=1.0) if cfg.alpha == 0 else cfg)


def scratch_key(key: RunKey) -> RunKey:
    """The same-budget student trained on the hard term alone (alpha = 0: the temperature plays no part)."""
    return replace(key, cfg=replace(key.cfg, alpha=0.0, temperature=1.0))


def at_temperature(key: RunKey, temperature: float) -> RunKey:
    """The same setting at another temperature (a point of the grid)."""
    return run_key(key.teacher, replace(key.cfg, temperature=temperature))


@dataclass(frozen=True)
class Run:
    result: D.DistillResult
    test: Score                # the trained student on the whole test split

    @property
    def student(self) -> nn.Module:
        return self.result.student

    @property
    def history(self) -> tuple[D.Epoch, ...]:
        return self.result.history


def _bytes(run: Run) -> int:
    return sum(p.numel() * p.element_size() for p in run.student.parameters())


class RunStore:
    """Finished runs by key, shared by all sessions, least recently used out beyond `limit` runs or `max_bytes`.
    With `load` and `save`, a run is also kept beyond the process (the result cache on disk: a restarted server has
    the students trained before it)."""

    def __init__(self, limit: int = 128, max_bytes: int = STORE_BYTES,
                 load: Callable[[RunKey], Run | None] | None = None,
                 save: Callable[[RunKey, Run], None] | None = None) -> None:
        self._runs: OrderedDict[RunKey, Run] = OrderedDict()
        self._lock = threading.Lock()
        self.limit, self.max_bytes = limit, max_bytes
        self.load, self.save = load, save

    def get(self, key: RunKey) -> Run | None:
        with self._lock:
            run = self._runs.get(key)
            if run is not None:
                self._runs.move_to_end(key)
                return run
        run = self.load(key) if self.load is not None else None
        if run is not None:
            self._keep(key, run)
        return run

    def put(self, key: RunKey, run: Run) -> None:
        if self.save is not None and not run.result.cancelled:
            self.save(key, run)
        self._keep(key, run)

    def _keep(self, key: RunKey, run: Run) -> None:
        with self._lock:
            self._runs[key] = run
            self._runs.move_to_end(key)
            while len(self._runs) > 1 and (len(self._runs) > self.limit
                                           or sum(_bytes(r) for r in self._runs.values()) > self.max_bytes):
                self._runs.popitem(last=False)

    def of(self, teacher: str) -> list[tuple[RunKey, Run]]:
        """The kept runs of one teacher, oldest first."""
        with self._lock:
            return [(k, r) for k, r in self._runs.items() if k.teacher == teacher]


def _save_run(key: RunKey, run: Run) -> None:
    r = run.result
    work.keep("distill_run", key.teacher, key.cfg,
              {"state": dict(r.student.state_dict()), "history": r.history, "before": r.before, "examples": r.examples,
               "teacher_seconds": r.teacher_seconds, "seconds": r.seconds, "test": run.test}, r.seconds)


def _load_run(key: RunKey) -> Run | None:
    """A run kept on disk, its student rebuilt from the teacher as training built it and given the kept weights."""
    kept = work.find("distill_run", key.teacher, key.cfg)
    if kept is None:
        return None
    s = cache.sample(key.teacher)
    try:
        student = family_of(s).student(s.model, key.cfg)
        student.load_state_dict(kept["state"], strict=True)
    except (RuntimeError, KeyError, ValueError):   # not this student's weights: train again
        return None
    student.eval().requires_grad_(False)
    return Run(D.DistillResult(key.cfg, student, tuple(kept["history"]), False, kept["before"], kept["examples"],
                               kept["teacher_seconds"], kept["seconds"]), kept["test"])


@st.cache_resource
def store() -> RunStore:
    return RunStore(load=_load_run, save=_save_run)


@st.cache_resource(show_spinner="Embedding the held-out test data with the teacher…", max_entries=8)
def test_scorer(name: str) -> Callable[[nn.Module], Score]:
    """The family's scorer on the whole test split (references computed once per model)."""
    s = cache.sample(name)
    return family_of(s).scorer(s, "test")


def train(key: RunKey, on_epoch=None, on_batch=None) -> Run:
    """The run for a key: from the store, or trained now (reporting each epoch and batch) and then stored."""
    run = store().get(key)
    if run is not None:
        return run
    res = slimcore.distill(cache.sample(key.teacher), key.cfg, on_epoch=on_epoch, on_batch=on_batch)
    run = Run(res, test_scorer(key.teacher)(res.student))
    store().put(key, run)
    return run


@st.cache_resource(show_spinner=False, max_entries=8)
def untrained(name: str, share: float, seed: int = 0) -> nn.Module:
    """The family's student keeping `share` of the teacher, before training (shared, read-only); `seed` draws a
    classifier student's weights (an encoder's are the teacher's: pass 0)."""
    s = cache.sample(name)
    fam = family_of(s)
    return fam.student(s.model, replace(fam.distill_defaults, student=share, seed=seed)).eval().requires_grad_(False)


# ------------------------------------------------------------------------------------------------- settings

@st.cache_data(show_spinner=False)
def student_params(name: str, width: str) -> int:
    return D.parameters(D.student_architecture(cache.sample(name).model, D.WIDTHS[width]))


def _encoder_controls(s, teacher: bool) -> dict:
    d, n = family_of(s).distill_defaults, len(s.model.encoder.layer)
    url = urlstate.Spec(Int("student_layers", TD.student_layers(s.model, d.student), 1, n - 1),
                        Choice("temperature", TEXT_TEMPERATURES, d.temperature),
                        Float("alpha", d.alpha, 0.0, 1.0, 0.05, advanced=True),
                        Int("epochs", d.epochs, 1, 20), Choice("lr", TEXT_LRS, d.lr, advanced=True),
                        Choice("batch_size", TEXT_BATCHES, d.batch_size, advanced=True),
                        Int("seed", d.seed, 0, 10_000, advanced=True))
    url.load()
    v = {}
    c = st.columns([2, 3, 2, 1])
    layers = c[0].slider(f"Student layers (of the teacher's {n})", 1, n - 1, key="student_layers",
                         help="The student keeps the teacher's first and last layers and others evenly spaced "
                              "between them, with all of its embedding tables.")
    v["temperature"] = c[1].select_slider(
        "Temperature T of the similarity softmax", TEXT_TEMPERATURES, urlstate.shown("temperature"), key="temperature",
        format_func=lambda t: f"{t:g}",
        help="softmax(S / T) over a sentence's cosine similarities to the other sentences of its batch. Cosines "
             "lie in [-1, 1], so useful temperatures are small: at 0.1 a cosine gap of 0.3 is a 20x probability "
             "ratio; above 1 every row is close to uniform. Default 0.2: most of a sentence's mass goes to its own "
             "variants and its paraphrase, and the rest is still ranked. Log-spaced steps.")
    v["alpha"] = url.default("alpha") if teacher else c[2].slider(
        "Alpha (weight of the similarity rows)", 0.0, 1.0, step=0.05, key="alpha",
        help="alpha x T² x KL of the similarity rows + (1 - alpha) x MSE to the teacher's embeddings. 0: copy the "
             "embeddings only; 1: copy only how each sentence ranks the others of its batch.")
    v["epochs"] = c[3].number_input("Epochs", 1, 20, key="epochs")
    if teacher:
        v |= {k: url.default(k) for k in ("lr", "batch_size", "seed")}
    else:
        a = st.columns([2, 2, 2, 3])
        v["lr"] = a[0].select_slider("Learning rate (AdamW)", TEXT_LRS, key="lr", format_func=lambda x: f"{x:g}")
        v["batch_size"] = a[1].select_slider("Batch size (sentences)", TEXT_BATCHES, key="batch_size")
        v["seed"] = a[2].number_input("Seed", 0, 10_000, key="seed",
                                      help="Draws the word-dropped variants and fragments, and the batch order.")
    url.save()
    return v | {"student": TD.share(s.model, int(layers))}


def _classifier_controls(s, teacher: bool) -> dict:
    d = family_of(s).distill_defaults
    url = urlstate.Spec(  # the settings kept in the link (?temperature=8...); advanced ones are hidden in teacher mode
        Float("temperature", d.temperature, 1.0, 20.0, 0.5), Float("alpha", d.alpha, 0.0, 1.0, 0.05, advanced=True),
        Choice("student", list(D.WIDTHS), width_label(d.student)), Int("epochs", d.epochs, 1, 100, advanced=True),
        Int("seed", d.seed, 0, 10_000, advanced=True), Int("example", 0, 0, len(s.test) - 1),
        urlstate.Bool("distill_log"),   # the probabilities' log scale
        *experiments.url_params(s))     # the experiments section's controls
    url.load()
    v = {}
    c1, c2, c3, c4, c5 = st.columns([2, 2, 4, 1, 1])   # the student's size: "1/2 width · 30,135 parameters", whole
    v["temperature"] = c1.slider("Temperature", 1.0, 20.0, urlstate.shown("temperature"), step=0.5, key="temperature",
                                 help="T in softmax(z / T): 1 is the teacher's ordinary output; higher is softer.")
    v["alpha"] = url.default("alpha") if teacher else c2.slider("Alpha (weight of the soft targets)", 0.0, 1.0,
                                                                step=0.05, key="alpha")
    width = c3.selectbox("Student size", list(D.WIDTHS), key="student",
                         format_func=lambda w: f"{w} width · {student_params(s.name, w):,} parameters")
    v["epochs"] = url.default("epochs") if teacher else c4.number_input("Epochs", 1, 100, key="epochs")
    v["seed"] = url.default("seed") if teacher else c5.number_input("Seed", 0, 10_000, key="seed")
    url.save()
    return v | {"student": D.WIDTHS[width]}


def width_label(share: float) -> str:
    """A classifier student's width as the page writes it ("1/4")."""
    return next((w for w, v in D.WIDTHS.items() if v == share), f"{share:g}")


def controls(s, teacher: bool) -> D.DistillConfig:
    """The family's settings (kept in the link; the advanced ones hidden in teacher mode) as a DistillConfig: what
    the family's controls leave out is its default."""
    panel(family_of(s)).controls(s, teacher)   # draws the widgets, keeps the link
    with state.friendly_errors():   # on an error it stops the page run
        return setting_config(s, page_values(urlstate.page_spec(), teacher))


def _encoder_estimate(s, cfg: D.DistillConfig) -> str:
    """A rough model fitted to benchmarks/bench_text_distill.py: fixed work, and per epoch work growing with layers."""
    seconds = SECONDS_FIXED + cfg.epochs * SECONDS_PER_LAYER_EPOCH * (TD.student_layers(s.model, cfg.student) + 0.5)
    return f"about {seconds:.0f} s at this setting on 2 idle cores; longer when the machine is busy"


# ------------------------------------------------------------------------------------ the classifier's picture

@st.cache_data(show_spinner=False)
def teacher_logits(name: str) -> torch.Tensor:
    """The teacher's logits on its test split."""
    s = cache.classifier_sample(name)
    return slimcore.predict(s.model, s.test.x)


def classifier_picture(s, cfg: D.DistillConfig) -> None:
    """What the temperature does to the teacher's class probabilities for one test example."""
    st.subheader("What the temperature does to the teacher's output")
    logits = teacher_logits(s.name)
    left, right = st.columns([1, 3])
    with left:
        i = st.number_input("Test example", 0, len(s.test) - 1, key="example")
        y = int(s.test.y[i])
        st.plotly_chart(plots.example_gallery(s.test.x[i:i + 1].numpy(), [y], [int(logits[i].argmax())],
                                              [float(D.soften(logits[i], 1.0).max())], cols=1), key="distill_input")
    t = cfg.temperature
    p1, pt = D.soften(logits[i], 1.0), D.soften(logits[i], t)
    h = (float(D.entropy_bits(p1)), float(D.entropy_bits(pt)))
    with right:
        log = st.checkbox("Log scale", key="distill_log",
                          help="Probabilities on a log axis: the teacher's tiny probabilities for the wrong classes "
                               "(its dark knowledge) show even at T = 1.")
        soft = plots.soft_targets(p1.tolist(), pt.tolist(), t, h, y, log=log)
        if urlstate.projector():   # the chart shares the screen with the slider
            soft.update_layout(height=projector.height(300))
        st.plotly_chart(soft, key="distill_soft")
    wrong = [c for c in np.argsort(-pt.numpy()) if c != y]
    st.markdown(f"**Dark knowledge** — the wrong classes as the teacher ranks them for this **{y}**: "
                + ", ".join(f"{c} ({float(pt[c]):.2%} at T = {t:g}, {float(p1[c]) * 100:.2g} % at T = 1)"
                            for c in wrong[:4])
                + f". Entropy rises from {h[0]:.2f} to {h[1]:.2f} bits (at most {np.log2(len(p1)):.2f}): at T = 1 "
                "these similarities are nearly invisible; softened, the student can learn them.")


# --------------------------------------------------------------------------------------- the encoder's picture

@st.cache_data(show_spinner=False)
def teacher_card(name: str) -> dict:
    m = cache.text_sample(name).model
    return {"layers": len(m.encoder.layer), "parameters": D.parameters(m), "bytes": text_ui.size_bytes(name)}


@st.cache_data(show_spinner=False)
def student_card(name: str, share: float) -> dict:
    """The untrained encoder student's architecture, counts, measured size and quality on the quick set."""
    # an encoder's student is an encoder too
    m, teacher = cast(T.MiniLM, untrained(name, share)), cache.text_sample(name).model
    return {"architecture": T.architecture(m), "layers": len(m.encoder.layer),
            "kept": TD.kept_layers(len(teacher.encoder.layer), len(m.encoder.layer)),
            "parameters": D.parameters(m), "bytes": slimcore.serialized_bytes(m),
            "quick": T.evaluate(m, text_ui.split(name, True), text_ui.reference(name, True))}


@st.cache_data(show_spinner=False, max_entries=16)
def first_batch(name: str, seed: int, batch_size: int) -> dict:
    """The first training batch of a run (sentences, variants, group) and the teacher's similarity rows for it."""
    s = cache.text_sample(name)
    pool = TD.training_pool(s.data.train, seed)
    idx = TD.batches(pool, batch_size, seed, 0)[0]
    emb = TD.embed_ids(s.model, tuple(pool.ids[i] for i in idx))
    return {"texts": [pool.texts[i] for i in idx], "kind": [pool.kind[i] for i in idx],
            "source": [pool.source[i] for i in idx], "group": [pool.group[i] for i in idx],
            "ids": tuple(pool.ids[i] for i in idx), "teacher": TD.similarity_logits(emb).numpy()}


@st.cache_data(show_spinner=False, max_entries=32)
def untrained_rows(name: str, share: float, seed: int, batch_size: int) -> np.ndarray:
    """The untrained encoder student's similarity rows for the first training batch (the temperature plays no part)."""
    ids = first_batch(name, seed, batch_size)["ids"]
    return TD.similarity_logits(TD.embed_ids(untrained(name, share), ids)).numpy()


@st.cache_data(show_spinner=False, max_entries=32)
def trained_rows(key: RunKey) -> np.ndarray:
    """The same rows for a setting's trained student (call only once its run is kept)."""
    cfg = key.cfg
    ids = first_batch(key.teacher, cfg.seed, cfg.batch_size)["ids"]
    run = store().get(key)
    assert run is not None, "trained_rows: the run is not kept"
    return TD.similarity_logits(TD.embed_ids(run.student, ids)).numpy()


@st.cache_data(show_spinner=False, max_entries=8)
def untrained_test(name: str, share: float) -> Any:
    """The untrained encoder student's quality (TextQuality) on the whole test split."""
    return test_scorer(name)(untrained(name, share)).detail


def softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    z = logits / temperature
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def kl_div(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p || q) in nats."""
    return float((p * (np.log(np.clip(p, 1e-30, None)) - np.log(np.clip(q, 1e-30, None)))).sum())


def encoder_student(s, cfg: D.DistillConfig) -> None:
    """The encoder student before any training: layers kept, counts, measured size, quality on the quick set."""
    name = s.name
    with st.spinner("Building the student from the teacher's layers…"):
        card, tc = student_card(name, cfg.student), teacher_card(name)
    st.subheader("The student, before any training")
    c = st.columns(4)
    c[0].metric("Layers", f"{card['layers']} of {tc['layers']}",
                help=f"Copied from the teacher's layers {', '.join(map(str, card['kept']))} (0-based); embeddings "
                     "copied too.")
    c[1].metric("Parameters", f"{card['parameters']:,}",
                **delta(card['parameters'] / tc['parameters'] - 1, "{:+.1%}", True),
                help=f"Teacher: {tc['parameters']:,}. The embedding tables stay whole.")
    c[2].metric("Size (measured)", f"{card['bytes'] / 2**20:,.1f} MiB",
                **delta(card['bytes'] / tc['bytes'] - 1, "{:+.1%}", True),
                help=f"Measured: bytes of torch.save of the state dict (teacher {tc['bytes'] / 2**20:,.1f} MiB).")
    c[3].metric("Speed-up (modelled)", f"~{tc['layers'] / card['layers']:.1f}x",
                help="Modelled: the ratio of transformer layers, which do nearly all the work. The measured latency "
                     "is in the table after training.")
    st.caption(f"{card['architecture']}, teacher layers {', '.join(map(str, card['kept']))} kept. Its quality "
               f"untrained, measured on {text_ui.where(name, True)}:")
    text_ui.show_quality(card["quick"], text_ui.original_quality(name, True), name, quick=True)


def encoder_picture(s, cfg: D.DistillConfig) -> None:
    """What the temperature does to one sentence's similarity row over the other sentences of its batch."""
    name = s.name
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
    p_s = softmax(untrained_rows(name, cfg.student, cfg.seed, cfg.batch_size)[anchor], cfg.temperature)
    kept = store().get(run_key(name, cfg)) is not None   # this setting's trained student on the same batch
    p_tr = softmax(trained_rows(run_key(name, cfg))[anchor], cfg.temperature) if kept else None
    order = np.argsort(-b["teacher"][anchor], kind="stable")
    labels = [f"#{n + 1}{' ★' if rel[k] != 'other' else ''}" for n, k in enumerate(order)]
    layers = TD.student_layers(s.model, cfg.student)
    series = {"teacher": (p_t[order] * 100).tolist(), f"untrained {layers}-layer student": (p_s[order] * 100).tolist()}
    if p_tr is not None:
        series["trained student (this setting)"] = (p_tr[order] * 100).tolist()
    fig = plots.grouped_bars(labels, series,
                             f"softmax(S / T) at T = {cfg.temperature:g}: the anchor against the {len(others)} other "
                             "sentences of its batch", "other sentences, most similar under the teacher first "
                             "(★ its own variants and its paraphrase)", "probability, %",
                             text_format="", hover="sentence %{x}: %{y:.3g} %", height=360)
    fig.layout.xaxis.type = "category"   # plotly would read "#1" as the number 1 and drop "#1 ★"
    left.plotly_chart(fig, key="distill_similarity")
    h = float(-(p_t * np.log2(np.clip(p_t, 1e-30, None))).sum())
    related = float(sum(p_t[k] for k in range(len(others)) if rel[k] != "other"))
    right.metric("Teacher's entropy", f"{h:.2f} bits", help=f"At most log2({len(others)}) = {np.log2(len(others)):.2f} "
                 "bits (uniform). 2^entropy is the number of sentences the distribution effectively spreads over.")
    right.metric("Mass on variants + paraphrase", f"{related:.1%}",
                 help=f"The teacher's probability on the anchor's own variants and its paraphrase. "
                      f"{sum(r != 'other' for r in rel)} of the {len(others)} other sentences are variants of the "
                      "anchor or its paraphrase; the rest come from other paraphrase groups.")
    right.metric("T² · KL, untrained student", f"{cfg.temperature ** 2 * kl_div(p_t, p_s):.4f}",
                 help="T² · KL(teacher ‖ untrained student): this anchor's term of the similarity loss before "
                      "training (KL in nats, times T²).")
    if p_tr is not None:
        right.metric("T² · KL, trained student", f"{cfg.temperature ** 2 * kl_div(p_t, p_tr):.4f}",
                     help="T² · KL(teacher ‖ trained student): the same term for the student trained at this "
                          "setting (on the train split, which this batch comes from).")
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


def _encoder_panel(s, cfg: D.DistillConfig) -> None:
    encoder_student(s, cfg)
    encoder_picture(s, cfg)


# ------------------------------------------------------------------------------------------------- results

def _encoder_describe(s, cfg: D.DistillConfig) -> str:
    n = len(s.data.train)
    return (f"Trains the {TD.student_layers(s.model, cfg.student)}-layer student for {cfg.epochs} epoch(s) on the "
            f"**{n} train sentences** and a word-dropped variant and a fragment of each ({n * 3} sentences per "
            f"epoch, batches of {cfg.batch_size}), labelled by the teacher's embeddings. Loss: {cfg.alpha:g} x "
            f"T² x KL of the similarity rows at T = {cfg.temperature:g} + {1 - cfg.alpha:g} x MSE of the "
            f"embeddings; AdamW, learning rate {cfg.lr:g}, seed {cfg.seed}. The embedding tables stay the "
            "teacher's; the transformer layers learn. Test sentences are never trained on.")


def _classifier_describe(s, cfg: D.DistillConfig) -> str:
    width = width_label(cfg.student)
    return (f"Trains a **{width}-width** student ({student_params(s.name, width):,} parameters, teacher "
            f"{D.parameters(s.model):,}) for {cfg.epochs} epochs with the distillation loss, and the same student from "
            "the same initialisation on labels alone (the same budget), for comparison.")


def live(bar, slot, fam: Family, label: str, start: float, share: float, epochs: int):
    """Callbacks for a run: a progress bar moved after batches (four times a second) and a live curve per epoch."""
    seen: list[D.Epoch] = []
    last = [0.0]

    def on_batch(fraction: float) -> None:
        if fraction >= 1.0 or time.monotonic() - last[0] > 0.25:
            last[0] = time.monotonic()
            bar.progress(start + fraction * share, f"{label}: training…")

    def on_epoch(e: D.Epoch) -> None:
        seen.append(e)
        bar.progress(start + e.epoch / epochs * share,
                     f"{label}: epoch {e.epoch}/{epochs}, {fam.metric.short} {fam.metric.format(e.score.value)}")
        series: dict[str, Sequence[float]] = {"held out": [r.score.value for r in seen]}
        if seen[0].train_score is not None:   # then every epoch has one
            series["train"] = [r.train_score.value for r in seen if r.train_score is not None]
        slot.plotly_chart(plots.line_chart([r.epoch for r in seen], series, f"{label}: {fam.metric.short} while "
                                           "training", "epoch", fam.metric.short, percent=fam.metric.percent),
                          key=f"distill_live_{label}_{e.epoch}")
    return on_epoch, on_batch


def train_now(s, key: RunKey) -> None:
    """Train this setting (and, for classifiers, its scratch baseline) with live progress."""
    fam = family_of(s)
    keys = [("Distilled student", key)] + ([("Student from scratch", scratch_key(key))] if panel(fam).scratch else [])
    bar = st.progress(0.0, "Preparing the teacher's targets… (the first training in a server process also loads "
                           "PyTorch's optimizer machinery: about 2 s, once)")
    slot = st.empty()
    for n, (label, k) in enumerate(keys):
        on_epoch, on_batch = live(bar, slot, fam, label, n / len(keys), 1 / len(keys), k.cfg.epochs)
        with state.friendly_errors():
            train(k, on_epoch=on_epoch, on_batch=on_batch)


def curves(s, run: Run, baseline: Run | None) -> None:
    """Loss parts and the held-out score per epoch (epoch 0: the untrained student)."""
    fam, h = family_of(s), run.history
    p = panel(fam)
    soft, hard = p.soft, p.hard
    cfg = run.result.config
    scale = cfg.temperature ** 2 if cfg.t_squared else 1.0
    a, b = st.columns(2)
    a.plotly_chart(plots.line_chart([e.epoch for e in h], {
        f"{soft} (x T², weight {cfg.alpha:g})": [cfg.alpha * scale * e.soft for e in h],
        f"{hard} (weight {1 - cfg.alpha:g})": [(1 - cfg.alpha) * e.hard for e in h], "total": [e.loss for e in h]},
        "Loss parts per epoch (mean over the epoch's batches, weighted)", "epoch", "loss"), key="distill_loss")
    ep = [0] + [e.epoch for e in h]
    series: dict[str, Sequence[float | None]] = {
        "distilled: held out": [run.result.before.value] + [e.score.value for e in h]}
    if baseline is not None:
        series["scratch: held out"] = [baseline.result.before.value] + [e.score.value for e in baseline.history]
    if h and h[0].train_score is not None:
        series["distilled: train"] = [None] + [e.train_score.value for e in h if e.train_score is not None]
    series |= p.extra_curves(run)
    held = p.held_out
    b.plotly_chart(plots.line_chart(ep, series, f"{fam.metric.short.capitalize()} per epoch on the {held} "
                                    "(0 = untrained)", "epoch", fam.metric.short, percent=fam.metric.percent),
                   key="distill_score")
    r = run.result
    st.caption(f"Trained in {r.seconds:.1f} s measured ({sum(e.seconds for e in h) / max(len(h), 1):.1f} s per epoch "
               f"including the held-out check; {r.teacher_seconds:.1f} s preparing the teacher's targets for the "
               f"{r.examples:,} training examples), on this server's CPU. Held-out figures per epoch are on the "
               f"{held}, so that choosing a setting does not peek at the test split.")


def compare(key: RunKey) -> tuple[list[dict], bool]:
    """Teacher, distilled student and (classifiers) the scratch student side by side: the family's score on the whole
    test split, parameters, measured size and latency at the family's batch sizes; and whether any timing was noisy.
    The page times them in the background (components.Timed)."""
    s = cache.sample(key.teacher)
    fam = family_of(s)
    runs = {"distilled student": store().get(key)}
    p = panel(fam)
    if p.scratch:
        runs["student from scratch"] = store().get(scratch_key(key))
    if any(r is None for r in runs.values()):
        raise ValueError("these students are no longer kept (the store holds the most recent runs): press Train")
    kept = {k: r for k, r in runs.items() if r is not None}   # every one of them
    models = {"teacher": s.model} | {k: r.student for k, r in kept.items()}
    lat = slimcore.time_models(s, models, max_seconds=p.timing_seconds)
    scores = {"teacher": test_scorer(key.teacher)(s.model)} | {k: r.test for k, r in kept.items()}
    m = fam.metric
    column = f"{m.name}, %" if m.percent else m.name
    rows = []
    for k, model in models.items():
        v = scores[k].value
        row = {"model": k, column: round(v * 100, 2) if m.percent else round(v, 4)}
        row |= p.columns(model, scores[k])
        row |= {"parameters": D.parameters(model),
                "size, KiB (measured)": round(slimcore.serialized_bytes(model) / 1024, 1)}
        row |= {f"latency b={b}, ms": round(lat[k][b].median_ms, 3) for b in fam.timing_batches}
        big = fam.timing_batches[-1]
        row[f"b={big} spread (IQR), ms"] = round(lat[k][big].iqr_ms, 3)
        rows.append(row)
    return rows, any(x.noisy for per in lat.values() for x in per.values())


def comparison(s, key: RunKey, teacher: bool) -> Callable[[], None]:
    """The timed comparison table's place (drawn now) and the step that times the models and fills it, for the page
    to call once everything else is drawn."""
    timed = Timed("distill_retime", teacher)
    assert timed.table is not None   # a Timed with its table
    timed.table.caption("Teacher and student side by side: timed once the rest of the page is drawn…")
    return lambda: _fill(s, key, timed)


def _fill(s, key: RunKey, timed: Timed) -> None:
    fam = family_of(s)
    with state.friendly_errors():
        timed.measure(timing_task("Timing teacher and student side by side", s.name, f"distill|{key}",
                                  lambda: compare(key), guess=3.0 if fam.name == "classifier" else 15.0),
                      lambda result: _show(s, timed, *result))


def _show(s, timed: Timed, rows: list[dict], noisy: bool) -> None:
    fam = family_of(s)
    timed.show(pd.DataFrame(rows))
    by = {r["model"]: r for r in rows}
    # the score, the first figure (a set's order is the hash's)
    column = next(k for k in by["teacher"] if k != "model")
    how = (f"Sizes are measured (torch.save); latency is measured side by side on this server's CPU (median of timed "
           f"runs after warm-up, batch {' and '.join(map(str, fam.timing_batches))}).")
    if panel(fam).scratch:
        gain = by["distilled student"][column] - by["student from scratch"][column]
        timed.explain(f"On the {len(s.test)} held-out test examples the distilled student is **{gain:+.2f} points** "
                      "against the one trained on labels alone — for this seed; seeds differ by about a point on "
                      "these small sets, so compare several before concluding. " + how, noisy=noisy, markdown=True)
    else:
        b = fam.timing_batches
        t, d = by["teacher"], by["distilled student"]
        speed = ", ".join(f"{t[f'latency b={x}, ms'] / d[f'latency b={x}, ms']:.2f}x at batch {x}" for x in b)
        timed.explain(f"Quality on {panel(fam).test_where(s)}. {how} Student speed-up: {speed}.", noisy=noisy)


def encoder_quality(s, run: Run) -> None:
    """The trained and the untrained encoder student on the whole test split, in the text labs' words."""
    name = s.name
    base = text_ui.original_quality(name, False)
    before = untrained_test(name, run.result.config.student)
    st.markdown(f"**Trained student** — {text_ui.where(name, False)}:")
    text_ui.show_quality(run.test.detail, base, name, quick=False)
    st.markdown("**Untrained student** (the same layers copied from the teacher, no training) — the same sentences:")
    text_ui.show_quality(before, base, name, quick=False)
    st.markdown(f"Training moved the mean cosine to the teacher from **{before.mean_cosine:.4f}** to "
                f"**{run.test.detail.mean_cosine:.4f}**, and the Spearman of pair similarities from "
                f"{before.spearman:.4f} to {run.test.detail.spearman:.4f}, on held-out sentences.")


def kept_runs(s) -> None:
    """The runs kept on this server for this model, when there are several."""
    fam = family_of(s)
    kept = store().of(s.name)
    if len(kept) > 1:
        st.markdown(f"**Runs kept on this server for this model** (whole test split, {fam.metric.short}):")
        short, fmt = fam.metric.short, fam.metric.format
        st.dataframe(pd.DataFrame([{"student": c.student, "T": c.temperature, "alpha": c.alpha, "epochs": c.epochs,
                                    "lr": c.lr, "batch": c.batch_size, "seed": c.seed,
                                    f"{short} untrained (held out)": fmt(r.result.before.value),
                                    f"{short} trained (test)": fmt(r.test.value)}
                                   for c, r in ((k.cfg, r) for k, r in kept)]), hide_index=True, width="stretch")


def grid(s, key: RunKey) -> None:
    """Classifiers: validation accuracy of the student against the temperature, a grid of runs computed on demand."""
    cfg = key.cfg
    width = width_label(cfg.student)
    st.subheader("Student accuracy against temperature")
    points = {t: store().get(at_temperature(key, t)) for t in GRID}
    ready = {t: r for t, r in points.items() if r is not None}
    base = store().get(scratch_key(key))
    if ready:
        st.plotly_chart(plots.line_chart(list(ready), {"distilled": [r.history[-1].score.value for r in ready.values()]}
                                         | ({"from scratch": [base.history[-1].score.value] * len(ready)} if base
                                            else {}),
                                         f"Validation accuracy of the {width} student by temperature (alpha "
                                         f"{cfg.alpha:g}, {cfg.epochs} epochs, seed {cfg.seed})", "temperature",
                                         "validation accuracy", percent=True, marker=cfg.temperature),
                        key="distill_grid")
    st.caption(f"A grid of {len(GRID)} temperatures ({', '.join(f'{t:g}' for t in GRID)}), each a full training run "
               f"computed once per setting and kept: {len(ready)} of {len(GRID)} ready. Validation accuracy, so that "
               "choosing T does not peek at the test split. The dashed line is the slider's temperature.")
    if cfg.alpha == 0:
        st.info("With alpha = 0 the student learns from the labels alone: the temperature plays no part.")
    elif len(ready) < len(GRID) and st.button(f"Compute the {len(GRID) - len(ready)} missing grid points", key="grid"):
        bar = st.progress(0.0, "Training the grid…")
        with state.friendly_errors():
            for n, (t, r) in enumerate(points.items()):
                if r is None:
                    train(at_temperature(key, t))
                bar.progress((n + 1) / len(points), f"T = {t:g} done")
            train(scratch_key(key))
        st.rerun()


# The loss in formulas, per family: (expander title, LaTeX, explanation).
ENCODER_THEORY = (
    "The loss, the temperature, and why T²",
    r"\mathcal{L} = \alpha\, T^2\, \mathrm{KL}\big(\mathrm{softmax}(S_t / T) \,\|\, \mathrm{softmax}(S_s / T)\big)"
    r" + (1 - \alpha)\,\mathrm{MSE}(e_s, e_t), \quad S = E E^\top \text{ (diagonal left out)}",
    "Each row of S holds a sentence's cosine similarities to the other sentences of its batch; the softmax turns it "
    "into *which of them is most like me*, the teacher's dark knowledge about sentences. The gradient of the KL term "
    "with respect to a similarity is (p_s − p_t) / T; at large T the two distributions are near uniform and that "
    "gradient shrinks as 1 / T², so the T² factor keeps it on one scale whatever T is (Hinton, Vinyals & Dean 2015). "
    "At large T, T² · KL becomes half the variance of S_s − S_t along each row: a squared error between the "
    "similarity matrices. At small T only the nearest sentences count, and T² damps a gradient that would grow as "
    "1 / T. The MSE term ties each student embedding to its own teacher embedding, which the similarity term alone "
    "does not (any rotation keeps all similarities). For unit vectors the MSE over d dimensions is 2 (1 − cos) / d: "
    "measured here, 1 − cos itself dwarfs T² · KL so much that alpha 0.5 and alpha 0 trained nearly the same "
    "student; with the MSE the two parts are of one order, and alpha trades the neighbour ranking against closeness "
    "of the embeddings (mean cosine). Alpha is the weight of the teacher's soft term in every family: links from "
    "before, with the embedding's weight a, open at alpha = 1 − a.")
CLASSIFIER_THEORY = (
    "The distillation loss, and why T²",
    r"p_i^{(T)} = \frac{e^{z_i / T}}{\sum_j e^{z_j / T}}, \qquad \mathcal{L} = \alpha\, T^2\, "
    r"\mathrm{KL}\big(p^{(T)}_{\text{teacher}} \,\|\, p^{(T)}_{\text{student}}\big) + (1 - \alpha)\, "
    r"\mathrm{CE}\big(z_{\text{student}}, y\big)",
    "Dividing the logits by T > 1 flattens the teacher's distribution, so the small probabilities it gives wrong "
    "classes — which digits look alike — carry signal. The gradient of the soft term with respect to the student's "
    "logits is (p_student − p_teacher) / T, and for large T its size falls as 1 / T²; multiplying by T² keeps the "
    "soft and hard terms on the same scale whatever T is (Hinton, Vinyals & Dean 2015). Alpha = 0 is ordinary "
    "training on labels.")


def theory(p: Panel) -> None:
    """The loss in formulas, in the family's terms, in an expander."""
    title, latex, text = p.theory
    with st.expander(title):
        st.latex(latex)
        st.markdown(text)


def _encoder_columns(model: nn.Module, score: Score) -> dict:
    return {"layers": len(cast(T.MiniLM, model).encoder.layer),   # an encoder's student is an encoder
            "paraphrase top-1, %": round(score.detail.paraphrase_top1 * 100, 1)}


def _encoder_curves(run: Run) -> dict:
    return {"Spearman of pair similarities": [run.result.before.detail.spearman]
            + [e.score.detail.spearman for e in run.history]}


# ---------------------------------------------------------------------------------------------------- the panels

@dataclass(frozen=True)
class Panel:
    """What the Distillation page does differently for one family: its controls (URL state; returning the settings),
    the temperature picture, what Train does and how long it takes, the names of the loss parts, where the
    per-epoch score is measured, the baseline (a scratch run, or the untrained student), the comparison's extra
    columns and curves, the figures after a run, the temperature grid, and the loss in formulas."""

    caption: str
    controls: Callable[[Any, bool], dict]
    picture: Callable[[Any, D.DistillConfig], None]
    describe: Callable[[Any, D.DistillConfig], str]
    estimate: Callable[[Any, D.DistillConfig], str]
    soft: str
    hard: str
    held_out: str
    test_where: Callable[[Any], str]
    theory: tuple[str, str, str]   # the loss in formulas: expander title, LaTeX, explanation
    scratch: bool = False        # the baseline is the same student trained on the hard term alone (alpha 0)
    timing_seconds: float = 2.0  # the comparison's timing budget per batch size
    columns: Callable[[nn.Module, Score], dict] = lambda model, score: {}
    extra_curves: Callable[[Run], dict] = lambda run: {}
    results: Callable[[Any, Run], None] | None = None    # figures after a run (encoders: quality rows)
    grid: Callable[[Any, RunKey], None] | None = None    # the accuracy-against-temperature grid (classifiers)


CLASSIFIER = Panel(
    "A small student learns from **{label}**'s outputs softened by a temperature. The probabilities below follow the "
    "slider instantly; students are trained on demand and kept, so a setting trained once comes back at once.",
    _classifier_controls, classifier_picture, _classifier_describe,
    lambda s, cfg: "about a second per epoch at most on these models",
    "soft: KL of the class probabilities at T", "hard: cross-entropy with the labels", "validation split",
    lambda s: f"the {len(s.test)} held-out test examples", CLASSIFIER_THEORY, scratch=True, timing_seconds=0.5,
    grid=grid)

ENCODER = Panel(
    "A shallower copy of the encoder — the teacher's embeddings and some of its layers — is trained to embed sentences "
    "as the teacher does: close to each sentence's teacher embedding, and with the same in-batch similarity ranking, "
    "softened by a temperature.",
    _encoder_controls, _encoder_panel, _encoder_describe, _encoder_estimate,
    "soft: KL of the similarity rows at T", "hard: MSE to the teacher's embeddings", "quick set",
    lambda s: text_ui.where(s.name, False), ENCODER_THEORY, columns=_encoder_columns, extra_curves=_encoder_curves,
    results=encoder_quality)

PANELS = {"classifier": CLASSIFIER, "encoder": ENCODER}


def panel(fam: Family) -> Panel:
    """The family's panel (a new family adds one entry)."""
    return PANELS[fam.name]


def caption(s) -> str:
    return panel(family_of(s)).caption.format(label=state.label(s.name))


def untrained_note(s, cfg: D.DistillConfig) -> str:
    return (f"No student trained for this setting yet: press **Train** ({panel(family_of(s)).estimate(s, cfg)}). Any "
            "setting trained before, by anyone on this server, shows at once.")


# ------------------------------------------------------------------------------------ settings and figures

def presets(s) -> dict[str, dict]:
    """Named settings for the family: a student that keeps up, one that strains, one too small to."""
    if family_of(s).name == "encoder":
        n = len(s.model.encoder.layer)
        return {"mild": dict(student_layers=max(1, n - 2)), "aggressive": dict(student_layers=2),
                "breaks it": dict(student_layers=1, epochs=1)}
    return {"mild": dict(student="1/2"), "aggressive": dict(student="1/8"),
            "breaks it": dict(student="1/16", temperature=20.0)}


def setting_config(s, v: dict) -> D.DistillConfig:
    """A setting (the page's values by key) as its DistillConfig; what the family's controls leave out is its
    default (the same rule as controls())."""
    d = family_of(s).distill_defaults
    share = D.WIDTHS[v["student"]] if "student" in v else TD.share(s.model, int(v["student_layers"]))
    return D.DistillConfig(temperature=float(v["temperature"]), alpha=float(v["alpha"]), epochs=int(v["epochs"]),
                           lr=float(v.get("lr", d.lr)), batch_size=int(v.get("batch_size", d.batch_size)),
                           seed=int(v["seed"]), t_squared=d.t_squared, student=share)


def picture_figures(s, cfg: D.DistillConfig, example: int) -> dict[str, Figure]:
    """What the temperature does to the teacher's output for one test example (a classifier's): the top class's
    probability and the entropy, at T and at 1."""
    if family_of(s).name != "classifier":
        return {}
    logits = teacher_logits(s.name)[int(example)]
    p1, pt = D.soften(logits, 1.0), D.soften(logits, cfg.temperature)
    return {"top_prob": Figure(f"Teacher's top class at T = {cfg.temperature:g}", float(pt.max()), "percent", None,
                               "computed"),
            "top_prob_t1": Figure("Teacher's top class at T = 1", float(p1.max()), "percent", None, "computed"),
            "entropy_bits": Figure(f"Entropy at T = {cfg.temperature:g} (bits)", float(D.entropy_bits(pt)), "number",
                                   None, "computed"),
            "second_prob": Figure(f"Teacher's second class at T = {cfg.temperature:g}",
                                  float(pt.sort(descending=True).values[1]), "percent", None, "computed")}


def figures(s, cfg: D.DistillConfig, example: int | None = None) -> dict[str, Figure] | None:
    """A setting's figures (A/B comparison, lessons): with `example`, the temperature's effect on the teacher's
    output for it; once trained, the student's score on the test split, the same-budget scratch student's where the
    family has one, and the student's size. None when there is nothing to show."""
    out = picture_figures(s, cfg, example) if example is not None else {}
    key = run_key(s.name, cfg)
    run = store().get(key)
    if run is None:
        return out or None
    metric = family_of(s).metric
    kind = "percent" if metric.percent else "number"
    out |= {"score": Figure(f"Student's test {metric.short}", run.test.value, kind, metric.higher_is_better,
                            "measured"),
            "params": Figure("Student's parameters", D.parameters(run.student), "count", False, "counted")}
    if panel(family_of(s)).scratch and (base := store().get(scratch_key(key))) is not None:
        out["scratch"] = Figure(f"Scratch student's test {metric.short}", base.test.value, kind,
                                metric.higher_is_better, "measured")
        out["gain"] = Figure("Distilled − scratch", run.test.value - base.test.value, kind, True, "measured")
    return out
