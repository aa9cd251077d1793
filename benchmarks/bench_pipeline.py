"""Deep Compression pipeline benchmark: stage by stage size (bytes of the real stream), ratio, accuracy and time, on
digits-mlp (beside the published LeNet-300-100 stages) and digits-cnn.

Usage: python benchmarks/bench_pipeline.py
"""
from __future__ import annotations

import time

import torch

from _util import ROOT  # noqa: F401  (puts the repository on sys.path)

import slimcore
from slimcore import pipeline

PUBLISHED = {"digits-mlp": "LeNet-300-100 on MNIST (Han et al. 2016): 12x pruned, 32x + quantized, 40x + Huffman; "
                           "error 1.64 % -> 1.58 %"}


def main() -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for name in ("digits-mlp", "digits-cnn"):
        s = slimcore.load_sample(name)
        t0 = time.perf_counter()
        res = pipeline.deep_compression(s.model, s.data)
        total = time.perf_counter() - t0
        print(f"\n{name}: whole pipeline {total:.1f} s")
        for st in res.stages:
            print(f"  {st.name:<22} {st.bytes:>8,} B ({st.label}) {st.ratio:>6.1f}x  test accuracy {st.accuracy:.2%}  "
                  f"[{st.detail}]")
        if name in PUBLISHED:
            print(f"  reference: {PUBLISHED[name]}")


if __name__ == "__main__":
    main()
