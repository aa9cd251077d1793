"""Real int8 in ONNX Runtime (slimcore.ort_int8): built from the lab's model, measured like any model, and the int8
file alone reproduces the figures in a fresh onnxruntime session."""
import copy
from dataclasses import replace

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
    assert model.file_bytes() <= 22 * 2**20 and {"MatMulInteger", "DynamicQuantizeLinear"} <= set(how["ops"])


@pytest.mark.slow
def test_an_exported_minilm_int8_file_reproduces_the_pages_figure(tmp_path):
    """The Quantization page's ONNX Runtime row for minilm, exported through its recipe (what the Export section and
    `python -m slimcore apply` write), loaded back from the file alone in a fresh session: the page's mean cosine,
    exactly."""
    from slimcore import int8 as I8
    from slimcore.export import export_recipe
    from slimcore.recipe import Int8Config, Recipe
    from slimui import quant as page

    s = slimcore.load_sample("minilm")
    label = "ONNX Runtime int8 per channel, embeddings too"
    shown = page.int8_figures("minilm", label, "test")
    applied, exported = export_recipe(s, Recipe("minilm", int8=Int8Config.from_variant(I8.variants(s)[label])),
                                      tmp_path, timing=False)
    assert [f.name for f in exported.files] == ["model.onnx", "recipe.yaml", "figures.json"]
    fresh = O.OrtModel((tmp_path / "model.onnx").read_bytes())
    assert family_of(s).scorer(s, "test")(fresh).value == shown["score"].value == applied.figures.score
    assert len(fresh.onnx) == shown["size_bytes"]


def test_the_export_and_quantizer_run_in_a_child_process():
    """Building an ONNX Runtime int8 model leaves the exporter and the quantizer out of the calling process (in the
    dashboard they held ~280 MiB for good and the interpreter lock for seconds): only onnxruntime is imported."""
    import subprocess
    import sys

    code = ("import sys, slimcore; from slimcore import ort_int8 as O; m, how = O.build(slimcore.load_sample("
            "'digits-mlp')); assert how['ops']['MatMulInteger'] == 3; print(sorted(k for k in ('onnx', 'onnxscript', "
            "'onnxruntime.quantization', 'onnxruntime') if k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "['onnxruntime']"


def test_a_model_that_cannot_be_pickled_is_built_in_this_process():
    s = slimcore.load_sample("digits-mlp")
    model = copy.deepcopy(s.model)
    model.note = lambda: None   # a local function: torch.save cannot pickle it
    built, how = O.build(replace(s, model=model))
    x = s.data.test.x[:64]
    assert how["kind"] == "dynamic" and torch.equal(built(x).argmax(1), O.build(s)[0](x).argmax(1))


def test_lean_drops_only_the_exporters_debugging_metadata():
    from slimcore.export import check_inputs

    s = slimcore.load_sample("digits-cnn")
    full = O.fp32_onnx(s.model, check_inputs(s))
    small = O.lean(full)
    assert len(small) < len(full) and O.ops(small) == O.ops(full)
    x = s.data.test.x[:64]
    assert torch.equal(_fresh_outputs(small, x), _fresh_outputs(full, x))


def test_the_table_is_built_at_once_as_each_row_alone():
    """int8.build_table (the page's: ONNX Runtime's rows from one export in one child) gives each row's model as
    int8.build gives it alone: the same int8 file and notes; and the fp32 model in ONNX Runtime beside them."""
    from slimcore import int8 as I8

    s = slimcore.load_sample("digits-cnn")
    built, fp32 = I8.build_table(s)
    assert list(built) == list(I8.variants(s))
    alone = I8.build(s, "int8 (ONNX Runtime)")
    assert built["int8 (ONNX Runtime)"].model.onnx == alone.model.onnx
    assert built["int8 (ONNX Runtime)"].notes == alone.notes and built["int8 (torch.ao)"].kind == "static"
    x = s.data.test.x[:64]
    assert (fp32(x) - s.model(x)).abs().max() <= 1e-4 and O.ops(fp32.onnx).get("Conv") == 2
