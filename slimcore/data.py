"""Real, offline, deterministic datasets: UCI handwritten digits and MNIST-1D, split once per process."""
from __future__ import annotations

import functools
import hmac
import importlib.metadata
import importlib.util
import io
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)
SPLIT_SEED = 0  # the seed of every train / validation / test split


@dataclass(frozen=True)
class Split:
    """Inputs and integer labels of one split."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def head(self, n: int) -> Split:
        """The first n examples."""
        return Split(self.x[:n], self.y[:n])


@dataclass(frozen=True)
class Dataset:
    """A named dataset with fixed train / validation / test splits."""

    name: str
    description: str
    input_shape: tuple[int, ...]  # one example, without the batch dimension
    classes: int
    train: Split
    val: Split
    test: Split


def split_arrays(x: np.ndarray, y: np.ndarray, fractions: tuple[float, float], seed: int) -> tuple[Split, Split, Split]:
    """Shuffle with a seed, then cut into train / val / test by the given val and test fractions."""
    order = np.random.default_rng(seed).permutation(len(y))
    n_val, n_test = (int(round(f * len(y))) for f in fractions)
    parts = order[n_val + n_test:], order[:n_val], order[n_val:n_val + n_test]
    return tuple(_as_split(x[p], y[p]) for p in parts)  # type: ignore[return-value]


def _as_split(x: np.ndarray, y: np.ndarray) -> Split:
    return Split(torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32),
                 torch.as_tensor(np.ascontiguousarray(y), dtype=torch.long))


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 digit images (0..16) and labels, read straight from the CSV that scikit-learn ships: importing
    sklearn costs about a second of start-up, reading its file 20 ms. Falls back to sklearn's loader."""
    spec = importlib.util.find_spec("sklearn")  # finds the package without importing it
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz" if spec and spec.origin else None
    if path is not None and path.is_file():
        raw = np.loadtxt(path, delimiter=",")
        return raw[:, :-1].reshape(-1, 8, 8), raw[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images, bunch.target


@functools.cache
def digits() -> Dataset:
    """UCI handwritten digits shipped in scikit-learn: 1,797 8x8 images, pixels scaled to [0, 1]; 60/20/20 split."""
    images, target = _digits_arrays()
    x = (images / 16.0).astype(np.float32)[:, None, :, :]
    train, val, test = split_arrays(x, target, (0.2, 0.2), SPLIT_SEED)
    return Dataset("digits", "UCI handwritten digits (8x8, scikit-learn)", (1, 8, 8), 10, train, val, test)


def digit_images(size: int = 32, channels: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 digits as an image set for models that take larger colour images (an ImageNet-style ResNet): each
    8x8 digit scaled to size x size (bilinear) and repeated over `channels`, pixels in [0, 1]; (x, y) arrays, the
    shape an evaluation-data upload takes (.npz with x and y)."""
    images, target = _digits_arrays()
    x = torch.nn.functional.interpolate(torch.as_tensor(images / 16.0, dtype=torch.float32)[:, None], size=(size, size),
                                        mode="bilinear", align_corners=False)
    return x.repeat(1, channels, 1, 1).numpy(), target.astype(np.int64)


def cache_dir() -> Path:
    """The cache folder: $SLIMLAB_CACHE, else $XDG_CACHE_HOME/slimlab (~/.cache/slimlab)."""
    root = os.environ.get("SLIMLAB_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"),
                                                           "slimlab")
    return Path(root)


def _trusted(path: Path, limit: int = 64 * 2**20) -> bytes | None:
    """A cache file's bytes if this installation wrote them: its signature (`<file>.mac`, an HMAC of its name and
    content with the cache folder's secret) matches. Anything else (absent, damaged, edited, copied from elsewhere,
    larger than `limit`) is None, and a present file that fails the check is removed and logged."""
    from .store import sign  # store imports this module

    try:
        if path.stat().st_size > limit:
            raise ValueError("too large")
        content, mac = path.read_bytes(), path.with_name(path.name + ".mac").read_text().strip()
        if hmac.compare_digest(mac, sign(path.parent, path.name, content)):
            return content
        raise ValueError("signature mismatch")
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        log.warning("data cache: %s not trusted (%s): computed again", path.name, e)
        for p in (path, path.with_name(path.name + ".mac")):
            p.unlink(missing_ok=True)
        return None


def _keep(path: Path, content: bytes) -> None:
    """Write a cache file and its signature (atomically: a concurrent reader sees the old pair or the new file
    with its own signature written first)."""
    from .store import sign

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        mac = path.with_name(path.name + ".mac")
        for target, data in ((mac, sign(path.parent, path.name, content).encode()), (path, content)):
            with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as f:
                f.write(data)
            os.replace(f.name, target)
    except OSError:
        pass  # a read-only home still works, only slower


def _mnist1d_arrays() -> dict[str, np.ndarray]:
    """Generate MNIST-1D with the package's default arguments (seed 42), cached on disk because it takes seconds;
    the cached file is used only when its signature says this installation wrote it."""
    # Keyed by the package's version, read without importing it: importing mnist1d (and scipy) costs most of a second.
    path = cache_dir() / f"mnist1d-{importlib.metadata.version('mnist1d')}-defaults.npz"
    content = _trusted(path)
    if content is not None:
        try:
            with np.load(io.BytesIO(content), allow_pickle=False) as z:
                return {k: z[k] for k in ("x", "y", "x_test", "y_test")}
        except (OSError, ValueError, KeyError):
            pass  # damaged although signed (a bug of ours): generate again
    from mnist1d.data import get_dataset_args, make_dataset

    raw = make_dataset(get_dataset_args())
    arrays = {k: np.asarray(raw[k]) for k in ("x", "y", "x_test", "y_test")}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]  # numpy's stub types allow_pickle, a key arrays never holds
    _keep(path, buffer.getvalue())
    return arrays


@functools.cache
def mnist1d() -> Dataset:
    """MNIST-1D generated offline by the mnist1d package: 40-sample signals; its 1,000 test signals, 500 of its 4,000
    train as validation."""
    a = _mnist1d_arrays()
    x = a["x"].astype(np.float32)[:, None, :]
    order = np.random.default_rng(SPLIT_SEED).permutation(len(a["y"]))
    val_idx, train_idx = order[:500], order[500:]
    return Dataset("mnist1d", "MNIST-1D (40-sample signals, mnist1d package)", (1, 40), 10,
                   _as_split(x[train_idx], a["y"][train_idx]), _as_split(x[val_idx], a["y"][val_idx]),
                   _as_split(a["x_test"].astype(np.float32)[:, None, :], a["y_test"]))


DATASETS = {"digits": digits, "mnist1d": mnist1d}


def load_dataset(name: str) -> Dataset:
    """A dataset by name; an unknown name raises KeyError listing the known ones."""
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name]()
