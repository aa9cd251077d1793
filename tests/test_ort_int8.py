"""Real int8 in ONNX Runtime (slimcore.ort_int8): built from the lab's model, measured like any model, and the int8
file alone reproduces the figures in a fresh onnxruntime session."""
import onnxruntime as ort
import pytest
import torch

import slimcore
from slimcore import ort_int8 as O
from slimcore.families import family_of


def _fresh_outputs(onnx: bytes, x: torch.Tensor) -> torch.Tensor:
    sess = ort.InferenceSession(onnx, providers=["CPUExecutionProvider"])
    return torch.from_numpy(sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0])


@pytest.mark.parametrize("name,kind", [("digits-mlp", "dynamic"), ("digits-cnn", "static"), ("mnist1d-cnn", "static")])
def test_a_classifier_in_onnx_runtime_int8_keeps_its_accuracy(name, kind):
    s = slimcore.load_sample(name)
    score = family_of(s).scorer(s, "test")
    model, how = O.build(s)
    assert how["kind"] == kind
    assert abs(score(model).value - score(s.model).value) <= 0.005   # within half a point of fp32
    int8_ops = {"MatMulInteger", "DynamicQuantizeLinear"} if kind == "dynamic" else {"QuantizeLinear",
                                                                                    "DequantizeLinear"}
    assert int8_ops <= set(how["ops"])                               # really int8 in the graph
    assert slimcore.serialized_bytes(model) == len(model.onnx) < how["fp32_bytes"]   # the int8 file, measured
    x = s.data.test.x[:64]
    assert torch.equal(_fresh_outputs(model.onnx, x), model(x))     # the file alone gives the same outputs


def test_the_sample_model_is_not_changed():
    s = slimcore.load_sample("digits-mlp")
    before = {k: v.clone() for k, v in s.model.state_dict().items()}
    O.build(s)
    assert all(torch.equal(before[k], v) for k, v in s.model.state_dict().items())


@pytest.mark.slow
def test_minilm_in_onnx_runtime_int8_per_channel():
    s = slimcore.load_sample("minilm")
    model, how = O.build(s, per_channel=True)
    quality = family_of(s).scorer(s, "test")(model)
    assert quality.value >= 0.99                                     # mean cosine to the original
    assert model.file_bytes() <= 22.5 * 2**20 and {"MatMulInteger", "DynamicQuantizeLinear"} <= set(how["ops"])
