"""Text pruning benchmark (minilm): slider value -> every figure ready on the server (prune + embed the quick set +
sizes + the page's figures), p50 and p95 per kind over ratios the page has not cached; the one-off costs behind it;
and the measured speed of the masked, FFN-pruned and head-pruned encoders against the original.

Usage: python benchmarks/bench_text_pruning.py
"""
from __future__ import annotations

import os
import statistics
import time

import torch

from _util import timed

import slimcore
from slimcore import plots
from slimcore import text as T
from slimcore import text_prune as TP
from slimui import text_pruning as page   # the page's own figure builders (its cached loaders are not used here)

RATIOS = (0.05, 0.15, 0.35, 0.45, 0.55, 0.65, 0.85, 0.95)   # slider stops off the page's quality curve (not cached)
LAYER = page.DEFAULT_LAYER


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def slider_move(s: T.TextSample, cfg: TP.TextPruneConfig, ref: torch.Tensor, order: dict, curve: list) -> float:
    """What the page computes for one new slider position; returns the mean cosine."""
    rep, model, p = TP.evaluate(s.model, cfg, s.data.quick_set, ref, order if cfg.kind == "unstructured" else None)
    w = T.linear_layers(s.model)[LAYER].weight.detach()
    mask = p.masks[LAYER]
    page.removed_chart(rep, cfg)
    plots.weight_histogram(w.numpy().ravel(), threshold=p.thresholds.get(LAYER) if not rep.thin else None,
                           after=w[mask].numpy())
    if rep.thin:
        page.units_map(p, cfg)
    else:
        plots.mask_heatmap(mask[:page.CROP[0], :page.CROP[1]].numpy())
    plots.line_chart(page.CURVE, {"mean cosine": [q.mean_cosine for q in curve]}, "q", "r", "c", marker=cfg.ratio)
    return rep.quality.mean_cosine


def slider_figures(s: T.TextSample) -> None:
    quick = s.data.quick_set
    t0 = time.perf_counter()
    ref = T.embed(s.model, quick)
    t_ref = time.perf_counter() - t0
    t0 = time.perf_counter()
    order = TP.sorted_magnitudes(s.model)
    t_order = time.perf_counter() - t0
    print(f"one-off per process: original's quick-set embeddings {t_ref * 1000:.0f} ms, sorted magnitudes of the 36 "
          f"Linear layers {t_order * 1000:.0f} ms")
    print(f"\nslider -> all figures ready (server side: prune + embed {len(quick)} quick-set sentences + sizes + figures; "
          "excludes the latency table, timed afterwards)")
    print(f"{'kind':<13} {'p50':>8} {'p95':>8}   over {len(RATIOS)} ratios x 2 repeats   (quality curve: once per kind)")
    for kind in TP.KINDS:
        t0 = time.perf_counter()
        curve = TP.quality_curve(s.model, kind, quick, ref, page.CURVE, order if kind == "unstructured" else None)
        t_curve = time.perf_counter() - t0
        ts = []
        for _ in range(2):
            for r in RATIOS:
                t0 = time.perf_counter()
                slider_move(s, TP.TextPruneConfig(r, kind), ref, order, curve)
                ts.append((time.perf_counter() - t0) * 1000)
        print(f"{kind:<13} {statistics.median(ts):>5.0f} ms {percentile(ts, 0.95):>5.0f} ms   curve of "
              f"{len(page.CURVE) - 1} ratios: {t_curve:.1f} s; at ratio 0.5 mean cosine {curve[2].mean_cosine:.4f}")
    parts = {}
    for kind in ("unstructured", "ffn", "heads"):
        cfg = TP.TextPruneConfig(0.3, kind)
        model = TP.prune_text(s.model, cfg, order)
        parts[kind] = {
            "plan": timed(lambda: TP.plan(s.model, cfg, order), repeats=3)["median_ms"],
            "apply": timed(lambda: TP.apply(s.model, TP.plan(s.model, cfg, order)), repeats=3)["median_ms"],
            "embed": timed(lambda: T.embed(model, quick), repeats=3)["median_ms"],
            "sizes": timed(lambda: TP.measure(model, TP.plan(s.model, cfg, order), curve[0]), repeats=3)["median_ms"]}
    print("\nwhere the time goes at ratio 0.3 (median of 3, ms; 'apply' and 'sizes' include a plan):")
    for kind, d in parts.items():
        print(f"{kind:<13} " + "  ".join(f"{k} {v:>5.0f}" for k, v in d.items()))


def speed(s: T.TextSample) -> None:
    print("\nmeasured latency, original vs pruned at 50 %, timed side by side (round-robin) on real test sentences")
    models = {"original": s.model} | {f"{kind} 50 %": TP.prune_text(s.model, TP.TextPruneConfig(0.5, kind))
                                      for kind in TP.KINDS}
    lat = T.latencies(models, s.test, repeats=40, max_seconds=8.0)
    o1, o32 = lat["original"]
    print(f"{'model':<18} {'params':>11} {'size MiB':>9} {'b=1 ms':>8} {'IQR':>6} {'b=32 ms':>8} {'IQR':>6} "
          f"{'speed-up b=32':>13}")
    for k, (b1, b32) in lat.items():
        m = models[k]
        print(f"{k:<18} {sum(p.numel() for p in m.parameters()):>11,} {slimcore.serialized_bytes(m) / 2**20:>9.2f} "
              f"{b1.median_ms:>8.2f} {b1.iqr_ms:>6.2f} {b32.median_ms:>8.1f} {b32.iqr_ms:>6.1f} "
              f"{o32.median_ms / b32.median_ms:>12.2f}x")
    print(f"({o32.threads} threads, {o32.repeats} timed runs after {o32.warmup} warm-up per model and batch; load "
          f"average {o32.load:.1f} on {os.cpu_count()} cores when timing ended)")


def full_split(s: T.TextSample) -> None:
    ref = T.embed(s.model, s.test)
    model = TP.prune_text(s.model, TP.TextPruneConfig(0.3, "ffn"))
    t = timed(lambda: TP.evaluate_in_parts(model, s.test, ref), repeats=2, warmup=0)
    print(f"\n'Measure on the whole test split' ({len(s.test)} sentences, FFN 30 %): {t['median_ms'] / 1000:.1f} s")


if __name__ == "__main__":
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores at start")
    sample = slimcore.load_sample("minilm")
    slider_figures(sample)
    speed(sample)
    full_split(sample)
