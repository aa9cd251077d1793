"""Golden figures of every SlimLab lab, computed by calling slimcore directly (never Streamlit, never slimui).

THE JSON IS THE CONTRACT. `tests/golden/figures.json` holds every deterministic figure the labs show today (Home,
Pruning, Quantization, Distillation, Trade-offs, Sensitivity; the four classifier samples and the text sample
`minilm`), and `tests/test_golden.py` recomputes them and demands the same values. When slimcore's API changes (the
model-family refactor), re-point the small functions below (`pruning_classifier`, `pruning_text`, ...) at the new API
so that each returns the same dict: do NOT regenerate the JSON to make the test pass. Regenerate it only for a named
bug fix that is meant to change figures, and say in the commit which keys changed and why.

Each function below is one lab for one model family and returns a nested dict of plain values (numbers, strings,
lists); `compute()` flattens them into keys like "pruning/digits-cnn/l1-layer-unstructured-0.3/accuracy". The
settings each function uses mirror what the page and its slimui glue pass to slimcore (the same calibration batches,
seeds, splits and defaults), so a figure here is the figure the lab shows at that setting (up to the last bits of some
float32 sums, which the page computes with all of the machine's threads: see THREADS).

Training runs are in (gradual pruning, classifier distillation, Deep Compression, one short text distillation run):
with one torch thread (THREADS) they were bit-identical when rerun in one process and in separate processes. Left out
on purpose: every timing (latency columns, seconds per step or stage: not deterministic); the labs' full grids and
curves for minilm (each point embeds the quick set again: a few points of each are in); text figures on the whole
test split other than the Home page's and the distillation run's (each costs four quick-set embeddings).

Run from the repository root: `python -m tests.golden.make_golden` (or `python tests/golden/make_golden.py`) writes
tests/golden/figures.json; `--check` compares instead of writing.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
import torch

import slimcore
from slimcore import distillation as D
from slimcore import int8 as I8
from slimcore import pipeline as PL
from slimcore import pruning as P
from slimcore import quantization as Q
from slimcore import sensitivity as SE
from slimcore import text as T
from slimcore import text_distill as TD
from slimcore import text_prune as TP
from slimcore import text_quant as TQ
from slimcore import tradeoffs as TR
from slimcore.metrics import torch_threads
from slimcore.sweep import allocate, pareto

FIGURES = Path(__file__).resolve().parent / "figures.json"
CLASSIFIERS = ("digits-mlp", "digits-cnn", "mnist1d-mlp", "mnist1d-cnn")
TEXT = "minilm"

# What the pages and their slimui glue pass to slimcore (copied here, not imported: slimui imports Streamlit).
CALIBRATION = 256            # slimui.pruning.CALIBRATION: training examples Taylor scores are computed on
QUANT_CALIBRATION = 512      # slimui.quant.CALIBRATION_EXAMPLES: training inputs of activation ranges and real int8
PRUNE_CURVE = tuple(round(r / 20, 2) for r in range(20)) + (0.97, 0.99)   # slimui.pruning.CURVE
EXAMPLES = 12                # slimui.cache.examples: test inputs shown on the Home page
PIPELINE_MODEL = "digits-mlp"  # slimui.tradeoffs.PIPELINE_MODEL
TEXT_SHOWN = 12              # slimui.home.SHOWN: sentences in the Home similarity picture
# Every figure is computed with ONE intra-op thread: a float sum (a matmul, a mean) may be split differently with more
# threads, so pinning the count makes the figures independent of the machine's cores (measured: with 2 threads, 39 of
# the ~11,800 figures moved in their last bits, training losses and a few float32 means over 100k weights; accuracies,
# counts, sizes and every minilm figure did not). And on a busy 2-core machine one thread is several times faster than
# two (no oversubscription), which keeps this test inside its time budget.
THREADS = 1


# ------------------------------------------------------------------------------------------------ shared inputs

@functools.cache
def sample(name: str):
    """A sample model with its data and card (loaded once; read-only)."""
    return slimcore.load_sample(name)


@functools.cache
def scores(name: str, method: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Weight scores as the Pruning, Trade-offs and Sensitivity pages use them (train.head(256), seed 0)."""
    s = sample(name)
    return P.weight_scores(s.model, method, s.data.train.head(CALIBRATION), seed)


@functools.cache
def text_reference(quick: bool = True) -> torch.Tensor:
    """The original encoder's embeddings of the quick set (or the whole test split)."""
    s = sample(TEXT)
    return T.embed(s.model, s.data.quick_set if quick else s.test)


def digest(t: torch.Tensor | np.ndarray) -> str:
    """A short fingerprint of a tensor's exact contents (shape and bytes): a mask or a grid as one string."""
    a = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    return hashlib.sha256(repr(a.shape).encode() + str(a.dtype).encode() + np.ascontiguousarray(a).tobytes()
                          ).hexdigest()[:20]


def param(layer: torch.nn.Module, name: str = "weight") -> torch.Tensor:
    """A layer's weight (or bias) tensor; typed, where `layer.weight` of an nn.Module is a Tensor or a Module."""
    p = getattr(layer, name)
    assert isinstance(p, torch.Tensor), name
    return p


def no_seconds(detail: str) -> str:
    """A detail string without its trailing timing ("...; 1.2 s"), which is not deterministic."""
    return re.sub(r"; [0-9.]+ s$", "", detail)


def quality(q: T.TextQuality) -> dict:
    return {"mean_cosine": q.mean_cosine, "worst_cosine": q.worst_cosine, "worst_sentence": q.worst_sentence,
            "top1_agreement": q.top1_agreement, "spearman": q.spearman, "paraphrase_top1": q.paraphrase_top1,
            "sentences": q.sentences, "pairs": q.pairs}


def modelled(m) -> dict:
    return {"bytes": m.bytes, "format": m.format, "value_bits": m.value_bits, "detail": m.detail}


# ============================================================================================ classifier samples

def home_classifier(name: str) -> dict:
    """Home: measured baseline (accuracy, counts, MACs, serialized size), the layer table, the example predictions."""
    s = sample(name)
    m = slimcore.measure(s, timing=False)
    x = s.test.x[:EXAMPLES]
    probs = slimcore.predict(s.model, x).softmax(1)
    conf, pred = probs.max(1)
    return {
        "accuracy": m.accuracy, "params": m.params, "nonzeros": m.nonzeros, "macs": m.macs, "size_bytes": m.size_bytes,
        "test_examples": len(s.test), "val_examples": len(s.data.val), "train_examples": len(s.data.train),
        "layers": {r.name: {"kind": r.kind, "weight_shape": list(r.weight_shape), "params": r.params,
                            "nonzeros": r.nonzeros, "macs": r.macs, "sparsity": r.sparsity} for r in m.layers},
        "examples": {"y": s.test.y[:EXAMPLES].tolist(), "pred": pred.tolist(), "conf": conf.tolist()},
        "card": {"test_accuracy": s.card["test_accuracy"], "parameters": s.card["parameters"]},
        "modelled_size_fp32": modelled(slimcore.modelled_size(s.model)),
    }


PRUNE_SETTINGS = [(method, scope, structured, ratio, 1) for method in P.METHODS for scope in P.SCOPES
                  for structured in (False, True) for ratio in (0.3, 0.8)] + [
    ("l1", "layer", True, 0.5, 2), ("l1", "global", True, 0.5, 2)]   # the L2 channel norm


def _prune_key(method: str, scope: str, structured: bool, ratio: float, norm: int) -> str:
    return (f"{method}-{scope}-{'structured' if structured else 'unstructured'}-{ratio:g}"
            + (f"-norm{norm}" if norm != 1 else ""))


def pruning_classifier(name: str) -> dict:
    """Pruning: each setting's report (accuracy, counts, measured dense and channel-pruned sizes, modelled sparse
    size, removed per layer), the masks the page draws and the magnitude cut; then the one-shot accuracy curves."""
    s = sample(name)
    out: dict[str, Any] = {}
    for method, scope, structured, ratio, norm in PRUNE_SETTINGS:
        cfg = P.PruneConfig(ratio, method, scope, structured, norm)
        sc = scores(name, method)
        rep, _, _ = P.evaluate(s.model, cfg, s.test, scores=sc)
        keep = P.masks(s.model, cfg, scores=sc)            # as slimui.pruning.masks draws them
        if structured:
            try:
                keep = P.effective_masks(s.model, keep, s.test.x[:1])
            except ValueError:
                pass
        thin = rep.thin
        out[_prune_key(method, scope, structured, ratio, norm)] = {
            "accuracy": rep.score.value, "params": rep.params, "nonzeros": rep.nonzeros, "weights": rep.weights,
            "removed": rep.removed, "dense_bytes": rep.size_bytes, "sparse": modelled(rep.sparse),
            "layer_sparsity": rep.layer_sparsity, "emptied": list(rep.emptied),
            "small_params": thin and thin.params, "small_bytes": thin and thin.size_bytes,
            "small_accuracy": thin and thin.score.value,
            "small_shapes": {k: list(v) for k, v in (thin.shapes if thin else {}).items()}, "small_note": rep.thin_note,
            "masks": {n: digest(m) for n, m in keep.items()},
            "threshold": {n: P.threshold(s.model, keep, n) for n in keep},
            "sparsity": P.sparsity(keep),
        }
    calib = s.data.train.head(CALIBRATION)
    out["curve"] = {"ratios": list(PRUNE_CURVE)}
    for method in P.METHODS:
        for scope in P.SCOPES:
            for structured in (False, True):
                cfg = P.PruneConfig(0.0, method, scope, structured, 1)
                key = f"{method}-{scope}-{'structured' if structured else 'unstructured'}"
                out["curve"][key] = [q.value for q in P.quality_curve(
                    s.model, s.test, cfg, PRUNE_CURVE, calibration=calib)]
    return out


def gradual_classifier(name: str) -> dict:
    """Pruning lab, "Prune gradually and fine-tune": a short seeded run (2 steps, 1 epoch each); no seconds."""
    s = sample(name)
    res = P.gradual_prune(s, P.GradualConfig(P.PruneConfig(0.8, "l1", "layer"), steps=2, epochs=1))
    return {f"step{t.step}": {"amount": t.amount, "sparsity": t.sparsity, "oneshot_accuracy": t.oneshot,
                              "accuracy": t.score, "val_accuracy": t.val_score} for t in res.steps}


def _quant_configs() -> dict[str, Q.QuantConfig]:
    out = {}
    for bits in (2, 4, 8):
        for symmetric in (True, False):
            for per_channel in (False, True):
                out[f"{bits}bit-{'sym' if symmetric else 'asym'}-{'channel' if per_channel else 'tensor'}"] = \
                    Q.QuantConfig(bits, symmetric, per_channel)
    for per_channel in (False, True):
        g = "channel" if per_channel else "tensor"
        out[f"binary-{g}"] = Q.QuantConfig(1, True, per_channel)
        out[f"ternary-{g}"] = Q.QuantConfig(8, True, per_channel, ternary=True)
    out["4bit-sym-tensor-stochastic"] = Q.QuantConfig(4, rounding="stochastic")
    out["8bit-sym-tensor-A8-minmax"] = Q.QuantConfig(8, activations=Q.ActivationConfig(8, "minmax", 100.0))
    out["4bit-sym-channel-A4-p99.9"] = Q.QuantConfig(4, per_channel=True,
                                                     activations=Q.ActivationConfig(4, "percentile", 99.9))
    return out


def _ranges(name: str, act: Q.ActivationConfig | None):
    if act is None:
        return None
    return Q.calibrate(sample(name).model, sample(name).data.train.x[:QUANT_CALIBRATION], act.method, act.percentile)


def _levels(w: torch.Tensor, cfg: Q.QuantConfig) -> dict:
    """The grid the page draws over a layer's weights (slimui.quant.layer_detail)."""
    grid = Q.levels(w, cfg.bits, cfg.symmetric, 0 if cfg.per_channel else None, cfg.ternary)
    widest = None
    if grid.dim() == 2:
        widest = int((grid.amax(1) - grid.amin(1)).argmax())
        grid = grid[widest]
    qp = Q.weight_qparams(w, cfg)
    g = grid.tolist()
    return {"count": len(g), "levels": g if len(g) <= 16 else [g[0], g[1], g[-2], g[-1]], "digest": digest(grid),
            "widest_channel": widest, "half_step": None if qp is None else float(qp.scale.max()) / 2}


def quantization_classifier(name: str) -> dict:
    """Quantization: each setting's simulated accuracy, per-layer weight error (MSE, SQNR, distinct values), modelled
    size and grid; accuracy against bits (1..16 and ternary); fixed point per layer; the real int8 model."""
    s = sample(name)
    out: dict[str, Any] = {}
    layers = slimcore.weight_layers(s.model)
    for key, cfg in _quant_configs().items():
        qm = Q.quantize(s.model, config=cfg, calibration=_ranges(name, cfg.activations))
        qw = Q.quantized_weights(s.model, cfg)
        out[key] = {
            "describe": cfg.describe(), "accuracy": slimcore.accuracy(qm, s.test),
            "errors": {e.name: {"numel": e.numel, "mse": e.mse, "max_abs": e.max_abs, "sqnr_db": e.sqnr_db,
                                "distinct": e.distinct} for e in Q.layer_errors(s.model, qm)},
            "size": modelled(Q.modelled_bytes(s.model, cfg)),
            "grid": {n: _levels(param(m).detach(), cfg) for n, m in layers.items()},
            "weights": {n: digest(w) for n, w in qw.items()},
        }
    curves = {}
    for symmetric in (True, False):
        for per_channel in (False, True):
            cfg = Q.QuantConfig(8, symmetric, per_channel)
            pts = Q.quality_by_bits(s.model, slimcore.family_of(s).scorer(s), cfg, range(1, 17))
            tern = slimcore.accuracy(Q.quantize(s.model, config=Q.QuantConfig(8, symmetric, per_channel, ternary=True)),
                                     s.test)
            curves[f"{'sym' if symmetric else 'asym'}-{'channel' if per_channel else 'tensor'}"] = {
                "bits": [p.bits for p in pts], "accuracy": [p.value for p in pts], "ternary": tern}
    act = Q.ActivationConfig(8, "minmax", 100.0)
    cfg = Q.QuantConfig(8, activations=act)
    calib = _ranges(name, act)
    pts = Q.quality_by_bits(s.model, slimcore.family_of(s).scorer(s), cfg, range(1, 17), calib)
    curves["sym-tensor-A8-minmax"] = {
        "bits": [p.bits for p in pts], "accuracy": [p.value for p in pts],
        "ternary": slimcore.accuracy(Q.quantize(s.model, config=Q.QuantConfig(8, ternary=True, activations=act),
                                                calibration=calib), s.test)}
    out["curve"] = curves
    out["calibration_ranges"] = {n: list(r) for n, r in _ranges(name, act).items()}
    out["fixed_point"] = {}
    for int_bits, frac_bits in ((0, 7), (2, 5), (1, 14)):
        per = {}
        for n, m in layers.items():
            fq = Q.fixed_point(param(m).detach(), int_bits, frac_bits)
            per[n] = {"sqnr_db": Q.sqnr_db(param(m), fq), "distinct": int(torch.unique(fq).numel()),
                      "digest": digest(fq)}
        out["fixed_point"][f"Q{int_bits}.{frac_bits}"] = per
    return out


def int8_classifier(name: str) -> dict:
    """Quantization lab, the real int8 model (torch.ao): measured accuracy and file size (not latency)."""
    s = sample(name)
    r = I8.build(s, "int8 (torch.ao)")   # static with convolutions, else dynamic (ONNX Runtime's: tests/test_ort_int8)
    return {"accuracy": slimcore.accuracy(r.model, s.test), "size_bytes": slimcore.serialized_bytes(r.model),
            "kind": r.kind, "engine": r.engine, "notes": " ".join(r.notes)}


def distillation_classifier(name: str) -> dict:
    """Distillation: the teacher's softened outputs (T = 1, 4, 20) and their entropy for a few test examples, the
    students' sizes, the loss parts on a fixed batch, and a short seeded training run."""
    s = sample(name)
    logits = slimcore.predict(s.model, s.test.x)
    out: dict[str, Any] = {"teacher_logits_digest": digest(logits), "teacher_params": sum(
        p.numel() for p in s.model.parameters())}
    for i in (0, 1, 7):
        ex: dict[str, Any] = {"label": int(s.test.y[i]), "pred": int(logits[i].argmax())}
        for t in (1.0, 4.0, 20.0):
            p = D.soften(logits[i], t)
            ex[f"T{t:g}"] = {"probs": p.tolist(), "entropy_bits": float(D.entropy_bits(p))}
        out[f"example{i}"] = ex
    out["student_params"] = {w: D.parameters(D.student_architecture(s.model, v)) for w, v in D.WIDTHS.items()}
    cfg = dataclasses.replace(slimcore.families.get("classifier").distill_defaults, student=D.WIDTHS["1/4"], epochs=2)
    student = slimcore.families.get("classifier").student(s.model, cfg)   # = make_student(model, 0.25, seed 0)
    out["student_init_digest"] = digest(torch.cat([p.detach().reshape(-1) for p in student.parameters()]))
    out["student_init_accuracy"] = slimcore.accuracy(student, s.test)
    batch = s.data.train.head(64)
    with torch.inference_mode():
        zs, zt = student(batch.x), s.model(batch.x)
    for t, alpha, t2 in ((4.0, 0.5, True), (1.0, 0.0, True), (8.0, 1.0, False), (20.0, 0.9, True)):
        parts = D.classifier_loss(zs, zt, batch.y, dataclasses.replace(cfg, temperature=t, alpha=alpha, t_squared=t2))
        out[f"loss/T{t:g}-alpha{alpha:g}{'' if t2 else '-noT2'}"] = {
            "total": float(parts.total), "soft": float(parts.soft), "hard": float(parts.hard)}
    res = slimcore.distill(s, cfg)   # T 4, alpha 0.5, seed 0 (the defaults), a fresh 1/4-width student
    epochs = {}
    for e in res.history:
        assert e.train_score is not None   # a classifier's epochs score the training examples too
        epochs[f"epoch{e.epoch}"] = {"soft_loss": e.soft, "hard_loss": e.hard, "loss": e.loss,
                                     "train_accuracy": e.train_score.value, "val_accuracy": e.score.value}
    out["train/width0.25-T4-alpha0.5-2epochs"] = {
        **epochs,
        "test_accuracy": slimcore.accuracy(res.student, s.test),
        "size_bytes": slimcore.serialized_bytes(res.student)}
    return out


def _grid_figures(frame) -> dict:
    rows = {}
    for r in frame.itertuples():
        rows[r.config] = {"method": r.method, "structured": bool(r.structured), "prune_ratio": r.prune_ratio,
                          "bits": int(r.bits), "accuracy": r.score, "size_bytes": r.size_bytes,
                          "size_label": r.size_label, "size_detail": r.size_rule, "params": int(r.params),
                          "nonzeros": int(r.nonzeros), "macs": r.macs, "note": r.note}
    valid = frame.dropna(subset=["score"])
    return {"rows": rows, "count": len(frame),
            "frontier_size": list(pareto(valid, "size_bytes", "score").config),
            "frontier_macs": list(pareto(valid.dropna(subset=["macs"]), "macs", "score").config)}


def tradeoffs_classifier(name: str) -> dict:
    """Trade-offs: two small grids (prune ratio x bits x method x structured) as slimcore.tradeoffs builds the page's
    grid: accuracy, measured or modelled size, counts and MACs per configuration, and the Pareto frontiers."""
    s = sample(name)
    out = {}
    a = TR.grid(s, TR.GridConfig(("unstructured", "channels"), ("l1", "taylor"), (0.0, 0.5, 0.9),
                                 ("fp32", "8-bit", "4-bit", "2-bit"), "layer", False))
    out["l1+taylor-layer-tensor"] = _grid_figures(a)
    b = TR.grid(s, TR.GridConfig(("unstructured", "channels"), ("random",), (0.0, 0.3, 0.7),
                                 ("fp32", "16-bit", "6-bit", "3-bit"), "global", True))
    out["random-global-channel"] = _grid_figures(b)
    return out


def _scan(frame) -> dict:
    settings = [float(v) for v in dict.fromkeys(frame.setting)]
    base = frame.attrs["base_score"]
    return {"base_accuracy": base, "settings": settings,
            "accuracy": {n: [float(v) for v in g.score] for n, g in frame.groupby("group", sort=False)},
            "drop_points": {n: [float((base - v) * 100) for v in g.score]
                            for n, g in frame.groupby("group", sort=False)},
            "weights": {n: int(g.weights.iloc[0]) for n, g in frame.groupby("group", sort=False)}}


def _outcome(o) -> dict:
    return {"name": o.name, "settings": {k: float(v) for k, v in o.settings.items()}, "accuracy": o.accuracy,
            "test_accuracy": o.test_accuracy, "size_bytes": o.size_bytes, "size_detail": o.size_detail,
            "weights_kept": o.weights_kept, "weight_bits": o.weight_bits}


def sensitivity_classifier(name: str) -> dict:
    """Sensitivity: each layer pruned or quantized alone on the validation split, and the allocation under a budget
    (measured on validation and test, beside uniform settings of the same size)."""
    s = sample(name)
    out = {}
    scans = {"prune-l1": ("prune", "l1", False), "prune-taylor": ("prune", "taylor", False),
             "quantize-tensor": ("quantize", "l1", False), "quantize-channel": ("quantize", "l1", True)}
    frames = {}
    for key, (kind, method, per_channel) in scans.items():
        fam = slimcore.family_of(s)
        frames[key] = SE.scan(s.model, fam.layer_groups(s.model), fam.scorer(s, "validation"),
                              SE.ScanConfig(kind, method=method, per_channel=per_channel),
                              scores(name, method) if kind == "prune" else None)
        out[f"scan/{key}"] = _scan(frames[key])
    for key in ("prune-l1", "quantize-tensor"):
        kind, method, per_channel = scans[key]
        for budget in (0.5, 2.0):
            a = allocate(s.model, frames[key], s.data.val, budget, s.test, method=method, quant=TR.quant(per_channel),
                         scores=scores(name, method) if kind == "prune" else None)
            out[f"allocation/{key}/budget{budget:g}"] = {
                "kind": a.kind, "base_accuracy": a.base_accuracy, "base_test_accuracy": a.base_test_accuracy,
                "base_bytes": a.base_bytes, "predicted_drop": a.predicted_drop, "drop": a.drop, "tries": a.tries,
                "message": a.message, "history": [list(h) for h in a.history], "result": _outcome(a.result),
                "uniform": {str(i): _outcome(o) for i, o in enumerate(a.uniform)}}
    return out


def pipeline_classifier() -> dict:
    """Trade-offs page, Deep Compression on digits-mlp at the page's default (prune 0.92, 4-bit sharing), seed 0:
    each stage's decoded accuracy, measured stream bytes and ratio (the stage seconds left out)."""
    s = sample(PIPELINE_MODEL)
    res = PL.deep_compression(s, prune_amount=0.92, bits=4, seed=0)
    return {st.name: {"accuracy": st.score, "bytes": st.bytes, "label": st.label, "ratio": st.ratio,
                      "detail": no_seconds(st.detail)} for st in res.stages} | {
        "streams": {k: digest(np.frombuffer(v, dtype=np.uint8)) for k, v in res.streams.items()}}


# ====================================================================================================== text sample

def home_text() -> dict:
    """Home (minilm): the computed card, measured size, the original's quality on the whole test split and the quick
    set, the layer table by group, and the similarity picture of the first 12 test sentences."""
    s = sample(TEXT)
    full = text_reference(False)
    sp = s.test
    rows = {}
    for n, p in s.model.named_parameters():
        if n.startswith("embeddings.") and p.dim() == 2:
            rows[n] = {"group": "embeddings", "shape": list(p.shape), "params": p.numel()}
    for n, lin in T.linear_layers(s.model).items():
        rows[n] = {"group": T.GROUP_LABELS[T.group_of(n)], "shape": list(param(lin).shape),
                   "params": param(lin).numel() + param(lin, "bias").numel()}
    near = T.nearest(full)
    return {
        "card": {"architecture": s.card["architecture"], "parameters": s.card["parameters"],
                 "sentences": {k: v for k, v in s.card["sentences"].items() if k != "about"}},
        "size_bytes": slimcore.serialized_bytes(s.model),
        "quality_test": quality(T.quality(full, full, sp)),
        "quality_quick": quality(T.quality(text_reference(True), text_reference(True), s.data.quick_set)),
        "reference_digest": {"quick": digest(text_reference(True)), "test": digest(full)},
        "layers": rows,
        "similarity": (full[:TEXT_SHOWN] @ full[:TEXT_SHOWN].T).tolist(),
        "nearest": near[:TEXT_SHOWN].tolist(),
        "nearest_cosine": [float(full[i] @ full[int(near[i])]) for i in range(TEXT_SHOWN)],
    }


def _text_prune_report(rep: P.PruneReport, model: torch.nn.Module | None) -> dict:
    """The text lab's figures of a PruneReport: those of the thin encoder when units were removed."""
    fig = rep.thin if rep.cfg.structured else rep
    assert fig is not None and isinstance(model, T.MiniLM)   # whole heads or neurons: a thin encoder was measured
    removed = ({f"layer {i}": v for i, v in enumerate(rep.unit_removed.values())} if rep.cfg.structured else
               {n: int((~m).sum()) / m.numel() for n, m in text_masks(rep.cfg).items()})
    return {"quality": quality(fig.score.detail), "params": fig.params, "nonzeros": fig.nonzeros,
            "size_bytes": fig.size_bytes, "sparse": None if rep.cfg.structured else modelled(rep.sparse),
            "shape": model.shape(), "removed": removed, "thresholds": rep.thresholds, "notes": list(rep.notes),
            "thin": rep.cfg.structured, "thin_parameters": TP.thin_parameters(model.shape())}


def text_masks(cfg: P.PruneConfig) -> dict[str, torch.Tensor]:
    return slimcore.families.get("encoder").prune_masks(sample(TEXT).model, cfg)


def pruning_text() -> dict:
    """Pruning (minilm): unstructured L1, FFN neurons and attention heads at 0.3 and 0.6 on the quick set (quality,
    counts, measured and modelled sizes, what each layer lost, the kept units), the original's own row, and the
    quality curve at ratios 0, 0.5, 0.9."""
    s = sample(TEXT)
    fam = slimcore.families.family_of(s)
    scorer = fam.scorer(s, "quick")
    out: dict[str, Any] = {}
    for kind in TP.KINDS:
        for ratio in (0.3, 0.6):
            cfg = TP.config(ratio, kind)
            rep, dense, thin = P.evaluate(s.model, cfg, scorer, family=fam)
            keep = text_masks(cfg)
            out[f"{kind}-{ratio:g}"] = _text_prune_report(rep, thin or dense) | {
                "keep": [] if kind == "unstructured" else
                [k.tolist() if kind == "heads" else digest(k) for k in TP.kept_units(s.model, kind, keep)],
                "masks": {n: digest(m) for n, m in keep.items()}}
    rep, _, thin = P.evaluate(s.model, TP.config(0.0, "heads"), scorer, family=fam)
    out["original"] = _text_prune_report(rep, thin)
    out["neuron_scores"] = [digest(x) for x in TP.neuron_scores(s.model)]
    out["head_scores"] = [x.tolist() for x in TP.head_scores(s.model)]
    ratios = (0.0, 0.5, 0.9)
    for kind in TP.KINDS:
        qs = P.quality_curve(s.model, scorer, TP.config(0.0, kind), ratios, family=fam)
        out[f"curve/{kind}"] = {"ratios": list(ratios), **{f"{r:g}": quality(q.detail) for r, q in zip(ratios, qs)}}
    return out


def quantization_text() -> dict:
    """Quantization (minilm): fake k-bit quality by bits (2, 4, 8; per tensor and per channel) with modelled size and
    the default layer's grid; the three real int8 encoders (quality on the quick set, measured file size)."""
    s = sample(TEXT)
    quick, ref = s.data.quick_set, text_reference(True)
    out: dict[str, Any] = {}
    for per_channel in (False, True):
        g = "channel" if per_channel else "tensor"
        scorer = slimcore.family_of(s).scorer(s, "quick")
        curve = Q.quality_by_bits(s.model, scorer, Q.QuantConfig(8, per_channel=per_channel), (2, 4, 8),
                                  layers=slimcore.family_of(s).layers(s.model))
        for point in curve:
            bits, q, cfg = point.bits, point.score.detail, point.config
            grid = TQ.layer_grid(s.model, "encoder.layer.5.output.dense", cfg)
            lv = grid["levels"].tolist()
            out[f"fake/{bits}bit-{g}"] = {
                "describe": cfg.describe(), "quality": quality(q),
                "size": modelled(Q.modelled_bytes(s.model, cfg, TQ.layers(s.model))),
                "grid": {"count": len(lv), "levels": lv if len(lv) <= 16 else [lv[0], lv[1], lv[-2], lv[-1]],
                         "note": grid["note"], "half_step": grid["half_step"], "q_digest": digest(grid["q"]),
                         "shape": list(grid["shape"])}}
    out["fake/4bit-asym-tensor/size"] = modelled(Q.modelled_bytes(s.model, Q.QuantConfig(4, symmetric=False),
                                                                  TQ.layers(s.model)))
    for label in (k for k, v in I8.variants(s).items() if v.engine == "torch"):   # ONNX Runtime's: test_ort_int8
        r = I8.build(s, label)
        out[f"int8/{label}"] = {"quality": quality(T.evaluate(r.model, quick, ref)),
                                "size_bytes": slimcore.serialized_bytes(r.model), "notes": " ".join(r.notes),
                                "engine": r.engine, "kind": r.kind}
    linear = sum(param(lin).numel() for lin in T.linear_layers(s.model).values())
    out["linear_weights"] = linear
    return out


def sensitivity_text() -> dict:
    """Sensitivity (minilm) and the Quantization lab's group table: a few groups and cells compressed alone."""
    s = sample(TEXT)
    model, quick, ref = s.model, s.data.quick_set, text_reference(True)
    out: dict[str, Any] = {}
    cfg4 = Q.QuantConfig(4, per_channel=False)
    for group in T.GROUPS:
        q = T.evaluate(TQ.group_variant(model, group, "fake", cfg4), quick, ref)
        out[f"group/{group}/fake-4bit-tensor"] = {"label": TQ.method_label("fake", cfg4), "drop": 1.0 - q.mean_cosine,
                                                  "quality": quality(q), "layers": len(TQ.select(model, [group]))}
    q = T.evaluate(TQ.group_variant(model, "ffn_out", "int8 per channel", cfg4), quick, ref)
    out["group/ffn_out/int8 per channel"] = {"label": TQ.method_label("int8 per channel", cfg4), "quality": quality(q)}
    # cells of the generic scan (slimcore.sensitivity): (config, setting, transformer layer, group); the keys keep the
    # old CellConfig's fields (kind, ratio 0.5 and 4 bits by default)
    cells = [(SE.ScanConfig("prune"), 0.5, 0, "qkv"), (SE.ScanConfig("prune"), 0.5, 5, "ffn_out"),
             (SE.ScanConfig("quantize"), 4, 0, "ffn_in"),
             (SE.ScanConfig("quantize", per_channel=True), 3, 3, "attn_out")]
    groups = {(g.row, g.column): g for g in slimcore.family_of(s).layer_groups(model)}
    scorer = slimcore.family_of(s).scorer(s, "validation")   # the quick set, reference embeddings as text_reference
    rows = []
    for cfg, value, layer, group in cells:
        g = groups[(f"layer {layer}", T.GROUP_LABELS[group])]
        frame = SE.scan(model, [g], scorer, SE.ScanConfig(cfg.kind, (value,), per_channel=cfg.per_channel))
        q = frame.detail.iloc[0]
        rows.append(frame)
        setting = (f"{cfg.kind}-{value if cfg.kind == 'prune' else 0.5:g}-{value if cfg.kind == 'quantize' else 4}bit-"
                   f"{'channel' if cfg.per_channel else 'tensor'}")
        out[f"cell/{setting}/L{layer}-{group}"] = {"describe": cfg.describe(value), "drop": 1.0 - q.mean_cosine,
                                                   "quality": quality(q)}
    cells_frame = SE.frame_of([r for f in rows for r in f.to_dict("records")], scorer(model))
    grid = (1.0 - cells_frame.pivot(index="row", columns="column", values="score")).reindex(
        index=[f"layer {i}" for i in range(len(model.encoder.layer))],
        columns=[T.GROUP_LABELS[g] for g in T.GROUPS]).to_numpy()
    out["cell/drop_grid"] = [[None if math.isnan(v) else float(v) for v in r] for r in grid]
    return out


def tradeoffs_text() -> dict:
    """Trade-offs (minilm): a small grid (unpruned, unstructured and heads at 0.5; fp32, real int8 with the word
    table in 8 bits, 4-bit fake) with quality, size (measured or modelled, and how) and the frontier."""
    s = sample(TEXT)
    frame = TR.grid(s, TR.GridConfig(("unstructured", "heads"), ("l1",), (0.0, 0.5), ("fp32", "int8+emb", "4-bit"),
                                     per_channel=True))
    front = set(pareto(frame, "size_bytes", "score").index)
    out = {}
    for i, r in frame.iterrows():   # the keys and names the page showed before the grid was family-generic
        pruning = r.prune if r.prune_ratio else "none"
        precision = "int" + r.precision[:-4] if r.precision.endswith("-bit") else r.precision
        unit = slimcore.family_of(s).unit_kinds.get(pruning, "weights")
        point = f"{'unpruned' if pruning == 'none' else f'{unit} -{r.prune_ratio:.0%}'}, {precision}"
        q = r.detail
        out[point] = {"pruning": pruning, "ratio": r.prune_ratio, "precision": precision, "mean cosine": r.score,
                      "worst cosine": q.worst_cosine, "top-1 agreement": q.top1_agreement, "spearman": q.spearman,
                      "paraphrase top-1": q.paraphrase_top1, "size, MiB": r.size_bytes / 2**20,
                      "size is": r.size_label, "size rule": r.size_rule, "frontier": bool(i in front)}
    return out


def distillation_text() -> dict:
    """Distillation (minilm): the untrained students (architecture, kept layers, parameters, measured size, quality on
    the quick set), the first training batch, the temperature picture for its first sentence, and the loss parts on
    that batch; and a short training run (1 layer, 1 epoch, the page's other defaults)."""
    s = sample(TEXT)
    quick, ref = s.data.quick_set, text_reference(True)
    out: dict[str, Any] = {"teacher": {"layers": len(s.model.encoder.layer), "parameters": D.parameters(s.model)}}
    students = {}
    for layers in (1, 3):
        m = TD.student_from_teacher(s.model, layers)
        students[layers] = m
        out[f"student{layers}"] = {"architecture": T.architecture(m),
                                   "kept": list(TD.kept_layers(len(s.model.encoder.layer), layers)),
                                   "parameters": D.parameters(m), "bytes": slimcore.serialized_bytes(m)}
    out["student3"]["quick"] = quality(T.evaluate(students[3], quick, ref))
    dflt = slimcore.families.get("encoder").distill_defaults
    pool = TD.training_pool(s.data.train, dflt.seed)
    plan = TD.batches(pool, dflt.batch_size, dflt.seed, 0)
    idx = plan[0]
    ids = tuple(pool.ids[i] for i in idx)
    teacher_emb = TD.embed_ids(s.model, ids)
    student_emb = TD.embed_ids(students[3], ids)
    anchor = next(i for i, k in enumerate(pool.kind[j] for j in idx) if k == "sentence")
    out["pool"] = {"size": len(pool), "texts_digest": hashlib.sha256("\n".join(pool.texts).encode()).hexdigest()[:20],
                   "batches_epoch0": len(plan), "first_batch": list(idx),
                   "first_batch_kinds": [pool.kind[i] for i in idx], "anchor": anchor,
                   "anchor_text": pool.texts[idx[anchor]]}
    out["teacher_rows_digest"] = digest(TD.similarity_logits(teacher_emb))
    out["teacher_row"] = TD.similarity_logits(teacher_emb)[anchor].tolist()
    out["student3_row"] = TD.similarity_logits(student_emb)[anchor].tolist()
    for t in (0.05, 0.2, 1.0):
        out[f"picture/T{t:g}"] = {"teacher": TD.similarity_distribution(teacher_emb, t)[anchor].tolist(),
                                  "student3": TD.similarity_distribution(student_emb, t)[anchor].tolist()}
    # the keys keep the text lab's old alpha (the weight of the embedding MSE); alpha is now the soft term's weight
    for t, alpha in ((0.2, 0.5), (0.05, 0.0), (1.0, 1.0), (2.0, 0.3)):
        parts = TD.distill_loss(student_emb, teacher_emb, None,
                                dataclasses.replace(dflt, temperature=t, alpha=1 - alpha))
        out[f"loss/T{t:g}-alpha{alpha:g}"] = {"total": float(parts.total), "embedding": float(parts.hard),
                                               "kl": float(parts.soft)}
    cfg = dataclasses.replace(dflt, student=TD.share(s.model, 1), epochs=1)   # 1 layer; the page's other defaults
    res = slimcore.distill(s, cfg)
    test = s.test
    out["train/layers1-epochs1"] = {
        "kept": list(TD.kept_layers(len(s.model.encoder.layer), TD.student_layers(s.model, cfg.student))),
        "train_sentences": res.examples, "parameters": D.parameters(res.student),
        "size_bytes": slimcore.serialized_bytes(res.student), "untrained_quick": quality(res.before.detail),
        "untrained_test": quality(T.evaluate(TD.student(s.model, cfg), test, text_reference(False))),
        "test": quality(T.evaluate(res.student, test, text_reference(False))),
        **{f"epoch{e.epoch}": {"loss": e.loss, "embedding_loss": e.hard, "kl": e.soft,
                               "quick": quality(e.score.detail)} for e in res.history}}
    return out


# ============================================================================================== all of it, flat

def labs() -> list[tuple[str, Callable[[], dict]]]:
    """(key prefix, function) for every lab and sample: the refactor re-points the functions, not this list."""
    out: list[tuple[str, Callable[[], dict]]] = []
    for name in CLASSIFIERS:
        out += [(f"home/{name}", functools.partial(home_classifier, name)),
                (f"pruning/{name}", functools.partial(pruning_classifier, name)),
                (f"pruning-gradual/{name}", functools.partial(gradual_classifier, name)),
                (f"quantization/{name}", functools.partial(quantization_classifier, name)),
                (f"quantization-int8/{name}", functools.partial(int8_classifier, name)),
                (f"distillation/{name}", functools.partial(distillation_classifier, name)),
                (f"tradeoffs/{name}", functools.partial(tradeoffs_classifier, name)),
                (f"sensitivity/{name}", functools.partial(sensitivity_classifier, name))]
    out.append((f"pipeline/{PIPELINE_MODEL}", pipeline_classifier))
    out += [(f"home/{TEXT}", home_text), (f"pruning/{TEXT}", pruning_text), (f"quantization/{TEXT}", quantization_text),
            (f"sensitivity/{TEXT}", sensitivity_text), (f"tradeoffs/{TEXT}", tradeoffs_text),
            (f"distillation/{TEXT}", distillation_text)]
    return out


def plain(v: Any) -> Any:
    """A JSON-able plain value: Python ints, floats (non-finite ones as the strings 'inf', '-inf', 'nan'), strings,
    bools, None, lists and dicts. Nothing is rounded."""
    if isinstance(v, (torch.Tensor, np.ndarray)):
        return plain(v.tolist())
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return v if math.isfinite(v) else ("nan" if math.isnan(v) else "inf" if v > 0 else "-inf")
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    raise TypeError(f"not a plain value: {type(v).__name__}")


def flatten(d: dict, prefix: str, out: dict) -> dict:
    """Nested dicts -> one level, keys joined by '/'; lists stay values."""
    for k, v in d.items():
        key = f"{prefix}/{k}"
        if isinstance(v, dict) and v:
            flatten(v, key, out)
        else:
            if key in out:
                raise KeyError(f"duplicate figure key {key}")
            out[key] = plain(v)
    return out


threads = torch_threads   # slimcore's own: n torch threads for a block, then the count restored


def compute(only: str | None = None, verbose: bool = False) -> dict[str, Any]:
    """Every golden figure as a flat dict {key: plain value}, computed with THREADS torch threads; `only` keeps the
    labs whose key prefix starts with it."""
    out: dict[str, Any] = {}
    with threads(THREADS):
        for prefix, fn in labs():
            if only and not prefix.startswith(only):
                continue
            t0 = time.perf_counter()
            flatten(fn(), prefix, out)
            if verbose:
                print(f"{prefix:<40} {time.perf_counter() - t0:6.2f} s", file=sys.stderr)
    return out


def dumps(figures: dict[str, Any]) -> str:
    """One figure per line, keys sorted, each value compact JSON: diffs show exactly the figures that moved."""
    lines = [f"{json.dumps(k)}: {json.dumps(figures[k], ensure_ascii=False, allow_nan=False)}" for k in sorted(figures)]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def load(path: Path = FIGURES) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with the stored figures instead of writing them")
    ap.add_argument("--only", help="compute only the labs whose key prefix starts with this (with --check)")
    ap.add_argument("--out", type=Path, default=FIGURES)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    figures = compute(args.only, verbose=True)
    print(f"{len(figures)} figures in {time.perf_counter() - t0:.1f} s ({THREADS} torch thread)", file=sys.stderr)
    if args.check:
        stored = load(args.out)
        if args.only:
            stored = {k: v for k, v in stored.items() if k.startswith(args.only)}
        diff = sorted(k for k in set(stored) | set(figures) if stored.get(k, "<absent>") != figures.get(k, "<absent>"))
        for k in diff[:30]:
            print(f"{k}: stored {stored.get(k, '<absent>')!r} now {figures.get(k, '<absent>')!r}")
        print(f"{len(diff)} differ (exact comparison)")
        return 1 if diff else 0
    if args.only:
        ap.error("--only is for --check: the stored file must hold every figure")
    args.out.write_text(dumps(figures), encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
