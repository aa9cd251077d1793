"""Quantization page glue for any model family: widget values -> QuantConfig, and the page's cached computations,
keyed by plain values (model name, config as JSON, variant label, split).

The family (slimcore.families) says which layers are quantized, how a variant is scored (accuracy, mean cosine) and
what the real int8 models are (slimcore.int8.variants). Cached results are plain data (numbers, arrays, records); the
cached models (the real int8 ones, the scorers' references) are shared by all sessions and only ever evaluated.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st
import torch
from torch import nn

import slimcore
from slimcore import Latency, families, ort_int8
from slimcore import int8 as int8_backend
from slimcore import quantization as q
from slimcore.api import ACTIVATION_FAMILIES

from . import cache, work
from .compare import Figure
from .components import delta, timing_task

CALIBRATION_EXAMPLES = q.CALIBRATION    # training inputs that calibrate activation ranges, simulated and real int8
SCHEMES = {"symmetric": True, "asymmetric": False}
GRANULARITIES = {"per tensor": False, "per channel": True}
TARGETS = ("weights only", "weights and activations")
CALIBRATION_METHODS = {"min/max": ("minmax", 100.0), "99.99th percentile": ("percentile", 99.99),
                       "99.9th percentile": ("percentile", 99.9)}
ROUNDING = {"to nearest": "nearest", "stochastic (seed 0)": "stochastic"}
CURVE_BITS = range(1, 17)               # the quality-vs-bits curve: binary, then 2..16-bit grids (and ternary)
SPLIT = "quick"                         # the split the slider's figures are measured on (a classifier's test split)


def config(bits: int, ternary: bool, scheme: str, granularity: str, target: str, act_bits: int = 8,
           calibration: str = "min/max", rounding: str = "to nearest") -> q.QuantConfig:
    """The QuantConfig the page's widgets describe; an unknown choice raises ValueError with the known ones."""
    for value, known, what in ((scheme, SCHEMES, "scheme"), (granularity, GRANULARITIES, "granularity"),
                               (target, TARGETS, "what to quantize"), (calibration, CALIBRATION_METHODS, "calibration"),
                               (rounding, ROUNDING, "rounding")):
        if value not in known:
            raise ValueError(f"unknown {what} {value!r}; choose one of: {', '.join(known)}")
    acts = None
    if target == TARGETS[1]:
        method, pct = CALIBRATION_METHODS[calibration]
        acts = q.ActivationConfig(bits=act_bits, method=method, percentile=pct)
    return q.QuantConfig(bits=bits, symmetric=SCHEMES[scheme], per_channel=GRANULARITIES[granularity],
                         rounding=ROUNDING[rounding], ternary=bool(ternary), activations=acts)


def key(cfg: q.QuantConfig) -> str:
    """A config as a plain, hashable cache key (JSON)."""
    return json.dumps(cfg.to_dict(), sort_keys=True)


def _cfg(cfg_key: str) -> q.QuantConfig:
    return q.QuantConfig.from_dict(json.loads(cfg_key))


def family(name: str) -> families.Family:
    return families.family_of(cache.sample(name))


def activations_supported(name: str) -> bool:
    """Whether the model's family can fake-quantize activations (inputs calibrated on training examples)."""
    return family(name).name in ACTIVATION_FAMILIES


def layers(name: str) -> dict[str, torch.nn.Module]:
    """The layers quantization acts on: the family's compressible layers, by dotted name."""
    return family(name).layers(cache.sample(name).model)


def fmt_bytes(n: float) -> str:
    """A size as the page writes it: KiB below a MiB, else MiB."""
    return f"{n / 1024:,.1f} KiB" if n < 2 ** 20 else f"{n / 2 ** 20:,.1f} MiB"


def score_delta(score: families.Score, base: families.Score) -> dict:
    """st.metric's delta arguments for a score against the original's, written as the family's metric writes it."""
    m = score.metric
    if m.percent:
        return delta((score.value - base.value) * 100, "{:+.2f} pt", not m.higher_is_better)
    return delta(score.value - base.value, "{:+.4f}", not m.higher_is_better)


@st.cache_data(show_spinner=False)
def fp32_bytes(name: str) -> int:
    """The original model's file size (measured: torch.save of the state dict)."""
    return slimcore.serialized_bytes(cache.sample(name).model)


@st.cache_resource(show_spinner=False)
def scorer(name: str, split: str = SPLIT) -> families.Scorer:
    """The family's scorer on a held-out split (its reference, if any, computed once per process and shared)."""
    s = cache.sample(name)
    return families.family_of(s).scorer(s, split)


@st.cache_data(show_spinner=False)
def original(name: str, split: str = SPLIT) -> families.Score:
    """The original model's score on a split (measured)."""
    return scorer(name, split)(cache.sample(name).model)


@st.cache_data(show_spinner=False, max_entries=32)
def ranges(name: str, method: str, percentile: float) -> q.Ranges:
    """Input ranges of every layer of a sample model on CALIBRATION_EXAMPLES training inputs."""
    s = cache.sample(name)
    x = families.family_of(s).split(s, "calibration").x[:CALIBRATION_EXAMPLES]
    return q.calibrate(s.model, x, method, percentile)


def _calibration(name: str, cfg: q.QuantConfig) -> q.Ranges | None:
    return ranges(name, cfg.activations.method, cfg.activations.percentile) if cfg.activations else None


def _quantized(name: str, cfg: q.QuantConfig) -> torch.nn.Module:
    if cfg.activations and not activations_supported(name):
        raise families.unsupported("activation quantization", family(name), ["weights only"])
    return q.quantize(cache.sample(name).model, config=cfg, calibration=_calibration(name, cfg), layers=layers(name))


@st.cache_data(show_spinner=False, max_entries=256)
def fake_score(name: str, cfg_key: str, split: str = SPLIT) -> families.Score:
    """The family's score of the fake-quantized model (measured, of a simulated model), kept on disk; the quality
    curve keeps the score of each of its bit widths there too, so a slider move to a width the curve has measured
    reads it instead of evaluating the model again."""
    return work.kept("fake_score", name, (cfg_key, split), lambda: scorer(name, split)(_quantized(name, _cfg(cfg_key))))


@st.cache_data(show_spinner=False, max_entries=256)
def variant(name: str, cfg_key: str) -> dict:
    """Score (measured, of the simulated model), per-layer weight errors and modelled size of one setting (kept on
    disk; the quality curve's job prepares every bit width of its setting)."""
    def compute() -> dict:
        cfg = _cfg(cfg_key)
        model = cache.sample(name).model
        qw = q.quantized_weights(model, cfg, layers(name))
        return {"score": fake_score(name, cfg_key), "errors": q.layer_errors(model, qw, layers(name)),
                "size": q.modelled_bytes(model, cfg, layers(name))}
    return work.kept("quant_variant", name, cfg_key, compute)


@st.cache_data(show_spinner=False, max_entries=24)   # a MiniLM layer's weights and codes: ~9 MB an entry
def layer_detail(name: str, cfg_key: str, layer: str) -> dict:
    """One layer's fp32 weights, quantized weights, grid levels (of the widest channel when per channel) and step."""
    cfg = _cfg(cfg_key)
    model, known = cache.sample(name).model, layers(name)
    if layer not in known:
        raise ValueError(f"layer {layer!r} has no weights to quantize; layers with weights: {', '.join(known)}")
    return q.layer_grid(cache.weight(known[layer]), cfg, q.quantized_weights(model, cfg, known)[f"{layer}.weight"])


def curve(name: str, cfg_key: str) -> dict | None:
    """The family's quality at 1..16 weight bits and with ternary weights, for one scheme / granularity / activation
    / rounding setting: {"bits", "scores", "ternary"}; computed in the background once per setting and kept on disk
    (None, with a placeholder drawn, until it is there)."""
    line = work.later(curve_task(name, cfg_key))
    if line is not None:
        cfg = replace(_cfg(cfg_key), bits=8, ternary=False)
        st.caption(f"Quality against bits: {work.origin('quant_curve', name, cfg)}.")
    return line


def curve_task(name: str, cfg_key: str) -> work.Task:
    return work.Task(f"quant_curve|{name}|{cfg_key}", lambda progress: curve_now(name, cfg_key),
                     "Measuring the quality at every bit width (once per setting)", "quant_curve", name,
                     guess=3.0 if family(name).name == "classifier" else 30.0)


def curve_now(name: str, cfg_key: str) -> dict:
    cfg = replace(_cfg(cfg_key), bits=8, ternary=False)

    def compute() -> dict:
        s, calib = cache.sample(name), _calibration(name, cfg)
        points = q.quality_by_bits(s.model, scorer(name), cfg, CURVE_BITS, calib, layers(name))
        tern = scorer(name)(q.quantize(s.model, config=replace(cfg, ternary=True), calibration=calib,
                                       layers=layers(name)))
        for p in points:   # the same evaluation as fake_score's: kept, and the slider's other figures prepared
            work.keep("fake_score", name, (key(p.config), SPLIT), p.score)
            variant(name, key(p.config))
        return {"bits": [p.bits for p in points], "scores": [p.score for p in points], "ternary": tern}
    return work.kept("quant_curve", name, cfg, compute)


def curve_key(cfg: q.QuantConfig) -> str:
    """The curve's cache key: the config without its bit width and ternary choice (the curve covers them all)."""
    return key(replace(cfg, bits=8, ternary=False))


# --------------------------------------------------------------------------------------------------- real int8

def int8_variants(name: str) -> dict[str, int8_backend.Int8Variant]:
    """The real int8 variants the model's family offers (slimcore.int8.variants), by label."""
    return int8_backend.variants(cache.sample(name))


def int8_labels(name: str) -> list[str]:
    return list(int8_variants(name))


ORT_FP32 = "fp32 (ONNX Runtime)"   # the fp32 model in ONNX Runtime: the engine's own effect, before int8
ORT_FP32_NOTE = ("The fp32 model exported to ONNX (torch.onnx) and run by ONNX Runtime, unquantized: what the engine "
                 "alone changes, so that its int8 rows can be read against it.")


@st.cache_resource(show_spinner=False, max_entries=8)
def engine_table(name: str) -> tuple[dict[str, int8_backend.Int8Model], nn.Module]:
    """Every real int8 model of a sample and its fp32 model in ONNX Runtime (slimcore.int8.build_table: ONNX
    Runtime's from one export), built once per process and shared (read-only) by every session. ONNX Runtime's files
    are kept on disk like any deterministic result: after a restart, timing the table opens sessions instead of
    exporting again (a minilm export and quantization take about 15 s)."""
    s = cache.sample(name)

    def files() -> dict:
        made = int8_backend.table_files(s)
        return {**made, "int8": [np.frombuffer(b, np.uint8) for b in made["int8"]],
                "fp32": np.frombuffer(made["fp32"], np.uint8)}
    kept = work.kept("ort_files", name, tuple(int8_labels(name)), files)
    return int8_backend.build_table(s, {**kept, "int8": [a.tobytes() for a in kept["int8"]],
                                        "fp32": kept["fp32"].tobytes()})


def int8_model(name: str, label: str) -> int8_backend.Int8Model:
    """A real int8 model of a sample, from engine_table (a label the family does not offer: the one-line error)."""
    built = engine_table(name)[0]
    return built[label] if label in built else int8_backend.build(cache.sample(name), label)


def ort_fp32(name: str) -> nn.Module:
    """The sample's fp32 model run by ONNX Runtime, from engine_table."""
    return engine_table(name)[1]


def engine_models(name: str) -> dict[str, nn.Module]:
    """The models of the int8 table besides the original: fp32 in ONNX Runtime, then every real int8 variant."""
    built, fp32 = engine_table(name)
    return {ORT_FP32: fp32, **{k: r.model for k, r in built.items()}}


def int8_figures(name: str, label: str, split: str = SPLIT) -> dict:
    """Measured score (the family's) and serialized size of a real int8 model, or of ORT_FP32 (kept on disk)."""
    def compute() -> dict:
        if label == ORT_FP32:
            m = ort_fp32(name)
            return {"score": scorer(name, split)(m), "size_bytes": slimcore.serialized_bytes(m), "kind": "fp32",
                    "engine": ort_int8.ENGINE, "notes": ORT_FP32_NOTE}
        r = int8_model(name, label)
        return {"score": scorer(name, split)(r.model), "size_bytes": slimcore.serialized_bytes(r.model),
                "kind": r.kind, "engine": r.engine, "notes": " ".join(r.notes)}
    return work.kept("int8_figures", name, (label, split), compute)


def int8_all(name: str) -> dict | None:
    """The figures of every real int8 variant, built in the background (None, with a placeholder, until then)."""
    return work.later(int8_task(name))


def int8_task(name: str) -> work.Task:
    return work.Task(f"int8|{name}",
                     lambda progress: {k: int8_figures(name, k) for k in [ORT_FP32, *int8_labels(name)]},
                     "Building the real int8 models (once per model)", "int8", name,
                     guess=4.0 if family(name).name == "classifier" else 30.0)


def timings(name: str) -> dict[str, dict[int, Latency]]:
    """Latency of fp32 and of every real int8 variant at the family's timing batches, timed side by side
    (round-robin, so that the machine's load hits them alike): {model: {batch: Latency}}. The page times them in the
    background (components.Timed)."""
    s = cache.sample(name)
    return slimcore.time_models(s, {"fp32": s.model, **engine_models(name)})


def timing(name: str) -> work.Task:
    """The Quantization page's timed block: timings() in the background."""
    return timing_task("Timing fp32 and int8 side by side (once per model)", name, f"quant|{name}",
                       lambda: timings(name), guess=3.0 if family(name).name == "classifier" else 30.0)


def _speed(lat: Latency | None, ref: Latency | None = None) -> str:
    if lat is None:
        return "timing…"
    text = f"{lat.median_ms:.3f} ms (IQR {lat.iqr_ms:.3f})"
    return text + (f" · {ref.median_ms / lat.median_ms:.2f}× fp32" if ref is not None else "")


def int8_table(name: str, sim_label: str, sim: families.Score, sim_bytes: float, int8: dict | None,
               lat: dict | None, detail: Callable[[families.Score], dict[str, str]] | None = None) -> pd.DataFrame:
    """fp32, the simulated model and each real int8 variant: the family's quality, size and latency at its timing
    batches (measured unless said), then the family's detail figures (`detail`: score -> {column: text})."""
    fam, base = family(name), original(name)
    batches = fam.timing_batches
    quality = f"{fam.metric.short} (measured)"

    def row(label: str, engine: str, score: families.Score | None, size: str, times: list[str]) -> dict:
        cells = {"model": label, "engine": engine, quality: fam.metric.format(score.value) if score else "building…",
                 "size": size}
        cells.update({f"latency, batch {b} (measured)": t for b, t in zip(batches, times)})
        return {**cells, **(detail(score) if detail and score else {})}

    f32 = lat["fp32"] if lat else {}
    rows = [row("fp32 (original)", "torch", base, f"{fmt_bytes(fp32_bytes(name))} (measured file)",
                [_speed(f32.get(b)) for b in batches]),
            row(f"simulated: {sim_label} fake quant", "torch", sim, f"{fmt_bytes(sim_bytes)} (modelled)",
                ["= fp32 (fp32 kernels)"] * len(batches))]
    f = (int8 or {}).get(ORT_FP32)
    rows.insert(1, row(ORT_FP32, "ONNX Runtime", f["score"] if f else None,
                       f"{fmt_bytes(f['size_bytes'])} (measured file)" if f else "building…",
                       [_speed(lat[ORT_FP32][b], f32[b]) if lat else "timing…" for b in batches]))
    for label, v in int8_variants(name).items():
        f = (int8 or {}).get(label)
        times = [_speed(lat[label][b], f32[b]) if lat else "timing…" for b in batches]
        rows.append(row(f"real {label}", int8_backend.ENGINE_NAMES[v.engine], f["score"] if f else None,
                        f"{fmt_bytes(f['size_bytes'])} (measured file)" if f else "building…", times))
    return pd.DataFrame(rows)


def engines_note(name: str, int8: dict, lat: dict | None) -> str:
    """Why the two int8 engines differ, with the measured figures of each engine's best row (the family's quality;
    with `lat`, each one's speed-up over fp32 at every timing batch, and ONNX Runtime's fp32 against torch's): one
    paragraph under the int8 table. Every difference it names is one of the two rows' settings."""
    fam, table = family(name), int8_variants(name)
    sign = 1 if fam.metric.higher_is_better else -1
    best = {}
    for engine in int8_backend.ENGINES:
        labels = [k for k, v in table.items() if v.engine == engine and k in int8]
        if labels:
            best[engine] = max(labels, key=lambda k: sign * int8[k]["score"].value)
    if len(best) < 2:
        return ""
    ort, ao = best["onnxruntime"], best["torch"]
    o, t = table[ort], table[ao]

    def named(label: str) -> str:   # which row, where an engine has several
        several = sum(v.engine == table[label].engine for v in table.values()) > 1
        return f" ({label})" if several else ""

    static = int8[ort].get("kind") == "static" and int8[ao].get("kind") == "static"
    differ = ["torch.ao quantizes activations to 7 of their 8 bits (reduce_range, against overflow in fbgemm's 16-bit "
              "intermediate sums on x86 CPUs without VNNI), ONNX Runtime to all 8"]
    if static:
        differ.append("ONNX Runtime calibrates activation ranges by min/max, torch.ao by a histogram observer")
    elif o.per_channel != t.per_channel:
        differ.append(f"ONNX Runtime's weights are {'per channel' if o.per_channel else 'per tensor'}, torch.ao's "
                      f"{'per channel' if t.per_channel else 'per tensor'}")
    if o.embeddings != t.embeddings:
        differ.append(f"only {'ONNX Runtime' if o.embeddings else 'torch.ao'} stores the embedding tables in 8 bits")
    q = {e: fam.metric.format(int8[k]["score"].value) for e, k in best.items()}
    quality = ("higher" if sign * (int8[ort]["score"].value - int8[ao]["score"].value) > 0 else "lower") \
        if q["onnxruntime"] != q["torch"] else "the same"
    text = (f"**Why the engines differ.** Both run the Linear and convolution layers in int8 and keep the rest fp32 "
            f"(each model's notes, below, list what). Between their best rows: {'; '.join(differ)}. Best "
            f"{fam.metric.short}: ONNX Runtime {q['onnxruntime']}{named(ort)}, torch.ao {q['torch']}{named(ao)}. "
            f"ONNX Runtime is the lab's default engine (listed first; its int8 model exports as one ONNX file): here "
            f"it measured {quality} {fam.metric.short}")
    if lat:
        def speedup(label: str, batch: int) -> float:
            return lat["fp32"][batch].median_ms / lat[label][batch].median_ms

        parts = []
        for batch in sorted(lat["fp32"]):
            a, b = speedup(ort, batch), speedup(ao, batch)
            how = "as fast" if round(a, 2) == round(b, 2) else "faster" if a > b else "slower"
            parts.append(f"{how} at batch {batch} ({a:.2f}× fp32 against {b:.2f}×)")
        text += ", and was " + " and ".join(parts)
        if ORT_FP32 in lat:
            engine = ", ".join(f"{speedup(ORT_FP32, batch):.2f}× at batch {batch}" for batch in sorted(lat["fp32"]))
            text += (f". Part of that is the engine, not int8: ONNX Runtime's fp32 model runs {engine} as fast as "
                     "torch's (the fp32 (ONNX Runtime) row)")
    return text + "."



# ------------------------------------------------------------------------------------ settings and figures

PRESETS: dict[str, dict[str, Any]] = {"mild": dict(bit_width=6, granularity="per channel"),
                                      "aggressive": dict(bit_width=4, granularity="per channel"),
                                      "breaks it": dict(bit_width=2)}


def setting_config(v: dict) -> q.QuantConfig:
    """A setting (the page's values by key; advanced ones at their defaults when hidden) as its QuantConfig."""
    return config(v["bit_width"], v["ternary"], v["scheme"], v["granularity"], v["quant_target"], v["act_bits"],
                  v["calibration"], v["rounding"])


def figures(name: str, cfg: q.QuantConfig, real: bool = False) -> dict[str, Figure]:
    """A setting's headline figures as the page shows them (A/B comparison, lessons): the same kept variant; with
    `real`, also the real int8 models' (they do not follow the slider), when the page's background work has built
    and timed them."""
    now, metric = variant(name, key(cfg)), family(name).metric
    extra = real_figures(name) if real else {}
    sqnr = [e.sqnr_db for e in now["errors"]]
    finite = [v for v in sqnr if math.isfinite(v)]
    return {"score": Figure(f"{metric.short.capitalize()}, simulated", now["score"].value,
                            "percent" if metric.percent else "number", metric.higher_is_better, "measured"),
            "size_bytes": Figure("Size", now["size"].bytes, "bytes", False, "modelled"),
            "smaller": Figure("Smaller than fp32", fp32_bytes(name) / now["size"].bytes, "ratio", True, "modelled"),
            "sqnr": Figure("Mean SQNR over the layers", sum(finite) / len(finite) if finite else math.inf, "db", True,
                           "measured"),
            "worst_sqnr": Figure("Worst layer's SQNR", min(sqnr), "db", True, "measured")} | extra


def real_figures(name: str) -> dict[str, Figure]:
    """The smallest real int8 model's figures, when built (and its speed-up over fp32, when timed); else none."""
    built = work.done(int8_task(name))
    if not built:
        return {}
    metric = family(name).metric
    label, f = min(((k, v) for k, v in built.items() if v["kind"] != "fp32"), key=lambda kv: kv[1]["size_bytes"])
    out = {"int8_score": Figure(f"Real int8 ({label}): {metric.short}", f["score"].value,
                                "percent" if metric.percent else "number", metric.higher_is_better, "measured"),
           "int8_bytes": Figure(f"Real int8 ({label}): file size", f["size_bytes"], "bytes", False, "measured"),
           "int8_smaller": Figure("Real int8: smaller than fp32", fp32_bytes(name) / f["size_bytes"], "ratio", True,
                                  "measured")}
    lat = work.done(timing(name))
    if lat is not None and label in lat:
        big = family(name).timing_batches[-1]
        noisy = lat["fp32"][big].noisy or lat[label][big].noisy
        out["int8_speedup"] = Figure(f"Real int8: speed-up at batch {big}", lat["fp32"][big].median_ms
                                     / lat[label][big].median_ms, "ratio", True,
                                     "measured" + (", noisy: a wide spread between runs" if noisy else ""))
    return out
