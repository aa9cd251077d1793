"""The disk result cache: values come back equal, keys separate results, and a damaged, foreign or hostile file is
never trusted (it is recomputed)."""
import copy
import hashlib
import json

import numpy as np
import pandas as pd
import pytest
import torch

import slimcore
from slimcore import store as S
from slimcore.families import Metric, Score
from slimcore.text import TextQuality


@pytest.fixture
def st_(tmp_path):
    return S.Store(tmp_path)


def test_values_come_back_equal(st_):
    metric = Metric("test accuracy", "accuracy", True)
    frame = pd.DataFrame({"ratio": [0.0, 0.5], "accuracy": [0.9, 0.5], "method": ["l1", "l1"],
                          "kept": [True, False], "n": np.array([1, 2], dtype=np.int64)})
    frame.attrs.update(metric=metric, examples=12)
    value = {"scores": [Score(0.5, metric, 100), Score(float("nan"), metric, 3)], 2: (1, "a"),
             "array": np.arange(6, dtype=np.float32).reshape(2, 3), "t": torch.ones(3, dtype=torch.int8),
             "frame": frame, "inf": float("-inf")}
    assert st_.put("curve", "abc", {"ratio": 0.5}, value, 1.0)
    got, prov = st_.get("curve", "abc", {"ratio": 0.5})
    assert got["scores"][0] == value["scores"][0] and got["scores"][0].metric == metric
    assert np.isnan(got["scores"][1].value) and got[2] == (1, "a") and got["inf"] == float("-inf")
    np.testing.assert_array_equal(got["array"], value["array"])
    assert got["array"].dtype == np.float32 and torch.equal(got["t"], value["t"])
    pd.testing.assert_frame_equal(got["frame"], frame)
    assert prov["seconds"] == 1.0 and prov["code"] == S.code_version()


def test_keys_separate_results_and_cached_computes_once(st_):
    calls = []

    def compute():
        calls.append(1)
        return len(calls)

    assert st_.cached("k", "m1", {"a": 1}, compute) == 1
    assert st_.cached("k", "m1", {"a": 1}, compute) == 1          # kept
    assert st_.cached("k", "m1", {"a": 2}, compute) == 2          # another setting
    assert st_.cached("k", "m2", {"a": 1}, compute) == 3          # another model
    assert st_.cached("other", "m1", {"a": 1}, compute) == 4      # another kind


def test_a_record_with_detail_survives(st_):
    q = Score(0.9, Metric("mean cosine", "cosine", False), 128,
              TextQuality(0.9, 0.5, "a sentence", 0.7, 0.6, 0.5, 128, 64))
    st_.put("q", "m", None, q, 0.1)
    assert st_.get("q", "m", None)[0] == q


def _only_file(st_):
    files = [p for p in st_.root.glob("*.json")]
    assert len(files) == 1
    return files[0]


@pytest.mark.parametrize("tamper", ["value", "garbage", "truncate", "key", "resign"])
def test_a_tampered_file_is_recomputed(st_, tamper):
    st_.put("curve", "m", {"r": 1}, [0.9, 0.8], 1.0)
    path = _only_file(st_)
    doc = json.loads(path.read_text())
    if tamper == "value":      # shifted figures, signature kept
        doc["value"] = [0.1, 0.2]
        path.write_text(json.dumps(doc))
    elif tamper == "garbage":
        path.write_bytes(b"\x00\xff not json")
    elif tamper == "truncate":
        path.write_text(path.read_text()[:40])
    elif tamper == "key":      # a file of another key put in its place
        doc["key"]["setting"] = {"__dict__": [["r", 2]]}
        path.write_text(json.dumps(doc))
    else:                      # signed with another secret
        S.Store(st_.root / "elsewhere").put("curve", "m", {"r": 1}, [0.1, 0.2], 1.0)
        (st_.root / "elsewhere" / path.name).replace(path)
    before = st_.rejected
    assert st_.get("curve", "m", {"r": 1}) is None and st_.rejected == before + 1
    assert not path.exists()                                     # removed, so it is written afresh
    assert st_.cached("curve", "m", {"r": 1}, lambda: [0.9, 0.8]) == [0.9, 0.8]


@pytest.mark.parametrize("payload", [
    {"__record__": "os:system", "fields": {}},                              # not slimcore
    {"__record__": "slimcore.store:Store", "fields": {"root": "/"}},        # slimcore, but not a record
    {"__record__": "slimcore.families.base:Metric", "fields": {"evil": 1}},  # a field it does not have
    {"__array__": {"dtype": "object", "shape": [1], "bytes": ""}},
    {"__array__": {"dtype": "float32", "shape": [10**6, 10**6], "bytes": ""}},   # claims more than it holds
    {"__whatever__": 1},
])
def test_values_it_would_not_write_are_refused(payload):
    with pytest.raises(S.StoreError):
        S.decode(payload)


def test_what_is_not_plain_data_is_not_kept(st_):
    assert not st_.put("model", "m", None, torch.nn.Linear(2, 2), 0.1)
    assert not list(st_.root.glob("*.json"))


def test_model_hash_reads_the_weights():
    s = slimcore.load_sample("digits-mlp")
    h = S.model_hash(s.model)
    assert h == S.model_hash(s.model) and len(h) == 32
    import copy
    same, changed = copy.deepcopy(s.model), copy.deepcopy(s.model)
    with torch.no_grad():
        next(changed.parameters()).view(-1)[0] += 1e-6
    assert S.model_hash(changed) != h and S.model_hash(same) == h


def test_model_hash_reads_batchnorm_counters_and_keeps_other_models_hashes():
    """A 0-dim buffer (BatchNorm's num_batches_tracked, int64) is hashed like any tensor; models without one hash
    as they did before it could be (bytes of each tensor taken as they lie)."""
    resnet = slimcore.load_sample("digits-resnet").model
    h = S.model_hash(resnet)
    counted = copy.deepcopy(resnet)
    counted.bn.num_batches_tracked += 1
    assert len(h) == 32 and S.model_hash(counted) != h
    cnn = slimcore.load_sample("digits-cnn").model
    before = hashlib.sha256()
    for name, t in cnn.state_dict().items():
        before.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        before.update(t.contiguous().view(torch.uint8).numpy().tobytes())
    assert S.model_hash(cnn) == before.hexdigest()[:32]
