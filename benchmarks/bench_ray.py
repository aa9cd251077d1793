"""Sweeps on a Ray cluster against the same sweeps in this process (slimcore.executor), and the cost model behind the
README's projection to bigger models and clusters.

1. The 420-configuration grid on digits-cnn (20 prune ratios x 7 precisions x 3 methods, channel pruning; the unpruned
   point is the same model under each method, so 406 distinct rows): in this process (torch's threads), then on a
   local Ray head with 2 worker CPUs, cold (the driver's first sweep: workers start and import torch) and warm (the
   next sweep of the same driver, as the dashboard's second grid). Checks that both give the same frame.
2. Ray's own overhead per task: a map of tasks that do nothing, one item each.
3. Seconds per configuration (a grid point built and scored on its held-out split) on each sample model, in this
   process: the measured part of the cost model.
4. The projection: a 1,000-configuration grid on ResNet-50 (ImageNet, 4.1 GMACs per image) and BERT-base (12 layers,
   hidden 768) across 1, 8 and 64 workers, from (3) scaled by compute per evaluation (the assumption is printed).

Usage: python benchmarks/bench_ray.py [--address HOST:PORT]   (default: start a local 2-CPU head, stop it after)
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pandas as pd
import torch

if TYPE_CHECKING:  # mypy sees this folder as the package `benchmarks`; run as a script, the folder is on sys.path
    from benchmarks import _util
else:
    import _util  # noqa: F401  (puts the repository on sys.path)

import slimcore
from slimcore import executor as X
from slimcore import metrics
from slimcore import tradeoffs as T

CLI_GRID = T.GridConfig(("unstructured", "channels"), ("l1", "random", "taylor"), T.RATIOS,
                        tuple(T.precision(b) for b in T.BITS))
GRID = T.GridConfig(("channels",), ("l1", "random", "taylor"), T.RATIOS, tuple(T.precision(b) for b in T.BITS))
# Compute per evaluated example, for the projection (multiply-accumulates; published architecture figures):
# ResNet-50 at 224 x 224: 4.1 G (He et al. 2016, Table 1: 3.8e9 FLOPs counted as multiply-adds, ~4.1 G with the fc);
# BERT-base: 12 layers x (4 x 768^2 attention + 2 x 768 x 3072 FFN) = 85 M per token; MiniLM-L6: 6 x (4 x 384^2 +
# 2 x 384 x 1536) = 10.6 M per token.
RESNET50_MACS = 4.1e9
BERT_BASE_PER_TOKEN = 12 * (4 * 768 ** 2 + 2 * 768 * 3072)
MINILM_PER_TOKEN = 6 * (4 * 384 ** 2 + 2 * 384 * 1536)
EVAL_IMAGES = 1000           # held-out images a ResNet-50 configuration is scored on in the projection
WORKERS = (1, 8, 64)
CONFIGS = 1000


def timed_grid(sample, cfg, executor=None) -> tuple[pd.DataFrame, float, list[float]]:
    seconds: list[float] = []
    t0 = time.perf_counter()
    frames = T.pieces(sample, cfg, executor=executor, on_piece=lambda p, f, s: seconds.append(s))
    return T.combine(frames), time.perf_counter() - t0, seconds


def per_config(name: str, cfg: T.GridConfig) -> tuple[float, int, float, int]:
    """Seconds per configuration of a small grid in this process; the model's parameters; its MACs per example
    (NaN where the family does not count them); the held-out examples each configuration is scored on."""
    s = slimcore.load_sample(name)
    frame, wall, _ = timed_grid(s, cfg)
    macs = float(frame.macs.iloc[0]) if "macs" in frame and frame.macs.notna().any() else math.nan
    return wall / len(frame), sum(p.numel() for p in s.model.parameters()), macs, int(frame.attrs["examples"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--address", help="a running Ray head (default: start a local one with 2 CPUs)")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads in process; CPU: {metrics.cpu_name()}")
    s = slimcore.load_sample("digits-cnn")
    rows = len(GRID.pieces()) * len(GRID.precisions)
    print(f"\n1. The grid on digits-cnn: {len(GRID.ratios)} ratios x {len(GRID.precisions)} precisions x "
          f"{len(GRID.methods)} methods, channel pruning = {len(GRID.ratios) * len(GRID.precisions) * 3} "
          f"configurations, {rows} distinct rows in {len(GRID.pieces())} pieces (prune settings)")
    here, t_here, piece_s = timed_grid(s, GRID)
    print(f"   in process:            {t_here:6.1f} s  ({t_here / rows * 1000:.0f} ms per configuration; pieces "
          f"median {statistics.median(piece_s):.2f} s)")
    cluster = X.LocalCluster(cpus=2) if args.address is None else None
    address = cluster.__enter__() if cluster is not None else args.address
    try:
        ray = X.Ray(address)
        ray.connect()
        tasks = len(ray.batches(len(GRID.pieces())))
        cold, t_cold, _ = timed_grid(s, GRID, ray)
        warm, t_warm, ray_piece_s = timed_grid(s, GRID, ray)
        same = all(f.drop(columns="detail").equals(here.drop(columns="detail")) for f in (cold, warm))
        print(f"   Ray, {ray.workers} workers, cold:  {t_cold:6.1f} s  ({(t_cold / t_here - 1) * 100:+.0f} % vs in "
              "process; includes starting the workers and importing torch)")
        print(f"   Ray, {ray.workers} workers, warm:  {t_warm:6.1f} s  ({(t_warm / t_here - 1) * 100:+.0f} % vs in "
              f"process; {tasks} tasks of up to {len(ray.batches(len(GRID.pieces()))[0])} pieces)")
        ideal = sum(ray_piece_s) / ray.workers
        print(f"   overhead per task (warm wall - pieces' own seconds / workers, per task): "
              f"{(t_warm - ideal) / tasks * 1000:.0f} ms; pieces took median {statistics.median(ray_piece_s):.2f} s "
              f"in a 1-thread worker")
        print(f"   same frame on Ray as in process: {same}")

        cli = [sys.executable, "-m", "slimcore", "sweep", "--model", "digits-cnn", "--methods", "l1", "random",
               "taylor", "--out", os.devnull]
        walls: dict[str, list[float]] = {"in process": [], "--ray": []}
        for _ in range(3):
            for how, extra in (("in process", []), ("--ray", ["--ray", address])):
                t0 = time.perf_counter()
                subprocess.run(cli + extra, cwd=_util.ROOT, check=True, capture_output=True)
                walls[how].append(time.perf_counter() - t0)
        a, b = (statistics.median(v) for v in walls.values())
        print(f"   the CLI end to end (python -m slimcore sweep --methods l1 random taylor: the default grid, "
              f"unstructured and channels, {len(CLI_GRID.pieces()) * len(CLI_GRID.precisions)} rows; median of 3 "
              f"runs, each a new process and so a cold cluster driver): in process {a:.1f} s, --ray {b:.1f} s "
              f"({(b / a - 1) * 100:+.0f} %)")

        n, noops = 200, []
        for _ in range(3):   # the first registers the task on the cluster
            t0 = time.perf_counter()
            X.Ray(address, batch=1).map(_nothing, None, list(range(n)))
            noops.append((time.perf_counter() - t0) / n * ray.workers)
        noop = statistics.median(noops[1:])
        print(f"\n2. Ray's overhead per task (a task that does nothing, {n} tasks on {ray.workers} workers, after a "
              f"first round): {noop * 1000:.1f} ms per task per worker (rounds: "
              f"{', '.join(f'{x * 1000:.1f}' for x in noops)} ms)")
    finally:
        if cluster is not None:
            cluster.__exit__()

    print("\n3. Seconds per configuration in this process (build + score on the held-out split):")
    measured = {}
    small = T.GridConfig(("unstructured", "channels"), ("l1",), (0.0, 0.5, 0.9), ("fp32", "8-bit", "4-bit"))
    for name in ("digits-mlp", "digits-cnn", "digits-resnet", "mnist1d-cnn"):
        measured[name] = per_config(name, small)
    text = T.GridConfig(("unstructured", "heads"), ("l1",), (0.0, 0.5), ("fp32", "int8", "4-bit"))
    measured["minilm"] = per_config("minilm", text)
    for name, (sec, params, macs, examples) in measured.items():
        print(f"   {name:14s} {sec:7.3f} s  ({params:,} parameters; {examples} held-out examples"
              + (f"; {macs / 1e6:.2f} M MACs per example" if not math.isnan(macs) else "") + ")")

    print(f"\n4. Projection: {CONFIGS:,} configurations, one evaluation each, t(N) = start + ceil(configs / N) x "
          f"s_per_config + tasks x {noop * 1000:.0f} ms / N")
    sec_r, _, macs_r, examples_r = measured["digits-resnet"]
    rate = macs_r * examples_r / sec_r
    resnet = RESNET50_MACS * EVAL_IMAGES / rate
    bert = measured["minilm"][0] * BERT_BASE_PER_TOKEN / MINILM_PER_TOKEN
    start = max(0.0, t_cold - t_warm)
    print(f"   assumption: seconds per configuration scale with compute per evaluation. ResNet-50: "
          f"{RESNET50_MACS / 1e9:.1f} G MACs x {EVAL_IMAGES} images at digits-resnet's measured "
          f"{rate / 1e9:.2f} G MAC/s per configuration -> {resnet:.0f} s; BERT-base: minilm's "
          f"{measured['minilm'][0]:.2f} s x {BERT_BASE_PER_TOKEN / MINILM_PER_TOKEN:.1f} (MACs per token) -> "
          f"{bert:.1f} s. Worker start {start:.1f} s (measured cold - warm).")
    for label, sec in (("ResNet-50", resnet), ("BERT-base", bert)):
        cells = []
        for w in WORKERS:
            total = start + math.ceil(CONFIGS / w) * sec + CONFIGS * noop / w
            cells.append(f"{w} worker{'s' if w > 1 else ''}: {_hours(total)}")
        print(f"   {label:10s} " + " | ".join(cells))


def _nothing(_shared: object, item: int) -> int:
    return item


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


if __name__ == "__main__":
    main()
