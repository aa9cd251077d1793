"""Recipes: a compression configuration as a small, versioned file (YAML or JSON), and `apply`, which builds the
compressed model it describes and measures it with the same functions the labs use.

A recipe names the model it was made for and up to three steps, applied in this order: prune (slimcore.prune: single
weights, or whole units of the model's family — channels of a classifier, attention heads or FFN neurons of a sentence
encoder), then either fake-quantize the weights to k bits (slimcore.quantize: a simulation, fp32 numbers on a k-bit
grid) or build a real int8 model (torch.ao kernels). Every step goes through the family-generic slimcore entry points
and the model is scored by its family (accuracy for classifiers, mean cosine to the original for encoders). Loading is
strict: an unknown key, a value of the wrong type or an impossible value raises ValueError with one line naming the
field, e.g. "prune.amount: prune ratio must be in [0, 1), got 1.5".
"""
from __future__ import annotations

import copy
import dataclasses
import json
import math
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, cast

import torch
import yaml
from torch import nn

from . import api
from . import families as F
from . import int8 as I8
from . import pruning as P
from . import quantization as Q
from .int8 import KINDS as INT8_KINDS
from .metrics import Latency, ModelledSize, modelled_size, serialized_bytes, size_source
from .pruning import PruneConfig
from .quantization import QuantConfig, modelled_bytes

FORMAT = 1                 # the recipe file format this code reads and writes
PRUNE_CALIBRATION = P.CALIBRATION   # training examples Taylor scores are computed on (as the Pruning lab and sweeps do)
QUANT_CALIBRATION = Q.CALIBRATION   # training inputs that calibrate activation ranges (as the Quantization lab does)
SUFFIXES = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}


@dataclass(frozen=True)
class Int8Config:
    """A real int8 model built from the (pruned) fp32 model with slimcore.int8.build, by torch.ao (engine "torch",
    the family's builder) or ONNX Runtime (engine "onnxruntime"): the fields of an int8.Int8Variant, plus the
    calibration size. A recipe without an engine means torch.ao, as recipes did before engines could be chosen; the
    lab writes the engine into every recipe it makes."""

    kind: str = "auto"          # "auto": static when the model has convolutions, else dynamic; or "dynamic", "static"
    calibration: int = QUANT_CALIBRATION  # calibration-split inputs of static int8 (slimcore.int8.CALIBRATION only)
    per_channel: bool = False   # dynamic int8 (encoders): one weight grid per output channel instead of per tensor
    embeddings: bool = False    # encoders: the word-embedding table in 8 bits too (per row, weight-only)
    engine: str = "torch"       # "torch" (torch.ao) or "onnxruntime" (an int8 ONNX file run by ONNX Runtime)

    def __post_init__(self) -> None:
        if self.kind not in INT8_KINDS:
            raise ValueError(f"int8 kind must be one of {', '.join(INT8_KINDS)}, got {self.kind!r}")
        if self.engine not in I8.ENGINES:
            raise ValueError(f"int8 engine must be one of {', '.join(I8.ENGINES)}, got {self.engine!r}")
        if isinstance(self.calibration, bool) or not isinstance(self.calibration, int) or self.calibration < 1:
            raise ValueError(f"calibration must be a whole number of training inputs >= 1, got {self.calibration!r}")
        for name in ("per_channel", "embeddings"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")

    @classmethod
    def from_variant(cls, variant: I8.Int8Variant) -> Int8Config:
        """The recipe step of one of a family's real int8 variants (slimcore.int8.variants(sample))."""
        return cls(variant.kind, per_channel=variant.per_channel, embeddings=variant.embeddings,
                   engine=variant.engine)

    @property
    def variant(self) -> I8.Int8Variant:
        """The int8 variant slimcore.int8.build makes."""
        return I8.Int8Variant(self.kind, self.per_channel, self.embeddings, self.engine)

    def describe(self) -> str:
        return ", ".join([I8.ENGINE_NAMES[self.engine], self.kind] + (["per channel"] if self.per_channel else []) +
                         (["word table in 8 bits"] if self.embeddings else []))


@dataclass(frozen=True)
class Recipe:
    """What to do to which model: prune, then fake-quantize or build real int8. Plain data; hashable."""

    model: str                          # the model it was made for (a sample name)
    prune: PruneConfig | None = None    # None: no pruning
    quant: QuantConfig | None = None    # fake quantization (simulated k-bit weights); None: none
    int8: Int8Config | None = None      # real int8 (torch.ao or ONNX Runtime); None: none. Not together with quant
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
    def from_sweep_row(cls, model: str, row: Any, per_channel: bool = False) -> Recipe:
        """The recipe of one row of a sweep (slimcore.sweep / slimcore.tradeoffs, the Trade-offs page) of any family:
        its pruning (none at ratio 0; structured rows remove the row's unit, `prune`, as the grid does: channels by
        their L1 norm, an encoder's heads or FFN neurons by their L2 norm), then its precision: a k-bit width on the
        sweep's symmetric grid, a real int8 engine ("int8", "int8+emb": dynamic, per channel), or none (fp32).
        `row` is a mapping or pandas row."""
        ratio, bits = float(row["prune_ratio"]), int(row["bits"])
        structured = bool(row["structured"])
        unit = str(row["prune"]) if structured and "prune" in row else "channels"
        prune = PruneConfig(ratio, str(row["method"]), str(row["scope"]), structured,
                            norm=1 if unit == "channels" else 2, unit=unit) if ratio else None
        precision = str(row["precision"]) if "precision" in row else ""
        if precision.startswith("int8"):
            return cls(model, prune, int8=Int8Config("dynamic", per_channel=True, embeddings=precision == "int8+emb",
                                                     engine="torch"))   # what slimcore.tradeoffs builds
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
            what = f"of {unit_words(p.unit)}" if p.structured else "of weights"
            parts.append(f"prune {p.method} {p.amount:.0%} {what} {'per layer' if p.scope == 'layer' else 'globally'}")
        if self.quant is not None:
            parts.append(f"fake-quantize {self.quant.describe()} (simulated)")
        if self.int8 is not None:
            parts.append(f"real int8 ({self.int8.describe()})")
        return f"{model or self.model}: " + (", then ".join(parts) if parts else "unchanged (fp32)")

    # Plain data ------------------------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
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
    def from_dict(cls, data: Any) -> Recipe:
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
            raise ValueError(f"version: missing; this slimcore reads recipe format {FORMAT} "
                             f"(write `version: {FORMAT}`)")
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
    def from_json(cls, text: str) -> Recipe:
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
    if typing.get_origin(hint) in (typing.Union, types.UnionType):   # an optional value, or a nested optional section
        inner = [a for a in typing.get_args(hint) if a is not type(None)][0]
        if isinstance(inner, type) and dataclasses.is_dataclass(inner):
            return _section(inner, v, where)
        return None if v is None else _value(v, inner, where)
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
    "head-pruned": "smaller fp32 encoder with attention heads removed",
    "ffn-pruned": "smaller fp32 encoder with FFN neurons removed",
    "fake-quantized": "fp32 model whose weights lie on a k-bit grid (simulated quantization)",
    "int8": "real int8 model (torch.ao quantized kernels, or an int8 ONNX file run by ONNX Runtime)",
}
PRUNED = {"channels": "channel-pruned", "heads": "head-pruned", "ffn": "ffn-pruned"}   # structured unit -> kind
STRUCTURED = frozenset(PRUNED.values())   # kinds whose layers are smaller than the original's


def unit_words(unit: str) -> str:
    """A structural unit in words: 'channels', 'attention heads', 'FFN neurons' (the families' unit_kinds)."""
    if unit == "channels":
        return unit
    return next((f.unit_kinds[unit] for f in F.REGISTRY.values() if unit in f.unit_kinds), unit)


@dataclass(frozen=True)
class Figures:
    """The figures of a compressed model, each labelled: the family's score (accuracy for classifiers, mean cosine to
    the original for sentence encoders), size and latency measured; `modelled_bytes` computed from bit counts. The
    same numbers the labs show for the same configuration."""

    model: str
    kind: str                        # see KINDS
    metric: F.Metric                 # what `score` is: the family's headline quality
    score: float                     # measured on the test split
    examples: int                    # test examples (or sentences) it was measured on
    params: int
    nonzeros: int
    size_bytes: int                  # measured: torch.save of the state dict (or the int8 ONNX file: size_source)
    modelled_bytes: float | None     # modelled from bit counts, where the labs show one (None: measured is the size)
    modelled_detail: str
    latencies: dict[int, Latency] | None   # measured, by batch size (the family's timing batches); None: not timed
    base_score: float                # the original model, measured the same way
    base_size_bytes: int
    base_latencies: dict[int, Latency] | None
    notes: tuple[str, ...] = ()
    # the family's detail figures (encoders: agreement...)
    detail: dict[str, Any] = field(default_factory=dict, compare=False)
    size_source: str = "torch.save of the state dict"           # what size_bytes measured (slimcore.metrics)

    @property
    def accuracy(self) -> float:
        """The score under its classifier name (kept for callers that read accuracy)."""
        return self.score

    @property
    def base_accuracy(self) -> float:
        return self.base_score

    @property
    def latency_b1(self) -> Latency | None:
        return self.latencies[min(self.latencies)] if self.latencies else None

    @property
    def latency_batch(self) -> Latency | None:
        """Latency at the family's large batch (256 examples for classifiers, 32 sentences for encoders)."""
        return self.latencies[max(self.latencies)] if self.latencies else None

    @property
    def base_latency_b1(self) -> Latency | None:
        return self.base_latencies[min(self.base_latencies)] if self.base_latencies else None

    @property
    def base_latency_batch(self) -> Latency | None:
        return self.base_latencies[max(self.base_latencies)] if self.base_latencies else None

    def to_dict(self) -> dict[str, Any]:
        """Plain data: the score with its metric; latencies as latency_b<batch> (as before: latency_b1, latency_b256
        for classifiers); a classifier's score is also written under its old names, accuracy and base_accuracy."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("latencies", "base_latencies")}
        d["metric"] = self.metric.name
        d["notes"] = list(self.notes)
        for prefix, lat in (("", self.latencies), ("base_", self.base_latencies)):
            d |= {f"{prefix}latency_b{b}": asdict(v) for b, v in (lat or {}).items()}
        if self.metric == F.ACCURACY:
            d["accuracy"], d["base_accuracy"] = self.score, self.base_score
        d["labels"] = {"score": f"measured ({self.metric.name})", "size_bytes": f"measured ({self.size_source})",
                       "modelled_bytes": "modelled", "latency": "measured (median of timed runs)"}
        return d


@dataclass(frozen=True)
class Applied:
    """A recipe applied: the compressed model (a new one) and its figures."""

    recipe: Recipe
    model: nn.Module = field(compare=False)
    figures: Figures
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # structurally pruned: each layer's weight shape
    units: dict[str, list[int]] = field(default_factory=dict)  # structurally pruned: units left per layer, by kind

    @property
    def kind(self) -> str:
        return self.figures.kind

    @property
    def structured(self) -> bool:
        """True when whole units were removed: the layers are smaller than the original's."""
        return self.kind in STRUCTURED


def _quantized_size(model: nn.Module, cfg: QuantConfig, pruned: bool, layers: dict[str, nn.Module]) -> ModelledSize:
    """The modelled size of a fake-quantized model. Unpruned: the Quantization lab's figure (modelled_bytes: every
    weight code stored densely, plus the scales). Pruned: the Trade-offs sweep's rule (the smallest of dense, bitmask
    and CSR storage at the weight bits, plus one fp32 scale, and an int32 zero point when asymmetric, per grid)."""
    if not pruned:
        return modelled_bytes(model, cfg, layers)
    names = [n for n in layers if n not in cfg.skip]
    m = modelled_size(model, cfg.weight_bits)
    grids = sum(cast(torch.Tensor, layers[n].weight).shape[0] if cfg.per_channel else 1 for n in names)
    extra = grids * (4 if cfg.symmetric or cfg.bits == 1 or cfg.ternary else 8)
    return ModelledSize(m.bytes + extra, m.format, cfg.weight_bits, f"{m.detail}; + {extra:,} B of scales")


def _with(sample: Any, model: nn.Module) -> Any:
    """The sample with another model in it (its data, card and family unchanged): the next step's input."""
    return dataclasses.replace(sample, model=model)


def _pruned(sample: Any, cfg: PruneConfig) -> tuple[nn.Module, str, dict[str, tuple[int, ...]], dict[str, list[int]],
                                                     ModelledSize | None, list[str]]:
    """slimcore.prune on the sample: (model, kind, layer shapes, units left, modelled size, notes)."""
    fam = F.family_of(sample)
    if cfg.structured and cfg.unit not in fam.unit_kinds:
        raise ValueError(f"prune.unit: {cfg.unit!r} is not a unit of {fam.label}; choose from "
                         f"{', '.join(fam.unit_kinds)}")
    kind = PRUNED.get(cfg.unit, "structured-pruned") if cfg.structured else "masked"
    try:
        net = api.prune(sample, cfg)
    except ValueError as e:
        raise ValueError(f"prune: no {kind} model at this ratio: {e}" if cfg.structured else f"prune: {e}") from None
    layers = fam.layers(net)
    notes = []
    if cfg.structured:
        shapes = {n: tuple(cast(torch.Tensor, m.weight).shape) for n, m in layers.items()}
        units = {cfg.unit: [g.count for g in fam.units(net, cfg.unit)]}
        if cfg.unit == "channels":
            notes.append("weight shapes now " + ", ".join(f"{n} {'x'.join(map(str, s))}" for n, s in shapes.items()))
        else:
            notes.append(f"{unit_words(cfg.unit)} per layer now {'/'.join(map(str, units[cfg.unit]))} (of "
                         f"{'/'.join(str(g.count) for g in fam.units(sample.model, cfg.unit))})")
        return net, kind, shapes, units, None, notes
    weight = {n: cast(torch.Tensor, m.weight) for n, m in layers.items()}   # Linear (or Conv) layers' weights
    weights = sum(w.numel() for w in weight.values())
    removed = weights - sum(int(torch.count_nonzero(w)) for w in weight.values())
    notes.append(f"{removed:,} of {weights:,} weights of the compressed layers removed; torch.save stores the zeros, "
                 "so the measured size is the original's: the modelled size is the sparse one")
    emptied = [n for n, w in weight.items() if not w.any()]
    if emptied:
        notes.append(f"every weight of {', '.join(emptied)} removed: the model can only guess")
    return net, kind, {}, {}, modelled_size(net), notes


def apply(sample: Any, recipe: Recipe, timing: bool = True, max_seconds: float = 0.5) -> Applied:
    """Build the model a recipe describes from a sample's model (never changed) with the family-generic entry points
    (slimcore.prune, slimcore.quantize, slimcore.int8.build) and measure it as the labs do: the family's
    score on the test split, counts, torch.save bytes, modelled bytes, and latency of the original and the
    compressed model timed side by side at the family's batch sizes (slimcore.time_models)."""
    fam = F.family_of(sample)
    model = sample.model
    notes: list[str] = []
    net, kind = model, "fp32"
    shapes: dict[str, tuple[int, ...]] = {}
    units: dict[str, list[int]] = {}
    modelled: ModelledSize | None = None
    if recipe.prune is not None:
        net, kind, shapes, units, modelled, more = _pruned(sample, recipe.prune)
        notes += more
    if recipe.quant is not None:
        q = recipe.quant
        net = api.quantize(_with(sample, net), q)
        modelled = _quantized_size(net, q, recipe.prune is not None, fam.layers(net))
        kind = "fake-quantized"
        notes.append("fake quantization is a simulation: weights are fp32 numbers on a k-bit grid, so the file is "
                     "fp32-sized and the kernels are fp32 ones; the k-bit size is modelled")
    counted = net   # int8 weights are packed parameters, not nn.Parameters: count them on the fp32 model they came from
    if recipe.int8 is not None:
        if recipe.int8.calibration != I8.CALIBRATION and recipe.int8.kind != "dynamic":
            raise ValueError(f"int8.calibration: static int8 is calibrated on {I8.CALIBRATION} inputs of the "
                             f"calibration split (slimcore.int8.CALIBRATION), got {recipe.int8.calibration}")
        try:
            r = I8.build(_with(sample, net), recipe.int8.variant)
        except ValueError as e:
            raise ValueError(f"int8: {e}") from None
        net, kind, modelled = r.model, "int8", None
        notes.append(r.describe())
    if net is model:
        net = copy.deepcopy(model)   # never hand out the given (possibly shared) model
    lat = {}
    if timing:
        lat = api.time_models(sample, {"original": model, "compressed": net}, max_seconds=max_seconds)
    scorer = fam.scorer(sample, "test")
    got, base = scorer(net), scorer(model)
    detail = asdict(got.detail) if dataclasses.is_dataclass(got.detail) and not isinstance(got.detail, type) else {}
    figures = Figures(
        recipe.model, kind, got.metric, got.value, got.examples, sum(p.numel() for p in counted.parameters()),
        sum(int(torch.count_nonzero(p)) for p in counted.parameters()), serialized_bytes(net),
        None if modelled is None else float(modelled.bytes), "" if modelled is None else modelled.detail,
        lat.get("compressed"), base.value, serialized_bytes(model), lat.get("original"), tuple(notes), detail,
        size_source(net))
    return Applied(recipe, net, figures, shapes, units)


__all__ = ["FORMAT", "Int8Config", "Recipe", "Figures", "Applied", "KINDS", "STRUCTURED", "dump", "dumps", "load",
           "loads", "apply", "unit_words"]
