"""A result cache on disk that survives restarts, and that is never trusted blindly.

Deterministic results (quality curves, sensitivity scans, grids, distillation runs, the quality of int8 builds) are
kept under the cache folder, one JSON file per result, keyed by what decides them: the model's content hash, the
full setting and the code version (a hash of slimcore's source and the torch version). Each file carries its key, its
provenance (when, where and how long it took) and an HMAC over all of it with a secret kept beside the files (mode
0600). A file that is damaged, was written for another key or by another secret, or holds anything but plain data and
slimcore's own records is ignored and recomputed. Reading a file never runs code from it: values are JSON, decoded
only into numbers, strings, lists, dicts, tuples, numpy arrays, pandas frames and slimcore's frozen dataclasses.

Latency is never stored here: it is measured on this machine, in this process."""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import importlib
import json
import logging
import math
import os
import platform
import secrets
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import data

T = TypeVar("T")
log = logging.getLogger(__name__)
FORMAT = 1
MAX_FILE_BYTES = 256 * 2**20    # a larger file is not read at all (a MiniLM student's weights: ~90 MB as text)
ARRAY_DTYPES = {"bool", "int8", "uint8", "int16", "int32", "int64", "float16", "float32", "float64"}


class StoreError(ValueError):
    """A value that cannot be kept on disk (not plain data), or a file that cannot be trusted."""


# ------------------------------------------------------------------------------------------------------- the keys

_code_version: str | None = None


def code_version() -> str:
    """A hash of every slimcore source file and of the torch and onnxruntime versions (ONNX Runtime builds and runs
    the default int8 models): results of other code are not reused."""
    global _code_version
    if _code_version is None:
        h = hashlib.sha256(torch.__version__.encode())
        try:
            from importlib.metadata import version

            h.update(version("onnxruntime").encode())
        except Exception:  # not installed: no ONNX Runtime figures to tell apart
            pass
        root = Path(__file__).parent
        for path in sorted(root.rglob("*.py")):   # the code, not sample_models/train.py (installed inside it)
            if "sample_models" in path.relative_to(root).parts:
                continue
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
        _code_version = h.hexdigest()[:16]
    return _code_version


def model_hash(model: nn.Module) -> str:
    """The content hash of a model's weights and buffers: names, dtypes, shapes and bytes (its structure aside)."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        if not isinstance(t, torch.Tensor):
            continue
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        # flat first: a 0-dim tensor (BatchNorm's batch count) cannot be viewed as bytes of another element size
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:32]


# ------------------------------------------------------------------------------------------------------ the codec

def encode(value: Any) -> Any:
    """A value as JSON-able data, typed where JSON is not enough; StoreError for anything that is not plain data."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else {"__float__": repr(v)}
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {"__dict__": [[encode(k), encode(v)] for k, v in value.items()]}
    if isinstance(value, torch.Tensor):
        return {"__tensor__": _array(value.detach().cpu().numpy())}
    if isinstance(value, np.ndarray):
        return {"__array__": _array(value)}
    if isinstance(value, pd.DataFrame):
        return {"__frame__": {"columns": [encode(c) for c in value.columns],
                              "dtypes": [str(t) for t in value.dtypes],
                              "data": [encode(value[c].tolist()) for c in value.columns],
                              "attrs": encode(dict(value.attrs))}}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        if not cls.__module__.startswith("slimcore."):
            raise StoreError(f"{cls.__qualname__} is not a slimcore record")
        return {"__record__": f"{cls.__module__}:{cls.__qualname__}",
                "fields": {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}}
    raise StoreError(f"a {type(value).__name__} cannot be kept on disk")


def _array(a: np.ndarray) -> dict[str, Any]:
    if str(a.dtype) not in ARRAY_DTYPES:
        raise StoreError(f"arrays of {a.dtype} are not kept")
    return {"dtype": str(a.dtype), "shape": list(a.shape),
            "bytes": base64.b64encode(np.ascontiguousarray(a).tobytes()).decode()}


def _unarray(d: dict[str, Any]) -> np.ndarray:
    dtype, shape = d["dtype"], tuple(int(n) for n in d["shape"])
    if dtype not in ARRAY_DTYPES:
        raise StoreError(f"arrays of {dtype} are not read")
    raw = base64.b64decode(d["bytes"], validate=True)
    if len(raw) != math.prod(shape) * np.dtype(dtype).itemsize:
        raise StoreError("an array's bytes do not match its shape")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def decode(value: Any) -> Any:
    """The inverse of encode; StoreError for anything it would not have written."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict) or len(value) not in (1, 2):
        raise StoreError("not a value this store writes")
    if "__float__" in value:
        if value["__float__"] not in ("nan", "inf", "-inf"):
            raise StoreError("not a float")
        return float(value["__float__"])
    if "__tuple__" in value:
        return tuple(decode(v) for v in value["__tuple__"])
    if "__dict__" in value:
        return {_hashable(decode(k)): decode(v) for k, v in value["__dict__"]}
    if "__tensor__" in value:
        return torch.from_numpy(_unarray(value["__tensor__"]))
    if "__array__" in value:
        return _unarray(value["__array__"])
    if "__frame__" in value:
        f = value["__frame__"]
        frame = pd.DataFrame({decode(c): decode(col) for c, col in zip(f["columns"], f["data"])},
                             columns=[decode(c) for c in f["columns"]])
        for c, dtype in zip(frame.columns, f["dtypes"]):
            if dtype in ARRAY_DTYPES:
                frame[c] = frame[c].astype(dtype)
        frame.attrs.update(decode(f.get("attrs", {"__dict__": []})))
        return frame
    if "__record__" in value:
        return _record(value["__record__"], {k: decode(v) for k, v in value["fields"].items()})
    raise StoreError("not a value this store writes")


def _hashable(key: Any) -> Any:
    if isinstance(key, list):
        raise StoreError("a list cannot be a key")
    return key


def _record(name: str, fields: dict[str, Any]) -> Any:
    module, _, qualname = name.partition(":")
    if not module.startswith("slimcore.") or not qualname.isidentifier():
        raise StoreError(f"{name} is not a slimcore record")
    cls = getattr(importlib.import_module(module), qualname, None)   # slimcore's own modules only
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise StoreError(f"{name} is not a slimcore record")
    try:
        return cls(**fields)
    except TypeError as e:
        raise StoreError(f"{name}: {e}") from None


# ------------------------------------------------------------------------------------------------------ the store

def folder_secret(folder: Path) -> bytes:
    """The key files in `folder` are signed with: 32 random bytes made once (`.secret`, mode 0600, owner only)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ".secret"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
    except FileExistsError:
        pass
    raw = path.read_bytes()
    if len(raw) != 32:
        raise StoreError(f"{path} is not a key SlimLab wrote: remove it to start afresh")
    return raw


def sign(folder: Path, name: str, content: bytes) -> str:
    """The HMAC of a file's name and content with its folder's secret."""
    return hmac.new(folder_secret(folder), name.encode() + b"\0" + content, hashlib.sha256).hexdigest()


class Store:
    """Results on disk under `root` (default: $SLIMLAB_RESULTS, else the cache folder's `results/`), one signed JSON
    file per key."""

    def __init__(self, root: Path | str | None = None) -> None:
        env = os.environ.get("SLIMLAB_RESULTS")
        self.root = Path(root) if root is not None else Path(env) if env else data.cache_dir() / "results"
        self._lock = threading.Lock()
        self._secret: bytes | None = None
        self.rejected = 0   # files found but not trusted (damaged, foreign or of another key), since start
        self._sources: dict[Path, tuple[bool, dict[str, Any]]] = {}   # per file: (read from disk, its provenance)

    def secret(self) -> bytes:
        """The key the files are signed with: made once per cache folder, readable by its owner only."""
        with self._lock:
            if self._secret is None:
                self._secret = folder_secret(self.root)
            return self._secret

    @staticmethod
    def key(kind: str, model: str, setting: Any) -> dict[str, Any]:
        """What decides a result: its kind, the model's content hash, the full setting and the code version."""
        return {"kind": kind, "model": model, "setting": encode(setting), "code": code_version()}

    def path(self, key: dict[str, Any]) -> Path:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:40]
        safe = "".join(ch for ch in key["kind"] if ch.isalnum() or ch in "-_")[:40]
        return self.root / f"{safe}-{digest}.json"

    def _mac(self, body: dict[str, Any]) -> str:
        return hmac.new(self.secret(), json.dumps(body, sort_keys=True).encode(), hashlib.sha256).hexdigest()

    def get(self, kind: str, model: str, setting: Any) -> tuple[Any, dict[str, Any]] | None:
        """(value, provenance) kept for this key, or None: absent, or not to be trusted (then it is removed)."""
        key = self.key(kind, model, setting)
        path = self.path(key)
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                raise StoreError("too large")
            doc = json.loads(path.read_bytes())
            body = {k: doc[k] for k in ("format", "key", "provenance", "value")}
            if not hmac.compare_digest(str(doc.get("mac", "")), self._mac(body)):
                raise StoreError("its signature does not match")
            if body["format"] != FORMAT or body["key"] != key:
                raise StoreError("it was written for another key")
            return decode(body["value"]), body["provenance"]
        except FileNotFoundError:
            return None
        except (StoreError, ValueError, KeyError, TypeError, AttributeError, OSError, RecursionError) as e:
            self.rejected += 1
            log.warning("result cache: %s not trusted (%s); computing it again", path.name, e)
            path.unlink(missing_ok=True)
            return None

    def put(self, kind: str, model: str, setting: Any, value: Any, seconds: float) -> bool:
        """Keep a result (written whole or not at all); False when it is not plain data (then it is not kept)."""
        try:
            body = {"format": FORMAT, "key": self.key(kind, model, setting), "value": encode(value),
                    "provenance": {"computed": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "seconds": round(seconds, 3),
                                   "host": platform.node(), "torch": torch.__version__, "code": code_version()}}
        except StoreError as e:
            log.warning("result cache: %s not kept (%s)", kind, e)
            return False
        doc = json.dumps(body | {"mac": self._mac(body)}, sort_keys=True)
        path = self.path(body["key"])
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
        with os.fdopen(fd, "w") as f:
            f.write(doc)
        os.replace(tmp, path)
        return True

    def has(self, kind: str, model: str, setting: Any) -> bool:
        """Whether a file is kept for this key (not yet checked: get() checks it)."""
        return self.path(self.key(kind, model, setting)).exists()

    def cached(self, kind: str, model: str, setting: Any, compute: Callable[[], T]) -> T:
        """The kept result for this key, else compute it and keep it."""
        path = self.path(self.key(kind, model, setting))
        hit = self.get(kind, model, setting)
        if hit is not None:
            self._sources[path] = (True, hit[1])
            return cast(T, hit[0])   # decoded from a file written for this key: what compute returned then
        start = time.perf_counter()
        value = compute()
        seconds = time.perf_counter() - start
        if self.put(kind, model, setting, value, seconds):
            self._sources[path] = (False, {"seconds": round(seconds, 3)})
        return value

    def source(self, kind: str, model: str, setting: Any) -> tuple[bool, dict[str, Any]] | None:
        """Where this process's last cached() of a key got it: (True, provenance) when read from disk, (False,
        {seconds}) when computed here; None when it has not asked for it."""
        return self._sources.get(self.path(self.key(kind, model, setting)))
