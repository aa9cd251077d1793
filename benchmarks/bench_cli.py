"""Command-line benchmark: `python -m slimcore sweep` on the Trade-offs page's default grid (L1, per layer, with
channel pruning: 39 prune settings x 7 bit widths = 273 rows) for two sample models, beside the same grid computed in
this process (slimcore.tradeoffs.grid, what the page computes), so the cost of starting Python and importing torch
shows; and `python -m slimcore apply` for a few recipes, with and without export, on the first model and on the
sentence encoder minilm (its own recipes: heads pruned, real int8; one run each, they take minutes). Wall-clock
seconds, medians of 3 runs, each process started afresh.

Usage: python benchmarks/bench_cli.py [classifier model ...]
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pandas as pd
import torch

if TYPE_CHECKING:  # mypy sees this folder as the package `benchmarks`; run as a script, the folder is on sys.path
    from benchmarks._util import ROOT
else:
    from _util import ROOT  # (importing _util puts the repository on sys.path)

import slimcore
from slimcore import PruneConfig, QuantConfig, tradeoffs
from slimcore import recipe as R
from slimcore.recipe import Int8Config, Recipe

REPEATS = 3
T = TypeVar("T")


def cli(*args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "slimcore", *args], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"python -m slimcore {' '.join(args)} failed: {out.stderr.strip()}")
    return seconds, out


def median(fn: Callable[[], tuple[float, T]], repeats: int = REPEATS) -> tuple[float, list[float], T]:
    runs: list[float] = []
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
            wall, runs, _ = median(
                lambda: cli("sweep", "--model", name, "--out", str(csv)))  # noqa: B023 (called at once)
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
            wall, runs, _ = median(
                lambda: cli("sweep", "--model", name, "--out", str(csv), "--latency"))  # noqa: B023 (called at once)
            print(f"{'':<12} with --latency (every real fp32 model timed at batch 256): {wall:6.2f} s, "
                  f"{rows / wall:6.1f} rows/s")

    for name, repeats in ((names[0], REPEATS), (slimcore.text.NAME, 1)):
        apply_recipes(name, repeats)


def recipes_for(name: str) -> dict[str, Recipe]:
    """A few recipes of the model's family (an encoder prunes heads and builds real int8 per channel)."""
    if slimcore.family_of(slimcore.load_sample(name)).name == "encoder":
        return {"prune 25 % heads": Recipe(name, PruneConfig(0.25, structured=True, unit="heads", norm=2)),
                "real int8 + 8-bit word table": Recipe(name, int8=Int8Config("dynamic", per_channel=True,
                                                                             embeddings=True))}
    return {"prune L1 50 % weights": Recipe(name, PruneConfig(0.5)),
            "prune 50 % channels": Recipe(name, PruneConfig(0.5, structured=True)),
            "fake-quant 4-bit": Recipe(name, quant=QuantConfig(4)),
            "channels 30 % + real int8": Recipe(name, PruneConfig(0.3, structured=True), int8=Int8Config())}


def apply_recipes(name: str, repeats: int) -> None:
    metric = slimcore.family_of(slimcore.load_sample(name)).metric
    print(f"\n## apply on {name}: a recipe, figures printed ({metric.name} on the test split; --no-latency vs timed; "
          f"median of {repeats})")
    with tempfile.TemporaryDirectory() as d:
        for label, recipe in recipes_for(name).items():
            path = R.dump(recipe, Path(d) / "r.yaml")
            quick = median(lambda: cli("apply", "--recipe", str(path), "--no-latency"),  # noqa: B023 (called at once)
                           repeats)[0]
            timed_, _, out = median(lambda: cli("apply", "--recipe", str(path),  # noqa: B023 (called at once)
                                                "--json"), repeats)
            f = json.loads(out.stdout)["figures"]
            wall, _, out = median(lambda: cli("apply", "--recipe", str(path),  # noqa: B023 (called at once)
                                              "--out", str(Path(d) / "x"), "--json"), repeats)
            files = json.loads(out.stdout)["files"]
            big = max((k for k in f if k.startswith("latency_b")), key=lambda k: int(k[len("latency_b"):]))
            print(f"{label:<29} {quick:6.2f} s no timing | {timed_:6.2f} s timed | {wall:6.2f} s timed + export "
                  f"({len(files)} files, {sum(files.values()):,} B) | {metric.short} {metric.format(f['score'])}, "
                  f"{f['size_bytes']:,} B measured, {f[big]['median_ms']:.3f} ms at batch {f[big]['batch']} "
                  f"({f[big]['threads']} threads)")


if __name__ == "__main__":
    main(sys.argv[1:] or ["digits-cnn", "mnist1d-cnn"])
