"""Recipes: a compression configuration as a small, versioned file (YAML or JSON), and `apply`, which builds the
compressed model it describes and measures it with the same functions the labs use.

A recipe names the model it was made for and up to three steps, applied in this order: prune (slimcore.pruning),
then either fake-quantize the weights to k bits (slimcore.quantization: a simulation, fp32 numbers on a k-bit grid) or
build a real int8 model (slimcore.int8, torch.ao kernels). Loading is strict: an unknown key, a value of the wrong
type or an impossible value raises ValueError with one line naming the field, e.g. "prune.amount: prune ratio must be
in [0, 1), got 1.5".
"""
from __future__ import annotations

import copy
import json
import math
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from .data import Dataset
from .int8 import KINDS as INT8_KINDS
from .int8 import int8_model
from .metrics import Latency, ModelledSize, accuracy, compare_latencies, modelled_size, serialized_bytes, weight_layers
from . import pruning as P
from . import quantization as Q
from .pruning import PruneConfig, evaluate
from .quantization import QuantConfig, modelled_bytes, quantize

FORMAT = 1                 # the recipe file format this code reads and writes
PRUNE_CALIBRATION = P.CALIBRATION   # training examples Taylor scores are computed on (as the Pruning lab and sweeps do)
QUANT_CALIBRATION = Q.CALIBRATION   # training inputs that calibrate activation ranges (as the Quantization lab does)
SUFFIXES = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}


@dataclass(frozen=True)
class Int8Config:
    """A real int8 model built by PyTorch (torch.ao) from the (pruned) fp32 model."""

    kind: str = "auto"          # "auto": static when the model has convolutions, else dynamic; or "dynamic", "static"
    calibration: int = QUANT_CALIBRATION  # training inputs that calibrate static int8 activation ranges

    def __post_init__(self) -> None:
        if self.kind not in INT8_KINDS:
            raise ValueError(f"int8 kind must be one of {', '.join(INT8_KINDS)}, got {self.kind!r}")
        if isinstance(self.calibration, bool) or not isinstance(self.calibration, int) or self.calibration < 1:
            raise ValueError(f"calibration must be a whole number of training inputs >= 1, got {self.calibration!r}")


@dataclass(frozen=True)
class Recipe:
    """What to do to which model: prune, then fake-quantize or build real int8. Plain data; hashable."""

    model: str                          # the model it was made for (a sample name)
    prune: PruneConfig | None = None    # None: no pruning
    quant: QuantConfig | None = None    # fake quantization (simulated k-bit weights); None: none
    int8: Int8Config | None = None      # real int8 (torch.ao); None: none. Not together with quant
    version: int = FORMAT               # file format version

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError(f"model: expected the model's name, got {self.model!r}")
        if self.version != FORMAT:
            raise ValueError(f"version: this is recipe format {self.version!r}; this slimcore reads format {FORMAT}")
        for name, cls in (("prune", PruneConfig), ("quant", QuantConfig), ("int8", Int8Config)):
            value = getattr(self, name)
            if value is not None and not isinstance(value, cls):
                raise ValueError(f"{name}: expected a {cls.__name__} or None, got {type(value).__name__}")
        if self.quant is not None and self.int8 is not None:
            raise ValueError("quant, int8: choose one — fake quantization simulates a k-bit grid in fp32, int8 builds "
                             "a real int8 model from fp32 weights; both at once would quantize twice")

    @classmethod
    def from_sweep_row(cls, model: str, row: Any, per_channel: bool = False) -> "Recipe":
        """The recipe of one row of a sweep (slimcore.sweep, the Trade-offs page): its pruning (none at ratio 0),
        then its bit width on the sweep's symmetric grid (none at 32, fp32). `row` is a mapping or pandas row."""
        ratio, bits = float(row["prune_ratio"]), int(row["bits"])
        prune = PruneConfig(ratio, str(row["method"]), str(row["scope"]), bool(row["structured"])) if ratio else None
        return cls(model, prune, QuantConfig(bits, per_channel=per_channel) if bits != 32 else None)

    @property
    def steps(self) -> tuple[str, ...]:
        return tuple(n for n in ("prune", "quant", "int8") if getattr(self, n) is not None)

    def describe(self, model: str | None = None) -> str:
        """One line for a person, e.g. 'digits-cnn: prune l1 50% of weights per layer, then fake-quantize ...'; `model`
        names the model in it instead of the recipe's own model field."""
        parts = []
        if self.prune is not None:
            p = self.prune
            what = "of channels" if p.structured else "of weights"
            parts.append(f"prune {p.method} {p.amount:.0%} {what} {'per layer' if p.scope == 'layer' else 'globally'}")
        if self.quant is not None:
            parts.append(f"fake-quantize {self.quant.describe()} (simulated)")
        if self.int8 is not None:
            parts.append(f"real int8 ({self.int8.kind})")
        return f"{model or self.model}: " + (", then ".join(parts) if parts else "unchanged (fp32)")

    # Plain data ------------------------------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """Plain data (YAML/JSON-ready, lists not tuples): the inverse of from_dict."""
        prune = None
        if self.prune is not None:
            prune = asdict(self.prune) | {"skip": list(self.prune.skip), "overrides": dict(self.prune.overrides)}
        quant = None
        if self.quant is not None:
            quant = self.quant.to_dict() | {"skip": list(self.quant.skip)}
        int8 = asdict(self.int8) if self.int8 is not None else None
        return {"version": self.version, "model": self.model, "prune": prune, "quant": quant, "int8": int8}

    @classmethod
    def from_dict(cls, data: Any) -> "Recipe":
        """A recipe from plain data, checked strictly: ValueError naming the field on any unknown key, wrong type or
        impossible value."""
        if not isinstance(data, dict):
            raise ValueError(f"a recipe is a mapping of settings (version, model, prune, quant, int8), got "
                             f"{_kind(data)}")
        known = [f.name for f in fields(cls)]
        unknown = [k for k in data if k not in known]
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown setting; a recipe has {', '.join(known)}")
        if "version" not in data:
            raise ValueError(f"version: missing; this slimcore reads recipe format {FORMAT} (write `version: {FORMAT}`)")
        version = _value(data["version"], int, "version")
        if version != FORMAT:
            raise ValueError(f"version: this is recipe format {version}; this slimcore reads format {FORMAT}")
        if "model" not in data:
            raise ValueError("model: missing; name the model the recipe is for (for example `model: digits-cnn`)")
        model = _value(data["model"], str, "model")
        prune = _section(PruneConfig, data.get("prune"), "prune")
        quant = _section(QuantConfig, data.get("quant"), "quant")
        int8 = _section(Int8Config, data.get("int8"), "int8")
        return cls(model, prune, quant, int8, version)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys): also a plain cache key."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Recipe":
        return cls.from_dict(json.loads(text))


# Strict conversion from plain data ---------------------------------------------------------------------------------

def _kind(v: Any) -> str:
    """What a parsed YAML/JSON value is, in a person's words."""
    if v is None:
        return "nothing (null)"
    if isinstance(v, bool):
        return f"{str(v).lower()} (true/false)"
    if isinstance(v, (int, float)):
        return f"{v!r} (a number)"
    if isinstance(v, str):
        return f"{v!r} (text)"
    if isinstance(v, (list, tuple)):
        return "a list"
    if isinstance(v, dict):
        return "a mapping"
    return type(v).__name__


def _value(v: Any, hint: Any, where: str) -> Any:
    """v converted to the type a dataclass field declares, or ValueError naming the field."""
    if hint is bool:
        if isinstance(v, bool):
            return v
        raise ValueError(f"{where}: expected true or false, got {_kind(v)}")
    if hint is int:
        if isinstance(v, int) and not isinstance(v, bool):
            return v
        raise ValueError(f"{where}: expected a whole number, got {_kind(v)}")
    if hint is float:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if not math.isfinite(v):
                raise ValueError(f"{where}: expected a finite number, got {v!r}")
            return float(v)
        raise ValueError(f"{where}: expected a number, got {_kind(v)}")
    if hint is str:
        if isinstance(v, str):
            return v
        raise ValueError(f"{where}: expected text, got {_kind(v)}")
    if hint == tuple[str, ...]:
        if isinstance(v, (list, tuple)):
            for i, item in enumerate(v):
                _value(item, str, f"{where}[{i}]")
            return tuple(v)
        raise ValueError(f"{where}: expected a list of layer names, got {_kind(v)}")
    if hint == tuple[tuple[str, float], ...]:
        if isinstance(v, dict):
            return tuple((_value(k, str, f"{where} key"), _value(a, float, f"{where}.{k}")) for k, a in v.items())
        raise ValueError(f"{where}: expected a mapping of layer name to ratio, got {_kind(v)}")
    if typing.get_origin(hint) in (typing.Union, types.UnionType):   # a nested optional section
        inner = [a for a in typing.get_args(hint) if a is not type(None)][0]
        return _section(inner, v, where)
    raise TypeError(f"{where}: no conversion for {hint!r}")  # a field type this reader does not know: a bug here


def _section(cls: type, data: Any, where: str) -> Any:
    """A config dataclass from a mapping (None stays None): every key known, every value of its type, each checked by
    the config's own validation, so a message can name the field."""
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping of settings (or null), got {_kind(data)}")
    hints = typing.get_type_hints(cls)
    known = [f.name for f in fields(cls)]
    for k in data:
        if k not in known:
            raise ValueError(f"{where}.{k}: unknown setting; {where} has {', '.join(known)}")
    values = {k: _value(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    for k, v in values.items():   # each field alone, the others at their defaults: which one is impossible
        try:
            cls(**{k: v})
        except ValueError as e:
            raise ValueError(f"{where}.{k}: {e}") from None
    try:
        return cls(**values)
    except ValueError as e:   # fields that are fine alone but not together
        raise ValueError(f"{where}: {e}") from None


# Files ---------------------------------------------------------------------------------------------------------------

def _format(path: Path) -> str:
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: a recipe file ends in {', '.join(SUFFIXES)}; got {path.suffix or 'no suffix'!r}")
    return fmt


def dumps(recipe: Recipe, fmt: str = "yaml") -> str:
    """The recipe as YAML or JSON text."""
    if fmt == "json":
        return json.dumps(recipe.to_dict(), indent=2) + "\n"
    if fmt == "yaml":
        return yaml.safe_dump(recipe.to_dict(), sort_keys=False)
    raise ValueError(f"recipe format must be yaml or json, got {fmt!r}")


def dump(recipe: Recipe, path: str | Path) -> Path:
    """Write a recipe as YAML (.yaml, .yml) or JSON (.json), by the file's suffix."""
    path = Path(path)
    path.write_text(dumps(recipe, _format(path)))
    return path


def loads(text: str, fmt: str = "yaml", source: str = "recipe") -> Recipe:
    """A recipe from YAML (yaml.safe_load: plain data only) or JSON text; ValueError with one line if it is not."""
    try:
        data = json.loads(text) if fmt == "json" else yaml.safe_load(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{source}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise ValueError(f"{source}: not valid YAML ({where}{getattr(e, 'problem', None) or e})") from None
    try:
        return Recipe.from_dict(data)
    except ValueError as e:
        raise ValueError(f"{source}: {e}") from None


def load(path: str | Path) -> Recipe:
    """Read a recipe file (.yaml, .yml or .json), strictly checked."""
    path = Path(path)
    fmt = _format(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ValueError(f"{path}: no such recipe file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: cannot be read ({type(e).__name__})") from None
    return loads(text, fmt, str(path))


# Applying a recipe ---------------------------------------------------------------------------------------------------

KINDS = {  # what the compressed model is
    "fp32": "the original fp32 model, unchanged",
    "masked": "dense fp32 model with pruned weights set to zero (same shapes)",
    "channel-pruned": "smaller fp32 model with channels removed",
    "fake-quantized": "fp32 model whose weights lie on a k-bit grid (simulated quantization)",
    "int8": "real int8 model (torch.ao quantized kernels)",
}


@dataclass(frozen=True)
class Figures:
    """The figures of a compressed model, each labelled: accuracy, size and latency measured; `modelled_bytes`
    computed from bit counts. The same numbers the labs show for the same configuration."""

    model: str
    kind: str                        # see KINDS
    accuracy: float                  # measured: top-1 on the test split
    examples: int                    # test examples it was measured on
    params: int
    nonzeros: int
    size_bytes: int                  # measured: torch.save of the compressed model's state dict
    modelled_bytes: float | None     # modelled from bit counts, where the labs show one (None: measured is the size)
    modelled_detail: str
    latency_b1: Latency | None       # measured (None when timing was off)
    latency_b256: Latency | None
    base_accuracy: float             # the original model, measured the same way
    base_size_bytes: int
    base_latency_b1: Latency | None
    base_latency_b256: Latency | None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        d = asdict(self)
        d["notes"] = list(self.notes)
        d["labels"] = {"accuracy": "measured", "size_bytes": "measured (torch.save)", "modelled_bytes": "modelled",
                       "latency": "measured (median of timed runs)"}
        return d


@dataclass(frozen=True)
class Applied:
    """A recipe applied: the compressed model (a new one) and its figures."""

    recipe: Recipe
    model: nn.Module = field(compare=False)
    figures: Figures
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # channel-pruned: each weight layer's shape

    @property
    def kind(self) -> str:
        return self.figures.kind


def _quantized_size(model: nn.Module, cfg: QuantConfig, pruned: bool) -> ModelledSize:
    """The modelled size of a fake-quantized model. Unpruned: the Quantization lab's figure (modelled_bytes: every
    weight code stored densely, plus the scales). Pruned: the Trade-offs sweep's rule (the smallest of dense, bitmask
    and CSR storage at the weight bits, plus one fp32 scale, and an int32 zero point when asymmetric, per grid)."""
    if not pruned:
        return modelled_bytes(model, cfg)
    layers = [n for n in weight_layers(model) if n not in cfg.skip]
    m = modelled_size(model, cfg.weight_bits)
    grids = sum(weight_layers(model)[n].weight.shape[0] if cfg.per_channel else 1 for n in layers)
    extra = grids * (4 if cfg.symmetric or cfg.bits == 1 or cfg.ternary else 8)
    return ModelledSize(m.bytes + extra, m.format, cfg.weight_bits, f"{m.detail}; + {extra:,} B of scales")


def apply(model: nn.Module, recipe: Recipe, data: Dataset, timing: bool = True, max_seconds: float = 0.5) -> Applied:
    """Build the model a recipe describes from `model` (never changed) and measure it on `data.test` with the labs'
    functions: pruning.evaluate (Pruning lab), quantize + accuracy + modelled_bytes (Quantization lab), int8_model +
    serialized_bytes (real int8), compare_latencies (original and compressed timed side by side, batch 1 and 256)."""
    test = data.test
    notes: list[str] = []
    net, kind, shapes = model, "fp32", {}
    modelled: ModelledSize | None = None
    if recipe.prune is not None:
        report, dense, small = evaluate(model, recipe.prune, test, calibration=data.train.head(PRUNE_CALIBRATION))
        if recipe.prune.structured:
            if small is None:
                raise ValueError(f"prune: {report.small_note}")
            net, kind, shapes = small, "channel-pruned", dict(report.small_shapes)
            notes.append("weight shapes now " + ", ".join(f"{n} {'x'.join(map(str, s))}" for n, s in shapes.items()))
        else:
            net, kind, modelled = dense, "masked", report.sparse
            notes.append(f"{report.removed:,} of {report.weights:,} Linear/Conv weights removed; torch.save stores "
                         "the zeros, so the measured size is the original's: the modelled size is the sparse one")
        if report.emptied:
            notes.append(f"every weight of {', '.join(report.emptied)} removed: the model can only guess")
    if recipe.quant is not None:
        q = recipe.quant
        calibration = data.train.x[:QUANT_CALIBRATION] if q.activations is not None else None
        net = quantize(net, config=q, calibration=calibration)
        modelled = _quantized_size(net, q, recipe.prune is not None)
        kind = "fake-quantized"
        notes.append("fake quantization is a simulation: weights are fp32 numbers on a k-bit grid, so the file is "
                     "fp32-sized and the kernels are fp32 ones; the k-bit size is modelled")
    counted = net   # int8 weights are packed parameters, not nn.Parameters: count them on the fp32 model they came from
    if recipe.int8 is not None:
        r = int8_model(net, data.train.x[:recipe.int8.calibration], recipe.int8.kind)
        net, kind, modelled = r.model, "int8", None
        notes.append(r.describe())
    if net is model:
        net = copy.deepcopy(model)   # never hand out the given (possibly shared) model
    lat = {}
    if timing:
        lat = compare_latencies({"original": model, "compressed": net}, test, max_seconds=max_seconds)
    b1, b256 = lat.get("compressed", (None, None))
    o1, o256 = lat.get("original", (None, None))
    figures = Figures(
        recipe.model, kind, accuracy(net, test), len(test), sum(p.numel() for p in counted.parameters()),
        sum(int(torch.count_nonzero(p)) for p in counted.parameters()), serialized_bytes(net),
        None if modelled is None else float(modelled.bytes), "" if modelled is None else modelled.detail,
        b1, b256, accuracy(model, test), serialized_bytes(model), o1, o256, tuple(notes))
    return Applied(recipe, net, figures, shapes)


__all__ = ["FORMAT", "Int8Config", "Recipe", "Figures", "Applied", "KINDS", "dump", "dumps", "load", "loads", "apply"]
