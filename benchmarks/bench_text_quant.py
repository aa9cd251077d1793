"""Text quantization benchmark (minilm): fp32 against real dynamic int8 per tensor, per channel, and per channel with
the word-embedding table in 8 bits too (latency at batch 1 and 32 with median, IQR and speed-ups; measured size;
quality on the WHOLE test split), the per-Linear-shape kernel breakdown that explains the batch-32 speed-up, two
attempts to make int8 faster (q/k/v fused into one Linear for fp32 and int8 alike; the onednn engine), the per-group
sensitivity, and the time from a Weight bits slider move to every figure (p50/p95).

Usage: python benchmarks/bench_text_quant.py [--no-page] [--no-groups]
"""
from __future__ import annotations

import copy
import os
import statistics
import sys
import time
import warnings
from typing import TYPE_CHECKING, cast

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:  # mypy sees this folder as the package `benchmarks`; run as a script, the folder is on sys.path
    from benchmarks._util import timed
else:
    from _util import timed

import slimcore
from slimcore import int8 as I
from slimcore import plots, serialized_bytes
from slimcore import quantization as Q
from slimcore import text as T
from slimcore import text_quant as TQ
from slimcore.quantization import QuantConfig

warnings.filterwarnings("ignore")   # torch.ao deprecation notices (the library code silences them itself)
INT8 = {k: v for k, v in TQ.INT8_VARIANTS.items() if v.engine == "torch"}   # the lab's torch.ao encoders (ONNX
#                                     Runtime's, and both engines side by side: benchmarks/bench_int8_engines.py)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def load() -> str:
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def fmt(lat) -> str:
    return f"{lat.median_ms:8.2f} ({lat.iqr_ms:6.2f})"


def latency_table(s: T.TextSample, models: dict[str, nn.Module], threads: int, max_seconds: float) -> dict:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        lat = T.latencies(models, s.test, repeats=60, max_seconds=max_seconds)
    finally:
        torch.set_num_threads(before)
    x = T.timing_batches(s.test, 32)
    print(f"\n{threads} thread(s); batch 1 = one sentence of {x[1].shape[1]} tokens, batch 32 = 32 sentences padded "
          f"to {x[32].shape[1]} tokens; round-robin, median (IQR) in ms; {load()}")
    print(f"{'model':<34} {'batch 1':>17} {'speed-up':>9} {'batch 32':>17} {'speed-up':>9} {'repeats':>8}")
    base = lat[next(iter(models))]
    for k, (b1, b32) in lat.items():
        print(f"{k:<34} {fmt(b1):>17} {base[0].median_ms / b1.median_ms:>8.2f}x {fmt(b32):>17} "
              f"{base[1].median_ms / b32.median_ms:>8.2f}x {b1.repeats:>3}/{b32.repeats:<3}")
    return lat


def real_int8(s: T.TextSample, built: dict) -> None:
    print("\n## Real dynamic int8 (torch.ao, x86 engine) against fp32")
    print(f"{'model':<34} {'size':>10} {'':<8} {'smaller':>6}   quality on the WHOLE test split "
          f"({len(s.test)} sentences)")
    ref = T.embed(s.model, s.test)
    rows = {"fp32": s.model, **{k: r.model for k, r in built.items()},
            "fake 8-bit/tensor": TQ.fake_quantized(s.model, QuantConfig(8, per_channel=False)),
            "fake 8-bit/channel": TQ.fake_quantized(s.model, QuantConfig(8, per_channel=True))}
    base = serialized_bytes(s.model)
    for k, m in rows.items():
        q = T.evaluate(m, s.test, ref)
        size = serialized_bytes(m) if not k.startswith("fake") else Q.modelled_bytes(
            s.model, QuantConfig(8, per_channel=k.endswith("channel")), TQ.layers(s.model)).bytes
        label = "modelled" if k.startswith("fake") else "measured"
        print(f"{k:<34} {size / 1e6:>7.2f} MB {label:<8} {base / size:>5.2f}x   mean cos {q.mean_cosine:.4f}, worst "
              f"{q.worst_cosine:.4f}, top-1 agree {q.top1_agreement:.1%}, Spearman {q.spearman:.4f}, paraphrase "
              f"top-1 {q.paraphrase_top1:.1%}")
    print("(fake rows: weights only, activations fp32 — the simulation; int8 rows also quantize every Linear's input "
          "to 7 bits per tensor on the fly)")


def kernels(s: T.TextSample) -> None:
    x = T.timing_batches(s.test, 32)
    rows = [x[1].numel(), x[32].numel()]
    print("\n## Why batch 32 gains less: each Linear shape alone, fp32 (MKL) against int8 (fbgemm, per channel), "
          "layer 0's weights, normal-noise inputs")
    for threads in (1, torch.get_num_threads()):
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            ks = TQ.kernel_times(s.model, rows, repeats=60, max_seconds=2.0)
        finally:
            torch.set_num_threads(before)
        print(f"\n{threads} thread(s); {load()}")
        print(f"{'Linear in x out':<16} {'token rows':>10} {'fp32 ms (IQR)':>20} {'fp32 GFLOP/s':>13} "
              f"{'int8 ms (IQR)':>20} {'int8 speed-up':>14}")
        for k in ks:
            i, o = map(int, k.shape.split("x"))
            gflops = 2 * k.tokens * i * o / (k.fp32.median_ms / 1000) / 1e9
            print(f"{k.shape:<16} {k.tokens:>10} {fmt(k.fp32):>20} {gflops:>13.1f} {fmt(k.int8):>20} "
                  f"{k.speedup:>13.2f}x")
    print("(each transformer layer runs 4 Linears of 384x384 (q, k, v, attention output), one 384x1536, one 1536x384)")


def amdahl(s: T.TextSample, built: dict) -> None:
    """Where a batch-32 forward spends its time (torch.profiler, 1 thread), and the speed-up that int8 Linears alone
    could give at most with everything else unchanged."""
    from torch.profiler import ProfilerActivity, profile

    x = T.timing_batches(s.test, 32)[32]
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    share = {}
    try:
        for k, m in (("fp32", s.model), ("int8 per channel", built["int8 per channel"].model)):
            with torch.inference_mode():
                for _ in range(2):
                    m(x)
                with profile(activities=[ProfilerActivity.CPU]) as prof:
                    for _ in range(5):
                        m(x)
            ev = prof.key_averages()
            total = sum(e.self_cpu_time_total for e in ev)
            lin = sum(e.self_cpu_time_total for e in ev
                      if e.key in ("aten::addmm", "aten::mm", "quantized::linear_dynamic"))
            share[k] = (total / 5 / 1000, lin / 5 / 1000)
    finally:
        torch.set_num_threads(before)
    (t32, l32), (t8, l8) = share["fp32"], share["int8 per channel"]
    rest = t32 - l32
    print(f"\n## Where batch 32 goes (torch.profiler, 1 thread, mean of 5 forwards; {load()})")
    print(f"fp32: {t32:.0f} ms per forward, of which Linear matrix products {l32:.0f} ms ({l32 / t32:.0%}); the rest "
          f"(attention, GELU, LayerNorm, embeddings, copies) {rest:.0f} ms")
    print(f"int8 per channel: {t8:.0f} ms, of which int8 Linears {l8:.0f} ms: the Linears got {l32 / l8:.2f}x faster, "
          f"the forward {t32 / t8:.2f}x")
    need = l32 / max(t32 / 1.8 - rest, 1e-9) if t32 / 1.8 > rest else float("inf")
    print(f"for 1.8x overall with the rest unchanged, the Linears would need to be {need:.2f}x faster")


class FusedSelfAttention(nn.Module):
    """q, k and v as ONE Linear (384 -> 1152): the same arithmetic, one matrix product, one input quantization."""

    def __init__(self, sa: T.SelfAttention) -> None:
        super().__init__()
        w = torch.cat([sa.query.weight, sa.key.weight, sa.value.weight])
        b = torch.cat([sa.query.bias, sa.key.bias, sa.value.bias])
        self.qkv = nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            self.qkv.weight.copy_(w)
            self.qkv.bias.copy_(b)

    def forward(self, h: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        b, n, _ = h.shape
        q, k, v = self.qkv(h).chunk(3, -1)
        heads = q.shape[-1] // T.HEAD_DIM
        q, k, v = (t.reshape(b, n, heads, T.HEAD_DIM).transpose(1, 2) for t in (q, k, v))
        ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=keep[:, None, None, :])
        return ctx.transpose(1, 2).reshape(b, n, heads * T.HEAD_DIM)


def fused(model: T.MiniLM) -> T.MiniLM:
    out = copy.deepcopy(model)
    for layer in out.encoder.layer:
        attention: nn.Module = cast(T.Layer, layer).attention   # a plain Module here: its `self` is replaced
        attention.self = FusedSelfAttention(cast(T.SelfAttention, attention.self))
    return out.eval()


def attempts(s: T.TextSample, built: dict) -> None:
    print("\n## Attempts to make the int8 encoder faster (each adopted only if correct and fair)")
    quick = s.data.quick_set
    ref = T.embed(s.model, quick)
    f32 = fused(s.model)
    diff = float((T.embed(f32, quick) - ref).abs().max())
    f8 = I.dynamic_int8(f32, True).model
    q_f8 = T.evaluate(f8, quick, ref)
    print(f"fused q/k/v: fp32 embeddings equal the original's within {diff:.2e} (max abs); fused int8 per channel "
          f"mean cosine {q_f8.mean_cosine:.4f} on the quick set "
          f"(unfused {T.evaluate(built['int8 per channel'].model, quick, ref).mean_cosine:.4f})")
    before = torch.backends.quantized.engine
    torch.backends.quantized.engine = "onednn"
    try:
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
        onednn = quantize_dynamic(copy.deepcopy(s.model), {nn.Linear: per_channel_dynamic_qconfig},
                                  dtype=torch.qint8).eval()
        print(f"onednn engine, int8 per channel: mean cosine {T.evaluate(onednn, quick, ref).mean_cosine:.4f} on the "
              "quick set")
        models = {"fp32": s.model, "fp32 fused q/k/v": f32, "int8 per channel": built["int8 per channel"].model,
                  "int8 fused q/k/v": f8, "int8 onednn engine": onednn}
        for threads in (1, torch.get_num_threads()):
            latency_table(s, models, threads, max_seconds=25.0)
    finally:
        torch.backends.quantized.engine = before
    print("(fair comparison: fused int8 against fused fp32, the onednn row against the same fp32)")


def groups(s: T.TextSample) -> None:
    print("\n## Each layer group quantized ALONE (others fp32): 1 - mean cosine, and Spearman, on the quick set "
          f"({len(s.data.quick_set)} sentences) and the whole test split ({len(s.test)})")
    for name, split in (("quick set", s.data.quick_set), ("whole test split", s.test)):
        ref = T.embed(s.model, split)
        t0 = time.perf_counter()
        rows = TQ.group_sensitivity(s.model, split, ref, QuantConfig(4, per_channel=True))
        print(f"\n{name} ({time.perf_counter() - t0:.1f} s for 12 evaluations)")
        print(f"{'group':<18} " + " ".join(f"{TQ.method_label(m, QuantConfig(4, per_channel=True)):>36}"
                                           for m in TQ.GROUP_METHODS))
        for g in T.GROUPS:
            cells = [r for r in rows if r.group == g]
            print(f"{T.GROUP_LABELS[g]:<18} " + " ".join(f"{r.drop:>18.4f} (rho {r.quality.spearman:.4f})"
                                                         for r in cells))


def slider(s: T.TextSample) -> None:
    print("\n## Weight bits slider -> every figure ready, uncached (fake-quantize 36 Linears + embed the quick set + "
          "quality + modelled size + the layer's grid + 2 figures), bits 2..16")
    quick = s.data.quick_set
    ref = T.embed(s.model, quick)
    layer = "encoder.layer.5.output.dense"
    for per_channel in (False, True):
        ts = []
        for bits in TQ.CURVE_BITS:
            cfg = QuantConfig(bits, per_channel=per_channel)
            t0 = time.perf_counter()
            q = T.evaluate(TQ.fake_quantized(s.model, cfg), quick, ref)
            Q.modelled_bytes(s.model, cfg, TQ.layers(s.model))
            g = TQ.layer_grid(s.model, layer, cfg)
            plots.levels_histogram(g["w"], g["levels"], "grid", note=g["note"])
            plots.line_chart(list(TQ.CURVE_BITS), {"mean cosine": [q.mean_cosine] * 15, "worst cosine": [0.9] * 15,
                                                   "Spearman": [0.9] * 15}, "curve", "bits", "", marker=bits)
            ts.append((time.perf_counter() - t0) * 1000)
        print(f"{'per channel' if per_channel else 'per tensor':<12} p50 {statistics.median(ts):6.0f} ms  p95 "
              f"{pct(ts, 0.95):6.0f} ms  max {max(ts):6.0f} ms   ({load()})")
    four = QuantConfig(4, per_channel=True)
    parts = {"fake-quantize 36 weights": lambda: Q.quantized_weights(s.model, four, TQ.layers(s.model)),
             "new encoder (copy_with)": lambda: Q.copy_with(s.model,
                                                            Q.quantized_weights(s.model, four, TQ.layers(s.model))),
             "new encoder (T.variant)": lambda: T.variant(s.model,
                                                          Q.quantized_weights(s.model, four, TQ.layers(s.model))),
             "embed the quick set": lambda: T.embed(s.model, quick)}
    print("parts (median of 7): " + "; ".join(f"{k} {timed(f, repeats=7)['median_ms']:.0f} ms"
                                              for k, f in parts.items()))


def page_reruns() -> None:
    from tests.apptest_utils import app

    print("\n## The page itself, server side (AppTest): first visit, then Weight bits moves with the curve cached")
    at = app("views/2_Quantization.py", timeout=1200)
    at.query_params["model"] = "minilm"
    t0 = time.perf_counter()
    at.run()
    assert not at.exception, at.exception
    print(f"first visit (curve, int8 build and evaluation, timing): {time.perf_counter() - t0:.1f} s")
    ts = []
    for bits in (7, 6, 5, 4, 3, 2, 9, 10, 12, 16, 8):
        t0 = time.perf_counter()
        at.slider(key="bit_width").set_value(bits).run()
        ts.append((time.perf_counter() - t0) * 1000)
        assert not at.exception, at.exception
    print(f"slider move, whole page rerun: p50 {statistics.median(ts):.0f} ms, p95 {pct(ts, 0.95):.0f} ms, "
          f"max {max(ts):.0f} ms ({load()})")


if __name__ == "__main__":
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, quantized engine "
          f"{torch.backends.quantized.engine}; {load()}")
    s = slimcore.load_sample("minilm")
    assert isinstance(s, T.TextSample)
    built = {k: I.build(s, k) for k in INT8}  # the page's three, through the one int8 entry point
    print("\n## Latency: fp32 against int8 (T.latencies, the page's timing)")
    models = {"fp32": s.model, **{k: r.model for k, r in built.items()}}
    for threads in (torch.get_num_threads(), 1):
        latency_table(s, models, threads, max_seconds=25.0)
    real_int8(s, built)
    kernels(s)
    amdahl(s, built)
    attempts(s, built)
    if "--no-groups" not in sys.argv:
        groups(s)
    slider(s)
    if "--no-page" not in sys.argv:
        page_reruns()
