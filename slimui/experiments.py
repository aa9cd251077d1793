"""The Distillation page's experiments section: where distillation helps (slimcore.experiments) — scarce labels, dark
knowledge, weak vs strong — a tab each, for classifiers.

Every result is a pure function of (model, setting): it is computed by the server's background worker (slimui.work),
never in a page run, and kept on disk per setting (each share of labels apart), so a result computed once, by anyone,
comes back at once. A setting nobody has computed waits for a click (from ten seconds to a minute and a half of the
worker's time, with five seeds); after that click, other positions of the same tab's controls start by themselves.
The published figures of Hinton, Vinyals & Dean (2015) are shown beside ours in grey, named as published reference in
their setting.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

import slimcore
from slimcore import experiment_plots as plots
from slimcore import experiments as core
from slimcore import jobs
from slimcore.families import family_of

from . import cache, work
from .compare import Figure

TRAINING = core.TRAINING           # the students' training (tests shrink it)
SEEDS = core.SEEDS
FRACTIONS = core.FRACTIONS         # the scarce-labels curve's shares, besides the slider's
SHARES = (1, 5, 20)                # weak vs strong: the share of training data offered, %
STEP_SECONDS = 2e-3                # wall-clock seconds per student and step, two trained side by side (measured
                                   # 1.6-2.9 ms on a shared 2-core machine): the guess until the worker has timed one


def _guess(students: int, steps: int) -> float:
    return students * steps * STEP_SECONDS


def _steps(name: str) -> int:
    s = cache.sample(name)
    return core.budget(len(family_of(s).split(s, "train")), TRAINING)


# ------------------------------------------------------------------------------------------------ the tasks

def scarce_config(fraction: float) -> core.ScarceConfig:
    return core.ScarceConfig(fraction=fraction, seeds=SEEDS, train=TRAINING)


def scarce_task(name: str, fractions: tuple[float, ...]) -> work.Task:
    """Scarce labels at each share, each share kept on disk apart (a new slider position computes only itself)."""
    def compute(progress: jobs.Progress) -> tuple[core.ScarceResult, ...]:
        per, out = 2 * SEEDS, []
        for i, f in enumerate(fractions):
            cfg = scarce_config(f)

            def run(cfg: core.ScarceConfig = cfg, i: int = i) -> core.ScarceResult:
                return core.scarce_labels(cache.sample(name), cfg,
                                          lambda done, _: progress(per * i + done, per * len(fractions)))
            out.append(work.kept("exp_scarce", name, cfg, run))
        return tuple(out)

    todo = [f for f in fractions if not work.on_disk("exp_scarce", name, scarce_config(f))]
    shares = ", ".join(f"{f * 100:g} %" for f in fractions)
    return work.Task(f"exp|scarce|{name}|{fractions}|{SEEDS}|{TRAINING}", compute,
                     f"Scarce labels: {2 * SEEDS} students at each share of labels ({shares})", "exp_scarce", name,
                     guess=_guess(2 * SEEDS * max(len(todo), 1), _steps(name)))


def dark_config(held_out: int) -> core.DarkConfig:
    return core.DarkConfig(held_out=held_out, seeds=SEEDS, train=TRAINING)


def _kept_task(kind: str, name: str, cfg: Any, run: Callable, what: str, students: int) -> work.Task:
    """One experiment at one setting, run in the background and kept on disk under `kind`."""
    return work.Task(f"exp|{kind.removeprefix('exp_')}|{name}|{cfg}", lambda progress: work.kept(
        kind, name, cfg, lambda: run(cache.sample(name), cfg, progress)), what, kind, name,
        guess=_guess(students, _steps(name)))


def dark_task(name: str, held_out: int) -> work.Task:
    return _kept_task("exp_dark", name, dark_config(held_out), core.dark_knowledge,
                      f"Dark knowledge: {2 * SEEDS} students trained without a single {held_out}", 2 * SEEDS)


def weak_strong_config(share: float) -> core.WeakStrongConfig:
    return core.WeakStrongConfig(share=share, seeds=SEEDS, train=TRAINING)


def weak_strong_task(name: str, share: float) -> work.Task:
    return _kept_task("exp_weak_strong", name, weak_strong_config(share), core.weak_strong,
                      f"Weak vs strong: {len(core.ARMS) * SEEDS} students on {share * 100:g} % of the training data",
                      len(core.ARMS) * SEEDS)


def _later(task: work.Task, kept: Callable[[], Any | None], flag: str, label: str) -> Any | None:
    """The task's result: read from disk when it is kept there (`kept()`, None when it is not); else from the
    background worker (its placeholder drawn until it is there) when the task was asked for, by anyone, or this
    session asked for this tab before; else a button that asks for it, and None."""
    found = kept()
    if found is not None:
        return found
    if work.started(task) or st.session_state.get(flag):
        return work.later(task)
    offer = st.empty()
    with offer.container():
        st.info(f"Not computed yet for this setting. {task.what} — about {task.guess:.0f} s of the server's "
                "background worker on 2 idle cores; the page stays usable meanwhile.", icon="🧪")
        asked = st.button(label, key=f"{flag}_button")
    if not asked:
        return None
    offer.empty()
    st.session_state[flag] = True
    return work.later(task)


# ------------------------------------------------------------------------------------------------ drawing

@st.cache_data(show_spinner=False)
def _classes(name: str) -> int:
    return core.classes(cache.sample(name))


def _table(results: list, teacher: bool) -> None:
    frame = pd.DataFrame([r for res in results for r in core.rows(res)])
    if teacher:
        frame = frame.drop(columns=["per seed, %"])
    st.dataframe(frame, hide_index=True, width="stretch")


def _published(key: str, note: str) -> None:
    refs = core.PUBLISHED[key]
    st.caption(f"**Published reference, not ours** — {refs[0].source}, in their setting ({note}):")
    st.dataframe(pd.DataFrame([{"published figure": r.label, "value, %": round(r.value * 100, 1),
                                "their setting": r.setting} for r in refs]), hide_index=True, width="stretch")


def _how(name: str) -> str:
    t, s = TRAINING, cache.sample(name)
    return (f"Each student: {t.student:g} of the teacher's width, {_steps(name)} Adam steps (learning rate {t.lr:g}) "
            f"— {t.epochs} epochs' worth over the whole {len(family_of(s).split(s, 'train')):,}-example training "
            f"split, whatever share it learns from: the same budget for every student. Distillation: {t.alpha:g} x "
            f"T² x KL at T = {t.temperature:g} on a batch of transfer inputs + {1 - t.alpha:g} x cross-entropy on a "
            f"batch of labelled examples; scratch: the cross-entropy alone, same initial weights, same labelled "
            f"batches. Mean ± sample sd over {SEEDS} seeds, measured on the {len(s.test):,} test examples no student "
            "trains on.")


def scarce_tab(s, teacher: bool) -> None:
    """Distilled vs scratch against the share of training labels (slider: 1-100 %)."""
    name = s.name
    pct = st.slider("Share of the training labels used, %", 1, 100, key="exp_labels",
                    help="A stratified, seeded share of the training examples keeps its label. The distilled student "
                         "also gets the teacher's soft targets on every training input; the scratch student only the "
                         "labelled ones.")
    fractions = tuple(sorted({*FRACTIONS, pct / 100}))
    task = scarce_task(name, fractions)

    def kept() -> tuple | None:
        found = tuple(work.find("exp_scarce", name, scarce_config(f)) for f in fractions)
        return None if any(r is None for r in found) else found

    results = _later(task, kept, "exp_run_scarce", "Run the scarce-labels experiment")
    if results is None:
        return
    at = next(r for r in results if r.config.fraction == pct / 100)
    st.markdown(f"With **{pct} % of the labels** ({at.labelled} labelled of {at.examples:,}) the distilled student "
                f"reaches **{at.distilled.percent()}**, the one trained on those labels alone **"
                f"{at.scratch.percent()}**: {at.gain.mean * 100:+.1f} ± {at.gain.sd * 100:.1f} points, paired by "
                "seed.")
    refs = core.PUBLISHED["scarce"]
    st.plotly_chart(plots.scarce_labels_chart([r.config.fraction * 100 for r in results],
                                              [r.distilled for r in results], [r.scratch for r in results],
                                              cache.baseline(name).accuracy,
                                              [(100.0, refs[0]), (3.0, refs[1]), (3.0, refs[2])], marker=float(pct)),
                    key="exp_scarce_chart")
    st.caption(_how(name))
    _table(list(results), teacher)
    _published("scarce", "speech recognition, frame accuracy, 3 % of their training data; ours: digits, soft "
                         "targets on every training input")


def dark_tab(s, teacher: bool) -> None:
    """How often the distilled student recognises a class it never saw, against the scratch student."""
    name = s.name
    classes = _classes(name)
    held = st.selectbox("Class held out of the training data", list(range(classes)), key="exp_class",
                        help="Every training example of this class is removed: neither student "
                        "ever sees one. The distilled student only sees the teacher's soft targets on the other "
                        "classes' inputs, where the teacher gives this class a little probability.")
    task = dark_task(name, int(held))
    result = _later(task, lambda: work.find("exp_dark", name, dark_config(int(held))), "exp_run_dark",
                    "Run the dark-knowledge experiment")
    if result is None:
        return
    r = result
    st.markdown(f"Neither student saw a **{held}**. On the {r.class_examples} test {held}s the distilled student "
                f"recognises **{r.recall_distilled.percent()}**, the scratch student **"
                f"{r.recall_scratch.percent()}**; test accuracy {r.accuracy_distilled.percent()} against "
                f"{r.accuracy_scratch.percent()}.")
    refs = core.PUBLISHED["dark"]
    st.plotly_chart(plots.dark_knowledge_chart(
        int(held), [r.recall_distilled, r.accuracy_distilled, r.recall_distilled_shifted, r.accuracy_distilled_shifted],
        [r.recall_scratch, r.accuracy_scratch, r.recall_scratch_shifted, r.accuracy_scratch_shifted],
        [refs[0], refs[2], refs[1], refs[3]]), key="exp_dark_chart")
    st.caption(f"{_how(name)} Training data: the {r.examples:,} examples left once the {r.removed} {held}s are "
               f"removed. Extra (Hinton's correction): the output bias of {held} raised by the shift that maximises "
               f"accuracy on the validation split — which holds labelled {held}s, a peek neither student had; shifts "
               f"chosen: distilled {r.shift_distilled.mean:.2f} ± {r.shift_distilled.sd:.2f}, scratch "
               f"{r.shift_scratch.mean:.2f} ± {r.shift_scratch.sd:.2f}.")
    _table([r], teacher)
    _published("dark", "MNIST, 28x28, every 3 held out of the transfer set, 1,010 test 3s; their bias of 3 raised "
                       "by 3.5")


def weak_strong_tab(s, teacher: bool) -> None:
    """A random-init student (weak) against the teacher's own parameters, thinned (strong), on the same little data."""
    name = s.name
    pct = st.select_slider("Share of the training data, %", SHARES, key="exp_share",
                           help="All the students get: a stratified, seeded share of the training examples, inputs "
                                "and labels. No other inputs for the soft targets.")
    task = weak_strong_task(name, pct / 100)
    result = _later(task, lambda: work.find("exp_weak_strong", name, weak_strong_config(pct / 100)), "exp_run_ws",
                    "Run the weak-vs-strong experiment")
    if result is None:
        return
    r = result
    st.markdown(f"On {r.examples} training examples: **weak** (random initial weights, distilled) "
                f"**{r.weak.percent()}**, **strong** (the teacher's own weights thinned by structured pruning, "
                f"distilled) **{r.strong.percent()}**; both {r.parameters_strong:,} parameters.")
    st.plotly_chart(plots.weak_strong_chart(list(r.arms), list(r.accuracy), r.thinned_untrained,
                                            cache.baseline(name).accuracy), key="exp_ws_chart")
    st.caption(f"{_how(name)} Strong: the teacher with each hidden layer's output channels of lowest L1 norm "
               f"removed down to the weak student's shape ({r.parameters_weak:,} and {r.parameters_strong:,} "
               f"parameters); before any training it scores {r.thinned_untrained * 100:.1f} %. The labels-alone "
               "arms are the controls: what initialisation does without the teacher's outputs.")
    _table([r], teacher)
    st.caption("No published figure for this comparison in Hinton et al. (2015).")


def url_params(s) -> list:
    """The experiments' settings kept in the link (the Distillation page declares them with its own): the share of
    labels, the class held out, the share of data for weak vs strong."""
    from .urlstate import Choice, Int

    return [Int("exp_labels", 5, 1, 100), Choice("exp_class", list(range(_classes(s.name))), min(3, _classes(
        s.name) - 1)), Choice("exp_share", list(SHARES), 5)]


def figures(s) -> dict[str, Figure]:
    """The experiments' figures at the page's settings, where computed (read from disk, never computed here): what a
    lesson step reveals."""
    if family_of(s).name != "classifier":
        return {}
    name = s.name
    out: dict[str, Figure] = {}
    pct = int(st.session_state.get("exp_labels", 5))
    at = work.find("exp_scarce", name, scarce_config(pct / 100))
    if at is not None:
        out |= {"scarce_distilled": Figure(f"Distilled student, {pct} % of the labels", at.distilled.mean, "percent",
                                           True, f"measured, mean of {at.distilled.seeds} seeds"),
                "scarce_scratch": Figure(f"Scratch student, {pct} % of the labels", at.scratch.mean, "percent", True,
                                         f"measured, mean of {at.scratch.seeds} seeds"),
                "scarce_gain": Figure(f"Distilled − scratch, {pct} % of the labels", at.gain.mean, "percent", True,
                                      f"measured, mean of {at.gain.seeds} seeds")}
    held = int(st.session_state.get("exp_class", 3))
    dark = work.find("exp_dark", name, dark_config(held))
    if dark is not None:
        out |= {"dark_recall_distilled": Figure(f"Distilled: recall of the unseen {held}", dark.recall_distilled.mean,
                                                "percent", True, "measured, mean over seeds"),
                "dark_recall_scratch": Figure(f"Scratch: recall of the unseen {held}", dark.recall_scratch.mean,
                                              "percent", True, "measured, mean over seeds")}
    share = int(st.session_state.get("exp_share", 5))
    ws = work.find("exp_weak_strong", name, weak_strong_config(share / 100))
    if ws is not None:
        out |= {"weak": Figure(f"Weak (random init), {share} % of the data", ws.weak.mean, "percent", True,
                               "measured, mean over seeds"),
                "strong": Figure(f"Strong (teacher's weights), {share} % of the data", ws.strong.mean, "percent",
                                 True, "measured, mean over seeds")}
    return out


TABS: dict[str, Callable[[Any, bool], None]] = {"Scarce labels": scarce_tab, "Dark knowledge": dark_tab,
                                                "Weak vs strong": weak_strong_tab}


def section(s, teacher: bool) -> None:
    """The "Distillation experiments" section for a classifier sample (a short note for any other family)."""
    st.subheader("Distillation experiments")
    fam = family_of(s)
    if fam.name != "classifier":
        st.info(f"The distillation experiments need labelled classes, so they run on classifiers "
                f"({', '.join(slimcore.list_samples('classifier'))}), not on {fam.label}.")
        return
    for param in url_params(s):   # seeded by the page's link when it declared them; else (alone) their defaults
        st.session_state.setdefault(param.key, param.default)
    st.caption("On these small, clean sets a student distilled from labelled data does about as well as one trained "
               "on the labels. Here are the regimes where the teacher's outputs carry what labels cannot: few labels, "
               "a class never seen, and a student that starts from the teacher's own weights.")
    for tab, draw in zip(st.tabs(list(TABS)), TABS.values()):
        with tab:
            draw(s, teacher)


__all__ = ["section", "scarce_task", "dark_task", "weak_strong_task", "TABS", "figures", "url_params"]
