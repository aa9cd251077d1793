"""Real int8 in ONNX Runtime, the engine most people deploy int8 on a CPU with, beside torch.ao (slimcore.int8).

The model the lab shows is exported to ONNX (torch.onnx, batch size and sentence length left free), then quantized
by onnxruntime's own tools:
- dynamic int8 (quantize_dynamic): int8 weights, per tensor or per output channel; activations quantized on the fly
  per batch. For Linear-heavy models (MLPs, the sentence encoder).
- static int8 (quantize_static, QDQ format): int8 weights per channel and uint8 activations whose ranges are
  calibrated (min/max, as the lab's default observer) on the same calibration inputs torch.ao's static int8 uses.
  For models with convolutions.

The result is an `OrtModel` module: it runs the int8 ONNX file in an onnxruntime session and is called like the
original model (inputs in, logits or embeddings out), so the family's scorer, the timing and the page measure it like
any other model. Its size is the int8 ONNX file's length (`file_bytes`, read by slimcore.metrics.serialized_bytes).
"""
from __future__ import annotations

import io
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .families import family_of

ENGINE = "onnxruntime"


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
        self.session = ort.InferenceSession(onnx, options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def file_bytes(self) -> int:
        """Measured size: the length of the int8 ONNX file."""
        return len(self.onnx)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run(None, {self.input: x.detach().cpu().numpy()})[0])

    def __getstate__(self) -> dict:   # a session cannot be pickled: the bytes can
        return {"onnx": self.onnx}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["onnx"])


def fp32_onnx(model: nn.Module, example: torch.Tensor) -> bytes:
    """The model as an fp32 ONNX file (opset of torch.onnx's exporter), every input dimension free for an encoder's
    token ids, the batch free otherwise."""
    free = ({d: torch.export.Dim.AUTO for d in range(example.dim())}
            if example.dim() == 2 and not example.is_floating_point() else {0: torch.export.Dim("batch")})
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fp32.onnx"
        torch.onnx.export(model.eval(), (example[:2],), str(path), dynamo=True, external_data=False, verbose=False,
                          input_names=["input"], output_names=["output"], dynamic_shapes=(free,))
        return path.read_bytes()


def dynamic(onnx: bytes, per_channel: bool) -> bytes:
    """onnxruntime's dynamic int8: int8 weights (per output channel or per tensor) of MatMul/Gemm, activations
    quantized per batch; embedding tables (Gather) stored in 8 bits too, dequantized as they are read."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(onnx)
        quantize_dynamic(str(src), str(dst), per_channel=per_channel, weight_type=QuantType.QInt8,
                         op_types_to_quantize=["MatMul", "Gemm", "Gather"])
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


def build(sample: Any, kind: str = "auto", per_channel: bool = True, calibration: int = 512) -> tuple[OrtModel, dict]:
    """The ONNX Runtime int8 model of a sample (its model is only read): static QDQ when it has convolutions (or
    kind="static"), dynamic otherwise; and how it was made ({"kind", "per_channel", "fp32_bytes", "ops"})."""
    fam = family_of(sample)
    convs = any(isinstance(m, (nn.Conv1d, nn.Conv2d)) for m in sample.model.modules())
    kind = ("static" if convs else "dynamic") if kind == "auto" else kind
    from .export import check_inputs   # the family's example batch, as every export uses (2 or more inputs)

    fp32 = fp32_onnx(sample.model, check_inputs(sample))
    if kind == "static":
        x = fam.split(sample, "calibration").x[:calibration]
        int8 = static(fp32, x)
    else:
        int8 = dynamic(fp32, per_channel)
    return OrtModel(int8), {"kind": kind, "per_channel": per_channel or kind == "static", "fp32_bytes": len(fp32),
                           "ops": ops(int8)}
