"""Deep Compression pipeline benchmark: stage by stage size (bytes of the real stream), ratio, score (the family's
headline) and time, on digits-mlp (beside the published LeNet-300-100 stages) and digits-cnn, and with
`--minilm` on the sentence encoder at the Trade-offs page's settings for it (minutes).

Usage: python benchmarks/bench_pipeline.py [--minilm]
"""
from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

import torch

if not TYPE_CHECKING:  # mypy sees this folder as the package `benchmarks`; run as a script, the folder is on sys.path
    from _util import ROOT  # noqa: F401  (puts the repository on sys.path)

import slimcore
from slimcore import pipeline
from slimcore.families import family_of

PUBLISHED = {"digits-mlp": "LeNet-300-100 on MNIST (Han et al. 2016): 12x pruned, 32x + quantized, 40x + Huffman; "
                           "error 1.64 % -> 1.58 %"}

MINILM = dict(prune_amount=0.5, bits=5, steps=2, finetune_epochs=1, cluster_epochs=1, lr=3e-4, batch_size=32)
# the Trade-offs page's defaults for the encoder (slimui.tradeoffs.CHOICES["encoder"].pipeline)


def main() -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    runs: dict[str, dict[str, Any]] = {"digits-mlp": {}, "digits-cnn": {}}
    if "--minilm" in sys.argv:
        runs["minilm"] = MINILM
    for name, options in runs.items():
        s = slimcore.load_sample(name)
        metric = family_of(s).metric
        t0 = time.perf_counter()
        res = pipeline.deep_compression(s, **options)
        total = time.perf_counter() - t0
        print(f"\n{name}: whole pipeline {total:.1f} s {options or ''}")
        for st in res.stages:
            print(f"  {st.name:<22} {st.bytes:>12,} B ({st.label}) {st.ratio:>6.2f}x  test {metric.short} "
                  f"{metric.format(st.score)}  [{st.detail}]")
        if name in PUBLISHED:
            print(f"  reference: {PUBLISHED[name]}")


if __name__ == "__main__":
    main()
