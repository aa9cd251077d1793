"""Real int8 in ONNX Runtime, the engine most people deploy int8 on a CPU with, beside torch.ao (slimcore.int8).

The model the lab shows is exported to ONNX (torch.onnx, batch size and sentence length left free), then quantized
by onnxruntime's own tools:
- dynamic int8 (quantize_dynamic): int8 weights, per tensor or per output channel; activations quantized on the fly
  per batch. For Linear-heavy models (MLPs, the sentence encoder).
- static int8 (quantize_static, QDQ format): int8 weights per channel and uint8 activations whose ranges are
  calibrated (min/max, the lab's default for simulated activations; torch.ao's static int8 uses a histogram
  observer) on the same calibration inputs torch.ao's static int8 uses.
  For models with convolutions.

The result is an `OrtModel` module: it runs the int8 ONNX file in an onnxruntime session and is called like the
original model (inputs in, logits or embeddings out), so the family's scorer, the timing and the page measure it like
any other model. Its size is the int8 ONNX file's length (`file_bytes`, read by slimcore.metrics.serialized_bytes).
slimcore.int8.build makes one for a variant with engine "onnxruntime"; slimcore.export writes its file as is.

Why its int8 differs from torch.ao's (measured on MiniLM, benchmarks/bench_int8_engines.py): both quantize the same
36 Linear layers (ONNX Runtime: MatMulInteger; the attention products, softmax, LayerNorm and GELU stay fp32 in both),
but torch.ao's dynamic Linear quantizes activations to 7 of the 8 bits (reduce_range, against overflow in fbgemm's
16-bit intermediate sums on x86 CPUs without VNNI) and ONNX Runtime uses all 8. That alone is the quality gap: torch.ao
called with 8-bit activations matches ONNX Runtime's mean cosine.
"""
from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .families import family_of
from .paths import child_env

ENGINE = "onnxruntime"


class _NoPreprocessingAdvice(logging.Filter):
    """onnxruntime's quantizer advises, on the root logger, to pre-process before quantizing; static does, and
    dynamic int8 of MatMul/Gemm/Gather does not need it: keep that line out of the server's and the CLI's output."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "consider to run pre-processing" not in record.getMessage()


logging.getLogger().addFilter(_NoPreprocessingAdvice())


class OrtModel(nn.Module):
    """An ONNX model run by onnxruntime on the CPU, called like the torch model it came from."""

    def __init__(self, onnx: bytes, threads: int | None = None) -> None:
        super().__init__()
        import onnxruntime as ort

        self.onnx = onnx
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()   # the same threads as torch's timing
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Idle worker threads must not spin: spinning after every run took the CPU from whatever ran next (torch
        # models timed round-robin beside it, a page): MiniLM fp32 in torch measured 52.6 ms at batch 1 beside
        # spinning sessions and 8.9 ms without them, on 2 cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(onnx, options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def file_bytes(self) -> int:
        """Measured size: the length of the int8 ONNX file."""
        return len(self.onnx)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run(None, {self.input: x.detach().cpu().numpy()})[0])

    def __getstate__(self) -> dict[str, Any]:   # a session cannot be pickled: the bytes can
        return {"onnx": self.onnx}

    def __setstate__(self, state: dict[str, Any]) -> None:
        OrtModel.__init__(self, state["onnx"])


def fp32_onnx(model: nn.Module, example: torch.Tensor, family: str = "classifier") -> bytes:
    """The model as an fp32 ONNX file, written by slimcore.export.write_onnx (the exports' writer: batch size and an
    encoder's sentence length free)."""
    from .export import write_onnx

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fp32.onnx"
        write_onnx(model.eval(), example, path, family)
        return path.read_bytes()


def dynamic(onnx: bytes, per_channel: bool, embeddings: bool = True) -> bytes:
    """onnxruntime's dynamic int8: int8 weights (per output channel or per tensor) of MatMul/Gemm, activations
    quantized per batch (uint8, all 8 bits); with `embeddings`, embedding tables (Gather) stored in 8 bits too,
    dequantized as they are read."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(onnx)
        quantize_dynamic(str(src), str(dst), per_channel=per_channel, weight_type=QuantType.QInt8,
                         op_types_to_quantize=["MatMul", "Gemm"] + (["Gather"] if embeddings else []))
        return dst.read_bytes()


class _Calibration:
    """onnxruntime's CalibrationDataReader over a tensor of inputs, in batches."""

    def __init__(self, name: str, x: torch.Tensor, batch: int = 64) -> None:
        self._batches = iter([{name: x[i:i + batch].numpy()} for i in range(0, len(x), batch)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def static(onnx: bytes, calibration: torch.Tensor) -> bytes:
    """onnxruntime's static int8 in QDQ format: int8 weights per channel, uint8 activations with min/max ranges
    calibrated on `calibration`."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp:
        src, pre, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(onnx)
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(dst), _Calibration("input", calibration), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
        return dst.read_bytes()


def ops(onnx: bytes) -> dict[str, int]:
    """How many nodes of each operator type an ONNX file holds (what is int8, what stays fp32)."""
    import onnx as onnx_lib

    counts: dict[str, int] = {}
    for node in onnx_lib.load_model(io.BytesIO(onnx)).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


INT8_OPS = {"MatMulInteger": "int8 matrix products", "DynamicQuantizeLinear": "activations quantized per batch",
            "QLinearConv": "int8 convolutions", "QLinearMatMul": "int8 matrix products",
            "QuantizeLinear": "quantize", "DequantizeLinear": "dequantize"}


def notes(how: dict[str, Any]) -> tuple[str, ...]:
    """What the ONNX Runtime int8 file holds, in words, from its operator counts: what is int8, what stays fp32."""
    ops = how["ops"]
    static = how["kind"] == "static"
    # in a QDQ file, convolutions and matrix products keep their float op type between quantize and dequantize nodes:
    # ONNX Runtime runs them as int8 kernels (QLinearConv, QGemm...), so they are not fp32 work
    kinds = ("Softmax", "LayerNormalization", "Gelu") if static else ("MatMul", "Gemm", "Conv", "Softmax",
                                                                      "LayerNormalization", "Gelu")
    fp32 = sorted(k for k in kinds if ops.get(k))
    if static:
        int8 = [f"{ops[k]} {k}" for k in ("Conv", "Gemm", "MatMul") if ops.get(k)]
        text = (f"ONNX Runtime static int8 (QDQ): weights int8 per output channel, activations uint8 per tensor "
                f"(all 8 bits) with ranges calibrated (min/max) on {how['calibration']:,} training inputs; "
                f"{ops.get('QuantizeLinear', 0)} quantize and {ops.get('DequantizeLinear', 0)} dequantize nodes "
                f"around {', '.join(int8)}, which ONNX Runtime fuses into int8 kernels (QLinearConv, QGemm) when it "
                "loads the file; ReLU is folded into the activation ranges.")
    else:
        text = (f"ONNX Runtime dynamic int8: {ops.get('MatMulInteger', 0)} weight matrix products int8 "
                f"(MatMulInteger, weights {'per output channel' if how['per_channel'] else 'per tensor'}); "
                f"activations quantized per batch to uint8 with all 8 bits ({ops.get('DynamicQuantizeLinear', 0)} "
                "DynamicQuantizeLinear nodes: layers that read the same input share one).")
        if how["embeddings"] and ops.get("DequantizeLinear"):
            text += f" {ops['DequantizeLinear']} embedding table(s) stored in 8 bits, dequantized as rows are read."
    named = {"MatMul": "MatMul (products of two activations: attention)"}
    kept = f" Stays fp32: {', '.join(f'{ops[k]} {named.get(k, k)}' for k in fp32)}." if fp32 else ""
    return (text + kept,)


Spec = tuple[str, bool, bool]   # (kind: "auto", "dynamic" or "static"; per_channel; embeddings)


def build(sample: Any, kind: str = "auto", per_channel: bool = True, calibration: int = 512,
          embeddings: bool = True) -> tuple[OrtModel, dict[str, Any]]:
    """The ONNX Runtime int8 model of a sample (its model is only read): static QDQ when it has convolutions (or
    kind="static"), dynamic otherwise; and how it was made ({"kind", "per_channel", "embeddings", "calibration",
    "fp32_bytes", "ops"}). Exported and quantized in a child process (see `made`)."""
    _, [built] = build_many(sample, [(kind, per_channel, embeddings)], calibration)
    return built


def build_many(sample: Any, specs: list[Spec],
               calibration: int = 512) -> tuple[OrtModel, list[tuple[OrtModel, dict[str, Any]]]]:
    """The sample's fp32 model in ONNX Runtime and one int8 model per spec, as `build` makes each, from one export
    in one child process (a page shows them all: one export instead of one per model)."""
    fam = family_of(sample)
    convs = any(isinstance(m, (nn.Conv1d, nn.Conv2d)) for m in sample.model.modules())
    from .export import check_inputs  # the family's example batch, as every export uses (2 or more inputs)

    example = check_inputs(sample)
    kinds = []
    for kind, _, _ in specs:
        kind = ("static" if convs else "dynamic") if kind == "auto" else kind
        if kind not in ("dynamic", "static"):
            raise ValueError(f"kind must be auto, dynamic or static, got {kind!r}")
        if kind == "static" and not example.is_floating_point():
            raise ValueError("static int8 calibrates activation ranges from float inputs; this model reads token "
                             "ids: use dynamic")
        kinds.append(kind)
    jobs = tuple((k, pc, emb) for k, (_, pc, emb) in zip(kinds, specs))
    x = fam.split(sample, "calibration").x[:calibration] if "static" in kinds else None
    fp32, files, counts = made(Job(sample.model, example, fam.name, jobs, x))
    hows = [{"kind": kind, "per_channel": per_channel or kind == "static",
             "embeddings": embeddings and kind == "dynamic", "calibration": calibration if kind == "static" else 0,
             "fp32_bytes": len(fp32), "ops": n} for (kind, per_channel, embeddings), n in zip(jobs, counts)]
    return OrtModel(fp32), [(OrtModel(int8), how) for int8, how in zip(files, hows)]


# ------------------------------------------------------------------------------------ building in a child process

@dataclass
class Job:
    """What a child process makes: the model's fp32 ONNX file and an int8 file for each (kind, per_channel,
    embeddings) of `int8`, kind "dynamic" or "static" (static: calibrated on `calibration`)."""

    model: nn.Module
    example: torch.Tensor
    family: str
    int8: tuple[Spec, ...] = ()
    calibration: torch.Tensor | None = None

    def run(self) -> tuple[bytes, list[bytes], list[dict[str, int]]]:
        fp32 = lean(fp32_onnx(self.model, self.example, self.family))
        files = [lean(static(fp32, self._calibration()) if kind == "static" else dynamic(fp32, per_channel, embeddings))
                 for kind, per_channel, embeddings in self.int8]
        return fp32, files, [ops(f) for f in files]

    def _calibration(self) -> torch.Tensor:
        if self.calibration is None:
            raise ValueError("static int8 needs calibration inputs: this job has none")
        return self.calibration


def lean(onnx: bytes) -> bytes:
    """The ONNX file without the exporter's per-node debugging metadata (the Python stack and module path of each
    node: 0.3 MiB of MiniLM's 22 MiB int8 file); the graph, its weights and its shapes are unchanged."""
    import onnx as onnx_lib

    model = onnx_lib.load_model(io.BytesIO(onnx))
    for node in model.graph.node:
        del node.metadata_props[:]
    data: bytes = model.SerializeToString()
    return data


def made(job: Job) -> tuple[bytes, list[bytes], list[dict[str, int]]]:
    """Run a Job in a child process (`python -m slimcore.ort_int8 FOLDER`): torch.export, the ONNX exporter and
    onnxruntime's quantizer then leave nothing behind in this one. In the dashboard's server they held about 280 MiB
    for good after the first export, and their seconds of Python held the interpreter lock the pages need. The model
    goes to the child pickled by torch.save in a private temporary folder and is unpickled there in full
    (torch.load): our own objects, written a moment before (an upload's model is our rebuild of it, never the
    user's pickle). A model that cannot be pickled is built here instead."""
    with tempfile.TemporaryDirectory(prefix="slimlab-ort-") as tmp:
        folder = Path(tmp)
        try:
            torch.save(job, folder / "job.pt")
        except Exception:  # something unpicklable (a local function in a hook): build it in this process
            return job.run()
        env = dict(os.environ, **child_env(),
                   OMP_NUM_THREADS=str(torch.get_num_threads()))
        child = subprocess.run([sys.executable, "-m", "slimcore.ort_int8", str(folder)], env=env,
                               capture_output=True, text=True, timeout=CHILD_SECONDS)
        if child.returncode != 0:
            lines = [line for line in child.stderr.strip().splitlines() if line.strip()]
            raise RuntimeError(f"ONNX Runtime int8 could not be built: {lines[-1] if lines else child.returncode}")
        counts = json.loads((folder / "ops.json").read_text())
        return ((folder / "fp32.onnx").read_bytes(),
                [(folder / f"int8-{i}.onnx").read_bytes() for i in range(len(job.int8))], counts)


CHILD_SECONDS = 600   # a MiniLM export and two quantizations take about 12 s on 2 cores


def _child(folder: Path) -> None:
    job = torch.load(folder / "job.pt", weights_only=False)   # written by `made` in its private folder
    fp32, files, counts = job.run()
    (folder / "fp32.onnx").write_bytes(fp32)
    for i, data in enumerate(files):
        (folder / f"int8-{i}.onnx").write_bytes(data)
    (folder / "ops.json").write_text(json.dumps(counts))


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    _child(Path(sys.argv[1]))
