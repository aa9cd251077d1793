"""Real, offline, deterministic datasets: UCI handwritten digits and MNIST-1D, split once per process."""
from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

SPLIT_SEED = 0  # the seed of every train / validation / test split


@dataclass(frozen=True)
class Split:
    """Inputs and integer labels of one split."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def head(self, n: int) -> "Split":
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


@functools.lru_cache(maxsize=None)
def digits() -> Dataset:
    """UCI handwritten digits shipped in scikit-learn: 1,797 8x8 images, pixels scaled to [0, 1]; 60/20/20 split."""
    images, target = _digits_arrays()
    x = (images / 16.0).astype(np.float32)[:, None, :, :]
    train, val, test = split_arrays(x, target, (0.2, 0.2), SPLIT_SEED)
    return Dataset("digits", "UCI handwritten digits (8x8, scikit-learn)", (1, 8, 8), 10, train, val, test)


def cache_dir() -> Path:
    """The cache folder: $SLIMLAB_CACHE, else $XDG_CACHE_HOME/slimlab (~/.cache/slimlab)."""
    root = os.environ.get("SLIMLAB_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"), "slimlab")
    return Path(root)


def _mnist1d_arrays() -> dict[str, np.ndarray]:
    """Generate MNIST-1D with the package's default arguments (seed 42), cached on disk because it takes seconds."""
    # Keyed by the package's version, read without importing it: importing mnist1d (and scipy) costs most of a second.
    path = cache_dir() / f"mnist1d-{importlib.metadata.version('mnist1d')}-defaults.npz"
    try:
        with np.load(path) as z:
            return {k: z[k] for k in ("x", "y", "x_test", "y_test")}
    except (OSError, ValueError, KeyError):
        pass  # absent or damaged: generate again
    from mnist1d.data import get_dataset_args, make_dataset

    raw = make_dataset(get_dataset_args())
    arrays = {k: np.asarray(raw[k]) for k in ("x", "y", "x_test", "y_test")}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as f:
            np.savez(f, **arrays)
        os.replace(f.name, path)  # atomic: a concurrent reader sees the old file or the whole new one
    except OSError:
        pass  # a read-only home still works, only slower
    return arrays


@functools.lru_cache(maxsize=None)
def mnist1d() -> Dataset:
    """MNIST-1D generated offline by the mnist1d package: 40-sample signals; its 1,000 test signals, 500 of its 4,000 train as validation."""
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
