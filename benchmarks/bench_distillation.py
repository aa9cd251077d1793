"""Distillation benchmark: temperature slider -> soft-target figure; 10-epoch distillations on digits and MNIST-1D
(total time and the longest gap between page updates); the temperature grid; distilled vs scratch over seeds.

Usage: python benchmarks/bench_distillation.py [SEEDS]      (5 seeds by default)
"""
from __future__ import annotations

import statistics
import sys
import time
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # mypy sees this folder as the package `benchmarks`; run as a script, the folder is on sys.path
    from benchmarks._util import timed
else:
    from _util import timed

import slimcore
from slimcore import distillation as D
from slimcore import plots

GRID = D.GRID                    # the page's grid
LR = slimcore.families.get("classifier").distill_defaults.lr   # the page's learning rate (the default)


def slider() -> None:
    s = slimcore.load_sample("digits-cnn")
    assert isinstance(s, slimcore.Sample)
    logits = slimcore.predict(s.model, s.test.x)

    def move(t: float = 7.5) -> None:
        p1, pt = D.soften(logits[0], 1.0), D.soften(logits[0], t)
        plots.soft_targets(p1.tolist(), pt.tolist(), t, (float(D.entropy_bits(p1)), float(D.entropy_bits(pt))), 0)

    r = timed(move, repeats=50)
    print(f"temperature slider -> soft-target figure: {r['median_ms']:.2f} ms median, {r['p95_ms']:.2f} ms p95")


def run(name: str, width: str, temperature: float, alpha: float, seed: int, epochs: int = 10):
    s = slimcore.load_sample(name)
    assert isinstance(s, slimcore.Sample), f"{name} is not an image classifier"
    stamps = [time.perf_counter()]
    t0 = stamps[0]
    cfg = D.DistillConfig(temperature=temperature, alpha=alpha, epochs=epochs, lr=LR, seed=seed,
                          student=D.WIDTHS[width])
    res = slimcore.distill(s, cfg, on_epoch=lambda e: stamps.append(time.perf_counter()),
                           on_batch=lambda f: stamps.append(time.perf_counter()))  # the page's bar moves per batch
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    return res, time.perf_counter() - t0, max(gaps), slimcore.accuracy(res.student, s.test)


def trainings() -> None:
    print("\n10-epoch distillation (T = 4, alpha = 0.5), one run each")
    for name, width in [("digits-cnn", "1/2"), ("digits-cnn", "1/8"), ("digits-mlp", "1/4"), ("mnist1d-cnn", "1/2"),
                        ("mnist1d-mlp", "1/2")]:
        res, total, gap, acc = run(name, width, 4.0, 0.5, 0)
        print(f"{name:<12} student {width:<4} {total:>6.2f} s in all, longest gap between page updates {gap:.2f} s, "
              f"test accuracy {acc:.2%}")


def grid() -> None:
    print("\ntemperature grid (7 runs of 10 epochs, digits-cnn teacher, 1/8 student, alpha 0.5)")
    t0 = time.perf_counter()
    accs = [run("digits-cnn", "1/8", t, 0.5, 0)[3] for t in GRID]
    print(f"{time.perf_counter() - t0:.1f} s: " + ", ".join(f"T={t:g} {a:.1%}" for t, a in zip(GRID, accs)))


def seeds(n: int) -> None:
    print(f"\ndistilled (T = 4, alpha = 0.5) vs scratch (alpha = 0), 10 epochs, {n} seeds: test accuracy mean ± sd")
    for name, width in [("digits-cnn", "1/8"), ("digits-mlp", "1/8"), ("mnist1d-cnn", "1/2")]:
        d = [run(name, width, 4.0, 0.5, k)[3] for k in range(n)]
        sc = [run(name, width, 1.0, 0.0, k)[3] for k in range(n)]
        diff = [a - b for a, b in zip(d, sc)]
        print(f"{name:<12} {width:<4} distilled {statistics.mean(d):.2%} ± {statistics.stdev(d):.2%}, scratch "
              f"{statistics.mean(sc):.2%} ± {statistics.stdev(sc):.2%}, paired difference "
              f"{statistics.mean(diff) * 100:+.2f} ± {statistics.stdev(diff) * 100:.2f} points")


if __name__ == "__main__":
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    slider()
    trainings()
    grid()
    seeds(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
