"""Graph models: a torch.export program run as its own graph, residual adds, concatenations, attention and all.

Reading (in the confined reading process, slimcore.sandbox): `describe(program)` turns an exported program into plain
data, a JSON-able description of its graph, plus its tensors. Every call of a Linear, Conv, BatchNorm, LayerNorm or
Embedding on the program's own weights becomes a standard layer (named as in the model that was exported:
`layer1.0.conv1`), so every lab finds the layers it compresses; every other node is an ATen tensor operation named
by its schema (`aten.add.Tensor`), with its constant arguments.

Building (in the server): `build(description, tensors)` checks the description again (it came from another process),
builds the standard layers on the meta device, loads the tensors strictly, and assembles a torch.fx GraphModule whose
code torch.fx writes from the checked graph. Nothing from the file runs but ATen's own tensor operations: no Python
from the file, no custom or higher-order operators, and no operator that writes into a weight or an input.
"""
from __future__ import annotations

import copy
import math
import operator
import re
from collections import OrderedDict
from typing import Any, TypeGuard, cast

import torch
from torch import nn
from torch.nn import functional as F

MAX_NODES = 20_000
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}(\.[A-Za-z0-9_]{1,64}){0,15}")
_RESERVED = set(dir(nn.Module())) | {"graph", "code", "input_shape", "support"}

# Standard layers a graph's weight ops become, with the arguments that build each (read back from a built one).
LAYERS: dict[str, tuple[type[nn.Module], tuple[str, ...]]] = {
    "Linear": (nn.Linear, ("in_features", "out_features", "bias")),
    "Conv1d": (nn.Conv1d, ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups",
                           "bias")),
    "Conv2d": (nn.Conv2d, ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups",
                           "bias")),
    "BatchNorm1d": (nn.BatchNorm1d, ("num_features", "eps", "momentum", "affine", "track_running_stats")),
    "BatchNorm2d": (nn.BatchNorm2d, ("num_features", "eps", "momentum", "affine", "track_running_stats")),
    "LayerNorm": (nn.LayerNorm, ("normalized_shape", "eps", "elementwise_affine", "bias")),
    "Embedding": (nn.Embedding, ("num_embeddings", "embedding_dim", "padding_idx")),
}
# Python-level operations an exported graph uses on sizes (symbolic batch sizes) and on tuple outputs.
PY_OPS = {"getitem": operator.getitem, "add": operator.add, "sub": operator.sub, "mul": operator.mul,
          "floordiv": operator.floordiv, "truediv": operator.truediv, "neg": operator.neg, "mod": operator.mod}
# Checks an exported graph carries (they compute nothing the model returns): dropped.
CHECKS = {"_assert_scalar", "_assert_async", "sym_constrain_range", "sym_constrain_range_for_size",
          "_assert_tensor_metadata", "_functional_assert_async", "_functional_sym_constrain_range"}
# ATen operations spelled as the torch functions that torch.ao's int8 patterns know (the same kernels).
FRIENDLY = {"aten.relu.default": F.relu, "aten.add.Tensor": operator.add, "aten.flatten.using_ints": torch.flatten,
            "aten.cat.default": torch.cat, "aten.adaptive_avg_pool2d.default": F.adaptive_avg_pool2d,
            "aten.max_pool2d.default": F.max_pool2d, "aten.mean.dim": torch.mean}
_DTYPES = {str(d).removeprefix("torch."): d for d in (torch.float32, torch.float64, torch.float16, torch.bfloat16,
                                                      torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8,
                                                      torch.bool)}
_ENUMS: dict[str, dict[str, torch.layout | torch.memory_format]] = {"layout": {"strided": torch.strided},
          "memory_format": {"contiguous_format": torch.contiguous_format, "preserve_format": torch.preserve_format,
                            "channels_last": torch.channels_last}}


class GraphError(ValueError):
    """A program that cannot be run as a graph here, with a message fit to show a person."""


# --------------------------------------------------------------------------------------------- reading a program

def _op_name(target: Any) -> str:
    """'aten.add.Tensor' for an ATen overload, 'getitem' / 'mul' for Python's operators; GraphError otherwise."""
    if isinstance(target, torch._ops.OpOverload):
        ns, name, overload = target.namespace, target._schema.name.split("::")[-1], target._overloadname
        if ns != "aten":
            raise GraphError(f"the graph calls {ns}::{name}, an operator from outside PyTorch's own ATen library: "
                             "SlimLab runs only ATen's tensor operations")
        return f"aten.{name}.{overload}"
    if getattr(target, "__module__", None) in ("_operator", "operator") and target.__name__ in PY_OPS:
        return str(target.__name__)
    raise GraphError(f"the graph calls {getattr(target, '__name__', type(target).__name__)} (control flow or a "
                     "Python function), which SlimLab does not run")


def _encode(a: Any, refs: dict[str, Any]) -> Any:
    """A node argument as plain JSON data."""
    if isinstance(a, torch.fx.Node):
        return refs[a.name]
    if a is None or isinstance(a, bool) or isinstance(a, int):
        return a
    if isinstance(a, float):
        return a if math.isfinite(a) else {"float": repr(a)}
    if isinstance(a, (list, tuple)):
        return {"list" if isinstance(a, list) else "tuple": [_encode(x, refs) for x in a]}
    if isinstance(a, torch.dtype):
        return {"dtype": str(a).removeprefix("torch.")}
    if isinstance(a, torch.device):
        return {"device": "cpu"}
    if isinstance(a, torch.layout):
        return {"layout": str(a).removeprefix("torch.")}
    if isinstance(a, torch.memory_format):
        return {"memory_format": str(a).removeprefix("torch.")}
    if isinstance(a, str) and re.fullmatch(r"[A-Za-z_]{1,16}", a):
        return {"str": a}
    raise GraphError(f"the graph passes a {type(a).__name__} argument, which SlimLab does not read")


def _layer(name: str, args: list[Any], weights: dict[str, torch.Tensor], fqns: list[str | None]
           ) -> tuple[str, str, dict[str, Any]] | None:
    """(qualified name, layer kind, arguments) when an ATen call is a standard layer on the program's own weights
    (its weight named '<layer>.weight' and the rest '<layer>.bias' / running statistics); else None."""
    def tensor(i: int) -> str | None:
        return fqns[i] if i < len(fqns) else None

    op = name.split(".")[1]
    if op in ("linear", "conv1d", "conv2d", "batch_norm", "_native_batch_norm_legit_no_training", "layer_norm"):
        wi = {"layer_norm": 2}.get(op, 1)
    elif op == "embedding":
        wi = 0
    else:
        return None
    w = tensor(wi)
    if w is None or not w.endswith(".weight") and not (op == "embedding" and w == "weight"):
        return None
    prefix = w[:-len(".weight")] if w.endswith(".weight") else ""
    if not prefix:
        return None
    weight = weights[w]

    def named(i: int, suffix: str) -> bool:
        return tensor(i) == f"{prefix}.{suffix}"

    def const(i: int, default: Any) -> Any:
        return args[i] if i < len(args) else default

    if op == "linear":
        bias = len(args) > 2 and args[2] is not None
        if bias and not named(2, "bias") or weight.dim() != 2:
            return None
        return prefix, "Linear", {"in_features": weight.shape[1], "out_features": weight.shape[0], "bias": bias}
    if op in ("conv1d", "conv2d"):
        bias = len(args) > 2 and args[2] is not None
        if bias and not named(2, "bias") or weight.dim() != {"conv1d": 3, "conv2d": 4}[op]:
            return None
        n = weight.dim() - 2
        pad = const(4, 0)
        groups = int(const(6, 1))
        return prefix, f"Conv{n}d", {
            "in_channels": weight.shape[1] * groups, "out_channels": weight.shape[0],
            "kernel_size": list(weight.shape[2:]), "stride": _ints(const(3, 1), n),
            "padding": pad if isinstance(pad, str) else _ints(pad, n), "dilation": _ints(const(5, 1), n),
            "groups": groups, "bias": bias}
    if op in ("batch_norm", "_native_batch_norm_legit_no_training"):
        if not (named(2, "bias") and named(3, "running_mean") and named(4, "running_var")) or weight.dim() != 1:
            return None
        if op == "batch_norm" and const(5, False):
            raise GraphError(f"the graph runs {prefix} (BatchNorm) in training mode; export the model after "
                             "model.eval()")
        momentum, eps = (const(6, 0.1), const(7, 1e-5)) if op == "batch_norm" else (const(5, 0.1), const(6, 1e-5))
        return prefix, "BatchNorm?d", {"num_features": weight.shape[0], "eps": float(eps),
                                       "momentum": float(momentum), "affine": True, "track_running_stats": True}
    if op == "layer_norm":
        if not named(3, "bias") or args[3] is None:
            return None
        return prefix, "LayerNorm", {"normalized_shape": list(args[1]), "eps": float(const(4, 1e-5)),
                                     "elementwise_affine": True, "bias": True}
    if weight.dim() != 2 or len(args) > 3 and (args[3] or (len(args) > 4 and args[4])):
        return None   # scale_grad_by_freq / sparse: not a plain lookup
    pad = const(2, -1)
    return prefix, "Embedding", {"num_embeddings": weight.shape[0], "embedding_dim": weight.shape[1],
                                 "padding_idx": None if pad == -1 else int(pad)}


def _ints(v: Any, n: int) -> list[int]:
    return [int(x) for x in v] if isinstance(v, (list, tuple)) else [int(v)] * n


def _functional(program: torch.export.ExportedProgram) -> torch.export.ExportedProgram:
    """The program without operators that write into their inputs (torch.export keeps ReLU(inplace=True) as
    relu_): an in-place op on an activation nothing else reads becomes its out-of-place twin (the same values);
    any other write is refused."""
    graph = program.graph
    for node in graph.nodes:
        if node.op != "call_function" or not isinstance(node.target, torch._ops.OpOverload):
            continue
        if not node.target._schema.is_mutable:
            continue
        name = node.target._schema.name.split("::")[-1]
        twin = getattr(torch.ops.aten, name[:-1], None) if name.endswith("_") else None
        first = node.args[0] if node.args else None
        overload = node.target._overloadname
        if (twin is not None and isinstance(first, torch.fx.Node) and first.op == "call_function"
                and len(first.users) == 1 and overload in twin.overloads()):
            node.target = getattr(twin, overload)
            continue
        raise GraphError(f"the graph writes into a tensor in place ({name}) where SlimLab cannot tell it is safe: "
                         "export the model with out-of-place operations")
    return program


def describe(program: torch.export.ExportedProgram) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """An exported program as plain data: ({"inputs", "layers", "attrs", "nodes", "output", "input_shape"}, its
    tensors by qualified name). GraphError for what cannot be run as a graph here."""
    sig = program.graph_signature
    if getattr(sig, "buffers_to_mutate", None) or getattr(sig, "user_inputs_to_mutate", None):
        raise GraphError("the graph changes its own buffers or inputs when it runs (a model in training mode?); "
                         "export it after model.eval()")
    named = {**sig.inputs_to_parameters, **sig.inputs_to_buffers, **sig.inputs_to_lifted_tensor_constants}
    store = {**program.state_dict, **program.constants}
    if len(sig.user_inputs) != 1:
        raise GraphError(f"the model takes {len(sig.user_inputs)} inputs; SlimLab supports models with one input "
                         "tensor")
    program = _functional(program)
    nodes = list(program.graph.nodes)
    if len(nodes) > MAX_NODES:
        raise GraphError(f"the graph has {len(nodes):,} nodes; SlimLab reads at most {MAX_NODES:,}")
    refs: dict[str, Any] = {}
    weights: dict[str, torch.Tensor] = {}
    layers: dict[str, list[Any]] = {}
    out_nodes: list[list[Any]] = []
    shape: list[int | None] = []
    for node in nodes:
        if node.op == "placeholder":
            if node.name in named:
                fqn = named[node.name]
                t = store.get(fqn)
                if not isinstance(t, torch.Tensor) or not _NAME.fullmatch(fqn):
                    raise GraphError(f"the graph reads a weight it does not hold ({fqn!r})")
                weights[fqn] = t.detach()
                refs[node.name] = {"attr": fqn}
            else:
                val = node.meta.get("val")
                if not isinstance(val, torch.Tensor):
                    raise GraphError("the model's input is not a tensor")
                shape = [int(d) if isinstance(d, int) else None for d in val.shape]
                refs[node.name] = {"node": 0}
            continue
        if node.op == "output":
            outs = node.args[0]
            outs = outs if isinstance(outs, (list, tuple)) else [outs]
            if len(outs) != 1 or not isinstance(outs[0], torch.fx.Node):
                raise GraphError(f"the model returns {len(outs)} values; SlimLab supports models returning one tensor")
            output = refs[outs[0].name]
            continue
        if node.op != "call_function":
            raise GraphError(f"the graph holds a {node.op} node, which SlimLab does not run")
        name = _op_name(node.target)
        if name.split(".")[1:2] and name.split(".")[1] in CHECKS:
            continue
        fqns = [named.get(a.name) if isinstance(a, torch.fx.Node) else None for a in node.args]
        layer = _layer(name, list(node.args), weights, fqns) if name.startswith("aten.") else None
        index = len(out_nodes) + 1
        if layer is not None:
            prefix, kind, args = layer
            if kind == "BatchNorm?d":
                x = node.args[0].meta.get("val") if isinstance(node.args[0], torch.fx.Node) else None
                kind = "BatchNorm2d" if isinstance(x, torch.Tensor) and x.dim() == 4 else "BatchNorm1d"
            if prefix in layers and layers[prefix] != [kind, args]:
                layer = None   # one weight used as two different layers: leave it as plain operations
            else:
                layers[prefix] = [kind, args]
                data_arg = node.args[1] if kind == "Embedding" else node.args[0]
                out_nodes.append(["call_module", prefix, [_encode(data_arg, refs)], {}])
                if name.endswith("_native_batch_norm_legit_no_training.default"):
                    refs[node.name] = {"tuple_of": index}   # its getitem(0) is the layer's output
                else:
                    refs[node.name] = {"node": index}
                continue
        if name == "getitem" and isinstance(node.args[0], torch.fx.Node) and "tuple_of" in refs[node.args[0].name]:
            if node.args[1] != 0:
                raise GraphError("the graph reads the saved statistics of a BatchNorm (a training graph?)")
            refs[node.name] = {"node": refs[node.args[0].name]["tuple_of"]}
            continue
        out_nodes.append(["call_function", name, _encode(list(node.args), refs),
                          {k: _encode(v, refs) for k, v in node.kwargs.items()}])
        refs[node.name] = {"node": index}
    used = {f"{p}.{k}" for p in layers for k in _layer_keys(layers[p][0])}
    read = set(_attr_refs([n[2:] for n in out_nodes if n[0] == "call_function"]))
    attrs = sorted(k for k in weights if k not in used and k in read)
    tensors = {k: v.contiguous() for k, v in weights.items() if k in used or k in attrs}
    return {"layers": layers, "attrs": attrs, "nodes": out_nodes, "output": output, "input_shape": shape[1:],
            "batch": shape[0] if shape else None}, tensors


def _layer_keys(kind: str) -> tuple[str, ...]:
    return {"Linear": ("weight", "bias"), "Conv1d": ("weight", "bias"), "Conv2d": ("weight", "bias"),
            "BatchNorm1d": ("weight", "bias", "running_mean", "running_var"),
            "BatchNorm2d": ("weight", "bias", "running_mean", "running_var"), "LayerNorm": ("weight", "bias"),
            "Embedding": ("weight",)}[kind]


def _attr_refs(v: Any, depth: int = 0) -> list[str]:
    """Every weight a (part of a) description reads by name: {"attr": name} anywhere in it."""
    if depth > 12:
        raise GraphError("the description nests arguments too deeply")
    if isinstance(v, dict):
        if set(v) == {"attr"}:
            return [v["attr"]] if isinstance(v["attr"], str) else []
        return [a for x in v.values() for a in _attr_refs(x, depth + 1)]
    if isinstance(v, list):
        return [a for x in v for a in _attr_refs(x, depth + 1)]
    return []


# --------------------------------------------------------------------------------------------- building a model

def plain(v: Any, words: tuple[str, ...] = ("same", "valid"), longest: int = 4) -> bool:
    """A layer argument a description may carry: a bool, a small number, one of a few known words, or a short list
    of non-negative ints."""
    if v is None or isinstance(v, bool):
        return True
    if isinstance(v, int):
        return -2**31 < v < 2**31
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, str):
        return v in words
    return isinstance(v, list) and 0 < len(v) <= longest and all(isinstance(x, int) and 0 <= x < 2**31 for x in v)


def _check_name(name: Any) -> str:
    if not (isinstance(name, str) and _NAME.fullmatch(name)) or any(
            p in _RESERVED or p.startswith("_") for p in name.split(".")):
        raise GraphError(f"the description names a layer or weight SlimLab does not accept ({str(name)[:80]!r})")
    return name


def _resolve(name: Any) -> Any:
    """The callable a checked node target names: an ATen overload that writes into none of its arguments, or one
    of Python's size operators."""
    if isinstance(name, str) and name in PY_OPS:
        return PY_OPS[name]
    m = re.fullmatch(r"aten\.([a-z_][a-z0-9_]{0,80})\.([A-Za-z_][A-Za-z0-9_]{0,40})", name if isinstance(name, str)
                     else "")
    if not m:
        raise GraphError(f"the description calls {str(name)[:80]!r}, which is not an ATen operator")
    try:
        packet = getattr(torch.ops.aten, m.group(1))
        op = getattr(packet, m.group(2))
    except (AttributeError, RuntimeError):
        raise GraphError(f"the graph calls {name}, which this PyTorch does not have") from None
    if not isinstance(op, torch._ops.OpOverload) or op._schema.is_mutable:
        raise GraphError(f"the graph calls {name}, which writes into its arguments: refused")
    return FRIENDLY.get(name, op)


def _decode(v: Any, nodes: list[torch.fx.Node], attrs: dict[str, torch.fx.Node], depth: int = 0) -> Any:
    if depth > 8:
        raise GraphError("the description nests arguments too deeply")
    if v is None or isinstance(v, (bool, int)):
        if isinstance(v, int) and not isinstance(v, bool) and not -2**63 <= v < 2**63:
            raise GraphError("the description holds an integer out of range")
        return v
    if isinstance(v, float):
        return v
    if isinstance(v, dict) and len(v) == 1:
        (k, x), = v.items()
        if k == "node" and isinstance(x, int) and 0 <= x < len(nodes):
            return nodes[x]
        if k == "attr" and x in attrs:
            return attrs[x]
        if k in ("list", "tuple") and isinstance(x, list) and len(x) <= 4096:
            items = [_decode(i, nodes, attrs, depth + 1) for i in x]
            return items if k == "list" else tuple(items)
        if k == "float" and x in ("inf", "-inf", "nan"):
            return float(x)
        if k == "dtype" and x in _DTYPES:
            return _DTYPES[x]
        if k == "device" and x == "cpu":
            return torch.device("cpu")
        if k in _ENUMS and x in _ENUMS[k]:
            return _ENUMS[k][x]
        if k == "str" and isinstance(x, str) and re.fullmatch(r"[A-Za-z_]{1,16}", x):
            return x
    raise GraphError("the description holds an argument SlimLab does not read")


def build(desc: Any, tensors: dict[str, torch.Tensor]) -> torch.fx.GraphModule:
    """The graph model a description names, from standard layers and ATen operations only, filled with its tensors
    (checked: known layers with plain arguments, every tensor the right shape, nothing allocated before it fits)."""
    if (not isinstance(desc, dict) or not isinstance(desc.get("nodes"), list)
            or not isinstance(desc.get("layers"), dict)):
        raise GraphError("the file could not be read (its graph description is incomplete)")
    if not desc["nodes"] or len(desc["nodes"]) > MAX_NODES or len(desc["layers"]) > MAX_NODES:
        raise GraphError("the file could not be read (its graph is empty or too large)")
    root = nn.Module()
    for name, spec in desc["layers"].items():
        _check_name(name)
        if not (isinstance(spec, list) and len(spec) == 2 and spec[0] in LAYERS and isinstance(spec[1], dict)):
            raise GraphError(f"the file could not be read (layer {name} is not a layer SlimLab builds)")
        cls, expected = LAYERS[spec[0]]
        args = spec[1]
        if set(args) != set(expected) or not all(plain(v) for v in args.values()):
            raise GraphError(f"the file could not be read (layer {name}'s arguments are not a {spec[0]}'s)")
        args = {k: tuple(v) if isinstance(v, list) else v for k, v in args.items()}
        try:
            with torch.device("meta"):
                module = cls(**args)
        except (TypeError, ValueError, RuntimeError) as e:
            raise GraphError(f"the file could not be read (layer {name}: {str(e)[:100]})") from None
        _attach(root, name, module)
    attrs_in = desc.get("attrs") or []
    if not isinstance(attrs_in, list) or len(attrs_in) > MAX_NODES:
        raise GraphError("the file could not be read (its weights list is not a list)")
    counters = [k for k in root.state_dict() if k.endswith(".num_batches_tracked")]   # unused in eval: zero
    tensors = {k: v for k, v in tensors.items() if k not in counters}
    want = {k: (tuple(v.shape), v.dtype) for k, v in root.state_dict().items() if k not in counters}
    for a in attrs_in:
        _check_name(a)
        if a in want or a not in tensors:
            raise GraphError(f"the file could not be read (weight {a} is missing or named twice)")
        want[a] = (tuple(tensors[a].shape), tensors[a].dtype)
    have = {k: (tuple(v.shape), v.dtype) for k, v in tensors.items()}
    if want != have:
        raise GraphError("the file could not be read (its tensors do not match its layers)")
    root = root.to_empty(device="cpu")
    root.load_state_dict({k: v for k, v in tensors.items() if k not in attrs_in}
                         | {k: torch.zeros((), dtype=torch.long) for k in counters}, strict=True)
    for a in attrs_in:
        owner, _, leaf = a.rpartition(".")
        holder = _attach(root, owner, None) if owner else root
        holder.register_buffer(leaf, tensors[a].clone())
    graph = torch.fx.Graph()
    nodes: list[torch.fx.Node] = [graph.placeholder("x")]
    held = set(root.state_dict())
    refs = sorted(set(_attr_refs(desc["nodes"])))
    if any(a not in held for a in refs):
        raise GraphError("the file could not be read (its graph reads a weight it does not hold)")
    attrs = {a: graph.get_attr(a) for a in refs}
    layers = set(desc["layers"])
    for entry in desc["nodes"]:
        if not (isinstance(entry, list) and len(entry) == 4 and isinstance(entry[3], dict)):
            raise GraphError("the file could not be read (a node of its graph is malformed)")
        op, target, args, kwargs = entry
        if op == "call_module" and target in layers and isinstance(args, list) and len(args) == 1 and not kwargs:
            nodes.append(graph.call_module(target, (_decode(args[0], nodes, attrs),)))
        elif op == "call_function":
            fn = _resolve(target)
            args = _decode(args, nodes, attrs)
            if not isinstance(args, list) or not all(isinstance(k, str) and re.fullmatch(r"[a-z_]{1,40}", k)
                                                     for k in kwargs):
                raise GraphError("the file could not be read (a node's arguments are malformed)")
            nodes.append(graph.call_function(fn, tuple(args), {k: _decode(v, nodes, attrs) for k, v in kwargs.items()}))
        else:
            raise GraphError("the file could not be read (a node of its graph is not a layer or an ATen operation)")
    graph.output(_decode(desc.get("output"), nodes, attrs))
    try:
        graph.lint()
        model = torch.fx.GraphModule(root, graph, class_name="GraphModel")
        model.graph.eliminate_dead_code()
        model.recompile()
    except Exception as e:  # a graph torch.fx cannot compile
        raise GraphError(f"the file could not be read (its graph does not hold together: {str(e)[:100]})") from None
    shape = desc.get("input_shape")
    if not (isinstance(shape, list) and len(shape) <= 6 and all(isinstance(d, int) and 0 < d < 2**20 for d in shape)):
        raise GraphError("the file could not be read (its input shape is not plain)")
    model.input_shape = tuple(shape)  # type: ignore[assignment]  # a plain attribute (nn.Module types tensors, modules)
    model.meta["_user_preserved_attributes"] = {"input_shape": tuple(shape)}   # kept by copy.deepcopy
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()


def _attach(root: nn.Module, name: str, module: nn.Module | None) -> nn.Module:
    """Place a module at a dotted name under root, creating plain containers on the way; the holder of that name
    when `module` is None."""
    parts = name.split(".")
    at = root
    for p in parts[:-1] if module is not None else parts:
        child = at._modules.get(p)
        if child is None:
            child = nn.Module()
            at.add_module(p, child)
        at = child
    if module is not None:
        if parts[-1] in at._modules:
            raise GraphError(f"the file could not be read (layer {name} is named twice)")
        at.add_module(parts[-1], module)
    return at


def is_graph(model: nn.Module) -> TypeGuard[torch.fx.GraphModule]:
    return isinstance(model, torch.fx.GraphModule) and model.__class__.__name__.startswith("GraphModel")


def operations(model: nn.Module) -> dict[str, int]:
    """How many times a graph model calls each operation that is not one of its layers, by name."""
    counts: dict[str, int] = OrderedDict()
    for node in cast(torch.fx.GraphModule, model).graph.nodes:   # a graph model (build)
        if node.op == "call_function":
            name = getattr(node.target, "__name__", str(node.target))
            name = str(node.target) if isinstance(node.target, torch._ops.OpOverload) else name
            counts[name] = counts.get(name, 0) + 1
    return counts


# --------------------------------------------------------------------------------------------- what the labs can do

LABS = ("Pruning", "Quantization", "Distillation", "Trade-offs", "Sensitivity")
NO_LAYERS = ("the model has no Linear or Conv layer, so there is nothing for it to compress; the model's accuracy, "
             "size and speed are measured on the home page")


def untouched(model: nn.Module) -> dict[str, str]:
    """Weights (of two or more dimensions) outside the Linear and Conv layers, which no lab compresses, with the
    operations that read them: {weight: 'aten.lstm.input, ...'} for a graph model; nothing for other models."""
    if not is_graph(model):
        return {}
    from .metrics import weight_layers

    inside = {f"{n}.{k}" for n in weight_layers(model) for k in ("weight", "bias")}
    readers: dict[str, list[str]] = {}
    for node in model.graph.nodes:
        if node.op == "get_attr" and node.target not in inside:
            t = model.get_buffer(node.target) if node.target in dict(model.named_buffers()) else None
            if t is not None and t.dim() >= 2:
                readers[node.target] = sorted({str(u.target) for u in node.users})
        elif node.op == "call_module" and isinstance(model.get_submodule(node.target), nn.Embedding):
            readers[f"{node.target}.weight"] = ["an Embedding lookup"]
    return {k: ", ".join(v) for k, v in readers.items()}


def limits(model: nn.Module) -> list[str]:
    """What the labs cannot do with a model, in sentences (nothing for a model they fully apply to)."""
    from .metrics import weight_layers

    if not weight_layers(model):
        return [f"{', '.join(LABS[:-1])} and {LABS[-1]} do not apply: {NO_LAYERS}."]
    left = untouched(model)
    if not left:
        return []
    listed = "; ".join(f"{k} (read by {v})" for k, v in list(left.items())[:6]) + ("; …" if len(left) > 6 else "")
    return [f"The labs compress the Linear and Conv layers only; {len(left)} other weight tensor"
            f"{'s' if len(left) > 1 else ''} stay as they are in every figure: {listed}."]


def coupled_note(model: nn.Module) -> str:
    """The channels structured pruning must remove together in a model, in a sentence ('' when none are tied)."""
    from .pruning import structure

    try:
        found = structure(model)
    except Exception:   # a graph torch-pruning cannot trace: structured pruning says so when it is asked for
        return ""
    groups, locked = found.coupled, found.locked
    said = ""
    if groups:
        said = (f"{len(groups)} groups of layers add into one tensor (residual connections), so structured pruning "
                "keeps or removes a channel in all layers of a group at once: " +
                "; ".join(" + ".join(g) for g in groups[:6]) + ("; …" if len(groups) > 6 else "") + ".")
    if locked:
        said += (f" {len(locked)} layers keep all their channels: removing one breaks the model (its outputs are "
                 "reshaped into attention heads, or other weights write into the same stream, such as a class "
                 f"token): {', '.join(locked[:6])}{', …' if len(locked) > 6 else ''}.")
    return said.strip()


def activation_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """Bytes of every tensor a graph model's nodes produce on a batch, per example of it: an upper bound on the
    memory one example's activations take (what a batch of 256 would need is 256 times that)."""
    from torch.fx.passes.shape_prop import ShapeProp, TensorMetadata

    gm = cast(torch.fx.GraphModule, copy.deepcopy(model))   # a graph model (build)
    with torch.inference_mode():
        ShapeProp(gm).propagate(x)

    def size(meta: Any) -> int:
        if isinstance(meta, TensorMetadata):
            return math.prod(meta.shape) * torch.empty((), dtype=meta.dtype).element_size()
        if isinstance(meta, (list, tuple)):
            return sum(size(m) for m in meta)
        return 0
    total = sum(size(node.meta.get("tensor_meta")) for node in gm.graph.nodes)
    return total // max(1, len(x))
