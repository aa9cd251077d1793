"""Real int8 through torch.ao: really int8, close to fp32 in accuracy, smaller on disk, and quiet about deprecation."""
import re
import warnings

import pytest
import torch
from torch import nn

import slimcore
from slimcore import int8

CALIBRATION = 512  # training inputs, as the page uses


@pytest.fixture(scope="module")
def built(sample):
    return int8.int8_model(sample.model, sample.data.train.x[:CALIBRATION])


def test_kind_follows_the_architecture(sample, built):
    has_conv = any(isinstance(m, (nn.Conv1d, nn.Conv2d)) for m in sample.model.modules())
    assert built.kind == ("static" if has_conv else "dynamic")
    assert built.engine == "x86" and built.notes


def test_the_int8_model_really_holds_int8_weights(sample, built):
    weights = []
    for m in built.model.modules():
        w = getattr(m, "weight", None)
        if callable(w):  # quantized modules expose their packed weight through a method
            weights.append(w())
    assert len(weights) == len(slimcore.weight_layers(sample.model))
    assert all(w.dtype == torch.qint8 for w in weights)


def test_int8_is_within_one_point_of_fp32_and_smaller_on_disk(sample, built):
    fp32 = slimcore.accuracy(sample.model, sample.test)
    assert abs(slimcore.accuracy(built.model, sample.test) - fp32) <= 0.01
    assert slimcore.serialized_bytes(built.model) < slimcore.serialized_bytes(sample.model)


def test_int8_latency_is_measured_like_any_model(sample, built):
    b1, b256 = slimcore.latencies(built.model, sample.test, repeats=5)
    assert b1.batch == 1 and b256.batch == 256 and b1.median_ms > 0 and b256.median_ms > 0


def test_building_int8_never_touches_the_given_model(digits_cnn):
    before = {k: v.clone() for k, v in digits_cnn.model.state_dict().items()}
    int8.int8_model(digits_cnn.model, digits_cnn.data.train.x[:64])
    int8.int8_model(digits_cnn.model, kind="dynamic")
    after = digits_cnn.model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert all(type(m).__module__.startswith("torch.nn.modules") or m is digits_cnn.model
               for m in digits_cnn.model.modules())


def test_torch_ao_deprecation_warnings_stay_inside_the_module(digits_cnn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = int8.int8_model(digits_cnn.model, digits_cnn.data.train.x[:64])
        int8.int8_model(digits_cnn.model, kind="dynamic")
        slimcore.accuracy(r.model, digits_cnn.test)
    assert [str(w.message)[:80] for w in caught] == []


def test_dynamic_on_a_conv_model_says_the_convolutions_stay_fp32(digits_cnn):
    r = int8.int8_model(digits_cnn.model)  # no calibration batch: dynamic
    assert r.kind == "dynamic"
    assert any("Convolutions stay fp32" in n for n in r.notes)
    assert isinstance(r.model.conv1, nn.Conv2d)


class Untraceable(nn.Module):
    """A conv model whose forward branches on data: FX cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 4, 3)
        self.fc = nn.Linear(4 * 6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if x.sum() > 0:
            x = x * 2
        return self.fc(x.flatten(1))


def test_a_model_static_int8_cannot_handle_falls_back_to_dynamic_and_says_so():
    m = Untraceable().eval()
    r = int8.int8_model(m, torch.randn(16, 1, 8))
    assert r.kind == "dynamic"
    assert "did not apply" in r.notes[0]
    assert r.model(torch.randn(2, 1, 8)).shape == (2, 3)


def test_bad_requests_get_clear_messages(digits_cnn):
    with pytest.raises(ValueError, match="no Linear or Conv"):
        int8.int8_model(nn.Sequential(nn.ReLU()))
    with pytest.raises(ValueError, match="calibration"):
        int8.int8_model(digits_cnn.model, kind="static")
    with pytest.raises(ValueError, match="empty"):
        int8.int8_model(digits_cnn.model, digits_cnn.data.train.x[:0])
    with pytest.raises(ValueError, match="kind"):
        int8.int8_model(digits_cnn.model, kind="int4")


def test_build_is_the_one_entry_point_over_the_family_table(sample, built):
    """int8.build(sample, label) for a classifier is int8_model calibrated on the calibration split's head: the same
    kind and the same int8 weights; a label the family does not offer names the ones it does."""
    assert list(int8.variants(sample)) == ["int8 (ONNX Runtime)", "int8 (torch.ao)"]   # the default engine first
    label = "int8 (torch.ao)"
    r = int8.build(sample, label)
    assert (r.kind, r.engine, r.notes) == (built.kind, built.engine, built.notes)
    assert slimcore.accuracy(r.model, sample.test) == slimcore.accuracy(built.model, sample.test)
    assert int8.build(sample, int8.Int8Variant("dynamic")).kind == "dynamic"
    with pytest.raises(ValueError, match=f"supported: .*{re.escape(label)}"):
        int8.build(sample, "int8 per channel")
    with pytest.raises(ValueError, match="kind must be one of"):
        int8.Int8Variant("int4")
    with pytest.raises(ValueError, match="engine must be one of torch, onnxruntime"):
        int8.Int8Variant(engine="tensorrt")


def test_the_onnx_runtime_variant_is_built_by_onnx_runtime(sample, built):
    """The classifier's ONNX Runtime row: static (QDQ) int8 with convolutions, dynamic without, like torch.ao's
    choice, run in an onnxruntime session and sized by its file; its notes say what stays fp32."""
    r = int8.build(sample, "int8 (ONNX Runtime)")
    assert (r.kind, r.engine) == (built.kind, "onnxruntime")
    assert slimcore.serialized_bytes(r.model) == len(r.model.onnx)
    assert "ONNX Runtime " + r.kind in r.notes[0]
    assert abs(slimcore.accuracy(r.model, sample.test) - slimcore.accuracy(sample.model, sample.test)) <= 0.005
