"""Quantization benchmark: what a Bit width slider move costs (quantize + evaluate + figures) per sample model, our
fake quantization against PyTorch's kernel, the accuracy-vs-bits curve, where low bit widths break down per scheme,
and real int8 against fp32 (accuracy, measured size, latency at batch 1 and 256).

Usage: python benchmarks/bench_quantization.py [--no-page]
"""
from __future__ import annotations

import statistics
import sys
import time
from dataclasses import replace
from typing import TYPE_CHECKING, cast

import torch

if TYPE_CHECKING:  # mypy sees this folder as the package `benchmarks`; run as a script, the folder is on sys.path
    from benchmarks._util import timed
else:
    from _util import timed

import slimcore
from slimcore import int8, plots
from slimcore import quantization as q

CALIBRATION = 512  # training inputs, as the page uses


def slider_move(s: slimcore.Sample, cfg: q.QuantConfig, layer: str) -> None:
    """Everything a slider move computes when nothing is cached yet (the curve apart): the quantized model, its
    accuracy, per-layer errors, modelled size, the inspected layer's grid, and the four figures that follow it."""
    qm = q.quantize(s.model, config=cfg)
    slimcore.accuracy(qm, s.test)
    errors = q.layer_errors(s.model, qm)
    q.modelled_bytes(s.model, cfg)
    g = q.layer_grid(cast(torch.Tensor, slimcore.weight_layers(s.model)[layer].weight), cfg,
                     cast(torch.Tensor, slimcore.weight_layers(qm)[layer].weight))   # a Linear or Conv layer's weights
    plots.levels_histogram(g["w"], g["levels"], note=g["note"])
    plots.quantized_histogram(g["q"])
    plots.error_histogram(g["q"] - g["w"], g["half_step"])
    plots.sqnr_bars([e.name for e in errors], [e.sqnr_db for e in errors], layer)
    plots.bits_curve(list(range(1, 17)), [0.5] * 16, (cfg.bits, 0.5), 0.9, {"ternary": 0.5})


def percentile(ts: list[float], p: float) -> float:
    ts = sorted(ts)
    return ts[min(len(ts) - 1, int(p * len(ts)))]


def slider_to_figures() -> None:
    print("\n## Slider move -> all figures ready (uncached: quantize + evaluate + errors + 5 figures), over bits 1..16")
    print(f"{'model':<13} {'setting':<26} {'p50':>8} {'p95':>8} {'max':>8}")
    for name in slimcore.list_samples("classifier"):
        s = slimcore.load_sample(name)
        assert isinstance(s, slimcore.Sample)
        layer = next(iter(slimcore.weight_layers(s.model)))
        for label, cfg in (("symmetric per tensor", q.QuantConfig()),
                           ("asymmetric per channel", q.QuantConfig(symmetric=False, per_channel=True))):
            ts = []
            for _rep in range(3):
                for bits in range(1, 17):
                    c = replace(cfg, bits=bits)
                    t0 = time.perf_counter()
                    slider_move(s, c, layer)
                    ts.append((time.perf_counter() - t0) * 1000)
            print(f"{name:<13} {label:<26} {statistics.median(ts):>5.1f} ms {percentile(ts, 0.95):>5.1f} ms "
                  f"{max(ts):>5.1f} ms")


def page_reruns() -> None:
    """The page itself, server side (Streamlit's AppTest runs the script as the server does, without a browser)."""
    from tests.apptest_utils import app

    print("\n## Quantization page rerun per Bit width move (AppTest, server side; curve and int8 already cached)")
    print(f"{'model':<13} {'first visit of a bit width':>28} {'revisit (cached)':>18}")
    for name in ("digits-cnn", "digits-mlp"):
        at = app("views/2_Quantization.py")
        at.query_params["model"] = name
        at.run()
        first: list[float] = []
        again: list[float] = []
        for ts in (first, again):
            for bits in list(range(16, 0, -1)):
                t0 = time.perf_counter()
                at.slider(key="bit_width").set_value(bits).run()
                ts.append((time.perf_counter() - t0) * 1000)
                assert not at.exception, at.exception
        print(f"{name:<13} p50 {statistics.median(first):>5.0f} ms, p95 {percentile(first, 0.95):>4.0f} ms   "
              f"p50 {statistics.median(again):>4.0f} ms, p95 {percentile(again, 0.95):>4.0f} ms")


def fake_quant_vs_torch() -> None:
    print("\n## Fake quantization, 8-bit symmetric per channel: ours vs torch.fake_quantize_per_channel_affine "
          "(same scale and zero point; median of 50)")
    cases = {name: [cast(torch.Tensor, m.weight)   # Linear and Conv layers' weights
                    for m in slimcore.weight_layers(slimcore.load_sample(name).model).values()]
             for name in slimcore.list_samples("classifier")}
    cases["one 1024 x 1024 tensor"] = [torch.randn(1024, 1024, generator=torch.Generator().manual_seed(0))]
    print(f"{'tensors':<24} {'weights':>10} {'ours (grid + round)':>20} {'ours (round only)':>18} {'torch kernel':>13}")
    for label, ws in cases.items():
        grids = [q.qparams(w, 8, True, 0) for w in ws]
        ours = timed(lambda: [q.fake_quantize(w, 8, True, 0) for w in ws], repeats=50)  # noqa: B023 (called at once)
        round_only = timed(lambda: [q.apply_qparams(w, g) for w, g in zip(ws, grids)],  # noqa: B023 (called at once)
                           repeats=50)
        ref = timed(lambda: [torch.fake_quantize_per_channel_affine(w, g.scale, g.zero_point, 0, g.qmin, g.qmax)
                             for w, g in zip(ws, grids)], repeats=50)  # noqa: B023 (called at once)
        assert all(torch.equal(q.apply_qparams(w, g), torch.fake_quantize_per_channel_affine(
            w, g.scale, g.zero_point, 0, g.qmin, g.qmax)) for w, g in zip(ws, grids))
        print(f"{label:<24} {sum(w.numel() for w in ws):>10,} {ours['median_ms']:>17.3f} ms "
              f"{round_only['median_ms']:>15.3f} ms {ref['median_ms']:>10.3f} ms")


def curves_and_breakdown() -> None:
    print("\n## Accuracy against bit width (measured on the test split, of the fake-quantized model), and curve time")
    settings = {"sym/tensor": q.QuantConfig(), "sym/channel": q.QuantConfig(per_channel=True),
                "asym/tensor": q.QuantConfig(symmetric=False),
                "asym/channel": q.QuantConfig(symmetric=False, per_channel=True)}
    shown = (1, 2, 3, 4, 5, 6, 8, 16)
    for name in slimcore.list_samples("classifier"):
        s = slimcore.load_sample(name)
        assert isinstance(s, slimcore.Sample)
        fp32 = slimcore.accuracy(s.model, s.test)
        print(f"\n{name}: fp32 {fp32:.2%}")
        print(f"{'setting':<13} " + " ".join(f"{('1 (bin)' if b == 1 else f'{b} bits'):>8}" for b in shown)
              + f" {'ternary':>8} {'curve time':>11}")
        for label, cfg in settings.items():
            t0 = time.perf_counter()
            curve = {p.bits: p.value for p in q.quality_by_bits(s.model, slimcore.families.family_of(s).scorer(s), cfg,
                                                                range(1, 17))}
            tern = slimcore.accuracy(q.quantize(s.model, config=replace(cfg, ternary=True)), s.test)
            dt = (time.perf_counter() - t0) * 1000
            print(f"{label:<13} " + " ".join(f"{curve[b]:>8.2%}" for b in shown) + f" {tern:>8.2%} {dt:>8.0f} ms")
        acts = q.QuantConfig(per_channel=True, activations=q.ActivationConfig(8))
        calib = q.calibrate(s.model, s.data.train.x[:CALIBRATION])
        t0 = time.perf_counter()
        curve = {p.bits: p.value for p in q.quality_by_bits(s.model, slimcore.families.family_of(s).scorer(s), acts,
                                                            range(1, 17), calib)}
        dt = (time.perf_counter() - t0) * 1000
        print(f"{'W k, A8 chan':<13} " + " ".join(f"{curve[b]:>8.2%}" for b in shown) + f" {'':>8} {dt:>8.0f} ms")


def real_int8() -> None:
    print("\n## Real int8 (torch.ao) vs fp32: accuracy, measured size (torch.save of the state dict), latency timed "
          "side by side (median, IQR)")
    print(f"{'model':<13} {'kind':<8} {'build':>7} {'acc fp32':>9} {'acc int8':>9} {'size fp32':>10} {'size int8':>10} "
          f"{'b1 fp32':>16} {'b1 int8':>16} {'b256 fp32':>17} {'b256 int8':>17}")
    for name in slimcore.list_samples("classifier"):
        s = slimcore.load_sample(name)
        assert isinstance(s, slimcore.Sample)
        t0 = time.perf_counter()
        r = int8.build(s, "int8 (torch.ao)")   # the page's torch.ao row (ONNX Runtime's: bench_int8_engines.py)
        build = (time.perf_counter() - t0) * 1000
        lat = slimcore.compare_latencies({"fp32": s.model, "int8": r.model}, s.test)
        f = lambda lt: f"{lt.median_ms:.3f} ({lt.iqr_ms:.3f})"  # noqa: E731
        print(f"{name:<13} {r.kind:<8} {build:>4.0f} ms {slimcore.accuracy(s.model, s.test):>9.2%} "
              f"{slimcore.accuracy(r.model, s.test):>9.2%} {slimcore.serialized_bytes(s.model) / 1024:>6.1f} KiB "
              f"{slimcore.serialized_bytes(r.model) / 1024:>6.1f} KiB {f(lat['fp32'][0]):>16} {f(lat['int8'][0]):>16} "
              f"{f(lat['fp32'][1]):>17} {f(lat['int8'][1]):>17}")
    print("(latency in ms; int8 speed-up = fp32 / int8 at the same batch)")


if __name__ == "__main__":
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, quantized engine "
          f"{torch.backends.quantized.engine}")
    slider_to_figures()
    if "--no-page" not in sys.argv:
        page_reruns()
    fake_quant_vs_torch()
    curves_and_breakdown()
    real_int8()
