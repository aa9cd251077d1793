"""Text pruning benchmark (minilm): slider value -> every figure ready on the server (prune + embed the quick set +
sizes + the page's figures), p50 and p95 per kind over ratios the page has not cached; the one-off costs behind it;
and the measured speed of the masked, FFN-pruned and head-pruned encoders against the original. The same calls as the
Pruning page on any family (slimcore.pruning.evaluate / quality_curve with the encoder family's scorer).

Usage: python benchmarks/bench_text_pruning.py
"""
from __future__ import annotations

import os
import statistics
import time
from typing import TYPE_CHECKING, cast

import torch
from torch import nn

if TYPE_CHECKING:  # mypy sees this folder as the package `benchmarks`; run as a script, the folder is on sys.path
    from benchmarks._util import timed
else:
    from _util import timed

import slimcore
from slimcore import plots
from slimcore import pruning as P
from slimcore import text as T
from slimcore import text_prune as TP
from slimcore.families import family_of
from slimcore.families.encoder import cosine_scorer
from slimui import pruning as page  # the page's own figure builders (its cached loaders are not used here)

RATIOS = (0.05, 0.15, 0.35, 0.45, 0.55, 0.65, 0.85, 0.95)   # slider stops off the page's quality curve (not cached)
CURVE, CROP = page.ENCODER.curve, page.ENCODER.crop


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def slider_move(s: T.TextSample, cfg: P.PruneConfig, score, curve: list) -> float:
    """What the page computes for one new slider position; returns the mean cosine."""
    fam = family_of(s)
    rep, dense, thin = P.evaluate(s.model, cfg, score, family=fam)
    keep = fam.prune_masks(s.model, cfg)
    layer = page.ENCODER.default_layer(s, cfg)
    w = cast(torch.Tensor, fam.layers(s.model)[layer].weight).detach()   # a Linear layer's
    if cfg.structured:
        plots.layer_bars(list(rep.unit_removed), list(rep.unit_removed.values()), "units removed", "units")
        page.kept_map(keep, s.model, fam, cfg.unit)
    else:
        plots.layer_bars(list(rep.layer_sparsity), list(rep.layer_sparsity.values()), "weights removed", "%")
        plots.mask_heatmap((keep[layer] if CROP is None else keep[layer][:CROP[0], :CROP[1]]).numpy())
    plots.weight_histogram(w.numpy().ravel(), threshold=rep.thresholds.get(layer), after=w[keep[layer]].numpy())
    plots.line_chart(CURVE, {"mean cosine": [q.value for q in curve]}, "q", "r", "c", marker=cfg.amount)
    return rep.score.value


def slider_figures(s: T.TextSample) -> None:
    quick = s.data.quick_set
    fam = family_of(s)
    t0 = time.perf_counter()
    score = cosine_scorer(quick, T.embed(s.model, quick))
    t_ref = time.perf_counter() - t0
    print(f"one-off per process: original's quick-set embeddings {t_ref * 1000:.0f} ms")
    print(f"\nslider -> all figures ready (server side: prune + embed {len(quick)} quick-set sentences + sizes + "
          "figures; excludes the latency table, timed afterwards)")
    print(f"{'kind':<13} {'p50':>8} {'p95':>8}   over {len(RATIOS)} ratios x 2 repeats   "
          "(quality curve: once per kind)")
    for kind in TP.KINDS:
        t0 = time.perf_counter()
        curve = P.quality_curve(s.model, score, TP.config(0.0, kind), CURVE, family=fam)
        t_curve = time.perf_counter() - t0
        ts = []
        for _ in range(2):
            for r in RATIOS:
                t0 = time.perf_counter()
                slider_move(s, TP.config(r, kind), score, curve)
                ts.append((time.perf_counter() - t0) * 1000)
        print(f"{kind:<13} {statistics.median(ts):>5.0f} ms {percentile(ts, 0.95):>5.0f} ms   curve of "
              f"{len(CURVE) - 1} ratios: {t_curve:.1f} s; at ratio 0.5 mean cosine {curve[2].value:.4f}")
    parts = {}
    for kind in TP.KINDS:
        cfg = TP.config(0.3, kind)
        model = TP.prune_text(s.model, cfg)
        parts[kind] = {
            "masks": timed(lambda: fam.prune_masks(s.model, cfg),  # noqa: B023 (called at once)
                           repeats=3)["median_ms"],
            "prune": timed(lambda: TP.prune_text(s.model, cfg), repeats=3)["median_ms"],  # noqa: B023 (called at once)
            "embed": timed(lambda: T.embed(model, quick), repeats=3)["median_ms"],  # noqa: B023 (called at once)
            "evaluate": timed(lambda: P.evaluate(s.model, cfg, score, family=fam),  # noqa: B023 (called at once)
                              repeats=3)["median_ms"]}
    print("\nwhere the time goes at ratio 0.3 (median of 3, ms; 'prune' includes the masks, 'evaluate' everything: "
          "masks, the masked and thin models, scoring, sizes):")
    for kind, d in parts.items():
        print(f"{kind:<13} " + "  ".join(f"{k} {v:>5.0f}" for k, v in d.items()))


def speed(s: T.TextSample) -> None:
    print("\nmeasured latency, original vs pruned at 50 %, timed side by side (round-robin) on real test sentences")
    models: dict[str, nn.Module] = {"original": s.model}
    models |= {f"{kind} 50 %": TP.prune_text(s.model, TP.config(0.5, kind)) for kind in TP.KINDS}
    lat = slimcore.time_models(s, models, repeats=40, max_seconds=8.0)
    small, large = family_of(s).timing_batches[0], family_of(s).timing_batches[-1]
    o = lat["original"][large]
    print(f"{'model':<18} {'params':>11} {'size MiB':>9} {f'b={small} ms':>8} {'IQR':>6} {f'b={large} ms':>8} "
          f"{'IQR':>6} {f'speed-up b={large}':>13}")
    for k, by in lat.items():
        m, b1, b32 = models[k], by[small], by[large]
        print(f"{k:<18} {sum(p.numel() for p in m.parameters()):>11,} {slimcore.serialized_bytes(m) / 2**20:>9.2f} "
              f"{b1.median_ms:>8.2f} {b1.iqr_ms:>6.2f} {b32.median_ms:>8.1f} {b32.iqr_ms:>6.1f} "
              f"{o.median_ms / b32.median_ms:>12.2f}x")
    print(f"({o.threads} threads, {o.repeats} timed runs after {o.warmup} warm-up per model and batch; load "
          f"average {o.load:.1f} on {os.cpu_count()} cores when timing ended)")


def full_split(s: T.TextSample) -> None:
    ref = T.embed(s.model, s.test)
    model = TP.prune_text(s.model, TP.config(0.3, "ffn"))
    t = timed(lambda: TP.evaluate_in_parts(model, s.test, ref), repeats=2, warmup=0)
    print(f"\n'Measure on the whole test split' ({len(s.test)} sentences, FFN 30 %): {t['median_ms'] / 1000:.1f} s")


if __name__ == "__main__":
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores at start")
    sample = slimcore.load_sample("minilm")
    assert isinstance(sample, T.TextSample)
    slider_figures(sample)
    speed(sample)
    full_split(sample)
