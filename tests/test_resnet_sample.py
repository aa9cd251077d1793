"""The residual sample (digits-resnet): really residual, traceable and exportable, its card true, its students thinner
ResNets, and its real int8 models quantize the residual adds. The checks every sample gets (loading, card accuracy,
int8 within a point, students smaller...) run on it through the `sample` fixture; these are the ResNet's own."""
import copy
import operator

import pytest
import torch
from torch import nn

import slimcore
from slimcore import distillation as D
from slimcore import int8
from slimcore.zoo import BasicBlock, DigitsResNet
from tests.conftest import load_classifier

NAME = "digits-resnet"


@pytest.fixture(scope="module")
def resnet() -> slimcore.Sample:
    return load_classifier(NAME)


def residual_adds(model: nn.Module) -> list[torch.fx.Node]:
    """The adds of two computed tensors (not of a tensor and a constant) in the model's FX graph."""
    graph = torch.fx.symbolic_trace(model).graph
    return [n for n in graph.nodes if n.op == "call_function" and n.target in (operator.add, torch.add)
            and len(n.args) == 2 and all(isinstance(a, torch.fx.Node) for a in n.args)]


def test_it_is_registered_after_digits_cnn_on_the_same_data(resnet):
    names = slimcore.list_samples("classifier")
    assert names.index(NAME) == names.index("digits-cnn") + 1
    assert resnet.data.name == slimcore.load_sample("digits-cnn").data.name
    assert DigitsResNet.input_shape == resnet.data.input_shape == tuple(resnet.test.x.shape[1:])


def test_the_card_is_what_the_model_measures(resnet):
    card = resnet.card
    assert slimcore.accuracy(resnet.model, resnet.test) == pytest.approx(card["test_accuracy"], abs=1e-9)
    assert slimcore.accuracy(resnet.model, resnet.data.val) == pytest.approx(card["val_accuracy"], abs=1e-9)
    assert card["parameters"] == D.parameters(resnet.model)
    assert card["module"] == repr(resnet.model)
    assert card["test_accuracy"] >= 0.97   # comparable to digits-cnn (97.8 %) on the same split
    assert "not the same data" in card["reference"]


def test_the_shipped_weights_are_trained_batchnorm_included(resnet):
    norms = [m for m in resnet.model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == 2 * 4 + 1 + 1   # two per block, the stem's, the projection's
    for m in norms:   # running statistics were learned, not left at their defaults
        assert int(m.num_batches_tracked) > 0
        assert not torch.equal(m.running_var, torch.ones_like(m.running_var))


def test_every_block_adds_its_input_back(resnet):
    adds = residual_adds(resnet.model)
    blocks = [m for m in resnet.model.modules() if isinstance(m, BasicBlock)]
    assert len(adds) == len(blocks) == 4
    assert [b.downsample is not None for b in blocks] == [False, False, True, False]   # one projection, at stage 2


def test_a_block_whose_last_branch_is_silenced_passes_its_input_through(resnet):
    """With the second BatchNorm's scale and shift at zero the branch adds nothing: an identity block returns its
    (non-negative, post-ReLU) input; the projecting block returns relu(projection(input))."""
    net = copy.deepcopy(resnet.model)
    x = torch.relu(net.bn(net.conv(resnet.test.x[:8])))
    with torch.no_grad():
        for block in (net.layer1[0], net.layer2[0]):
            block.bn2.weight.zero_()
            block.bn2.bias.zero_()
        torch.testing.assert_close(net.layer1[0](x), x)
        torch.testing.assert_close(net.layer2[0](x), torch.relu(net.layer2[0].downsample(x)))


def test_it_traces_and_exports_to_the_same_outputs(resnet):
    x = resnet.test.x[:16]
    with torch.no_grad():
        want = resnet.model(x)
        traced = torch.fx.symbolic_trace(resnet.model)
        torch.testing.assert_close(traced(x), want, rtol=0, atol=0)
        program = torch.export.export(copy.deepcopy(resnet.model), (x,))
        torch.testing.assert_close(program.module()(x), want, rtol=1e-5, atol=1e-5)


def test_layer_table_counts_every_conv_and_the_classifier(resnet):
    rows = slimcore.metrics.layer_table(resnet.model, DigitsResNet.input_shape)
    assert [r.kind for r in rows] == ["Conv2d"] * 10 + ["Linear"]
    assert rows[-1].weight_shape == (10, 32)
    by = {r.name: r for r in rows}
    assert by["layer1.0.conv1"].macs == 16 * 16 * 9 * 8 * 8          # stage 1 at 8x8
    assert by["layer2.0.conv1"].macs == 32 * 16 * 9 * 4 * 4          # stride 2: 4x4
    assert by["layer2.0.downsample.0"].macs == 32 * 16 * 4 * 4       # the 1x1 projection
    norms = sum(p.numel() for n, p in resnet.model.named_parameters() if ".bn" in f".{n}" or "downsample.1" in n)
    assert sum(r.params for r in rows) + norms == D.parameters(resnet.model)


@pytest.mark.parametrize("width", list(D.WIDTHS.values()))
def test_students_are_thinner_resnets_of_as_many_blocks(resnet, width):
    student = D.make_student(NAME, width, seed=0)
    assert isinstance(student, DigitsResNet)
    assert (student.conv.out_channels, student.fc.in_features) == (max(1, round(16 * width)), max(1, round(32 * width)))
    assert (len(student.layer1), len(student.layer2)) == (len(resnet.model.layer1), len(resnet.model.layer2))
    assert D.parameters(student) < D.parameters(resnet.model)
    for m in student.modules():   # BatchNorm as constructed: unit scale, zero shift, fresh statistics
        if isinstance(m, nn.BatchNorm2d):
            assert torch.equal(m.weight, torch.ones_like(m.weight)) and torch.equal(m.bias, torch.zeros_like(m.bias))
            assert torch.equal(m.running_mean, torch.zeros_like(m.running_mean)) and int(m.num_batches_tracked) == 0
    assert student.eval()(resnet.test.x[:3]).shape == (3, 10)


def test_the_student_of_the_model_is_the_student_of_its_name(resnet):
    a, b = D.make_student(NAME, 0.5, seed=3), D.make_student(resnet.model, 0.5, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_a_short_distillation_trains_a_resnet_student(resnet):
    result = D.distill(resnet, D.DistillConfig(epochs=2))
    assert isinstance(result.student, DigitsResNet) and not result.student.training
    assert result.history[-1].score.value > result.before.value + 0.2   # measured: 0.07 -> 0.62 here


def test_torch_ao_int8_quantizes_the_residual_adds(resnet):
    built = int8.int8_model(resnet.model, resnet.data.train.x[:int8.CALIBRATION])
    assert built.kind == "static"
    calls = [n.target for n in built.model.graph.nodes if n.op == "call_function"]
    fused = [t for t in calls if "add_relu" in str(t)]   # int8 add + ReLU kernels, one per block
    assert len(fused) == 4 and operator.add not in calls
    methods = [n.target for n in built.model.graph.nodes if n.op == "call_method"]
    assert methods == ["dequantize"]   # int8 from the first quantize to the logits: nothing falls back to fp32
    assert abs(slimcore.accuracy(built.model, resnet.test) - slimcore.accuracy(resnet.model, resnet.test)) <= 0.01


def test_onnx_runtime_int8_wraps_the_residual_adds_in_quantize_nodes(resnet):
    import io

    import onnx

    from slimcore import ort_int8

    model, how = ort_int8.build(resnet, "auto", True, int8.CALIBRATION)
    assert how["kind"] == "static"
    graph = onnx.load_model(io.BytesIO(model.onnx)).graph
    made_by = {out: node.op_type for node in graph.node for out in node.output}
    adds = [n for n in graph.node if n.op_type == "Add" and all(made_by.get(i) == "DequantizeLinear" for i in n.input)]
    assert len(adds) == 4   # each residual add reads two dequantized tensors: ONNX Runtime runs it as QLinearAdd
    assert abs(slimcore.accuracy(model, resnet.test) - slimcore.accuracy(resnet.model, resnet.test)) <= 0.01


@pytest.mark.slow
def test_retraining_reproduces_the_shipped_weights(resnet):
    """sample_models/train.py is deterministic (one thread): training again gives the shipped tensors bit for bit, on
    the kind of CPU they were trained on. On another (an Intel Xeon with AVX-512 here: other kernels, other last bits,
    amplified by 40 epochs) the recipe must still give as good a model: test accuracy within one point."""
    import importlib.util

    from tests.conftest import ROOT, recording_cpu

    spec = importlib.util.spec_from_file_location("train_samples", ROOT / "sample_models" / "train.py")
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(train.THREADS)
    torch.use_deterministic_algorithms(True)
    try:
        model, card = train.train(slimcore.zoo.spec(NAME))
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
    shipped = resnet.model.state_dict()
    if recording_cpu():
        assert all(torch.equal(v, shipped[k]) for k, v in model.state_dict().items())
        assert card["test_accuracy"] == resnet.card["test_accuracy"]
    else:
        assert set(model.state_dict()) == set(shipped)
        assert abs(slimcore.accuracy(model, resnet.test) - resnet.card["test_accuracy"]) <= 0.01
