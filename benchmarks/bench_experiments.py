"""Distillation experiments benchmark: the figures of issue 19's closing note, by the functions the page and
`python -m slimcore experiments` call (slimcore.experiments), with the seconds each experiment takes.

For each model: scarce labels (distilled vs scratch at 1, 5, 20 and 100 % of the training labels), dark knowledge
(recall of a class no student saw, distilled vs scratch) and weak vs strong (random init vs the teacher's thinned
weights on 5 % of the training data); every figure the mean ± sample sd over the seeds, on the test split.

Usage: python benchmarks/bench_experiments.py [SEEDS] [MODEL ...]     (5 seeds; digits-cnn and mnist1d-cnn)
"""
from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING

import torch

if not TYPE_CHECKING:  # mypy sees this folder as the package `benchmarks`; run as a script, the folder is on sys.path
    import _util  # noqa: F401  (puts the repository on sys.path)

import slimcore
from slimcore import experiments as E

MODELS = ("digits-cnn", "mnist1d-cnn")


def points(s: E.Spread) -> str:
    return f"{s.mean * 100:+.1f} ± {s.sd * 100:.1f} points"


def seeds(s: E.Spread) -> str:
    return "[" + ", ".join(f"{v * 100:.1f}" for v in s.values) + "]"


def model(name: str, n: int) -> float:
    s = slimcore.load_sample(name)
    assert isinstance(s, slimcore.Sample), f"{name} is not an image classifier"
    t = E.TRAINING
    steps = E.budget(len(s.data.train), t)
    print(f"\n== {name}: teacher {slimcore.accuracy(s.model, s.test):.2%} on {len(s.test):,} test examples; students "
          f"{t.student:g} of its width, {steps} Adam steps each (lr {t.lr:g}, batch {t.batch_size}), T = "
          f"{t.temperature:g}, alpha {t.alpha:g}; mean ± sample sd over {n} seeds ==")
    total = 0.0

    curve = E.scarce_curve(s, E.ScarceConfig(seeds=n))
    seconds = sum(r.seconds for r in curve)
    total += seconds
    print(f"\nScarce labels — test accuracy; the distilled student also has the teacher's soft targets on all "
          f"{curve[0].examples:,} training inputs ({seconds:.1f} s, {2 * n * len(curve)} students)")
    for r in curve:
        print(f"  {r.config.fraction:>5.0%} labels ({r.labelled:>4} labelled)  distilled {r.distilled.percent():<15} "
              f"scratch {r.scratch.percent():<15} gain {points(r.gain):<20} {r.seconds:5.1f} s")
        print(f"        per seed, %: distilled {seeds(r.distilled)}  scratch {seeds(r.scratch)}")

    d = E.dark_knowledge(s, E.DarkConfig(seeds=n))
    total += d.seconds
    c = d.config.held_out
    print(f"\nDark knowledge — no {c} among the {d.examples:,} training examples ({d.removed} removed); "
          f"{d.class_examples} test {c}s ({d.seconds:.1f} s, {2 * n} students)")
    print(f"  recall of {c}:     distilled {d.recall_distilled.percent():<15} scratch {d.recall_scratch.percent()}")
    print(f"        per seed, %: distilled {seeds(d.recall_distilled)}  scratch {seeds(d.recall_scratch)}")
    print(f"  test accuracy:   distilled {d.accuracy_distilled.percent():<15} scratch {d.accuracy_scratch.percent()}")
    print(f"  extra, bias of {c} raised (shift chosen on validation: distilled {d.shift_distilled.mean:.2f} ± "
          f"{d.shift_distilled.sd:.2f}, scratch {d.shift_scratch.mean:.2f} ± {d.shift_scratch.sd:.2f}):")
    print(f"    recall of {c}:   distilled {d.recall_distilled_shifted.percent():<15} scratch "
          f"{d.recall_scratch_shifted.percent()}")
    print(f"    test accuracy: distilled {d.accuracy_distilled_shifted.percent():<15} scratch "
          f"{d.accuracy_scratch_shifted.percent()}")

    w = E.weak_strong(s, E.WeakStrongConfig(seeds=n))
    total += w.seconds
    print(f"\nWeak vs strong — {w.config.share:.0%} of the training data ({w.examples} examples, inputs and labels) "
          f"is all there is; {w.parameters_weak:,} / {w.parameters_strong:,} parameters ({w.seconds:.1f} s, "
          f"{len(w.arms) * n} students)")
    for arm, acc in zip(w.arms, w.accuracy):
        print(f"  {arm:<46} {acc.percent():<15} per seed {seeds(acc)}")
    print(f"  {'thinned teacher, before any training':<46} {w.thinned_untrained:.1%}")
    print(f"  strong - weak: {(w.strong.mean - w.weak.mean) * 100:+.1f} points")
    print(f"\n{name}: the three experiments took {total:.1f} s")
    return total


def published() -> None:
    print("\nPublished reference (Hinton, Vinyals & Dean 2015) — their setting, not ours:")
    for key, refs in E.PUBLISHED.items():
        for r in refs:
            print(f"  {key:<8} {r.label:<52} {r.value:.1%}  ({r.setting})")


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else E.SEEDS
    names = sys.argv[2:] or MODELS
    print(f"torch {torch.__version__}, {os.cpu_count()} cores, {E.WORKERS} students trained side by side (one torch "
          f"thread each); load average at start {os.getloadavg()[0]:.2f}")
    t0 = time.perf_counter()
    times = {name: model(name, n) for name in names}
    published()
    print("\nseconds per model: " + ", ".join(f"{k} {v:.1f}" for k, v in times.items())
          + f"; in all {time.perf_counter() - t0:.1f} s; load average at the end {os.getloadavg()[0]:.2f} (other "
            "work on the machine slows these down)")
