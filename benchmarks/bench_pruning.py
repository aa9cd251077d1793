"""Pruning benchmark: slider value -> all figures ready (prune both ways + evaluate + build the page's figures), p50 and
p95 over ratios per sample model; our masks against torch.nn.utils.prune in the same run; the accuracy curve; and the
measured speed of masked vs channel-pruned models.

Usage: python benchmarks/bench_pruning.py
"""
from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

import torch
from torch.nn.utils import prune as tprune

if TYPE_CHECKING:  # mypy sees this folder as the package `benchmarks`; run as a script, the folder is on sys.path
    from benchmarks._util import timed
else:
    from _util import timed

import slimcore
from slimcore import plots
from slimcore import pruning as P

RATIOS = [round(0.05 * i, 2) for i in range(20)]  # 0.00 .. 0.95, the slider's range in 20 stops
CURVE = tuple(round(r / 20, 2) for r in range(20)) + (0.97, 0.99)  # the page's curve (slimui.pruning.CURVE)


def slider_move(s: slimcore.Sample, cfg: P.PruneConfig, scores: dict[str, torch.Tensor], layer: str,
                curve: tuple[Sequence[float], Sequence[float]]) -> None:
    """What the page computes for one slider position (scores and the curve are cached per method, as on the page)."""
    report, dense, small = P.evaluate(s.model, cfg, s.test, scores=scores)
    keep = P.masks(s.model, cfg, scores=scores)
    w = cast(torch.Tensor, slimcore.weight_layers(s.model)[layer].weight).detach()   # a Linear or Conv layer's
    plots.weight_histogram(w.numpy().ravel(), threshold=P.threshold(s.model, keep, layer), after=w[keep[layer]].numpy())
    plots.mask_heatmap(keep[layer].numpy())
    plots.layer_bars(list(report.layer_sparsity), [v * 100 for v in report.layer_sparsity.values()], "s", "%")
    plots.accuracy_curve(*curve, (cfg.amount, report.score.value))


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def slider_figures() -> None:
    print("slider -> all figures ready (server side; excludes the latency table, which the page times afterwards)")
    print(f"{'model':<12} {'method':<7} {'scope':<7} {'p50':>8} {'p95':>8}   over {len(RATIOS)} ratios x 3 repeats")
    for name in slimcore.list_samples("classifier"):
        s = slimcore.load_sample(name)
        assert isinstance(s, slimcore.Sample)
        layer = list(slimcore.weight_layers(s.model))[1]
        for method, scope in [("l1", "layer"), ("l1", "global"), ("taylor", "global")]:
            scores = P.weight_scores(s.model, method, s.data.train.head(256))
            curve = (CURVE, [q.value for q in P.quality_curve(s.model, s.test, P.PruneConfig(0, method, scope), CURVE,
                                                              calibration=s.data.train.head(256))])
            ts = []
            for _ in range(3):
                for r in RATIOS:
                    t0 = time.perf_counter()
                    slider_move(s, P.PruneConfig(r, method, scope), scores, layer, curve)
                    ts.append((time.perf_counter() - t0) * 1000)
            print(f"{name:<12} {method:<7} {scope:<7} {statistics.median(ts):>5.1f} ms {percentile(ts, 0.95):>5.1f} ms")


def masks_vs_torch() -> None:
    print("\nmask computation, ours vs torch.nn.utils.prune (same model, same run; median of 30)")
    print(f"{'model':<12} {'kind':<22} {'ours':>9} {'torch':>9} {'speed-up':>9}")
    for name in slimcore.list_samples("classifier"):
        s = slimcore.load_sample(name)
        net = copy.deepcopy(s.model)
        layers = slimcore.weight_layers(net)

        def torch_global(layers=layers):   # this iteration's layers, bound (B023)
            tprune.global_unstructured([(m, "weight") for m in layers.values()], tprune.L1Unstructured, amount=0.5)
            for m in layers.values():
                tprune.remove(m, "weight")  # undo the re-parametrisation so the next call starts afresh

        def torch_layer(layers=layers):
            for m in layers.values():
                tprune.l1_unstructured(m, "weight", amount=0.5)
                tprune.remove(m, "weight")

        for kind, ours, theirs in [
            ("global L1 unstructured", lambda s=s: P.masks(s.model, P.PruneConfig(0.5, "l1", "global")), torch_global),
            ("per-layer L1", lambda s=s: P.masks(s.model, P.PruneConfig(0.5, "l1", "layer")), torch_layer),
        ]:
            with torch.no_grad():
                a, b = timed(ours, repeats=30)["median_ms"], timed(theirs, repeats=30)["median_ms"]
            print(f"{name:<12} {kind:<22} {a:>6.2f} ms {b:>6.2f} ms {b / a:>8.1f}x")


def curve_and_speed() -> None:
    print("\naccuracy curve (22 ratios, one-shot) and measured speed at batch 256 (median ms, IQR)")
    for name in slimcore.list_samples("classifier"):
        s = slimcore.load_sample(name)
        assert isinstance(s, slimcore.Sample)
        for method in ("l1", "taylor"):
            cfg = P.PruneConfig(0, method, "global")
            t = timed(lambda: P.quality_curve(s.model, s.test, cfg, CURVE,  # noqa: B023 (called at once)
                                              calibration=s.data.train.head(256)), repeats=5)  # noqa: B023
            print(f"{name:<12} curve {method:<7} {t['median_ms']:>7.1f} ms")
        base = slimcore.latency(s.model, s.test.x[:256], 256)
        for ratio in (0.5, 0.75):
            _, dense, small = P.evaluate(s.model, P.PruneConfig(ratio, "l1", "layer"), s.test)
            assert small is not None, f"{name}: no channel-pruned model at ratio {ratio}"
            masked = slimcore.latency(dense, s.test.x[:256], 256)
            removed = slimcore.latency(small, s.test.x[:256], 256)
            print(f"{name:<12} ratio {ratio:.2f}: original {base.median_ms:.3f} ms (IQR {base.iqr_ms:.3f}), masked "
                  f"{masked.median_ms:.3f} ms ({base.median_ms / masked.median_ms:.2f}x), channels removed "
                  f"{removed.median_ms:.3f} ms ({base.median_ms / removed.median_ms:.2f}x), {removed.threads} threads")


if __name__ == "__main__":
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    slider_figures()
    masks_vs_torch()
    curve_and_speed()
