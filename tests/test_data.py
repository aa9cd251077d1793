"""The datasets are real, offline, deterministic, split without overlap, and built once per process."""
import numpy as np
import pytest
import torch

from slimcore import data


@pytest.mark.parametrize("name", list(data.DATASETS))
def test_splits_are_disjoint_and_complete(name):
    ds = data.load_dataset(name)
    parts = [ds.train, ds.val, ds.test]
    rows = [{tuple(np.round(x.numpy().ravel(), 5)) for x in p.x} for p in parts]
    assert all(len(p) > 100 for p in parts)
    assert ds.train.x.shape[1:] == ds.input_shape == ds.test.x.shape[1:]
    assert set(ds.test.y.tolist()) == set(range(ds.classes))
    # duplicates inside the raw data aside, no test example also sits in train
    assert len(rows[2] & rows[0]) <= 0.01 * len(ds.test)


def test_digits_sizes_and_range():
    ds = data.digits()
    assert (len(ds.train), len(ds.val), len(ds.test)) == (1079, 359, 359)
    assert float(ds.train.x.min()) == 0.0 and float(ds.train.x.max()) == 1.0


def test_mnist1d_uses_package_test_split():
    ds = data.mnist1d()
    assert (len(ds.train), len(ds.val), len(ds.test)) == (3500, 500, 1000)


@pytest.mark.parametrize("name", list(data.DATASETS))
def test_built_once_per_process(name):
    assert data.load_dataset(name) is data.load_dataset(name)


def test_split_is_a_function_of_the_seed():
    x = np.arange(100, dtype=np.float32)[:, None]
    y = np.arange(100) % 10
    a = data.split_arrays(x, y, (0.2, 0.2), seed=3)
    b = data.split_arrays(x, y, (0.2, 0.2), seed=3)
    c = data.split_arrays(x, y, (0.2, 0.2), seed=4)
    assert all(torch.equal(p.x, q.x) for p, q in zip(a, b))
    assert not torch.equal(a[2].x, c[2].x)


def test_mnist1d_disk_cache_regenerates_when_damaged(tmp_path, monkeypatch):
    monkeypatch.setenv("SLIMLAB_CACHE", str(tmp_path))
    first = data._mnist1d_arrays()
    (cached,) = tmp_path.glob("mnist1d-*.npz")
    cached.write_bytes(b"not an npz")
    again = data._mnist1d_arrays()
    assert all(np.array_equal(first[k], again[k]) for k in first)


def test_unknown_dataset_lists_known():
    with pytest.raises(KeyError, match="digits.*mnist1d"):
        data.load_dataset("cifar")


def test_digits_read_from_file_equal_sklearns_loader():
    from sklearn.datasets import load_digits

    from slimcore.data import _digits_arrays

    images, target = _digits_arrays()
    ref = load_digits()
    np.testing.assert_array_equal(images, ref.images)
    np.testing.assert_array_equal(target, ref.target)
