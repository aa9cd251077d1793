"""Sweep benchmark: the 20 x 7 grid (prune ratio x bit width) on digits-cnn with accuracy and size per row, against a
naive loop (deep copy + torch.nn.utils.prune + quantize + evaluate per configuration) in the same run; the same grid
with channel pruning and with latency; the one grid of every family (slimcore.tradeoffs) on minilm, a few points;
the per-layer sensitivity scans (slimcore.sensitivity, also the encoder's cells); and the allocation under a budget.

Usage: python benchmarks/bench_sweep.py [model]
"""
from __future__ import annotations

import copy
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

import pandas as pd
import torch
from torch.nn.utils import prune as tprune

if TYPE_CHECKING:  # mypy sees this folder as the package `benchmarks`; run as a script, the folder is on sys.path
    from benchmarks._util import timed
else:
    from _util import timed  # (importing _util puts the repository on sys.path)

import slimcore
from slimcore import quantization as Q
from slimcore import tradeoffs
from slimcore.sensitivity import ScanConfig, scan_sample
from slimcore.sweep import BITS, FP32, PRUNE_RATIOS, allocate, pareto, sweep

T = TypeVar("T")


def naive(s: slimcore.Sample, ratios: Sequence[float], bits: Sequence[int], row: bool = True) -> pd.DataFrame:
    """The straightforward loop: for every configuration, deep-copy the model, prune it with torch.nn.utils.prune
    (L1, per layer), quantize it (slimcore.quantize, another copy) and evaluate it. row=True gets the same columns as
    a sweep row the way the rest of the code base does for one model (slimcore.measure without timing: accuracy,
    counts, MACs; plus the modelled size); row=False only the accuracy and the modelled size."""
    rows = []
    for r in ratios:
        for b in bits:
            net = copy.deepcopy(s.model)
            for m in slimcore.weight_layers(net).values():
                tprune.l1_unstructured(m, "weight", amount=r)
                tprune.remove(m, "weight")
            if b != FP32:
                net = Q.quantize(net, b)
            size = slimcore.modelled_size(net, b).bytes
            if row:
                got = slimcore.measure(s, net, timing=False)
                rows.append(dict(prune_ratio=r, bits=b, accuracy=got.accuracy, size_bytes=size, macs=got.macs,
                                 nonzeros=got.nonzeros))
            else:
                rows.append(dict(prune_ratio=r, bits=b, accuracy=slimcore.accuracy(net, s.test), size_bytes=size))
    return pd.DataFrame(rows)


def clock(fn: Callable[[], T]) -> tuple[float, T]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main(name: str = "digits-cnn") -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; model {name}")
    s = slimcore.load_sample(name)
    assert isinstance(s, slimcore.Sample), f"{name} is not an image classifier"
    ratios, bits = PRUNE_RATIOS, BITS
    grid = f"{len(ratios)} x {len(bits)} = {len(ratios) * len(bits)} configurations"
    sweep(s.model, s.data, ratios[:2], bits[:2])  # warm-up (first calls load kernels)

    print(f"\n## Sweep, {grid} (ratios {ratios[0]}..{ratios[-1]}, bits {bits}), accuracy on {len(s.test)} test "
          "examples, size, counts and MACs per row; no latency. Runs alternate; medians of 3 after a warm-up of each.")
    naive(s, ratios[:2], bits)
    naive(s, ratios[:2], bits, row=False)
    times: dict[str, list[float]] = {"sweep": [], "naive": [], "naive, accuracy only": []}
    for _ in range(3):
        t, frame = clock(lambda: sweep(s.model, s.data, ratios, bits))
        times["sweep"].append(t)
        t, ref = clock(lambda: naive(s, ratios, bits))
        times["naive"].append(t)
        times["naive, accuracy only"].append(clock(lambda: naive(s, ratios, bits, row=False))[0])
    med = {k: statistics.median(v) for k, v in times.items()}
    same = (frame["score"].to_numpy() == ref["accuracy"].to_numpy()).mean()
    fast, slow, lean = med["sweep"], med["naive"], med["naive, accuracy only"]
    print(f"slimcore.sweep         {fast:6.2f} s  ({fast / len(frame) * 1000:.1f} ms per configuration; "
          f"runs {', '.join(f'{t:.2f}' for t in times['sweep'])} s)")
    print(f"naive loop             {slow:6.2f} s  (deep copy + torch.nn.utils.prune + quantize + slimcore.measure "
          f"+ modelled size: the same columns)   speed-up {slow / fast:.1f}x")
    print(f"naive, accuracy only   {lean:6.2f} s  (deep copy + torch.nn.utils.prune + quantize + "
          f"slimcore.accuracy + modelled size)   speed-up {lean / fast:.1f}x")
    print(f"rows with equal accuracy, sweep vs naive: {same:.0%}")
    one = timed(lambda: slimcore.accuracy(s.model, s.test), repeats=30)["median_ms"]
    print(f"for scale: one evaluation of the model on the test split (slimcore.accuracy) {one:.1f} ms; "
          f"{len(frame)} of them back to back {one * len(frame) / 1000:.2f} s")

    print("\n## Variants of the same grid")
    t, f = clock(lambda: sweep(s.model, s.data, ratios, bits, structured=(True,)))
    print(f"structured (channels removed, torch-pruning) {t:6.2f} s  "
          f"({int(f['score'].isna().sum())} rows with no channel-pruned model)")
    t, f = clock(lambda: sweep(s.model, s.data, ratios, bits, methods=("l1", "taylor"), structured=(False, True)))
    print(f"2 methods x (unstructured, structured), {len(f)} rows   {t:6.2f} s")
    t, f = clock(lambda: sweep(s.model, s.data, ratios, bits, structured=(False, True), latency=True))
    n_timed = int(f["latency_ms"].notna().sum())
    print(f"with latency (2 x {len(ratios)} real fp32 models timed round-robin at batch 256, 10 repeats), "
          f"{len(f)} rows   {t:6.2f} s ({n_timed} rows timed)")
    t, _ = clock(lambda: pareto(f, "size_bytes", "score"))
    print(f"pareto(size_bytes, score) over {len(f)} rows   {t * 1000:6.2f} ms")

    print(f"\n## Sensitivity scans (each layer alone; validation split, {len(s.data.val)} examples)")
    for kind in ("prune", "quantize"):
        t, sens = clock(lambda: scan_sample(s, ScanConfig(kind)))  # noqa: B023 (called at once)
        print(f"{kind:<9} {len(sens):>3} evaluations   {t:6.2f} s")
    text = slimcore.load_sample("minilm")
    t, sens = clock(lambda: scan_sample(text, ScanConfig("prune", (0.5,))))
    print(f"minilm: {len(sens)} (transformer layer x kind of Linear) cells pruned 50 % alone, quick set   {t:6.2f} s; "
          f"most sensitive {sens.sort_values('score_drop').group.iloc[-1]} (drop {sens.score_drop.max():.4f})")
    t, g = clock(lambda: tradeoffs.grid(text, tradeoffs.GridConfig(("unstructured", "heads"), ("l1",), (0.0, 0.5),
                                                                    ("fp32", "int8", "4-bit"), per_channel=True)))
    print(f"minilm grid, {len(g)} points (unpruned, weights and heads -50 %; fp32, real int8, 4-bit)   {t:6.2f} s")

    print("\n## Allocation under a budget (chosen on validation, measured on validation and test)")
    for kind in ("prune", "quantize"):
        sens = scan_sample(s, ScanConfig(kind))
        for budget in (0.5, 1.0, 2.0):
            t, a = clock(lambda: allocate(s.model, sens, s.data.val, budget, s.test))  # noqa: B023 (called at once)
            settings = ", ".join(f"{k} {v:g}" for k, v in a.result.settings.items())
            tries = f"{a.tries} tr{'y' if a.tries == 1 else 'ies'}"
            print(f"{kind:<9} budget {budget:.1f} pt: {t * 1000:6.0f} ms, {tries}; {settings}")
            for o in (a.result, *a.uniform):
                print(f"    {o.name:<28} drop {(a.base_accuracy - o.accuracy) * 100:5.2f} pt (val), test "
                      f"{o.test_accuracy:.2%}, {o.size_bytes / 1024:7.1f} KiB modelled "
                      f"({a.base_bytes / o.size_bytes:4.1f}x)")


if __name__ == "__main__":
    main(*sys.argv[1:2])
