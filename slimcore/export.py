"""Export: write a compressed model (a recipe applied) in forms that load elsewhere, check that each one loads back and
computes what the model computes, and write the recipe and the measured figures beside them.

Formats, by kind of model (slimcore.recipe.KINDS):
Every model family is exported the same way; each file is checked on the family's example batch (its largest timing
batch: test inputs of a classifier, padded token ids of sentences for an encoder), comparing outputs (logits, or
embeddings) with the model's: a classifier's by top-1 agreement, an encoder's by cosine.
- state dict (`state_dict.pt`): plain tensors, masks folded in (pruned weights are zeros), loadable with
  torch.load(weights_only=True) into the same architecture. A structurally pruned model's layers are smaller (channels
  of a classifier; attention heads or FFN neurons of an encoder): `shapes.json` lists each weight layer's shape and the
  units left per layer (channels; heads and FFN neurons), and `thin(architecture, shapes)` resizes a fresh copy of
  the architecture to fit. Not for int8: its weights are torch.ao packed parameters, not plain tensors.
- TorchScript (`model.torchscript.pt`): the compressed model traced with torch.jit.trace on the family's example;
  loads with torch.jit.load, no Python class needed. Every kind, int8 included (TorchScript is deprecated in PyTorch
  2.13 but still works).
- ONNX (`model.onnx`): exported with torch.onnx (the torch.export-based exporter), batch size (and an encoder's
  sentence length) left free, checked with onnxruntime. Every fp32 kind (original, masked, structurally pruned,
  fake-quantized), and int8 built by ONNX Runtime (engine "onnxruntime": its own int8 file, written as it is and
  checked in a fresh session); not torch.ao's int8. ONNX Runtime's int8 has only this format.
"""
from __future__ import annotations

import copy
import io
import json
import logging
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from .families import family_of
from .jobs import GATE
from .metrics import predict, weight_layers
from .recipe import Applied, Recipe, apply, dump

log = logging.getLogger(__name__)
FORMATS = ("state_dict", "torchscript", "onnx")
ONNX_TOLERANCE = 1e-4          # largest |onnxruntime - torch| accepted on the example batch's outputs
STATE, SHAPES, SCRIPT, ONNX = "state_dict.pt", "shapes.json", "model.torchscript.pt", "model.onnx"
RECIPE, FIGURES = "recipe.yaml", "figures.json"
OURS = (STATE, SHAPES, SCRIPT, ONNX, RECIPE, FIGURES)   # the files an export writes, and replaces; nothing else
NO_INT8_STATE = ("the int8 weights are torch.ao packed parameters inside quantized modules, not plain tensors: no "
                 "state dict of the original architecture can hold them; use the TorchScript file")
NO_INT8_ONNX = ("ONNX export of torch.ao quantized modules is not supported: torch.onnx's exporter (torch.export) "
                "cannot trace their packed int8 parameters; use the TorchScript file, or choose the ONNX Runtime "
                "engine (int8: {engine: onnxruntime}), whose int8 model is an ONNX file")
NO_ORT_STATE = ("the ONNX Runtime int8 weights are int8 codes with scales inside the ONNX file, not tensors of the "
                "original architecture; use the ONNX file")
NO_ORT_SCRIPT = ("the ONNX Runtime int8 model runs in onnxruntime, not in torch: there is nothing for torch.jit to "
                 "trace; use the ONNX file")
_SHAPES_FORMAT = 1


@dataclass(frozen=True)
class Artifact:
    """One file written: its name in the output directory, its measured size, what it is and how it was checked."""

    name: str
    bytes: int
    what: str
    check: str = ""     # the check that it loads back and computes the same, with its figure
    ok: bool = True     # False: written, but the check found a difference (see `check`)


@dataclass(frozen=True)
class Exported:
    """What an export wrote and what it could not write (format -> why)."""

    directory: Path
    kind: str
    files: tuple[Artifact, ...]
    unavailable: dict[str, str] = field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    def lines(self) -> list[str]:
        """The files and the missing formats, one line each, for a person."""
        out = [f"{f.name:22s} {f.bytes:>10,} B  {f.what}" + (f" — {f.check}" if f.check else "") for f in self.files]
        return out + [f"{fmt}: not available — {why}" for fmt, why in self.unavailable.items()]


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence what torch.jit and torch.onnx print while exporting: deprecation notices and the ONNX exporter's log
    lines about optional packages (torchvision) that these models do not use."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", category=FutureWarning)
            warnings.filterwarnings("ignore", message=r".*torch\.jit\.trace.*")
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            yield
    finally:
        logger.setLevel(level)


def _top1(a: torch.Tensor, b: torch.Tensor) -> str:
    return f"top-1 agreement {float((a.argmax(1) == b.argmax(1)).float().mean()):.2%}"


def _cosine(a: torch.Tensor, b: torch.Tensor) -> str:
    return f"lowest cosine {float(torch.nn.functional.cosine_similarity(a, b, dim=1).min()):.6f}"


# How each family's outputs are compared and named: a classifier's logits by top-1, an encoder's embeddings by cosine
AGREEMENT = {"classifier": _top1, "encoder": _cosine}
OUTPUT_NAME = {"classifier": "logits", "encoder": "embeddings"}


def _diff(a: torch.Tensor, b: torch.Tensor, family: str = "classifier") -> str:
    return f"max |difference| {float((a - b).abs().max()):.2e}, {AGREEMENT.get(family, _top1)(a, b)}"


def check_inputs(sample: Any) -> torch.Tensor:
    """The batch every exported file is checked on: the family's largest timing batch (real held-out inputs)."""
    inputs = family_of(sample).timing_inputs(sample)
    return inputs[max(inputs)]


# State dicts, and the thin architecture of a channel-pruned model --------------------------------------------------

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)   # layers whose size follows the channels before them


def layer_shapes(model: nn.Module) -> dict[str, dict[str, Any]]:
    """What `thin` needs to rebuild a channel-pruned model: each weight layer's type, weight shape and whether it has
    a bias, and each BatchNorm's number of features (it loses the channels of the layer before it)."""
    shapes: dict[str, dict[str, Any]] = {
        n: {"type": type(m).__name__, "weight": list(cast(torch.Tensor, m.weight).shape), "bias": m.bias is not None}
        for n, m in weight_layers(model).items()}
    shapes |= {n: {"type": type(m).__name__, "features": m.num_features}
               for n, m in model.named_modules() if isinstance(m, _NORMS)}
    return shapes


def _resized(m: nn.Module, spec: dict[str, Any]) -> nn.Module:
    """A fresh layer like m with another size: weight shape (out, in, *kernel), or BatchNorm features."""
    if isinstance(m, _NORMS):
        return type(m)(spec["features"], m.eps, m.momentum, m.affine, m.track_running_stats)
    shape, bias = spec["weight"], spec["bias"]
    if isinstance(m, nn.Linear):
        return nn.Linear(shape[1], shape[0], bias=bias)
    if m.groups != 1:
        raise ValueError(f"cannot resize a grouped convolution ({m.groups} groups)")
    return type(m)(shape[1], shape[0], m.kernel_size, m.stride, m.padding, m.dilation, 1, bias, m.padding_mode)


def thin(architecture: nn.Module, shapes: dict[str, dict[str, Any]]) -> nn.Module:
    """A copy of an architecture with its weight layers (and BatchNorm layers) resized to `shapes` (from shapes.json,
    or layer_shapes of a channel-pruned model), ready for load_state_dict; the architecture given is not changed.
    Other layers that hold per-channel state are not resized."""
    net = copy.deepcopy(architecture)
    layers = weight_layers(net) | {n: m for n, m in net.named_modules() if isinstance(m, _NORMS)}
    unknown = sorted(set(shapes) - set(layers))
    if unknown:
        raise ValueError(f"shapes name layers the architecture does not have: {', '.join(unknown)}")
    for name, spec in shapes.items():
        m = layers[name]
        if type(m).__name__ != spec["type"]:
            raise ValueError(f"layer {name} is a {type(m).__name__}, the shapes say {spec['type']}")
        parent, _, child = name.rpartition(".")
        setattr(net.get_submodule(parent) if parent else net, child, _resized(m, spec))
    return net.eval()


def load_state(architecture: nn.Module, directory: str | Path) -> nn.Module:
    """The exported model rebuilt from an export directory's state dict (and shapes.json, when channels were
    removed) on a copy of its architecture, loaded with torch.load(weights_only=True)."""
    directory = Path(directory)
    net = copy.deepcopy(architecture)
    if (directory / SHAPES).exists():
        net = thin(architecture, json.loads((directory / SHAPES).read_text())["layers"])
    net.load_state_dict(torch.load(directory / STATE, map_location="cpu", weights_only=True))
    return net.eval()


def _state_dict(applied: Applied, architecture: nn.Module, x: torch.Tensor, out: Path, family: str) -> list[Artifact]:
    net = applied.model
    state = {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}
    torch.save(state, out / STATE)
    files = []
    what = "state dict: plain tensors, load with torch.load(weights_only=True)"
    shapes_what = f"layer shapes of the {applied.kind} model"
    if applied.structured:
        (out / SHAPES).write_text(json.dumps({"format": _SHAPES_FORMAT, "model": applied.recipe.model,
                                              "layers": layer_shapes(net), "units": applied.units},
                                             indent=2) + "\n")
        shapes_what += " and units left per layer (" + ", ".join(f"{k} {'/'.join(map(str, v))}"
                                                                 for k, v in applied.units.items()) + ")"
        what += " into the architecture resized to shapes.json (slimcore.export.thin)"
    elif applied.kind == "masked":
        what += " into the same architecture; pruned weights are zeros"
    elif applied.kind == "fake-quantized":
        what += " into the same architecture; weights lie on the k-bit grid, stored as fp32"
    try:
        back = load_state(architecture, out)
    except (RuntimeError, ValueError) as e:   # a layer `thin` cannot resize: say so, keep the file and the others
        line = (str(e).strip().splitlines() or [""])[0][:200]
        files.append(Artifact(STATE, (out / STATE).stat().st_size, what, f"NOT loaded back into the architecture "
                              f"({type(e).__name__}: {line})", False))
        if applied.structured:
            files.append(Artifact(SHAPES, (out / SHAPES).stat().st_size, shapes_what))
        return files
    got, want = predict(back, x), predict(net, x)
    hooks = applied.recipe.quant is not None and applied.recipe.quant.activations is not None
    if hooks:   # activation fake quantization runs in forward hooks, which a state dict does not hold
        same = all(torch.equal(back.state_dict()[k], v) for k, v in state.items())
        check = (f"reloaded: {'identical' if same else 'DIFFERENT'} weights; the activation grid is not part of a "
                 f"state dict (forward hooks), so the plain architecture's outputs differ "
                 f"({_diff(got, want, family)}); TorchScript and ONNX carry it")
    else:
        same = torch.equal(got, want)
        check = (f"reloaded with weights_only=True: outputs {'identical' if same else 'DIFFERENT'} on "
                 f"{len(x)} test inputs" + ("" if same else f" ({_diff(got, want, family)})"))
    files.append(Artifact(STATE, (out / STATE).stat().st_size, what, check, same))
    if applied.structured:
        files.append(Artifact(SHAPES, (out / SHAPES).stat().st_size, shapes_what))
    return files


# TorchScript and ONNX ------------------------------------------------------------------------------------------------

def _torchscript(net: nn.Module, x: torch.Tensor, out: Path, family: str) -> Artifact:
    with _quiet(), torch.no_grad():
        traced = torch.jit.trace(net, x[:2], check_trace=False)  # type: ignore[no-untyped-call]  # torch: untyped
        traced.save(str(out / SCRIPT))
        back = torch.jit.load(str(out / SCRIPT), map_location="cpu")  # type: ignore[no-untyped-call]  # torch: untyped
        got = predict(back, x)
    want = predict(net, x)
    same = torch.equal(got, want)
    check = (f"reloaded with torch.jit.load: outputs {'identical' if same else 'DIFFERENT'} on {len(x)} test inputs"
             + ("" if same else f" ({_diff(got, want, family)})"))
    return Artifact(SCRIPT, (out / SCRIPT).stat().st_size, "TorchScript (traced): load with torch.jit.load", check,
                    same)


def onnx_outputs(path: str | Path, x: torch.Tensor) -> torch.Tensor:
    """Outputs (logits, or embeddings) of an ONNX model run by onnxruntime (CPU) on inputs x."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0])


def write_onnx(net: nn.Module, x: torch.Tensor, path: str | Path, family: str = "classifier") -> None:
    """Export a model to an ONNX file with torch.onnx (the torch.export-based exporter), every input dimension left
    free (the batch; an encoder's sentence length too). The one ONNX writer: exports and ONNX Runtime int8 use it."""
    free = {d: torch.export.Dim.AUTO for d in range(x.dim())} if x.dim() == 2 and not x.is_floating_point() \
        else {0: torch.export.Dim("batch")}
    with _quiet():
        program = _program(net, (x[:2],), (free,))   # a batch of 2: with 1, torch.export would fix it at 1
        torch.onnx.export(program, (x[:2],), str(path), dynamo=True, external_data=False, verbose=False,
                          input_names=["input"], output_names=[OUTPUT_NAME.get(family, "output")])


def _program(net: nn.Module, args: tuple[Any, ...], shapes: tuple[Any, ...]) -> torch.export.ExportedProgram:
    """torch.export's program of a model. Strict mode (TorchDynamo reads the bytecode) first: it leaves other threads
    alone. Non-strict mode, which torch.onnx uses by default, patches module calls for the whole process while it
    traces: a forward pass in another thread meanwhile (another visitor's page) failed with "Unexpected key
    _export_root...". So it runs, for models strict mode cannot trace, only while no page runs (jobs.GATE)."""
    try:
        return torch.export.export(net, args, dynamic_shapes=shapes, strict=True)
    except Exception as e:  # a construct TorchDynamo cannot trace
        log.warning("torch.export strict mode failed (%s: %s); tracing in non-strict mode while no page runs",
                    type(e).__name__, str(e).splitlines()[0][:200] if str(e) else "")
        with GATE.exclusive():
            return torch.export.export(net, args, dynamic_shapes=shapes, strict=False)


def _onnx(net: nn.Module, x: torch.Tensor, out: Path, family: str) -> Artifact:
    write_onnx(net, x, out / ONNX, family)
    got, want = onnx_outputs(out / ONNX, x), predict(net, x)
    gap = float((got - want).abs().max())
    ok = gap <= ONNX_TOLERANCE
    check = (f"onnxruntime on {len(x)} test inputs: {_diff(got, want, family)}"
             + ("" if ok else f" — above the {ONNX_TOLERANCE:g} tolerance"))
    return Artifact(ONNX, (out / ONNX).stat().st_size, "ONNX (batch size free): run with onnxruntime", check, ok)


def _int8_onnx(net: nn.Module, x: torch.Tensor, out: Path, family: str) -> Artifact:
    """An ONNX Runtime int8 model's own file, written as it is and checked in a fresh onnxruntime session."""
    (out / ONNX).write_bytes(cast(bytes, net.onnx))   # an ort_int8.OrtModel: its int8 ONNX file
    got, want = onnx_outputs(out / ONNX, x), predict(net, x)
    same = torch.equal(got, want)
    check = (f"a fresh onnxruntime session on {len(x)} test inputs: outputs {'identical' if same else 'DIFFERENT'}"
             + ("" if same else f" ({_diff(got, want, family)})"))
    return Artifact(ONNX, (out / ONNX).stat().st_size, "int8 ONNX (ONNX Runtime, batch size free): run with "
                    "onnxruntime", check, same)


def _missing_onnx() -> str | None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as e:
        return f"the ONNX packages are not installed ({e.name}): pip install onnx onnxscript onnxruntime"
    return None


# The export ----------------------------------------------------------------------------------------------------------

def plan(recipe: Recipe) -> tuple[list[str], dict[str, str]]:
    """The formats a recipe's model is exported in, and those it cannot take with why: every format for fp32 kinds;
    torch.ao's int8 as TorchScript only; ONNX Runtime's int8 as its ONNX file only."""
    if recipe.int8 is None:
        return list(FORMATS), {}
    if recipe.int8.engine == "onnxruntime":
        return ["onnx"], {"state_dict": NO_ORT_STATE, "torchscript": NO_ORT_SCRIPT}
    return ["torchscript"], {"state_dict": NO_INT8_STATE, "onnx": NO_INT8_ONNX}


def export(applied: Applied, sample: Any, out: str | Path, formats: Sequence[str] = FORMATS) -> Exported:
    """Write an applied recipe's model into `out` (created if needed; an earlier export's files there are replaced,
    other files left alone) in each of `formats` it can take, check each file against the model on the family's
    example batch (check_inputs), and write recipe.yaml and figures.json beside them. The sample's model is the
    architecture (only copied): state dicts are loaded back into it. Formats a kind of model cannot take are listed in
    `unavailable` with the reason."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown export format(s) {', '.join(unknown)}; known: {', '.join(FORMATS)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name in OURS:   # a previous export's files (say, a shapes.json) must not pass for this one's
        (out / name).unlink(missing_ok=True)
    x, family, architecture = check_inputs(sample), family_of(sample).name, sample.model
    files: list[Artifact] = []
    unavailable: dict[str, str] = {}
    _, cannot = plan(applied.recipe)
    ort = applied.recipe.int8 is not None and applied.recipe.int8.engine == "onnxruntime"
    for fmt in formats:
        if fmt in cannot:
            unavailable[fmt] = cannot[fmt]
        elif fmt == "state_dict":
            files += _state_dict(applied, architecture, x, out, family)
        elif fmt == "torchscript":
            files.append(_torchscript(applied.model, x, out, family))
        elif missing := _missing_onnx():
            unavailable["onnx"] = missing
        elif ort:
            files.append(_int8_onnx(applied.model, x, out, family))
        else:
            try:
                files.append(_onnx(applied.model, x, out, family))
            except Exception as e:  # an operator the exporter does not know: say so, keep the other formats
                line = (str(e).strip().splitlines() or [""])[0][:200]
                unavailable["onnx"] = f"torch.onnx could not export this model ({type(e).__name__}: {line})"
    dump(applied.recipe, out / RECIPE)
    files.append(Artifact(RECIPE, (out / RECIPE).stat().st_size,
                          "the recipe: python -m slimcore apply --recipe recipe.yaml rebuilds the model"))
    figures = {"recipe": applied.recipe.describe(), "kind": applied.kind, "figures": applied.figures.to_dict(),
               "files": {f.name: {"bytes": f.bytes, "what": f.what, "check": f.check, "ok": f.ok} for f in files},
               "not_available": unavailable}
    (out / FIGURES).write_text(json.dumps(figures, indent=2, default=str) + "\n")
    files.append(Artifact(FIGURES, (out / FIGURES).stat().st_size, "the measured figures and this list of files"))
    return Exported(out, applied.kind, tuple(files), unavailable)


def export_recipe(sample: Any, recipe: Recipe, out: str | Path, timing: bool = True,
                  formats: Sequence[str] = FORMATS) -> tuple[Applied, Exported]:
    """Apply a recipe to a sample's model (never changed) and export the result: (applied, exported)."""
    applied = apply(sample, recipe, timing=timing)
    return applied, export(applied, sample, out, formats)


def archive(exported: Exported) -> bytes:
    """The exported files as a zip archive, in memory."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for f in exported.files:
            z.write(exported.directory / f.name, f.name)
    return buf.getvalue()


__all__ = ["FORMATS", "ONNX_TOLERANCE", "write_onnx", "plan", "Artifact", "Exported", "export", "export_recipe",
           "archive", "thin", "load_state", "layer_shapes", "onnx_outputs", "check_inputs"]
