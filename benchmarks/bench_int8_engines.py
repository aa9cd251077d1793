"""Real int8 in two engines, side by side: torch.ao and ONNX Runtime, every variant of the Quantization lab's table
(slimcore.int8.variants, built by slimcore.int8.build as the page builds them), against fp32 in each engine. For every
sample: quality on the held-out test split (the family's scorer: accuracy, or mean cosine to the original), measured
size (torch.save of the state dict; the ONNX file's length) and latency at the family's timing batches (median of timed
runs, all models of a sample timed round-robin, torch and onnxruntime on the same number of threads, ONNX Runtime's
idle threads not spinning).

For the encoder, two more measurements:
- why the engines' quality differs: torch.ao's int8 per channel run with 8-bit activations (its kernel called with
  reduce_range off) against the 7-bit activations it uses;
- the per-Linear kernel ceiling: each of the encoder's Linear shapes timed alone on the large batch's token rows, fp32
  against each engine's int8 Linear (slimcore.text_quant.kernel_times), summed over its 36 Linears; the whole forward
  could at best become fp32 time - fp32 Linear time + int8 Linear time (Amdahl with measured parts), and each engine's
  whole-forward int8 speed-up is reported as a share of that ceiling.

    .venv/bin/python benchmarks/bench_int8_engines.py [--samples digits-mlp minilm] [--threads 2]
"""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING
from unittest import mock

import torch
from torch import nn

if not TYPE_CHECKING:  # mypy sees this folder as the package `benchmarks`; run as a script, the folder is on sys.path
    import _util  # noqa: F401  (puts the repository on the path)

import slimcore
from slimcore import int8 as I
from slimcore import ort_int8 as O
from slimcore import text_quant as TQ
from slimcore.export import check_inputs
from slimcore.families import family_of


def engines(s) -> dict[str, nn.Module]:
    """fp32 in both engines and every real int8 variant of the lab's table, by label."""
    models: dict[str, nn.Module] = {"torch fp32": s.model,
                                    "onnxruntime fp32": O.OrtModel(O.fp32_onnx(s.model, check_inputs(s)))}
    for label, variant in I.variants(s).items():
        engine = I.ENGINE_NAMES[variant.engine]
        models[label if engine in label else f"{label} ({engine})"] = I.build(s, label).model
    return models


def table(name: str) -> dict[str, dict]:
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
        print(f"  {label:<50} {fam.metric.format(q.value):>9}  {size / 2**20:8.2f} MiB  {times} ms  "
              f"(vs torch fp32 {speed})")
    return lat


def reduce_range(s) -> None:
    """torch.ao's int8 per channel with 8-bit activations: its kernel called with reduce_range off."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    score = family_of(s).scorer(s, "test")
    m = I.build(s, "int8 per channel").model
    seven = score(m).value
    with mock.patch.object(DynamicLinear, "forward", lambda self, x: torch.ops.quantized.linear_dynamic(
            x, self._packed_params._packed_params, reduce_range=False)):   # restored on leaving the block
        eight = score(m).value
    print(f"\nwhy the quality differs: torch.ao int8 per channel, mean cosine {seven:.4f} with 7-bit activations "
          f"(reduce_range, what it uses) and {eight:.4f} with all 8 bits; ONNX Runtime uses 8 bits")


def ceiling(s, lat: dict) -> None:
    """Each engine's whole-forward int8 speed-up at the large batch against the ceiling its Linear kernels allow."""
    ids = check_inputs(s)
    rows = ids.numel()
    count = {"qkv": 4, "ffn_in": 1, "ffn_out": 1}   # Linears of each shape per layer: q, k, v and attention output
    layers = len(s.model.encoder.layer)
    fp32 = lat["torch fp32"][max(lat["torch fp32"])].median_ms
    print(f"\nper-Linear kernel ceiling at batch {len(ids)} ({len(ids)} sentences x {ids.shape[1]} tokens = {rows:,} "
          f"token rows; torch fp32 forward {fp32:.1f} ms):")
    for engine, label in (("torch", "int8 per channel (torch.ao)"),
                          ("onnxruntime", "ONNX Runtime int8 per channel, embeddings too")):
        ks = TQ.kernel_times(s.model, [rows], repeats=30, max_seconds=3.0, engine=engine)
        f = layers * sum(count[g] * k.fp32.median_ms for g, k in zip(TQ.SHAPES, ks))
        q = layers * sum(count[g] * k.int8.median_ms for g, k in zip(TQ.SHAPES, ks))
        bound = fp32 / (fp32 - f + q)
        got = fp32 / lat[label][max(lat[label])].median_ms
        shapes = ", ".join(f"{k.shape} {k.speedup:.2f}x" for k in ks)
        print(f"  {I.ENGINE_NAMES[engine]:<12}: kernels alone {shapes}; the {layers * 6} Linears take {f:.1f} ms in "
              f"fp32 ({f / fp32:.0%} of the forward) and {q:.1f} ms in int8; ceiling {bound:.2f}x, measured "
              f"{got:.2f}x = {got / bound:.0%} of it")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", nargs="*", default=slimcore.list_samples())
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, onnxruntime {__import__('onnxruntime').__version__}, {a.threads} threads "
          "(torch and onnxruntime alike)")
    for name in a.samples:
        lat = table(name)
        if name == "minilm":
            s = slimcore.load_sample(name)
            reduce_range(s)
            ceiling(s, lat)


if __name__ == "__main__":
    main()
