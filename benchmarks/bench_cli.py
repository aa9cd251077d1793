"""Command-line benchmark: `python -m slimcore sweep` on the Trade-offs page's default grid (L1, per layer, with
channel pruning: 39 prune settings x 7 bit widths = 273 rows) for two sample models, beside the same grid computed in
this process (slimcore.tradeoffs.grid, what the page computes), so the cost of starting Python and importing torch
shows; and `python -m slimcore apply` for a few recipes, with and without export. Wall-clock seconds, medians of
3 runs, each process started afresh.

Usage: python benchmarks/bench_cli.py [model ...]
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from _util import ROOT  # (importing _util puts the repository on sys.path)

import slimcore
from slimcore import PruneConfig, QuantConfig
from slimcore import recipe as R
from slimcore import tradeoffs
from slimcore.recipe import Int8Config, Recipe

REPEATS = 3


def cli(*args: str) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "slimcore", *args], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"python -m slimcore {' '.join(args)} failed: {out.stderr.strip()}")
    return seconds, out


def median(fn, repeats: int = REPEATS) -> tuple[float, list[float], object]:
    runs, last = [], None
    for _ in range(repeats):
        t, last = fn()
        runs.append(t)
    return statistics.median(runs), runs, last


def main(names: list[str]) -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {REPEATS} runs each, median wall seconds")
    cli("--help")   # warm-up: the first start reads the files from disk
    startup = median(lambda: cli("--help"))[0]
    print(f"\n`python -m slimcore --help` (start Python, import slimcore and torch): {startup:.2f} s")

    print("\n## sweep: the Trade-offs page's default grid (L1, per layer, with channel pruning, per-tensor grid)")
    with tempfile.TemporaryDirectory() as d:
        for name in names:
            csv = Path(d) / f"{name}.csv"
            wall, runs, _ = median(lambda: cli("sweep", "--model", name, "--out", str(csv)))
            rows = len(pd.read_csv(csv))
            s = slimcore.load_sample(name)
            tradeoffs.grid(s, tradeoffs.GridConfig(ratios=(0.0, 0.5), precisions=("fp32", "4-bit")))   # warm-up
            ts = []
            for _ in range(REPEATS):
                t0 = time.perf_counter()
                frame = tradeoffs.grid(s, tradeoffs.GridConfig(("unstructured", "channels")))   # the page's default
                ts.append(time.perf_counter() - t0)
            inproc = statistics.median(ts)
            same = csv.read_bytes() == tradeoffs.csv(frame)
            print(f"{name:<12} CLI {wall:6.2f} s ({', '.join(f'{r:.2f}' for r in runs)}), {rows} rows, "
                  f"{rows / wall:6.1f} rows/s | in process {inproc:5.2f} s, {rows / inproc:6.1f} rows/s | "
                  f"CSV equal to the in-process table: {same}")
            wall, runs, _ = median(lambda: cli("sweep", "--model", name, "--out", str(csv), "--latency"))
            print(f"{'':<12} with --latency (every real fp32 model timed at batch 256): {wall:6.2f} s, "
                  f"{rows / wall:6.1f} rows/s")

    print("\n## apply: a recipe, figures printed (accuracy measured on the test split; --no-latency vs timed)")
    recipes = {
        "prune L1 50 % weights": Recipe(names[0], PruneConfig(0.5)),
        "prune 50 % channels": Recipe(names[0], PruneConfig(0.5, structured=True)),
        "fake-quant 4-bit": Recipe(names[0], quant=QuantConfig(4)),
        "channels 30 % + real int8": Recipe(names[0], PruneConfig(0.3, structured=True), int8=Int8Config()),
    }
    with tempfile.TemporaryDirectory() as d:
        for label, recipe in recipes.items():
            path = R.dump(recipe, Path(d) / "r.yaml")
            quick = median(lambda: cli("apply", "--recipe", str(path), "--no-latency"))[0]
            timed_, _, out = median(lambda: cli("apply", "--recipe", str(path), "--json"))
            f = json.loads(out.stdout)["figures"]
            wall, _, out = median(lambda: cli("apply", "--recipe", str(path), "--out", str(Path(d) / "x"), "--json"))
            files = json.loads(out.stdout)["files"]
            print(f"{label:<27} {quick:5.2f} s no timing | {timed_:5.2f} s timed | {wall:5.2f} s timed + export "
                  f"({len(files)} files, {sum(files.values()):,} B) | accuracy {f['accuracy']:.2%}, "
                  f"{f['size_bytes']:,} B measured, {f['latency_b256']['median_ms']:.3f} ms at batch 256 "
                  f"({f['latency_b256']['threads']} threads)")


if __name__ == "__main__":
    main(sys.argv[1:] or ["digits-cnn", "mnist1d-cnn"])
