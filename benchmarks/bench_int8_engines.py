"""Real int8 in two engines, side by side: torch.ao (slimcore.int8, what the Quantization lab builds) and ONNX Runtime
(slimcore.ort_int8), against fp32 in each engine. For every sample: quality on the held-out test split (the family's
scorer: accuracy, or mean cosine to the original), measured size (torch.save of the state dict; the ONNX file's
length) and latency at the family's timing batches (median of timed runs, all models of a sample timed round-robin,
torch and onnxruntime on the same number of threads).

Then the per-Linear kernel ceiling on MiniLM's widest Linear (384 -> 1536) at batch 32 sentences x 43 tokens: fp32
GEMM against each engine's int8 Linear alone, and what that kernel speed-up allows for the whole forward (Amdahl: the
Linears' share of the fp32 forward, from torch.profiler, sped up by the kernel ratio; the rest unchanged).

    .venv/bin/python benchmarks/bench_int8_engines.py [--samples digits-mlp minilm] [--threads 2]
"""
from __future__ import annotations

import argparse
import time

import torch
from torch import nn

import _util  # noqa: F401  (puts the repository on the path)
import slimcore
from slimcore import int8 as I
from slimcore import ort_int8 as O
from slimcore.export import check_inputs
from slimcore.families import family_of


def engines(s) -> dict[str, nn.Module]:
    """fp32 and int8 in both engines, by label."""
    models: dict[str, nn.Module] = {"torch fp32": s.model}
    for label in I.variants(s):
        models[f"torch.ao {label}"] = I.build(s, label).model
    models["onnxruntime fp32"] = O.OrtModel(O.fp32_onnx(s.model, check_inputs(s)))
    convs = any(isinstance(m, (nn.Conv1d, nn.Conv2d)) for m in s.model.modules())
    if convs:
        models["onnxruntime static int8 (QDQ, per channel)"] = O.build(s, "static")[0]
    else:
        for per_channel in (False, True):
            models[f"onnxruntime dynamic int8 per {'channel' if per_channel else 'tensor'}"] = \
                O.build(s, "dynamic", per_channel)[0]
    return models


def table(name: str) -> None:
    s = slimcore.load_sample(name)
    fam = family_of(s)
    score = fam.scorer(s, "test")
    models = engines(s)
    lat = slimcore.time_models(s, models, max_seconds=3.0)
    batches = sorted(next(iter(lat.values())))
    base = lat["torch fp32"]
    print(f"\n{name} ({fam.metric.name}; latency: median ms at batch {' / '.join(map(str, batches))})")
    for label, m in models.items():
        q = score(m)
        size = slimcore.serialized_bytes(m)
        times = " / ".join(f"{lat[label][b].median_ms:8.3f}" for b in batches)
        speed = " / ".join(f"{base[b].median_ms / lat[label][b].median_ms:4.2f}x" for b in batches)
        print(f"  {label:<46} {fam.metric.format(q.value):>9}  {size / 2**20:8.2f} MiB  {times} ms  "
              f"(vs torch fp32 {speed})")


def _best(fn, x, repeats: int = 30) -> float:
    with torch.no_grad():
        for _ in range(3):
            fn(x)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn(x)
            times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2] * 1e3


def ceiling() -> None:
    """The int8 Linear kernel against fp32 GEMM on MiniLM's widest Linear, and the whole-forward bound it allows."""
    s = slimcore.load_sample("minilm")
    x_ids = family_of(s).timing_inputs(s)
    ids = x_ids[max(x_ids)]                          # the family's large batch (32 sentences)
    tokens = ids.numel()
    linear = nn.Linear(384, 1536).eval()
    x = torch.randn(tokens, 384)
    fp32 = _best(linear, x)
    ao = I.dynamic_int8(nn.Sequential(linear), per_channel=True).model
    ao_ms = _best(ao, x)
    ort_lin = O.OrtModel(O.dynamic(O.fp32_onnx(nn.Sequential(linear), x[:4]), per_channel=True))
    ort_ms = _best(ort_lin, x)
    with torch.no_grad(), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(5):
            s.model(ids)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    linear_share = sum(e.self_cpu_time_total for e in events if e.key in ("aten::addmm", "aten::mm", "aten::matmul",
                                                                          "aten::linear", "aten::bmm")
                       and e.key != "aten::bmm") / total
    print(f"\nper-Linear kernel, 384 -> 1536 on {tokens:,} tokens ({ids.shape[0]} sentences x {ids.shape[1]} tokens), "
          f"median of 30: fp32 {fp32:.2f} ms; torch.ao int8 {ao_ms:.2f} ms ({fp32 / ao_ms:.2f}x); onnxruntime int8 "
          f"{ort_ms:.2f} ms ({fp32 / ort_ms:.2f}x)")
    for label, k in (("torch.ao", fp32 / ao_ms), ("onnxruntime", fp32 / ort_ms)):
        bound = 1 / ((1 - linear_share) + linear_share / k)
        print(f"  {label}: the Linears are {linear_share:.0%} of the fp32 forward's CPU time; sped up {k:.2f}x they "
              f"allow at most {bound:.2f}x for the whole forward")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", nargs="*", default=slimcore.list_samples())
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, onnxruntime {__import__('onnxruntime').__version__}, {a.threads} threads "
          "(torch and onnxruntime alike)")
    for name in a.samples:
        table(name)
    if "minilm" in a.samples:
        ceiling()


if __name__ == "__main__":
    main()
