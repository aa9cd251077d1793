"""Text distillation benchmark (minilm): the untrained student at each depth; a distillation run at the page's defaults
(time per epoch and in all, quality untrained vs trained on the whole test split); student vs teacher size and latency;
and the temperature slider's time to new figures (the computation, and a whole page rerun in AppTest).

Usage: python benchmarks/bench_text_distill.py [EPOCHS]      (the page's default epochs unless given)
"""
from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import TYPE_CHECKING, cast

os.environ.setdefault("STREAMLIT_LOGGER_LEVEL", "error")   # AppTest and st.cache outside a server warn on every call

import numpy as np
import torch

if TYPE_CHECKING:  # mypy sees this folder as the package `benchmarks`; run as a script, the folder is on sys.path
    from benchmarks._util import timed
else:
    from _util import timed

import slimcore
from slimcore import distillation as D
from slimcore import plots, serialized_bytes
from slimcore import text as T
from slimcore import text_distill as TD

METRICS = ("mean_cosine", "worst_cosine", "top1_agreement", "spearman", "paraphrase_top1")


def row(q: T.TextQuality) -> str:
    return " ".join(f"{getattr(q, m):.4f}" for m in METRICS)


def depths(s, refs) -> None:
    print("\nuntrained students (teacher layers copied), quick set of 128 held-out sentences:")
    print(f"{'layers':>6} {'kept':<16} {'parameters':>11} {'size MiB':>9}  " + " ".join(METRICS))
    layers = len(s.model.encoder.layer)
    for n in range(1, layers):
        st = TD.student_from_teacher(s.model, n)
        q = T.evaluate(st, s.data.quick_set, refs["quick"])
        print(f"{n:>6} {str(TD.kept_layers(layers, n)):<16} {D.parameters(st):>11,} "
              f"{serialized_bytes(st) / 2**20:>9.1f}  {row(q)}")


def train(s, refs, cfg: D.DistillConfig) -> D.DistillResult:
    print(f"\ndistillation at {cfg}")
    stamps = [time.perf_counter()]
    r = slimcore.distill(s, cfg, on_batch=lambda f: stamps.append(time.perf_counter()))   # the page's loop
    gaps = np.diff(stamps)
    print(f"{r.examples} training sentences per epoch; teacher embeds them in {r.teacher_seconds:.1f} s")
    for e in r.history:
        print(f"epoch {e.epoch}: {e.seconds:5.1f} s (quick-set check included), loss {e.loss:.5f} (MSE "
              f"{e.hard:.5f}, KL {e.soft:.4f}), quick-set mean cosine {e.score.value:.4f}")
    print(f"total {r.seconds:.1f} s (everything: untrained evaluation, teacher targets, training, epoch checks); "
          f"longest gap between progress reports {gaps.max():.2f} s")
    print(f"whole test split ({len(s.test)} sentences, {len(s.test.pairs)} pairs): " + " ".join(METRICS))
    print(f"  teacher           {row(T.quality(refs['test'], refs['test'], s.test))}")
    print(f"  untrained student {row(T.evaluate(TD.student(s.model, cfg), s.test, refs['test']))}")
    print(f"  trained student   {row(T.evaluate(r.student, s.test, refs['test']))}")
    return r


def compare(s, r: D.DistillResult) -> None:
    lat = T.latencies({"teacher": s.model, "student": r.student}, s.test, max_seconds=3.0)
    depth = len(cast(T.MiniLM, r.student).encoder.layer)   # a text student is a (thinner) MiniLM
    print(f"\nteacher vs {depth}-layer student (latency measured round-robin on real test sentences):")
    for k, m in (("teacher", s.model), ("student", r.student)):
        b1, b32 = lat[k]
        print(f"  {k:<8} {D.parameters(m):>11,} parameters, {serialized_bytes(m) / 2**20:6.1f} MiB (torch.save); "
              f"b=1 {b1.median_ms:7.2f} ms (IQR {b1.iqr_ms:.2f}), b=32 {b32.median_ms:7.1f} ms (IQR {b32.iqr_ms:.1f}), "
              f"{b32.threads} threads{'  NOISY' if b1.noisy or b32.noisy else ''}")
    print(f"  speed-up: {lat['teacher'][0].median_ms / lat['student'][0].median_ms:.2f}x at b=1, "
          f"{lat['teacher'][1].median_ms / lat['student'][1].median_ms:.2f}x at b=32")


def slider(s) -> None:
    from slimui import distill as UI  # the page's own softmax; the figure from the same builder
    pool = TD.training_pool(s.data.train, 0)
    idx = TD.batches(pool, 32, 0, 0)[0]
    rows = TD.similarity_logits(TD.embed_ids(s.model, tuple(pool.ids[i] for i in idx))).numpy()

    def move(t: float = 0.3) -> None:
        p = UI.softmax(rows[0], t)
        order = np.argsort(-rows[0])
        plots.grouped_bars([str(i) for i in order], {"teacher": (p[order] * 100).tolist(),
                                                     "student": (p[order] * 100).tolist()}, "t", "x", "y",
                           text_format="")
    r = timed(move, repeats=50)
    print(f"\ntemperature slider -> softmax + figure: {r['median_ms']:.2f} ms median, {r['p95_ms']:.2f} ms p95")

    from tests.apptest_utils import app
    at = app("views/3_Distillation.py", timeout=300)
    at.session_state["model_name"] = "minilm"
    t0 = time.perf_counter()
    at.run()
    first = time.perf_counter() - t0
    times = []
    for t in (0.3, 0.1, 0.5, 0.1, 1.0, 0.1):   # cached after the first visit: only the softmax and figures change
        t0 = time.perf_counter()
        at.select_slider(key="temperature").set_value(t).run()
        times.append(time.perf_counter() - t0)
    print(f"whole page in AppTest on minilm: first run {first:.1f} s (student built, measured, batch embedded); "
          f"temperature move -> page rerun {np.median(times) * 1000:.0f} ms median, {max(times) * 1000:.0f} ms max "
          f"over {len(times)} moves")


def main() -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}")
    s = slimcore.load_sample("minilm")
    assert isinstance(s, T.TextSample)
    refs = {"quick": T.embed(s.model, s.data.quick_set), "test": T.embed(s.model, s.test)}
    depths(s, refs)
    cfg = slimcore.families.get("encoder").distill_defaults
    if len(sys.argv) > 1:
        cfg = dataclasses.replace(cfg, epochs=int(sys.argv[1]))
    r = train(s, refs, cfg)
    compare(s, r)
    slider(s)
    print(f"load average at the end {os.getloadavg()[0]:.1f} (2 cores; above 2 the timings are inflated)")


if __name__ == "__main__":
    main()
