"""Your own model in: read an uploaded model file and evaluation data safely, without ever running Python code from
them.

Accepted model files:
- a state dict of one of the sample architectures, saved by torch.save (read with weights_only=True) or as safetensors;
- a TorchScript archive (torch.jit.save): TorchScript code runs in PyTorch's own interpreter, never as Python;
- a torch.export program (.pt2, torch.export.save). torch.export.load unpickles parts of the archive with
  weights_only switched off (full pickle), so every such part is checked first and an archive holding anything but
  plain tensors is refused.

A TorchScript or exported model is rebuilt as a plain nn.Sequential of standard layers from its graph (Linear, Conv,
BatchNorm, activations, pooling, flatten), and the rebuilt model must give the same outputs as the file's own program:
every lab then works on it as on a sample model. Graphs with other operations (branches, attention, recurrence) are
refused with the name of the operation.
Evaluation data is a NumPy .npz holding `x` (inputs) and `y` (integer labels), read with allow_pickle=False.
"""
from __future__ import annotations

import ast
import hashlib
import io
import json
import math
import os
import re
import struct
import threading
import unicodedata
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from . import graph as G
from .data import Dataset, Split, load_dataset, split_arrays
from .metrics import accuracy, weight_layers
from .text import TextSample
from .zoo import SAMPLES, Sample, first_line

# A file above this is refused before it is read. Decimal megabytes, as the browser counts them: Streamlit's upload
# widget refuses a file above server.maxUploadSize (200) x 10^6 bytes and says "200MB" (a 199 MiB file is refused).
MAX_MODEL_BYTES = 200 * 10**6
MAX_DATA_BYTES = 200 * 10**6    # the same for evaluation data
DATA_FRACTIONS = (0.1, 0.3)     # uploaded data is split train 60 % / validation 10 % / test 30 % (seed 0)
MIN_EXAMPLES = 20
TOLERANCE = 1e-4                # largest output difference allowed between the file's program and its rebuild
SUPPORTED = ("Linear", "Conv1d", "Conv2d", "BatchNorm1d/2d", "ReLU", "LeakyReLU", "GELU", "SiLU", "Tanh", "Sigmoid",
             "MaxPool1d/2d", "AvgPool1d/2d", "AdaptiveAvgPool1d/2d", "Flatten", "Dropout", "LogSoftmax")


class UploadError(ValueError):
    """An uploaded file that cannot be used, with a message fit to show a person."""


def display_name(filename: str | None, limit: int = 120) -> str:
    """A file name as given, whole (slashes included: a name is never cut at one), without control characters and
    bidirectional overrides, at most `limit` characters. Plain text: a page escapes it (slimui.safe) to show it."""
    name = "".join(ch for ch in unicodedata.normalize("NFC", filename or "")
                   if unicodedata.category(ch)[0] != "C").strip()
    name = name or "unnamed file"
    return name if len(name) <= limit else name[:limit - 1] + "…"


def _mb(n: int) -> str:
    """Bytes in decimal megabytes, the unit the browser's upload limit is stated in."""
    return f"{n / 10**6:,.1f} MB"


def _check_size(data: bytes, limit: int, what: str) -> None:
    if len(data) == 0:
        raise UploadError(f"the {what} file is empty (0 bytes)")
    if len(data) > limit:
        raise UploadError(f"the {what} file is {_mb(len(data))}; the limit is {_mb(limit)}")


def _check_expansion(data: bytes, limit: int, what: str) -> None:
    """Refuse a zip archive that would expand far beyond its upload limit (a decompression bomb)."""
    if data[:2] != b"PK":
        return
    try:
        total = sum(i.file_size for i in zipfile.ZipFile(io.BytesIO(data)).infolist())
    except (zipfile.BadZipFile, ValueError, OSError):
        return  # the reader says what is wrong with it
    if total > 2 * limit:
        raise UploadError(f"the {what} file would expand to {_mb(total)}; the limit is {_mb(2 * limit)}")


def _short(e: BaseException, limit: int = 160) -> str:
    line = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return (line[:limit] + ("…" if len(line) > limit else "")) or type(e).__name__


# ---------------------------------------------------------------- reading files: which format, and only safe readers

def sniff(data: bytes) -> str:
    """The format of a model file, from its content (never from its name)."""
    if data[:4] == b"PK\x03\x04" or data[:4] == b"PK\x05\x06":
        try:
            names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        except (zipfile.BadZipFile, ValueError, OSError):
            raise UploadError("the file is truncated or corrupt: it starts like a zip archive (as PyTorch files do) "
                              "but cannot be opened as one") from None
        if any(n.endswith("/archive_format") for n in names) and any("/models/" in n for n in names):
            return "pt2"
        if any(n.rsplit("/", 1)[-1] == "config.json" for n in names) and \
                any(n.rsplit("/", 1)[-1] == "model.safetensors" for n in names):
            return "hf-folder"
        if any("/code/" in n for n in names) or any(n.endswith("/constants.pkl") for n in names):
            return "torchscript"
        if any(n.endswith("data.pkl") for n in names):
            return "torch.save"
        if names and all(n.endswith(".npy") for n in names):
            raise UploadError("this is a NumPy .npz data file, not a model: upload it as evaluation data")
        raise UploadError("this zip archive is not a PyTorch model (no TorchScript code, torch.export program or "
                          "torch.save data in it)")
    if data[:1] == b"\x80" and len(data) > 1 and data[1] in range(2, 6):
        return "torch.save"  # the legacy (pre-1.6) torch.save format: a pickle stream
    if len(data) >= 8:
        header = struct.unpack("<Q", data[:8])[0]
        if 2 <= header <= min(len(data) - 8, 100 * 2**20) and data[8:9] == b"{":
            return "safetensors"
    if data[:4] == b"\x89HDF":
        raise UploadError("this is an HDF5 file (Keras?), not a PyTorch model")
    if data[:6] == b"\x93NUMPY":
        raise UploadError("this is a NumPy array, not a model: upload it as evaluation data (.npz with x and y)")
    raise UploadError("this is not a PyTorch model file: expected a TorchScript archive (torch.jit.save), a "
                      "torch.export program (.pt2) or a state dict (torch.save, or safetensors)")


def _tensor_dict(obj: Any) -> dict[str, torch.Tensor]:
    """A loaded object as a flat {name: tensor} state dict, accepting one common wrapping ({"state_dict": ...})."""
    if isinstance(obj, dict) and len(obj) >= 1:
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                       for k, v in obj.items()):
        raise UploadError("the file holds no state dict (a dict of named tensors)")
    return dict(obj)


def _read_torch_save(data: bytes) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle_errors() as e:
        msg = _short(e)
        if "weights_only" in msg or "Unsupported global" in msg or "Weights only load failed" in msg:
            raise UploadError("the file holds Python objects, not only tensors (a whole pickled model?). SlimLab never "
                              "unpickles code: save the state dict (torch.save(model.state_dict(), f)), a TorchScript "
                              "archive or a torch.export program instead") from None
        raise UploadError(f"the file is truncated or corrupt: PyTorch could not read it ({msg})") from None
    return _tensor_dict(obj)


def pickle_errors() -> tuple[type[BaseException], ...]:
    import pickle

    return (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, KeyError, AttributeError, TypeError,
            OSError, zipfile.BadZipFile, IndexError, struct.error, UnicodeDecodeError, ImportError)


def _read_safetensors(data: bytes) -> dict[str, torch.Tensor]:
    """A safetensors file, parsed by the safetensors package (plain tensors, no code): it checks the header, the
    dtypes and that every tensor's bytes lie inside the file."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        out = load(bytes(data))
    except SafetensorError as e:
        raise UploadError(f"the safetensors file is truncated or corrupt ({first_line(e)})") from None
    except (ValueError, TypeError, RuntimeError, OverflowError) as e:
        raise UploadError(f"the safetensors file cannot be read ({first_line(e)})") from None
    return _tensor_dict(out)


class _Archive:
    """A zip archive read the way PyTorch reads it (its own reader, torch._C.PyTorchFileReader), so that what is
    checked here is byte for byte what torch.jit.load / torch.export.load will read. Duplicate names are refused:
    two readers may pick different copies."""

    def __init__(self, data: bytes) -> None:
        try:
            names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        except (zipfile.BadZipFile, ValueError, OSError, NotImplementedError):
            raise UploadError("the file is truncated or corrupt (not a complete zip archive)") from None
        if len(set(names)) != len(names):
            raise UploadError("the archive holds two entries of the same name (a way to show a checker one file and "
                              "the loader another): refused")
        try:
            self._reader = torch._C.PyTorchFileReader(io.BytesIO(data))
            self.names = ["/" + r for r in self._reader.get_all_records()]  # inside the archive's top folder
        except Exception as e:  # PyTorch's reader refuses the archive: the loader would too
            raise UploadError(f"the file is truncated or corrupt ({_short(e)})") from None

    def size(self, name: str) -> int | None:
        """The stored length of an entry, in bytes (None if there is none of that name)."""
        if name not in self.names:
            return None
        try:
            return len(self._reader.get_record(name[1:]))
        except Exception:
            return None

    def read(self, name: str) -> bytes:
        try:
            return bytes(self._reader.get_record(name[1:]))
        except Exception as e:  # a damaged entry (bad checksum, truncated)
            raise UploadError(f"the file is truncated or corrupt ({_short(e)})") from None


def _check_declared(meta: Any, stored: int | None, limit: int) -> None:
    """A tensor a .pt2 archive declares (sizes, strides, offset, dtype) against the bytes it stores for it, before
    anything is allocated: every stride at least 1 where the size is above 1 (a zero stride makes one stored value
    look like millions), the furthest element inside the stored bytes, the whole within the upload limit."""
    from torch._export.serde.serialize import _SERIALIZE_TO_TORCH_DTYPE

    try:
        sizes = [int(d["as_int"]) for d in meta["sizes"]]
        strides = [int(d["as_int"]) for d in meta["strides"]]
        offset = int(meta["storage_offset"]["as_int"])
        itemsize = _SERIALIZE_TO_TORCH_DTYPE[meta["dtype"]].itemsize
    except (KeyError, TypeError, ValueError, AttributeError):
        raise UploadError("the .pt2 archive declares a weight without plain sizes and strides (symbolic or "
                          "damaged): refused") from None
    if len(sizes) != len(strides) or len(sizes) > 8 or min(sizes + [0]) < 0 or offset < 0:
        raise UploadError("the .pt2 archive declares a weight of an impossible shape: refused")
    if any(st < 1 for size, st in zip(sizes, strides) if size > 1):
        raise UploadError("the .pt2 archive declares a weight that repeats one stored value along a dimension (a "
                          "zero stride): refused, it would take far more memory than the file holds")
    numel = math.prod(sizes)
    if numel * itemsize > 2 * limit:
        raise UploadError(f"the .pt2 archive declares a weight of {numel * itemsize / 10**6:,.0f} MB, beyond the "
                          f"{2 * limit / 10**6:,.0f} MB limit")
    furthest = 0 if numel == 0 else (offset + sum((size - 1) * st for size, st in zip(sizes, strides)) + 1) * itemsize
    if stored is None or furthest > stored:
        raise UploadError("the .pt2 archive declares a weight larger than the bytes it stores for it: refused")


def _check_pt2(data: bytes, limit: int = MAX_MODEL_BYTES) -> None:
    """Refuse a .pt2 archive that torch.export.load would unpickle anything but plain tensors from, or whose weights
    declare more than the archive stores."""
    z = _Archive(data)
    for n in z.names:
        if n.endswith((".so", ".cpp", ".dll", ".dylib", ".py")) or "/aotinductor/" in n:
            raise UploadError(f"the .pt2 archive carries compiled or source code ({display_name(n)}); only exported "
                              "programs with plain tensors are accepted")
        if n.endswith(".pt") and "/data/sample_inputs/" not in n:
            raise UploadError("the .pt2 archive uses the legacy pickled weights format; save it again with a current "
                              "torch.export.save")
        if "/data/sample_inputs/" in n:
            try:
                torch.load(io.BytesIO(z.read(n)), map_location="cpu", weights_only=True)
            except pickle_errors():
                raise UploadError("the .pt2 archive's sample inputs hold Python objects, not only tensors: refused "
                                  "(SlimLab never unpickles code)") from None
        if n.endswith("_config.json") and "/data/" in n:
            try:
                config = json.loads(z.read(n)).get("config", {})
                entries = list(config.values())
            except (ValueError, AttributeError):
                raise UploadError("the .pt2 archive's weight table is not valid JSON: the file is corrupt") from None
            folder = n.rsplit("/", 1)[0]
            for e in entries:
                if not isinstance(e, dict) or e.get("use_pickle") or not str(e.get("path_name", "")).startswith(
                        ("weight_", "tensor_")):
                    raise UploadError("the .pt2 archive stores pickled objects or custom classes among its weights; "
                                      "only plain tensors are accepted (SlimLab never unpickles code)")
                _check_declared(e.get("tensor_meta"), z.size(f"{folder}/{e['path_name']}"), limit)


# The TorchScript functions a rebuildable model's code may name: its layers, the shape checks PyTorch's own modules
# script, and nothing that creates large tensors or touches files. Everything else in the code is refused unread.
_TORCH_CALLS = {
    "linear", "conv1d", "conv2d", "_convolution", "batch_norm", "relu", "relu_", "gelu", "tanh", "sigmoid", "silu",
    "silu_", "leaky_relu", "leaky_relu_", "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "flatten", "view", "reshape", "dropout", "dropout_",
    "feature_dropout", "log_softmax", "contiguous", "clone", "detach", "size", "dim", "len", "eq", "ne", "gt", "lt",
    "ge", "le", "format", "warn", "__is__", "__isnot__", "__not__", "add", "add_", "sub", "mul", "div", "neg",
    "Tensor", "device", "dtype"}
# The methods it may call on its values and submodules (a layer's forward, PyTorch's own input checks, activations):
# a method such as weight.new_ones(20000, 20000) or .matmul would run on the weights while the archive loads.
_METHOD_CALLS = {"forward", "forward1", "_conv_forward", "_check_input_dim", "relu", "silu", "gelu", "sigmoid", "tanh",
                 "size", "dim", "view", "reshape", "flatten", "contiguous", "append", "format", "__getitem__"}
_BUILTIN_CALLS = {"annotate", "unchecked_cast", "getattr", "hasattr", "isinstance", "range", "len", "int", "float",
                  "bool", "str", "list", "tuple", "min", "max", "abs", "uninitialized", "print"}


def _root(node: ast.AST) -> tuple[str | None, list[str]]:
    """The name an attribute chain starts from, and the attributes after it (torch.nn.x -> "torch", [nn, x])."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return (node.id if isinstance(node, ast.Name) else None), parts[::-1]


def _check_torchscript(data: bytes) -> None:
    """Read a TorchScript archive's code before PyTorch does: refuse code that would run while loading
    (__setstate__) and any call outside the layers and shape checks a rebuildable model needs."""
    z = _Archive(data)
    for n in z.names:
        if "/code/" not in n or not n.endswith(".py"):
            continue
        try:
            tree = ast.parse(z.read(n).decode("utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            raise UploadError("the TorchScript archive holds code that cannot be read: refused") from None
        local = {t.id for t in ast.walk(tree) if isinstance(t, ast.Name) and isinstance(t.ctx, ast.Store)}
        local |= {t.name for t in ast.walk(tree) if isinstance(t, (ast.FunctionDef, ast.ClassDef))}
        local |= {a.arg for t in ast.walk(tree) if isinstance(t, ast.arguments) for a in t.args}
        for t in ast.walk(tree):
            if isinstance(t, ast.FunctionDef) and t.name in ("__setstate__", "__getstate__", "__init__"):
                raise UploadError(f"the TorchScript archive defines {t.name}, code that would run while loading it: "
                                  "refused")
            if isinstance(t, ast.Attribute):
                root, parts = _root(t)
                if root == "torch" and parts and parts[0] not in _TORCH_CALLS:
                    raise UploadError(f"the TorchScript code calls torch.{parts[0]}, which SlimLab does not support in "
                                      "a model it rebuilds: refused without running it")
                if root == "ops" and parts and parts[0] not in ("prim", "aten"):
                    raise UploadError(f"the TorchScript code calls custom operators (ops.{parts[0]}), which SlimLab "
                                      "does not support: refused without running it")
                if root == "ops" and len(parts) > 1 and parts[0] == "aten" and parts[1] not in _TORCH_CALLS:
                    raise UploadError(f"the TorchScript code calls aten.{parts[1]}, which SlimLab does not support "
                                      "in a model it rebuilds: refused without running it")
            if isinstance(t, ast.Call) and isinstance(t.func, ast.Attribute):
                root, parts = _root(t.func)
                if root not in ("torch", "ops", "__torch__") and parts[-1] not in _METHOD_CALLS:
                    raise UploadError(f"the TorchScript code calls the method .{parts[-1]}() on a value, which SlimLab "
                                      "does not support in a model it rebuilds: refused without running it")
            if isinstance(t, ast.Call) and isinstance(t.func, ast.Name) and t.func.id not in _BUILTIN_CALLS | local:
                raise UploadError(f"the TorchScript code calls {t.func.id}(), which SlimLab does not support in a "
                                  "model it rebuilds: refused without running it")


# ---------------------------------------------------------------- graphs: one op list, whatever the file's format

@dataclass
class _Op:
    """One operation of a straight-line graph: its name, its weight tensors, and its other (constant) arguments."""

    kind: str
    tensors: list[torch.Tensor | None]
    args: list[Any]
    label: str = ""          # a readable name for the layer, from its weight's name
    out_ndim: int | None = None


_IDENTITY = {"dropout", "feature_dropout", "contiguous", "clone", "alias", "detach", "dropout_"}


def _normalize(kind: str) -> str:
    kind = kind.split("::")[-1] if "::" in kind else kind.split(".")[1] if kind.startswith("aten.") else kind
    return kind.rstrip("_") if kind.endswith("_") and kind != "_" else kind


_GUARDS = {"aten::dim", "aten::len", "aten::gt", "aten::lt", "aten::ge", "aten::le", "aten::eq", "aten::ne",
           "aten::format", "aten::__not__", "prim::RaiseException", "prim::If", "aten::Int", "prim::NumToTensor",
           "aten::__getitem__", "prim::Uninitialized"}


def _is_guard(node: Any) -> bool:
    """A TorchScript node that computes no tensor (only checks shapes and raises): safe to skip."""
    if node.kind() not in _GUARDS or any(o.type().kind() == "TensorType" for o in node.outputs()):
        return False
    return all(_is_guard(n) or n.kind() == "prim::Constant" for b in node.blocks() for n in b.nodes())


_SLOTS = {"linear": 2, "conv1d": 2, "conv2d": 2, "_convolution": 2, "batch_norm": 4,
          "_native_batch_norm_legit_no_training": 4}  # tensor arguments after the input: weight, bias (, mean, var)


def _slots(name: str, vals: list[Any]) -> tuple[list[torch.Tensor | None], list[Any]]:
    """An op's arguments after its input, split into its tensor slots (None for a missing bias) and its settings;
    a tensor where a setting belongs, or a setting that changes what the layer computes at inference, is refused."""
    k = _SLOTS.get(name, 0)
    tensors, rest = vals[:k], vals[k:]
    if any(t is not None and not isinstance(t, torch.Tensor) for t in tensors) or \
            any(isinstance(v, torch.Tensor) for v in rest):
        raise UploadError(f"the model passes tensors to {name} where SlimLab expects settings: not a plain layer")
    if k and (not tensors or tensors[0] is None):
        raise UploadError(f"{name} has no weight")
    training = {"batch_norm": 0, "dropout": 1, "dropout_": 1, "feature_dropout": 1}.get(name)
    if training is not None and len(rest) > training and rest[training]:
        raise UploadError(f"the model runs {name} in training mode; save it after model.eval()")
    if name == "avg_pool2d" and len(rest) > 5 and rest[5] is not None:
        raise UploadError("the model's average pooling uses divisor_override, which SlimLab does not support")
    return tensors, rest


def _torchscript_ops(module: torch.jit.ScriptModule) -> list[_Op]:
    """The ops of a frozen TorchScript module's forward, in order; raises UploadError on anything not a straight
    line."""
    try:
        frozen = torch.jit.freeze(module.eval())
    except Exception as e:  # freezing checks the module is a plain forward over attributes
        raise UploadError(f"this TorchScript model cannot be frozen for analysis ({_short(e)})") from None
    graph = frozen.graph
    inputs = list(graph.inputs())[1:]
    if len(inputs) != 1:
        raise UploadError(f"the model's forward takes {len(inputs)} inputs; SlimLab supports models with one input")
    values: dict[Any, Any] = {}
    current, ops = inputs[0], []
    for node in graph.nodes():
        kind = node.kind()
        outs = list(node.outputs())
        if kind == "prim::Constant":
            values[outs[0]] = outs[0].toIValue() if outs[0].type().kind() != "NoneType" else None
            continue
        if kind == "prim::ListConstruct":
            values[outs[0]] = [values.get(v, ("computed", v)) for v in node.inputs()]
            continue
        if kind == "aten::size":
            ins = list(node.inputs())
            values[outs[0]] = ("size", ins[0], values.get(ins[1]) if len(ins) > 1 else None)
            continue
        if _is_guard(node):
            continue  # a shape check that raises on bad input (scripted BatchNorm, pooling): no effect on the values
        if not kind.startswith("aten::"):
            raise UploadError(f"the model's graph uses {kind} (control flow or a Python construct), which SlimLab "
                              "does not read in TorchScript; export the model with torch.export (.pt2) instead: "
                              "SlimLab runs such a program as its graph")
        args = list(node.inputs())
        name = _normalize(kind)
        if not args or args[0] is not current:
            raise UploadError(f"the model's graph is not a single chain of layers: {name} does not take the previous "
                              "layer's output. SlimLab rebuilds TorchScript as a chain only: for skip connections "
                              "and branches, export the model with torch.export (.pt2), which runs as its graph")
        vals, label = [], ""
        for a in args[1:]:
            v = values.get(a, a)
            if isinstance(v, torch._C.Value):
                raise UploadError(f"the model's graph feeds a computed value into {name}: not a single chain of "
                                  "layers")
            if isinstance(v, torch.Tensor):
                label = label or re.sub(r"^self\.|\.(weight|bias|running_mean|running_var)[^.]*$", "", a.debugName())
            vals.append(v)
        tensors, rest = _slots(name, vals)
        if name == "_convolution":  # what torch.jit.trace records for a convolution
            if rest[3]:
                raise UploadError(f"layer {label} is a transposed convolution, which SlimLab does not support")
            weight = tensors[0]
            assert weight is not None   # _slots refuses a convolution without its weight
            name, rest = f"conv{weight.ndim - 2}d", [rest[0], rest[1], rest[2], rest[5]]
        if name in ("view", "reshape"):
            shape = rest[0]
            if not (isinstance(shape, list) and len(shape) == 2 and shape[1] == -1
                    and shape[0] == ("size", current, 0)):
                raise UploadError(f"the model reshapes activations with {name}({shape}); only flattening to "
                                  "(batch, -1) is supported")
            name, rest = "flatten", [1, -1]
        ops.append(_Op(name, tensors, rest, label))
        current = outs[0]
    returned = list(graph.outputs())
    if len(returned) != 1 or returned[0] is not current:
        raise UploadError("the model's forward does not return the output of its last layer as one tensor")
    return ops


def _exported_ops(ep: torch.export.ExportedProgram) -> tuple[list[_Op], tuple[int, ...]]:
    """The ops of an exported program's graph in order, and the shape of its example input."""
    sig = ep.graph_signature
    named = {**sig.inputs_to_parameters, **sig.inputs_to_buffers, **sig.inputs_to_lifted_tensor_constants}
    state = {**ep.state_dict, **ep.constants}
    values: dict[Any, Any] = {}
    ops, current, shape = [], None, None
    for node in ep.graph.nodes:
        if node.op == "placeholder":
            if node.name in named:
                values[node] = (state[named[node.name]], named[node.name])
            elif current is None:
                current, shape = node, tuple(node.meta["val"].shape)
            else:
                raise UploadError("the exported program takes more than one input; SlimLab supports models with one")
            continue
        if node.op == "output":
            outs = node.args[0]
            if len(outs) != 1 or outs[0] is not current:
                raise UploadError("the model's forward does not return the output of its last layer as one tensor")
            break
        name = _normalize(str(node.target)) if node.op == "call_function" else node.op
        if name == "getitem" and node.args[0] is current and node.args[1] == 0:
            current = node
            continue
        if node.op != "call_function" or not str(node.target).startswith("aten."):
            raise UploadError(f"the exported graph calls {node.target}, which SlimLab does not support; supported "
                              "layers: " + ", ".join(SUPPORTED))
        if not node.args or node.args[0] is not current:
            raise UploadError(f"the model's graph is not a single chain of layers: {name} does not take the previous "
                              "layer's output (skip connections and branches are not supported)")
        vals, label = [], ""
        for a in node.args[1:]:
            if isinstance(a, torch.fx.Node):
                if a not in values:
                    raise UploadError(f"the model's graph feeds a computed value into {name}: not a single chain")
                t, full = values[a]
                vals.append(t)
                label = label or re.sub(r"\.(weight|bias|running_mean|running_var)$", "", full)
            else:
                vals.append(a)
        tensors, rest = _slots(name, vals)
        out = node.meta.get("val")
        if name in ("view", "reshape", "_unsafe_view"):
            size = getattr(out, "shape", None)
            if size is None or len(size) != 2:
                raise UploadError(f"the model reshapes activations with {name}; only flattening to (batch, -1) is "
                                  "supported")
            name, rest = "flatten", [1, -1]
        ops.append(_Op(name, tensors, rest, label, getattr(out, "ndim", None)))
        current = node
    if current is None or shape is None:
        raise UploadError("the exported program takes no input")
    return ops, shape


def _arg(args: list[Any], i: int, default: Any) -> Any:
    return args[i] if len(args) > i and args[i] is not None else default


def _pair(v: Any) -> Any:
    return tuple(v) if isinstance(v, (list, tuple)) else v


def _module(op: _Op, spatial: int) -> nn.Module:
    """One standard layer equal to an op, holding copies of its weights."""
    k, a = op.kind, op.args
    t: list[Any] = op.tensors   # by position, as the op lays them out (_slots: a weighted op has its weight)
    want = {"linear": 2, "conv1d": 3, "conv2d": 4, "batch_norm": 1, "_native_batch_norm_legit_no_training": 1}
    if k in want and (t[0].ndim != want[k] or any(x is not None and x.ndim != 1 for x in t[1:])):
        raise UploadError(f"layer {op.label or k} has weights of an unexpected shape for {k}")
    m: nn.Module
    if k == "linear":
        w, b = t[0], t[1] if len(t) > 1 else None
        m = nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
    elif k in ("conv1d", "conv2d"):
        w, b = t[0], t[1] if len(t) > 1 else None
        groups = _arg(a, 3, 1)
        if groups != 1:
            raise UploadError(f"layer {op.label or k} is a grouped convolution (groups={groups}), which SlimLab does "
                              "not support")
        conv = nn.Conv1d if k == "conv1d" else nn.Conv2d
        m = conv(w.shape[1], w.shape[0], tuple(w.shape[2:]), stride=_pair(_arg(a, 0, 1)), padding=_pair(_arg(a, 1, 0)),
                 dilation=_pair(_arg(a, 2, 1)), bias=b is not None)
    elif k in ("batch_norm", "_native_batch_norm_legit_no_training"):
        w, b, mean, var = t[:4]
        eps = a[-2] if k == "batch_norm" else a[-1]
        m = (nn.BatchNorm2d if spatial == 2 else nn.BatchNorm1d)(mean.shape[0], eps=float(eps))
        m.get_buffer("running_mean").copy_(mean)
        m.get_buffer("running_var").copy_(var)
        if w is None or b is None:
            raise UploadError(f"batch norm {op.label} has no affine weights, which SlimLab does not support")
    elif k in ("relu", "tanh", "sigmoid", "silu"):
        activation: type[nn.Module] = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "silu": nn.SiLU}[k]
        return activation()
    elif k == "gelu":
        return nn.GELU(approximate=_arg(a, 0, "none"))
    elif k == "leaky_relu":
        return nn.LeakyReLU(float(_arg(a, 0, 0.01)))
    elif k in ("max_pool1d", "max_pool2d"):
        kernel = _pair(a[0])
        max_pool = nn.MaxPool1d if k == "max_pool1d" else nn.MaxPool2d
        return max_pool(kernel, stride=_pair(_arg(a, 1, None) or kernel), padding=_pair(_arg(a, 2, 0)),
                        dilation=_pair(_arg(a, 3, 1)), ceil_mode=bool(_arg(a, 4, False)))
    elif k in ("avg_pool1d", "avg_pool2d"):
        kernel = _pair(a[0])
        avg_pool = nn.AvgPool1d if k == "avg_pool1d" else nn.AvgPool2d
        return avg_pool(kernel, stride=_pair(_arg(a, 1, None) or kernel), padding=_pair(_arg(a, 2, 0)),
                        ceil_mode=bool(_arg(a, 3, False)), count_include_pad=bool(_arg(a, 4, True)))
    elif k in ("adaptive_avg_pool1d", "adaptive_avg_pool2d"):
        return (nn.AdaptiveAvgPool1d if k.endswith("1d") else nn.AdaptiveAvgPool2d)(_pair(a[0]))
    elif k == "flatten":
        return nn.Flatten(int(_arg(a, 0, 0)), int(_arg(a, 1, -1)))
    elif k in ("log_softmax", "_log_softmax"):
        return nn.LogSoftmax(int(a[0]))
    elif k in _IDENTITY:
        return nn.Identity()
    else:
        raise UploadError(f"the model uses the operation {k!r}, which SlimLab does not support; supported layers: "
                          + ", ".join(SUPPORTED))
    with torch.no_grad():
        m.get_parameter("weight").copy_(t[0])
        if getattr(m, "bias", None) is not None:
            m.get_parameter("bias").copy_(t[1])
    return m


_FORCE = threading.Lock()


def _export_load(data: bytes) -> torch.export.ExportedProgram:
    """torch.export.load with every torch.load inside it forced to weights_only (TORCH_FORCE_WEIGHTS_ONLY_LOAD): a
    second guard behind _check_pt2."""
    with _FORCE:
        old = os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD")
        os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
        try:
            return torch.export.load(io.BytesIO(data))
        finally:
            if old is None:
                os.environ.pop("TORCH_FORCE_WEIGHTS_ONLY_LOAD", None)
            else:
                os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = old


def _sequential(ops: list[_Op]) -> nn.Sequential:
    """A plain nn.Sequential equal to a chain of ops; weight layers are named after the file's own weights."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    spatial = 0
    for i, op in enumerate(ops):
        spatial = {"conv1d": 1, "conv2d": 2, "linear": 0, "flatten": 0}.get(op.kind, spatial)
        if op.kind in ("batch_norm", "_native_batch_norm_legit_no_training") and op.out_ndim:
            spatial = op.out_ndim - 2
        m = _module(op, spatial)
        if isinstance(m, nn.Identity):
            continue
        base = re.sub(r"[^0-9A-Za-z_]", "_", op.label) if op.label else f"{op.kind}{i}"
        name = base if base not in layers else f"{base}_{i}"
        layers[name] = m
    if not any(isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)) for m in layers.values()):
        raise UploadError("the model has no Linear or Conv layer: there is nothing to compress")
    return nn.Sequential(layers).eval()


# ---------------------------------------------------------------- models and data

@dataclass(frozen=True)
class ReadModel:
    """A model read from a file: the plain module the labs use, and how it was read."""

    model: nn.Module
    format: str                  # "state dict", "safetensors", "TorchScript", "torch.export"
    architecture: str            # a sample architecture's name, or "rebuilt from the graph"
    original: Callable[[torch.Tensor], torch.Tensor] | None  # the file's own program, to check the rebuild against
    input_shape: tuple[int, ...] | None  # one example's shape, when the file says
    batch: int | None = None     # the batch size an exported program was specialised to, if it was
    graph: dict[str, Any] | None = None   # a graph model's description (slimcore.graph), handed to the server as
                                          # plain data


def _fit_sample(state: dict[str, torch.Tensor]) -> tuple[str, nn.Module]:
    """The sample architecture a state dict fits exactly, loaded with it; else an error naming the closest one."""
    best, best_msg = -1, ""
    for name, spec in SAMPLES.items():
        model = spec.build()
        want = model.state_dict()
        common = [k for k in want if k in state]
        wrong = [k for k in common if tuple(want[k].shape) != tuple(state[k].shape)]
        if len(common) == len(want) == len(state) and not wrong:
            model.load_state_dict({k: v.float() for k, v in state.items()})
            return name, model
        score = len(common) - len(wrong)
        if score > best:
            missing = [k for k in want if k not in state]
            extra = [k for k in state if k not in want]
            parts = ([f"{k} is {'x'.join(map(str, state[k].shape))} here, "
                      f"{'x'.join(map(str, want[k].shape))} there" for k in wrong[:2]]
                     + ([f"missing {', '.join(missing[:3])}"] if missing else [])
                     + ([f"unexpected {', '.join(extra[:3])}"] if extra else []))
            best, best_msg = score, f"closest is {name}: " + "; ".join(parts)
    raise UploadError("this state dict fits none of the sample architectures (" + ", ".join(SAMPLES) + "); "
                      + best_msg + ". For another architecture, upload TorchScript or a torch.export program")


def _rebuilt(make: Callable[[], Any]) -> Any:
    """A step of rebuilding a graph as layers; what the checks did not foresee (a weight of no elements, an argument
    of another type) is said in one line."""
    try:
        return make()
    except UploadError:
        raise
    except (RuntimeError, ValueError, TypeError, IndexError, KeyError, AttributeError) as e:
        raise UploadError(f"the model could not be rebuilt from its graph ({type(e).__name__}: {_short(e, 120)})") \
            from None


def read_model(data: bytes, limit: int = MAX_MODEL_BYTES, architecture: str | None = None) -> ReadModel:
    """Read a model file safely; raises UploadError with a clear message for anything that cannot be used.
    `architecture`: a name from slimcore.architectures that a state dict (or safetensors file) holds weights for."""
    _check_size(data, limit, "model")
    _check_expansion(data, limit, "model")
    kind = sniff(data)
    if architecture is not None:
        return _named(kind, data, architecture)
    if kind in ("torch.save", "safetensors"):
        state = _read_torch_save(data) if kind == "torch.save" else _read_safetensors(data)
        arch, model = _fit_sample(state)
        return ReadModel(model.eval(), "state dict" if kind == "torch.save" else "safetensors", arch, None, None)
    if kind == "torchscript":
        _check_torchscript(data)
        try:
            # torch.jit.load has no annotations
            program = torch.jit.load(io.BytesIO(data), map_location="cpu")  # type: ignore[no-untyped-call]
        except Exception as e:  # truncated archive, unknown ops, newer format
            raise UploadError(f"the TorchScript archive could not be loaded: it is truncated, corrupt or from an "
                              f"incompatible PyTorch ({_short(e)})") from None
        model = _rebuilt(lambda: _sequential(_torchscript_ops(program)))
        return ReadModel(model, "TorchScript", "rebuilt from the graph", program.eval(), None)
    _check_pt2(data, limit)
    try:
        ep = _export_load(data)
    except UploadError:
        raise
    except Exception as e:
        raise UploadError(f"the torch.export program could not be loaded: it is truncated, corrupt or from an "
                          f"incompatible PyTorch ({_short(e)})") from None
    try:
        ops, shape = _exported_ops(ep)
        chain = _sequential(ops)
    except UploadError as e:   # not a chain (residual adds, attention, no layer): run as its own graph
        if not any(said in str(e) for said in _NOT_A_CHAIN):
            raise   # a chain's own refusal (a layer in training mode, ...) stands
        return _graph_read(ep, "torch.export")
    except (RuntimeError, ValueError, TypeError, IndexError, KeyError, AttributeError):
        return _graph_read(ep, "torch.export")
    return ReadModel(chain, "torch.export", "rebuilt from the graph", ep.module(), tuple(shape[1:]),
                     int(shape[0]) if isinstance(shape[0], int) else None)


_NOT_A_CHAIN = ("chain", "does not support", "computed value", "no Linear or Conv layer")
GRAPH = "graph"   # ReadModel.architecture of a model run as its own graph (slimcore.graph)


def _graph_read(ep: torch.export.ExportedProgram, fmt: str, architecture: str = GRAPH) -> ReadModel:
    """An exported program as a graph model: described as plain data and rebuilt from it here, exactly as the server
    will rebuild it; a program fixed to one batch size must also run at another."""
    try:
        desc, tensors = G.describe(ep)
        model = G.build(json.loads(json.dumps(desc)), tensors)   # the plain-data round trip the server makes
    except G.GraphError as e:
        raise UploadError(str(e)) from None
    batch = desc.get("batch")
    if isinstance(batch, int):
        probe = torch.zeros((batch + 1, *desc["input_shape"]))
        if _outputs(model, probe) is None:
            raise UploadError(f"the program was exported for a batch of exactly {batch} and does not run on other "
                              "batch sizes; export it with a dynamic batch dimension, e.g. torch.export.export(model, "
                              "(x,), dynamic_shapes=({0: torch.export.Dim('batch')},))")
    return ReadModel(model, fmt, architecture, ep.module(), tuple(desc["input_shape"]), batch, graph=desc)


def _named(kind: str, data: bytes, name: str) -> ReadModel:
    """Weights for an architecture named by the user (slimcore.architectures), loaded into it strictly; it becomes a
    graph model once the data say its input shape (inspect)."""
    from . import architectures

    if name not in architectures.ARCHITECTURES:
        raise UploadError(f"unknown architecture {display_name(name, 40)!r}; known: "
                          f"{', '.join(architectures.ARCHITECTURES)}")
    if kind not in ("torch.save", "safetensors"):
        raise UploadError(f"for a named architecture ({name}) upload its weights: a state dict (torch.save) or a "
                          "safetensors file; this file is a whole program (upload it without an architecture name)")
    state = _read_torch_save(data) if kind == "torch.save" else _read_safetensors(data)
    try:
        model = architectures.fit(name, state)
    except ValueError as e:
        raise UploadError(str(e)) from None
    return ReadModel(model, "state dict" if kind == "torch.save" else "safetensors", name, None, None)


def _check_npz_headers(data: bytes, limit: int) -> None:
    """Read each array's header (shape and dtype) before NumPy allocates it: a header may declare terabytes."""
    if data[:2] != b"PK":
        return  # not an archive: np.load says what it is
    try:
        z = zipfile.ZipFile(io.BytesIO(data))
        for info in z.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with z.open(info) as f:
                version = np.lib.format.read_magic(f)
                shape, _, dtype = (np.lib.format.read_array_header_1_0(f) if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0(f))
            if math.prod(shape) * max(dtype.itemsize, 1) > 2 * limit:
                raise UploadError(f"the data file's array {display_name(info.filename)} declares shape {shape}, "
                                  f"beyond the {_mb(2 * limit)} limit")
            held = {"x.npy": 4, "y.npy": 8}.get(info.filename)   # as the labs hold them: float32 inputs, int64 labels
            if held and math.prod(shape) * held > limit:
                raise UploadError(f"the data's array {info.filename[:-4]} ({' x '.join(map(str, shape))}) would take "
                                  f"{_mb(math.prod(shape) * held)} in memory once read; data may take {_mb(limit)} "
                                  "(the upload limit), however small the file")
    except UploadError:
        raise
    except Exception:  # a damaged header: np.load below reports the file as unreadable
        return


def read_data(data: bytes, limit: int = MAX_DATA_BYTES) -> Split:
    """Evaluation data from a .npz holding x (inputs) and y (integer labels); never unpickles."""
    _check_size(data, limit, "data")
    _check_expansion(data, limit, "data")
    _check_npz_headers(data, limit)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            if not hasattr(z, "files"):
                raise UploadError("the data file is a single NumPy array; expected a .npz with arrays x and y")
            missing = [k for k in ("x", "y") if k not in z.files]
            if missing:
                raise UploadError(f"the data file has no array {' or '.join(missing)} (it holds: "
                                  f"{', '.join(z.files[:8]) or 'nothing'}); expected x (inputs) and y (labels)")
            x, y = z["x"], z["y"]
    except UploadError:
        raise
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise UploadError("the data file holds Python objects (object arrays); SlimLab never unpickles: save "
                              "numeric arrays") from None
        raise UploadError(f"the data file is not a readable .npz ({_short(e)})") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise UploadError(f"the data file is truncated or not a .npz archive ({_short(e)})") from None
    if x.dtype.kind not in "fiub" or y.dtype.kind not in "iub" or x.dtype.itemsize > 8 or y.dtype.itemsize > 8:
        raise UploadError(f"x must be numeric (at most 64-bit) and y integer labels; got x {x.dtype}, y {y.dtype}")
    if y.size and y.max() > np.iinfo(np.int64).max // 2:
        raise UploadError("labels in y must be class indices 0, 1, 2, …; found one beyond 2**62")
    if y.ndim != 1 or x.ndim < 2 or len(x) != len(y):
        raise UploadError(f"x must hold one example per row and y one label per example; got x {x.shape}, "
                          f"y {y.shape}")
    if len(y) < MIN_EXAMPLES:
        raise UploadError(f"the data holds {len(y)} examples; at least {MIN_EXAMPLES} are needed for a held-out "
                          "test split")
    if not np.isfinite(x).all():
        raise UploadError(f"x holds {int((~np.isfinite(x)).sum()):,} NaN or infinite values")
    if y.min() < 0:
        raise UploadError("labels in y must be class indices 0, 1, 2, …; found negative ones")
    return Split(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long))


def _check_finite_weights(model: nn.Module) -> None:
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        if t.is_floating_point() and not torch.isfinite(t).all():
            bad = int((~torch.isfinite(t)).sum())
            raise UploadError(f"{name} holds {bad:,} NaN or infinite values: the model cannot be evaluated")


def _outputs(model: Callable[[torch.Tensor], Any], x: torch.Tensor) -> torch.Tensor | None:
    try:
        with torch.no_grad():
            out = model(x)
    except Exception:  # wrong shape or dtype for this model
        return None
    return out if isinstance(out, torch.Tensor) and out.ndim == 2 else None


def _check_rebuild(read: ReadModel, x: torch.Tensor) -> None:
    """The rebuilt model must give the file's own program's outputs."""
    if read.original is None:
        return
    if read.batch is not None:  # an exported program may only take the batch size it was exported with
        x = x.repeat((math.ceil(read.batch / len(x)),) + (1,) * (x.ndim - 1))[:read.batch]
    theirs, ours = _outputs(read.original, x), _outputs(read.model, x)
    if theirs is None or ours is None or theirs.shape != ours.shape:
        raise UploadError("the model could not be rebuilt faithfully from its graph (the outputs differ in shape)")
    gap = (theirs - ours).abs()
    if not bool((gap <= TOLERANCE + TOLERANCE * theirs.abs()).all()):  # element by element: no output hides another
        raise UploadError(f"the model could not be rebuilt faithfully from its graph (outputs differ by up to "
                          f"{float(gap.max()):.3g})")


def _shape_text(shape: tuple[int, ...]) -> str:
    return " x ".join(map(str, shape))


def _uploaded_dataset(split: Split, classes: int) -> Dataset:
    """Uploaded data as a dataset: split 60 / 10 / 30 % into train / validation / test (seed 0)."""
    x, y = split.x.numpy(), split.y.numpy()
    train, val, test = split_arrays(x, y, DATA_FRACTIONS, 0)
    return Dataset("upload", f"your data ({len(y):,} examples)", tuple(x.shape[1:]), classes, train, val, test)


def _choose_data(read: ReadModel, split: Split | None) -> tuple[str, int]:
    """What an uploaded model is evaluated on: ("uploaded", its classes) for the uploaded data, else the name of a
    shipped dataset whose inputs fit, with its classes."""
    if split is not None:
        out = _outputs(read.model, split.x[:2])
        if out is None:
            want = f" (the file says it takes {_shape_text(read.input_shape)})" if read.input_shape else ""
            raise UploadError(f"the data does not fit the model: its inputs are {_shape_text(tuple(split.x.shape[1:]))}"
                              f" per example, which the model cannot take{want}")
        classes = out.shape[1]
        if int(split.y.max()) >= classes:
            raise UploadError(f"the labels go up to {int(split.y.max())} but the model has {classes} outputs")
        _check_rebuild(read, split.x[:8])
        return "uploaded", classes
    tried = []
    for name in ("digits", "mnist1d"):
        ds = load_dataset(name)
        tried.append(f"{_shape_text(ds.input_shape)} ({name})")
        if read.input_shape is not None and tuple(read.input_shape) != tuple(ds.input_shape):
            continue
        out = _outputs(read.model, ds.test.x[:2])
        if out is not None and out.shape[1] == ds.classes:
            _check_rebuild(read, ds.test.x[:8])
            return name, ds.classes
    want = f"takes {_shape_text(read.input_shape)} inputs, and " if read.input_shape else ""
    raise UploadError(f"the model {want}fits none of the shipped datasets (inputs {', '.join(tried)} with 10 "
                      "classes): add evaluation data, a .npz with x (inputs) and y (labels)")


def upload_name(model_bytes: bytes, data_bytes: bytes | None = None, architecture: str | None = None) -> str:
    """A stable name for an upload, from its content: the same files give the same name in every session."""
    h = hashlib.sha256(model_bytes)
    if data_bytes is not None:
        h.update(b"\0data\0" + data_bytes)
    if architecture is not None:
        h.update(b"\0architecture\0" + architecture.encode())
    return "upload-" + h.hexdigest()[:16]


def is_upload(name: str) -> bool:
    return bool(re.fullmatch(r"upload-[0-9a-f]{16}", name or ""))


def load_upload(model_bytes: bytes, filename: str | None = None, data_bytes: bytes | None = None,
                data_filename: str | None = None, limit: int = MAX_MODEL_BYTES,
                budget: int | None = None, architecture: str | None = None) -> Sample | TextSample:
    """An uploaded model (and optional .npz data) as a Sample every lab can use; UploadError says what is wrong.
    The files are read in a confined process (slimcore.sandbox); this process only rebuilds standard layers from the
    plain description it hands back. `budget`: the most bytes the model and data may take in memory here."""
    from . import sandbox

    doc, blob = sandbox.read(model_bytes, data_bytes, limit, architecture=architecture)
    try:
        return assemble(doc, blob, model_bytes, filename, data_bytes, budget, architecture)
    except UploadError:
        raise
    except MemoryError:
        raise UploadError("the model would need more memory than this server has") from None
    except Exception as e:  # a case the checks did not foresee: still one clear line, never a traceback
        raise UploadError(f"the file could not be used ({type(e).__name__}: {_short(e, 120)})") from None


def inspect(model_bytes: bytes, data_bytes: bytes | None, limit: int = MAX_MODEL_BYTES,
            architecture: str | None = None) -> tuple[dict[str, Any], bytes]:
    """Read and check an upload here (the confined reading process does: slimcore.sandbox): its description as
    plain data, and its tensors (the model's state, the uploaded data) as safetensors bytes. A named architecture's
    model is exported on an example of the data and handed over as a graph model, as a .pt2 of it would be."""
    from safetensors.torch import save

    read = None
    if _is_hf_folder(model_bytes):
        from . import hf

        _check_size(model_bytes, limit, "model")
        try:
            if hf.model_type(model_bytes, limit) not in hf.VISION:
                return _hf_folder(model_bytes, data_bytes, limit)
            model, shape, about = hf.read_image_classifier(model_bytes, limit)
        except hf.FolderError as e:
            raise UploadError(str(e)) from None
        architecture = f"{about['model_type']} (Hugging Face)"
        read = ReadModel(model, hf.FORMAT, architecture, None, shape)
    read = read or read_model(model_bytes, limit, architecture)
    _check_finite_weights(read.model)
    split = read_data(data_bytes, limit) if data_bytes is not None else None
    source, classes = _choose_data(read, split)
    if architecture is not None:   # a named architecture, or transformers' class: handed over as its graph
        x = split.x[:2] if split is not None else load_dataset(source).test.x[:2]
        try:
            ep = torch.export.export(read.model, (x,), dynamic_shapes=({0: torch.export.Dim("batch")},))
        except Exception as e:  # an input this architecture cannot trace with
            raise UploadError(f"{architecture} could not be traced on inputs of shape {_shape_text(tuple(x.shape[1:]))}"
                              f" ({_short(e, 120)})") from None
        named = _graph_read(ep, read.format, architecture)
        if not torch.allclose(named.model(x), read.model(x), atol=TOLERANCE, rtol=TOLERANCE):
            raise UploadError(f"{architecture} gives other outputs as a graph than as written: refused")
        read = named
    if read.graph is not None:
        _check_activations(read.model, split.x[:2] if split is not None else load_dataset(source).test.x[:2])
    tensors = {f"model.{k}": v.detach().contiguous() for k, v in read.model.state_dict().items()}
    if split is not None:
        tensors |= {"data.x": split.x.contiguous(), "data.y": split.y.contiguous()}
    doc = {"format": read.format, "architecture": read.architecture, "classes": classes, "data": source,
           "layers": None if read.architecture in SAMPLES or read.graph else describe(read.model),
           "graph": read.graph}
    return doc, save(tensors)


def _is_hf_folder(data: bytes) -> bool:
    """A zip that holds a Hugging Face model folder (anything else goes through read_model's checks, in their order)."""
    if data[:2] != b"PK":
        return False
    try:
        return sniff(data) == "hf-folder"
    except UploadError:
        return False


ACTIVATIONS = 4 * 2**30   # the most a batch of LARGEST_BATCH examples may produce, over every node of the model
LARGEST_BATCH = 256       # the largest batch the labs run a classifier at (timing)


def _check_activations(model: nn.Module, x: torch.Tensor) -> None:
    """A graph runs here on a few examples only; the server runs it on batches of 256: refuse a model whose
    activations would then take more memory than a server can give one model (a graph may allocate at will)."""
    try:
        per = G.activation_bytes(model, x)
    except Exception:   # a graph ShapeProp cannot follow: its outputs were checked already, its size is unknown
        return
    if per * LARGEST_BATCH > ACTIVATIONS:
        raise UploadError(f"the model's activations take {per / 2**20:,.0f} MiB per example; a batch of "
                          f"{LARGEST_BATCH} (the labs time models at that batch) would need "
                          f"{per * LARGEST_BATCH / 2**30:,.1f} GiB, beyond the {ACTIVATIONS / 2**30:g} GiB a model "
                          "may use here")


def _hf_folder(model_bytes: bytes, data_bytes: bytes | None, limit: int) -> tuple[dict[str, Any], bytes]:
    """A zipped Hugging Face model folder (slimcore.hf: BERT-family sentence encoders) read here: its description as
    plain data and its weights; it is evaluated on the project's sentence set, tokenized by its own tokenizer."""
    from safetensors.torch import save

    from . import hf

    _check_size(model_bytes, limit, "model")
    if data_bytes is not None:
        raise UploadError("a sentence encoder is evaluated on SlimLab's sentence set; leave the evaluation data empty")
    try:
        desc, tensors = hf.read_folder(model_bytes, limit)
    except hf.FolderError as e:
        raise UploadError(str(e)) from None
    return {"format": hf.FORMAT, "architecture": desc["config"].get("model_type"), "hf": desc, "data": "sentences",
            "classes": 0, "layers": None, "graph": None}, save({f"model.{k}": v for k, v in tensors.items()})


# The layers a rebuilt model may hold, with the arguments that make each (read back from a built one).
_LAYERS: dict[str, tuple[type[nn.Module], tuple[str, ...]]] = {
    "Linear": (nn.Linear, ("in_features", "out_features", "bias")),
    "Conv1d": (nn.Conv1d, ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "bias")),
    "Conv2d": (nn.Conv2d, ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "bias")),
    "BatchNorm1d": (nn.BatchNorm1d, ("num_features", "eps")),
    "BatchNorm2d": (nn.BatchNorm2d, ("num_features", "eps")),
    "ReLU": (nn.ReLU, ()), "Tanh": (nn.Tanh, ()), "Sigmoid": (nn.Sigmoid, ()), "SiLU": (nn.SiLU, ()),
    "GELU": (nn.GELU, ("approximate",)), "LeakyReLU": (nn.LeakyReLU, ("negative_slope",)),
    "MaxPool1d": (nn.MaxPool1d, ("kernel_size", "stride", "padding", "dilation", "ceil_mode")),
    "MaxPool2d": (nn.MaxPool2d, ("kernel_size", "stride", "padding", "dilation", "ceil_mode")),
    "AvgPool1d": (nn.AvgPool1d, ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad")),
    "AvgPool2d": (nn.AvgPool2d, ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad")),
    "AdaptiveAvgPool1d": (nn.AdaptiveAvgPool1d, ("output_size",)),
    "AdaptiveAvgPool2d": (nn.AdaptiveAvgPool2d, ("output_size",)),
    "Flatten": (nn.Flatten, ("start_dim", "end_dim")), "LogSoftmax": (nn.LogSoftmax, ("dim",)),
}


def describe(model: nn.Module) -> list[list[Any]]:
    """A rebuilt model as plain data: [name, layer type, {argument: value}] per layer."""
    out = []
    for name, m in model.named_children():
        kind = type(m).__name__
        if kind not in _LAYERS:
            raise UploadError(f"layer {name} is a {kind}, which SlimLab does not rebuild")
        args: dict[str, Any] = {}
        for a in _LAYERS[kind][1]:
            v = getattr(m, a)
            args[a] = (v is not None) if a == "bias" else list(v) if isinstance(v, tuple) else v
        out.append([name, kind, args])
    return out


def rebuild(layers: Any, state: dict[str, torch.Tensor]) -> nn.Sequential:
    """The model a description names, built from standard layers only and filled with its tensors; the description is
    checked first (known layers, plain arguments, every tensor of the right shape) and nothing is allocated for a
    layer before its shapes match the tensors handed over."""
    if not isinstance(layers, list) or not layers or len(layers) > 512:
        raise UploadError("the file could not be read (its description holds no layers)")
    built: OrderedDict[str, nn.Module] = OrderedDict()
    for entry in layers:
        if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str) and entry[1] in _LAYERS
                and isinstance(entry[2], dict) and re.fullmatch(r"[A-Za-z0-9_]{1,80}", entry[0])
                and entry[0] not in built):
            raise UploadError("the file could not be read (its description names a layer SlimLab does not build)")
        name, kind, args = entry
        cls, expected = _LAYERS[kind]
        if set(args) != set(expected) or not all(G.plain(v, ("none", "tanh"), 3) for v in args.values()):
            raise UploadError(f"the file could not be read (layer {name}'s arguments are not a {kind}'s)")
        args = {k: tuple(v) if isinstance(v, list) else v for k, v in args.items()}
        with torch.device("meta"):   # shapes only: nothing allocated yet
            m = cls(**args)
        built[name] = m
    model = nn.Sequential(built)
    want = {k: (tuple(v.shape), v.dtype) for k, v in model.state_dict().items()}
    have = {k: (tuple(v.shape), v.dtype) for k, v in state.items()}
    if want != have:
        raise UploadError("the file could not be read (its tensors do not match its layers)")
    model = model.to_empty(device="cpu")
    model.load_state_dict(state, strict=True)
    return model.eval()


def assemble(doc: dict[str, Any], blob: bytes, model_bytes: bytes, filename: str | None = None,
             data_bytes: bytes | None = None, budget: int | None = None, architecture: str | None = None
             ) -> Sample | TextSample:
    """A Sample from what the reading process handed back (slimcore.sandbox): the model rebuilt from standard layers
    (or a sample architecture) and its tensors, the data chosen, the card measured here."""
    from safetensors.torch import load

    tensors = load(blob)
    state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    held = sum(v.numel() * v.element_size() for v in tensors.values())
    if budget is not None and held > budget:
        raise UploadError(f"the model and its data take {held / 10**6:,.0f} MB in memory; uploads may take "
                          f"{budget / 10**6:,.0f} MB on this server")
    if doc.get("hf") is not None:
        from . import hf

        name = upload_name(model_bytes, data_bytes, architecture)
        try:
            return hf.sample(doc["hf"], state, name, {
                "name": display_name(filename), "file_bytes": len(model_bytes),
                "sha256": hashlib.sha256(model_bytes).hexdigest(), "memory_bytes": held})
        except hf.FolderError as e:
            raise UploadError(str(e)) from None
    arch = doc.get("architecture")
    model: nn.Module
    if doc.get("graph") is not None:
        try:
            model = G.build(doc["graph"], state)
        except G.GraphError as e:
            raise UploadError(str(e)) from None
    elif arch in SAMPLES:
        model = SAMPLES[arch].build()
        want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        if want != {k: tuple(v.shape) for k, v in state.items()}:
            raise UploadError("the file could not be read (its tensors do not match its architecture)")
        model.load_state_dict(state)
        model.eval()
    else:
        model = rebuild(doc.get("layers"), state)
    for p in model.parameters():
        p.requires_grad_(False)
    classes = int(doc.get("classes", 0))
    if doc.get("data") == "uploaded":
        if "data.x" not in tensors or "data.y" not in tensors:
            raise UploadError("the file could not be read (its data went missing)")
        data = _uploaded_dataset(Split(tensors["data.x"].float(), tensors["data.y"].long()), classes)
        source = "uploaded"
    elif doc.get("data") in ("digits", "mnist1d"):
        data, source = load_dataset(doc["data"]), "shipped"
    else:
        raise UploadError("the file could not be read (no data to evaluate it on)")
    if isinstance(model, nn.Sequential):   # a rebuilt chain: its input shape lets structured pruning read its
        # BatchNorms (zeroed with the channels they follow); a plain attribute, where nn.Module's __setattr__ is
        # typed for tensors and modules only
        model.input_shape = tuple(data.input_shape)  # type: ignore[assignment]
    fmt = str(doc.get("format", ""))
    shown = display_name(filename)
    layers = weight_layers(model)
    kinds = sorted({type(m).__name__ for m in layers.values()})
    if doc.get("graph") is not None:
        ops = G.operations(model)
        described = (f"{arch} architecture, " if arch != GRAPH else "") + \
            f"run as its graph: {len(layers)} weight layers ({', '.join(kinds) or 'none'}) and {sum(ops.values())} " \
            f"other operations ({', '.join(list(ops)[:8])}{', …' if len(ops) > 8 else ''})"
    else:
        described = (f"{arch} architecture" if arch in SAMPLES
                     else f"{len(layers)} weight layers ({', '.join(kinds)}), rebuilt from the graph")
    card = {
        "name": shown, "source": "upload", "format": fmt, "file_bytes": len(model_bytes),
        "sha256": hashlib.sha256(model_bytes).hexdigest(), "architecture": f"{fmt}, {described}",
        "module": str(model), "dataset": data.description, "data_source": source,
        "splits": {"train": len(data.train), "val": len(data.val), "test": len(data.test),
                   "split_seed": 0 if source == "uploaded" else None},
        "parameters": sum(p.numel() for p in model.parameters()), "test_accuracy": accuracy(model, data.test),
        "sample_architecture": arch if arch in SAMPLES else None, "memory_bytes": held,
        "graph": doc.get("graph") is not None,
    }
    return Sample(upload_name(model_bytes, data_bytes, architecture), model, data, card)


def load_files(model_path: str, data_path: str | None = None, limit: int = MAX_MODEL_BYTES,
               architecture: str | None = None) -> Sample | TextSample:
    """load_upload for files on disk (the command line): the same checks, and sizes checked before reading."""
    from pathlib import Path

    paths = [(Path(model_path), "model")] + ([(Path(data_path), "data")] if data_path else [])
    blobs = []
    for path, what in paths:
        if not path.is_file():
            raise UploadError(f"the {what} file {display_name(str(path))!r} does not exist")
        if path.stat().st_size > limit:
            raise UploadError(f"the {what} file is {_mb(path.stat().st_size)}; the limit is {_mb(limit)}")
        blobs.append(path.read_bytes())
    return load_upload(blobs[0], paths[0][0].name, blobs[1] if data_path else None,
                       paths[1][0].name if data_path else None, limit, architecture=architecture)
