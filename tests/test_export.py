"""Export: every file loads back elsewhere and computes what the compressed model computes — the state dict with
torch.load(weights_only=True) into the architecture, TorchScript with torch.jit.load, ONNX with onnxruntime — and
what a kind of model cannot be exported as is said plainly."""
import copy
import io
import json
import zipfile
from dataclasses import replace

import pytest
import torch

import slimcore
from slimcore import ActivationConfig, PruneConfig, QuantConfig
from slimcore import export as E
from slimcore import recipe as R
from slimcore.recipe import Int8Config, Recipe

CASES = {  # id -> (sample, recipe settings)
    "fp32": ("digits-cnn", {}),
    "masked": ("digits-cnn", {"prune": PruneConfig(0.6, "l1", "global")}),
    "channels-cnn": ("digits-cnn", {"prune": PruneConfig(0.5, structured=True)}),
    "channels-conv1d": ("mnist1d-cnn", {"prune": PruneConfig(0.4, "taylor", structured=True)}),
    "channels-mlp": ("digits-mlp", {"prune": PruneConfig(0.5, "l1", "global", structured=True)}),
    "fake-quant": ("digits-mlp", {"quant": QuantConfig(4, per_channel=True)}),
    "fake-quant-acts": ("digits-cnn", {"quant": QuantConfig(6, activations=ActivationConfig(8))}),
    "int8-static": ("digits-cnn", {"prune": PruneConfig(0.3, structured=True), "int8": Int8Config()}),
    "int8-dynamic": ("mnist1d-mlp", {"int8": Int8Config()}),
    "ort-int8-static": ("digits-cnn", {"prune": PruneConfig(0.3, structured=True),
                                       "int8": Int8Config(per_channel=True, engine="onnxruntime")}),
    "ort-int8-dynamic": ("mnist1d-mlp", {"int8": Int8Config(per_channel=True, engine="onnxruntime")}),
}
ORT = {"ort-int8-static", "ort-int8-dynamic"}   # int8 built by ONNX Runtime: one ONNX file and nothing else
KINDS = {"fp32": "fp32", "masked": "masked", "fake-quant": "fake-quantized", "fake-quant-acts": "fake-quantized"}


@pytest.fixture(scope="module")
def samples():
    return {n: slimcore.load_sample(n) for n in {s for s, _ in CASES.values()}}


@pytest.fixture(scope="module", params=list(CASES))
def done(request, samples, tmp_path_factory):
    name, steps = CASES[request.param]
    s = samples[name]
    before = {k: v.clone() for k, v in s.model.state_dict().items()}
    applied, exported = E.export_recipe(s, Recipe(name, **steps), tmp_path_factory.mktemp(request.param),
                                        timing=False)
    assert all(torch.equal(v, s.model.state_dict()[k]) for k, v in before.items())   # the sample is untouched
    return request.param, s, applied, exported


def test_the_kind_follows_the_recipe(done):
    case, _, applied, exported = done
    want = KINDS.get(case) or ("channel-pruned" if case.startswith("channels") else "int8")
    assert applied.kind == exported.kind == want


def test_files_are_listed_with_their_real_sizes(done):
    _, _, applied, exported = done
    on_disk = {p.name: p.stat().st_size for p in exported.directory.iterdir()}
    assert on_disk == {f.name: f.bytes for f in exported.files}
    model_file = "model.onnx" if done[0] in ORT else "model.torchscript.pt"
    assert {"recipe.yaml", "figures.json", model_file} <= set(on_disk)
    assert R.load(exported.directory / "recipe.yaml") == applied.recipe
    figures = json.loads((exported.directory / "figures.json").read_text())
    assert figures["figures"]["accuracy"] == applied.figures.accuracy
    assert figures["figures"]["size_bytes"] == applied.figures.size_bytes
    assert figures["not_available"] == exported.unavailable
    assert set(figures["files"]) == {f.name for f in exported.files} - {"figures.json"}


def test_state_dict_reloads_with_weights_only_and_gives_the_same_accuracy(done):
    case, s, applied, exported = done
    if applied.kind == "int8":
        pytest.skip("int8: no state dict (checked below)")
    state = torch.load(exported.directory / "state_dict.pt", weights_only=True)
    assert all(type(v) is torch.Tensor for v in state.values())   # plain tensors only
    if applied.kind == "channel-pruned":
        shapes = json.loads((exported.directory / "shapes.json").read_text())["layers"]
        net = E.thin(s.model, shapes)
        assert shapes == E.layer_shapes(applied.model)
    else:
        net = copy.deepcopy(s.model)
    net.load_state_dict(state)   # strict: every key, every shape
    if case == "fake-quant-acts":   # the activation grid lives in forward hooks: a state dict holds the weights only
        assert all(torch.equal(state[k], v) for k, v in applied.model.state_dict().items())
        assert "not part of a state dict" in exported.files[0].check
        return
    assert slimcore.accuracy(net, s.test) == applied.figures.accuracy
    assert torch.equal(slimcore.predict(net, s.test.x), slimcore.predict(applied.model, s.test.x))
    if applied.kind == "masked":
        zeros = sum(int((state[f"{n}.weight"] == 0).sum()) for n in slimcore.weight_layers(s.model))
        assert zeros >= 0.6 * sum(m.weight.numel() for m in slimcore.weight_layers(s.model).values())


@pytest.mark.filterwarnings("ignore:.*torch.jit.load.*:DeprecationWarning")
def test_torchscript_reloads_with_identical_outputs(done):
    case, s, applied, exported = done
    if case in ORT:
        pytest.skip("ONNX Runtime int8: no TorchScript (checked below)")
    net = torch.jit.load(str(exported.directory / "model.torchscript.pt"))
    for x in (s.test.x, s.test.x[:1]):   # traced on a batch of 2: any batch size runs
        assert torch.equal(net(x), applied.model(x))
    assert slimcore.accuracy(net, s.test) == applied.figures.accuracy


def test_onnx_matches_torch_in_onnxruntime(done):
    import onnxruntime as ort

    case, s, applied, exported = done
    if applied.kind == "int8":
        pytest.skip("int8: torch.ao's has no ONNX, ONNX Runtime's is checked below")
    sess = ort.InferenceSession(str(exported.directory / "model.onnx"), providers=["CPUExecutionProvider"])
    run = lambda x: torch.from_numpy(sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0])  # noqa: E731
    got, want = run(s.test.x), applied.model(s.test.x).detach()
    gap = float((got - want).abs().max())
    onnx = next(f for f in exported.files if f.name == "model.onnx")
    assert onnx.ok == (gap <= 1e-4)   # the export's own check says what onnxruntime gives
    if case == "fake-quant-acts":
        # activations are rounded to a grid at run time: onnxruntime's float arithmetic can put an input on the
        # other side of a rounding boundary, one grid step away; the export flags it rather than hiding it
        assert float((got.argmax(1) == want.argmax(1)).float().mean()) >= 0.99
        assert onnx.ok or "above the 0.0001 tolerance" in onnx.check
    else:
        assert gap <= 1e-4
        assert (run(s.test.x[:1]) - want[:1]).abs().max() <= 1e-4   # the batch size is free
    assert all(f.ok for f in exported.files if f.name != "model.onnx")


def test_int8_says_which_formats_it_cannot_take_and_why(done):
    case, _, applied, exported = done
    if applied.kind != "int8":
        assert exported.unavailable == {}
        return
    if case in ORT:
        assert set(exported.unavailable) == {"state_dict", "torchscript"}
        assert "int8 codes with scales inside the ONNX file" in exported.unavailable["state_dict"]
        assert "nothing for torch.jit to trace" in exported.unavailable["torchscript"]
        assert not (exported.directory / "model.torchscript.pt").exists()
        return
    assert set(exported.unavailable) == {"state_dict", "onnx"}
    assert "ONNX export of torch.ao quantized modules is not supported" in exported.unavailable["onnx"]
    assert "int8: {engine: onnxruntime}" in exported.unavailable["onnx"]   # says how to get an int8 ONNX file
    assert "packed parameters" in exported.unavailable["state_dict"]
    assert not (exported.directory / "model.onnx").exists() and not (exported.directory / "state_dict.pt").exists()
    assert any("not available" in line for line in exported.lines())


def test_onnx_runtime_int8_exports_its_own_file_which_reproduces_the_figures(done):
    """The exported int8 ONNX file, alone in a fresh onnxruntime session, gives exactly the applied model's outputs
    and its accuracy figure; it really is int8."""
    import onnxruntime as ort

    from slimcore import ort_int8

    case, s, applied, exported = done
    if case not in ORT:
        pytest.skip("not built by ONNX Runtime")
    data = (exported.directory / "model.onnx").read_bytes()
    assert data == applied.model.onnx and applied.figures.size_bytes == len(data)   # the file is what was measured
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    logits = torch.from_numpy(sess.run(None, {sess.get_inputs()[0].name: s.test.x.numpy()})[0])
    assert float((logits.argmax(1) == s.test.y).float().mean()) == applied.figures.accuracy
    assert {"MatMulInteger", "QuantizeLinear"} & set(ort_int8.ops(data))
    assert next(f for f in exported.files if f.name == "model.onnx").ok


def test_the_archive_holds_every_file(done):
    _, _, _, exported = done
    with zipfile.ZipFile(io.BytesIO(E.archive(exported))) as z:
        assert {i.filename: i.file_size for i in z.infolist()} == {f.name: f.bytes for f in exported.files}


def test_load_state_rebuilds_the_model_from_a_directory(samples, tmp_path):
    s = samples["digits-cnn"]
    applied, _ = E.export_recipe(s, Recipe("digits-cnn", PruneConfig(0.5, structured=True)), tmp_path,
                                 timing=False, formats=("state_dict",))
    net = E.load_state(s.model, tmp_path)
    assert torch.equal(net(s.test.x), applied.model(s.test.x))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figures.json", "recipe.yaml", "shapes.json",
                                                          "state_dict.pt"]


def test_exporting_again_into_the_same_folder_replaces_the_earlier_files(samples, tmp_path):
    s = samples["digits-cnn"]
    (tmp_path / "notes.txt").write_text("mine")
    E.export_recipe(s, Recipe("digits-cnn", PruneConfig(0.5, structured=True)), tmp_path,
                    timing=False, formats=("state_dict", "torchscript"))
    applied, exported = E.export_recipe(s, Recipe("digits-cnn", PruneConfig(0.5)), tmp_path,
                                        timing=False, formats=("state_dict",))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figures.json", "notes.txt", "recipe.yaml", "state_dict.pt"]
    assert all(f.ok for f in exported.files)
    assert torch.equal(E.load_state(s.model, tmp_path)(s.test.x), applied.model(s.test.x))


def _chain(norm) -> torch.nn.Module:
    """A plain chain like the ones uploads are rebuilt as, with a normalisation after the hidden Linear."""
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(),
                         nn.Linear(8 * 64, 32), norm(32), nn.ReLU(), nn.Linear(32, 10)).eval()


def test_channel_pruned_chains_with_batchnorm_reload(samples, tmp_path):
    s = samples["digits-cnn"]
    net = _chain(torch.nn.BatchNorm1d)
    applied, exported = E.export_recipe(replace(s, model=net), Recipe("chain", PruneConfig(0.5, structured=True)),
                                        tmp_path, timing=False)
    assert all(f.ok for f in exported.files)
    shapes = json.loads((tmp_path / "shapes.json").read_text())["layers"]
    assert shapes["1"] == {"type": "BatchNorm2d", "features": 4} and shapes["5"]["features"] == 16
    assert torch.equal(E.load_state(net, tmp_path)(s.test.x), applied.model(s.test.x))


def test_a_state_dict_that_cannot_be_loaded_back_is_flagged_not_hidden(samples, tmp_path):
    s = samples["digits-cnn"]
    _, exported = E.export_recipe(replace(s, model=_chain(torch.nn.LayerNorm)),
                                  Recipe("chain", PruneConfig(0.5, structured=True)), tmp_path, timing=False)
    state = next(f for f in exported.files if f.name == "state_dict.pt")
    assert not state.ok and state.check.startswith("NOT loaded back into the architecture (RuntimeError")
    assert all(f.ok for f in exported.files if f.name != "state_dict.pt")   # the other formats still stand
    assert json.loads((tmp_path / "figures.json").read_text())["files"]["state_dict.pt"]["ok"] is False


def test_thin_refuses_shapes_of_another_architecture(samples):
    with pytest.raises(ValueError, match="layers the architecture does not have: conv9"):
        E.thin(samples["digits-cnn"].model, {"conv9": {"type": "Conv2d", "weight": [4, 1, 3, 3], "bias": True}})
    with pytest.raises(ValueError, match="layer fc1 is a Linear, the shapes say Conv2d"):
        E.thin(samples["digits-cnn"].model, {"fc1": {"type": "Conv2d", "weight": [4, 1, 3, 3], "bias": True}})
    with pytest.raises(ValueError, match="unknown export format"):
        E.export(None, samples["digits-cnn"], "unused", formats=("tflite",))


# The Export panel (slimui.export) --------------------------------------------------------------------------------

def _panel_script():
    import slimcore
    from slimcore.recipe import Int8Config, Recipe
    from slimui.export import export_panel

    export_panel("digits-cnn", Recipe("digits-cnn", prune=slimcore.PruneConfig(0.5, structured=True)))
    export_panel("mnist1d-mlp", Recipe("digits-cnn", int8=Int8Config()))   # the panel's model name wins


def test_export_panel_offers_a_zip_and_says_what_is_missing():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_panel_script, default_timeout=60).run()
    assert not at.exception, at.exception
    assert [h.value for h in at.subheader] == ["Export", "Export"]
    buttons = at.get("download_button")
    assert len(buttons) == 2 and all(b.proto.label == "Download model (zip)" for b in buttons)
    assert all(b.proto.id.split("-")[-1].startswith("export_zip_") for b in buttons)
    assert all(b.proto.deferred_file_id for b in buttons)   # the zip is built when the button is pressed
    captions = " ".join(c.value for c in at.caption)
    assert "state dict, TorchScript, ONNX" in captions and "mnist1d-mlp: real int8" in captions
    assert "No ONNX file: ONNX export of torch.ao quantized modules is not supported" in captions
    assert "model: mnist1d-mlp" in at.code[-1].value   # the recipe shown is the one the zip holds


def test_export_panel_zip_holds_the_exported_files():
    from slimui import export as panel

    recipe = Recipe("digits-mlp", prune=PruneConfig(0.5))
    data = panel.bundle("digits-mlp", recipe.to_json())
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.namelist() == ["state_dict.pt", "model.torchscript.pt", "model.onnx", "recipe.yaml", "figures.json"]
        assert R.loads(z.read("recipe.yaml").decode()) == recipe
        state = torch.load(io.BytesIO(z.read("state_dict.pt")), weights_only=True)
    s = slimcore.load_sample("digits-mlp")
    net = copy.deepcopy(s.model)
    net.load_state_dict(state)
    assert slimcore.accuracy(net, s.test) == R.apply(s, recipe, timing=False).figures.accuracy
    assert panel.bundle("digits-mlp", recipe.to_json()) == data   # cached: a new build would time the model anew


# The sentence encoder (minilm): the same export, embeddings compared by cosine ------------------------------------

@pytest.fixture(scope="module")
def minilm():
    return slimcore.load_sample("minilm")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*torch.jit.load.*:DeprecationWarning")
def test_a_ffn_pruned_encoder_exports_and_reloads_every_way(minilm, tmp_path):
    import onnxruntime as ort

    cfg = PruneConfig(0.25, structured=True, unit="ffn", norm=2)
    applied, exported = E.export_recipe(minilm, Recipe("minilm", prune=cfg), tmp_path, timing=False)
    assert applied.kind == exported.kind == "ffn-pruned" and exported.unavailable == {}
    assert all(f.ok for f in exported.files), exported.lines()
    x = E.check_inputs(minilm)
    want = applied.model(x)
    shapes = json.loads((tmp_path / "shapes.json").read_text())
    assert shapes["units"] == {"ffn": applied.model.shape()["ffn"]} \
        and shapes["layers"] == E.layer_shapes(applied.model)
    assert torch.equal(E.load_state(minilm.model, tmp_path)(x), want)   # thin architecture + weights_only state dict
    assert torch.equal(torch.jit.load(str(tmp_path / "model.torchscript.pt"))(x), want)
    sess = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    assert sess.get_outputs()[0].name == "embeddings"
    for batch in (x, x[:1, :7]):   # batch size and sentence length are free
        got = torch.from_numpy(sess.run(None, {sess.get_inputs()[0].name: batch.numpy()})[0])
        assert (got - applied.model(batch)).abs().max() <= E.ONNX_TOLERANCE
    figures = json.loads((tmp_path / "figures.json").read_text())["figures"]
    assert figures["metric"] == "mean cosine to the original" and figures["score"] == applied.figures.score


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*torch.jit.load.*:DeprecationWarning")
def test_an_int8_encoder_exports_torchscript_and_says_what_it_cannot(minilm, tmp_path):
    applied, exported = E.export_recipe(minilm, Recipe("minilm", int8=Int8Config(per_channel=True)), tmp_path,
                                        timing=False)
    assert applied.kind == "int8" and set(exported.unavailable) == {"state_dict", "onnx"}
    script = next(f for f in exported.files if f.name == "model.torchscript.pt")
    assert script.ok, script.check
    x = E.check_inputs(minilm)
    assert torch.equal(torch.jit.load(str(tmp_path / "model.torchscript.pt"))(x), applied.model(x))


def _minilm_panel_script():
    import slimcore
    from slimcore.recipe import Recipe
    from slimui.export import export_panel

    export_panel("minilm", Recipe("minilm", prune=slimcore.PruneConfig(0.5, structured=True, unit="heads", norm=2)))


@pytest.mark.slow
def test_export_panel_works_on_minilm():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_minilm_panel_script, default_timeout=120).run()
    assert not at.exception, at.exception
    assert len(at.get("download_button")) == 1
    captions = " ".join(c.value for c in at.caption)
    assert "prune l1 50% of attention heads per layer" in captions and "state dict, TorchScript, ONNX" in captions
    assert "unit: heads" in at.code[-1].value


def test_an_onnx_export_leaves_other_threads_forward_passes_alone(samples, tmp_path):
    """A visitor's export runs beside other visitors' pages: torch.export's non-strict mode patches module calls for
    the whole process (another thread's forward pass failed with "Unexpected key _export_root..." within five
    exports here); write_onnx traces in strict mode, or holds the pages back."""
    import threading

    cnn, mlp = samples["digits-cnn"], samples["mnist1d-mlp"]
    errors, stop = [], threading.Event()

    def pages():
        while not stop.is_set():
            try:
                with torch.no_grad():
                    mlp.model(mlp.test.x[:8])
                    cnn.model(cnn.test.x[:8])
            except Exception as e:  # noqa: BLE001 - any failure is the finding
                errors.append(repr(e))

    other = threading.Thread(target=pages)
    other.start()
    try:
        for i in range(5):
            E.write_onnx(cnn.model, cnn.test.x[:2], tmp_path / f"{i}.onnx")
    finally:
        stop.set()
        other.join()
    assert errors == []
