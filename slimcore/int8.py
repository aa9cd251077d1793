"""Real int8: the deployable int8 model built by PyTorch's own quantization (torch.ao), with real int8 kernels.

The only module that touches torch.ao.quantization, which PyTorch 2.13 marks deprecated (its successor is torchao):
moving on later changes this file only. Two recipes:
- dynamic (Linear-only models): int8 weights, activations quantized on the fly per batch (quantize_dynamic);
- static (models with convolutions): int8 weights and activations with ranges calibrated on a batch of training
  inputs, FX graph mode (prepare_fx / convert_fx) with the x86 engine's default qconfig.
Its quality (the family's scorer), latency and size (serialized bytes) are measured like any other model's.

One entry point for every model family and both engines: `build(sample, variant)`, where a variant is a label from
`variants(sample)` (the family's table, VARIANTS) or an Int8Variant. Its `engine` says who builds and runs the int8
model: "torch" (torch.ao; each family's builder is registered with `@builds(family)`, the classifier's here, the
sentence encoder's in slimcore.text_quant, as torchao maps a config to its handler) or "onnxruntime" (the model
exported to ONNX and quantized by ONNX Runtime's tools, slimcore.ort_int8: the same code for every family).

The lab's default engine, DEFAULT_ENGINE, is ONNX Runtime. Measured on this project's 2-core x86 machine
(benchmarks/bench_int8_engines.py): it keeps the encoder's quality (mean cosine 0.993 against torch.ao's 0.977, because
torch.ao uses 7-bit activations), the classifiers' accuracy is within half a point of fp32 in both; at batch 1 it is
faster than fp32 on every sample (torch.ao's int8 is slower than fp32 there on every classifier); at the large batch it
is about 10 % slower than torch.ao on the encoder (its graph runs attention as separate ops where torch runs one fused
kernel) and much slower on digits-cnn's 2-D convolutions (QLinearConv against fbgemm's); and its int8 model is a file
(ONNX) that loads anywhere ONNX Runtime runs. Int8Variant's own default stays "torch", so that a recipe written before
engines could be chosen still builds what it built.
"""
from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from . import jobs
from .families import family_of, unsupported
from .quantization import CALIBRATION as Q_CALIBRATION

KINDS = ("auto", "dynamic", "static")
ENGINES = ("torch", "onnxruntime")   # who builds and runs the int8 model: torch.ao, or ONNX Runtime
DEFAULT_ENGINE = "onnxruntime"       # the lab's choice, by the measured figures (see above)
ENGINE_NAMES = {"torch": "torch.ao", "onnxruntime": "ONNX Runtime"}
ENGINE = "x86"
CONVS = (nn.Conv1d, nn.Conv2d)

# The warnings torch.ao emits on every use in 2.13; silenced here, and only while this module calls into torch.ao.
_SILENCED = (
    (DeprecationWarning, r"torch\.ao\.quantization is deprecated"),
    (UserWarning, r"Please use quant_min and quant_max"),
    (UserWarning, r"torch\.quantize_per_tensor, torch\.quantize_per_channel and other quantized tensor creation"),
)


@contextmanager
def quiet() -> Iterator[None]:
    """Silence torch.ao's deprecation notice and its notes on quantized tensor creation while building int8 models."""
    with warnings.catch_warnings():
        for category, message in _SILENCED:
            warnings.filterwarnings("ignore", message=message, category=category)
        yield


@dataclass(frozen=True)
class Int8Model:
    """A real int8 model (int8 weights run by int8 kernels: torch.ao's packed modules, or an ONNX Runtime session) and
    how it was made."""

    model: nn.Module
    kind: str                # "dynamic" or "static"
    engine: str              # torch.ao: the torch.backends.quantized.engine of its kernels ("x86"); or "onnxruntime"
    notes: tuple[str, ...]   # what is int8, what stays fp32, what did not apply

    def describe(self) -> str:
        return f"{self.kind} int8 ({self.engine} engine): " + " ".join(self.notes)


def _engine() -> str:
    """Use the x86 engine when this build has it (the default on x86 machines); else keep the current one."""
    engines = torch.backends.quantized.supported_engines
    if ENGINE in engines and torch.backends.quantized.engine != ENGINE:
        torch.backends.quantized.engine = ENGINE
    return torch.backends.quantized.engine


def _dynamic(model: nn.Module) -> nn.Module:
    from torch.ao.quantization import quantize_dynamic

    q: nn.Module = quantize_dynamic(  # type: ignore[no-untyped-call]  # torch.ao's function has no annotations
        copy.deepcopy(model), {nn.Linear}, dtype=torch.qint8)
    return q.eval()


def _fusable_graph(model: nn.Module) -> torch.fx.GraphModule:
    """An FX graph of a copy of model with torch.relu written as F.relu and nn.Flatten as torch.flatten: the same
    computation, in the spelling torch.ao's fusion patterns know (conv/linear + F.relu fuse into one int8 kernel, and
    torch.flatten keeps tensors quantized between the last conv and the first linear)."""
    gm = torch.fx.symbolic_trace(copy.deepcopy(model))
    for node in list(gm.graph.nodes):
        if node.op == "call_function" and node.target is torch.relu:
            node.target = F.relu
        elif node.op == "call_module" and isinstance(flat := gm.get_submodule(node.target), nn.Flatten):
            with gm.graph.inserting_after(node):
                new = gm.graph.call_function(torch.flatten, (node.args[0], flat.start_dim, flat.end_dim))
            node.replace_all_uses_with(new)
            gm.graph.erase_node(node)
    gm.graph.lint()
    gm.delete_all_unused_submodules()
    gm.recompile()
    return gm


@torch.inference_mode()
def _calibrate(prepared: nn.Module, x: torch.Tensor, batch: int = 256) -> None:
    for i in range(0, len(x), batch):
        prepared(x[i:i + batch])


# torch.fx's symbolic tracing patches torch.nn.Module.__call__ for the whole process while it traces: a forward pass
# in another thread meanwhile fails ("module is not installed as a submodule"). Traces pass jobs.GATE exclusively:
# they wait until no other thread runs a page (the dashboard's page runs pass it shared), and hold the pages back for
# the milliseconds a trace takes. The dashboard builds int8 models in its background worker, one job at a time.
FX_TRACE = jobs.GATE


def _static(model: nn.Module, calibration: torch.Tensor) -> nn.Module:
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    with FX_TRACE.exclusive():
        prepared = prepare_fx(_fusable_graph(model), get_default_qconfig_mapping(ENGINE), (calibration[:1],))
    _calibrate(prepared, calibration)
    with FX_TRACE.exclusive():
        return convert_fx(prepared).eval()


def int8_model(model: nn.Module, calibration: torch.Tensor | None = None, kind: str = "auto") -> Int8Model:
    """The deployable int8 version of a model (never changes the given one). kind "auto": static when the model has
    convolutions and a calibration batch (use training inputs, never test data) is given, else dynamic."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    has_conv = any(isinstance(m, CONVS) for m in model.modules())
    has_linear = any(isinstance(m, nn.Linear) for m in model.modules())
    if not (has_conv or has_linear):
        raise ValueError("this model has no Linear or Conv layers: there is nothing for int8 kernels to run")
    if calibration is not None and len(calibration) == 0:
        raise ValueError("the calibration batch is empty")
    if kind == "auto":
        kind = "static" if has_conv and calibration is not None else "dynamic"
    if kind == "static" and calibration is None:
        raise ValueError("static int8 needs a calibration batch of training inputs")
    notes: list[str] = []
    with quiet():
        engine = _engine()
        if kind == "static":
            assert calibration is not None   # static without a calibration batch was refused above
            try:
                q = _static(model, calibration)
                notes.append(f"Conv and Linear weights int8 per channel; activations uint8 per tensor with ranges "
                             f"calibrated on {len(calibration):,} training inputs (histogram observer; the x86 default "
                             f"uses 7 of the 8 bits, reduce_range, against overflow in 16-bit accumulation); "
                             f"conv/linear + ReLU fused; biases handed to the int8 kernels in fp32.")
            except Exception as e:  # not FX-traceable, or an op without an int8 kernel
                q, kind = _dynamic(model), "dynamic"
                notes.append(f"static int8 did not apply ({type(e).__name__}: {str(e)[:120]}); fell back to dynamic.")
        else:
            q = _dynamic(model)
        if kind == "dynamic":
            notes.append("Linear weights int8 per tensor; activations quantized on the fly for each batch, so every "
                         "call pays for finding their range.")
            if has_conv:
                notes.append("Convolutions stay fp32: dynamic quantization does not apply to them.")
    if engine != ENGINE:
        notes.append(f"The {ENGINE} engine is not in this PyTorch build; kernels of the {engine} engine used instead.")
    return Int8Model(q, kind, engine, tuple(notes))


def dynamic_int8(model: nn.Module, per_channel: bool = False, only: set[str] | None = None) -> Int8Model:
    """Dynamic int8 of a model's Linear layers (all of them, or only those named by dotted path), with one weight
    grid per tensor (torch.ao's default_dynamic_qconfig) or per output channel (per_channel_dynamic_qconfig).
    Never changes the given model; Linear layers not named stay fp32 nn.Linear."""
    from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig, quantize_dynamic

    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("this model has no Linear layers: there is nothing for dynamic int8 kernels to run")
    if only is not None:
        unknown = sorted(set(only) - set(linears))
        if unknown:
            raise ValueError(f"not Linear layers of this model: {', '.join(unknown[:3])}")
        if not only:
            raise ValueError("no Linear layer chosen for int8")
    qconfig = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
    spec = {nn.Linear: qconfig} if only is None else {n: qconfig for n in only}
    with quiet():
        engine = _engine()
        q = quantize_dynamic(  # type: ignore[no-untyped-call]  # torch.ao's function has no annotations
            copy.deepcopy(model), spec, dtype=torch.qint8).eval()
    chosen = len(linears) if only is None else len(only)
    notes = (f"{chosen} of {len(linears)} Linear layers int8 with weights quantized "
             f"{'per output channel' if per_channel else 'per tensor'} (symmetric, codes -128..127); activations "
             f"quantized on the fly for each batch, per tensor, to 7 of 8 bits (torch.ao's reduce_range on the "
             f"{engine} engine, against overflow in its 16-bit intermediate sums); biases and everything that is "
             "not a Linear layer stay fp32.",)
    return Int8Model(q, "dynamic", engine, notes)


def is_dynamic_int8(module: nn.Module) -> bool:
    """True for a Linear layer replaced by torch.ao's dynamic int8 Linear (packed int8 weights, int8 kernel)."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    return isinstance(module, DynamicLinear)


# --------------------------------------------------------------------------------- one entry point, every family

@dataclass(frozen=True)
class Int8Variant:
    """One real int8 recipe a family offers (plain data: survives JSON and cache keys)."""

    kind: str = "auto"            # "auto", "dynamic" or "static" (static: activation ranges calibrated)
    per_channel: bool = False     # dynamic: one weight grid per output channel instead of one per tensor
    embeddings: bool = False      # encoders: the word-embedding table stored in 8 bits too (weight-only)
    engine: str = "torch"         # "torch" (torch.ao) or "onnxruntime"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")


CALIBRATION = Q_CALIBRATION   # training inputs that calibrate static int8: the simulation's number

# The real int8 models each family's Quantization lab shows, by label, ONNX Runtime's (the default engine) first: the
# page, benchmarks and golden read this table.
_ORT = "onnxruntime"
VARIANTS: dict[str, dict[str, Int8Variant]] = {
    "classifier": {"int8 (ONNX Runtime)": Int8Variant("auto", True, engine=_ORT),
                   "int8 (torch.ao)": Int8Variant("auto")},
    "encoder": {"ONNX Runtime int8 per tensor, embeddings too": Int8Variant("dynamic", False, True, _ORT),
                "ONNX Runtime int8 per channel, embeddings too": Int8Variant("dynamic", True, True, _ORT),
                "int8 per tensor": Int8Variant("dynamic", False), "int8 per channel": Int8Variant("dynamic", True),
                "int8 per channel, embeddings too": Int8Variant("dynamic", True, embeddings=True)},
}
Builder = Callable[[Any, Int8Variant], Int8Model]
BUILDERS: dict[str, Builder] = {}


def builds(family: str) -> Callable[[Builder], Builder]:
    """Register the function that builds a family's real int8 model from a sample and an Int8Variant."""
    def register(fn: Builder) -> Builder:
        BUILDERS[family] = fn
        return fn
    return register


def variants(sample: Any) -> dict[str, Int8Variant]:
    """The real int8 variants the sample's family offers, by label."""
    return dict(VARIANTS.get(family_of(sample).name, {}))


def build(sample: Any, variant: str | Int8Variant) -> Int8Model:
    """The real int8 model of a sample (never changes the sample's model), for a variant label of its family's table
    or an Int8Variant; a family or label without int8 is a one-line ValueError naming what there is."""
    fam = family_of(sample)
    if fam.name not in BUILDERS:
        raise unsupported("real int8", fam, [])
    if isinstance(variant, str):
        table = variants(sample)
        if variant not in table:
            raise unsupported(f"the int8 variant {variant!r}", fam, list(table))
        variant = table[variant]
    if variant.engine == "onnxruntime":
        return _onnxruntime(sample, variant)
    return BUILDERS[fam.name](sample, variant)


def _onnxruntime(sample: Any, variant: Int8Variant) -> Int8Model:
    """ONNX Runtime int8 of any family's model (slimcore.ort_int8): static QDQ calibrated on the calibration split's
    first CALIBRATION inputs when it has convolutions (kind auto or static), else dynamic."""
    from . import ort_int8

    _has_int8_layers(sample.model)
    return _ort_result(*ort_int8.build(sample, variant.kind, variant.per_channel, CALIBRATION, variant.embeddings))


def _ort_result(model: nn.Module, how: dict[str, Any]) -> Int8Model:
    """An ONNX Runtime int8 model and how slimcore.ort_int8 made it, as an Int8Model (its notes from the file)."""
    from . import ort_int8

    return Int8Model(model, how["kind"], ort_int8.ENGINE, ort_int8.notes(how))


def _has_int8_layers(model: nn.Module) -> None:
    if not any(isinstance(m, (nn.Linear, *CONVS)) for m in model.modules()):
        raise ValueError("this model has no Linear or Conv layers: there is nothing for int8 kernels to run")


def build_table(sample: Any, files: dict[str, Any] | None = None) -> tuple[dict[str, Int8Model], nn.Module]:
    """Every real int8 variant of the sample's family table, by label, each as `build` makes it, and the sample's
    fp32 model run by ONNX Runtime: ONNX Runtime's models all come from one export in one child process (what the
    Quantization page shows, built at once). `files`: ONNX Runtime's part as `table_files` made it before (kept on
    disk by the page), so that only sessions are opened."""
    from . import ort_int8

    _has_int8_layers(sample.model)
    table = variants(sample)
    files = table_files(sample) if files is None else files
    made = {k: _ort_result(ort_int8.OrtModel(bytes(data)), how)
            for k, data, how in zip(files["labels"], files["int8"], files["how"])}
    return {k: made[k] if k in made else build(sample, k) for k in table}, ort_int8.OrtModel(bytes(files["fp32"]))


def table_files(sample: Any) -> dict[str, Any]:
    """ONNX Runtime's part of the sample's int8 table as plain data: {"labels", "int8": [file bytes], "how": [how
    each was made], "fp32": the fp32 ONNX file}, from one export in one child process."""
    from . import ort_int8

    table = variants(sample)
    ort = [k for k, v in table.items() if v.engine == "onnxruntime"]
    fp32, built = ort_int8.build_many(sample, [(table[k].kind, table[k].per_channel, table[k].embeddings)
                                               for k in ort], CALIBRATION)
    return {"labels": ort, "int8": [m.onnx for m, _ in built], "how": [how for _, how in built], "fp32": fp32.onnx}


@builds("classifier")
def _classifier(sample: Any, variant: Int8Variant) -> Int8Model:
    """Dynamic for Linear-only models, static (calibrated on the head of the calibration split) with convolutions."""
    if variant.per_channel or variant.embeddings:
        raise unsupported("per-channel dynamic or 8-bit embedding int8", family_of(sample),
                          ["kind auto/dynamic/static"])
    calibration = None if variant.kind == "dynamic" else family_of(sample).split(sample, "calibration").x[:CALIBRATION]
    return int8_model(sample.model, calibration, variant.kind)
