"""Recipes: YAML and JSON round trips, strict loading with one-line messages that name the field, and `apply`, whose
figures are the ones the labs compute for the same configuration (the page glue is called here, outside a page)."""
import copy
import dataclasses
import importlib

import pytest
import torch
import yaml

import slimcore
from slimcore import ActivationConfig, PruneConfig, QuantConfig
from slimcore import recipe as R
from slimcore.recipe import Int8Config, Recipe
from tests.conftest import ROOT

S = importlib.import_module("slimcore.sweep")  # the module: `slimcore.sweep` may be the exported function

RECIPES = [
    Recipe("digits-cnn"),
    Recipe("digits-cnn", prune=PruneConfig(0.5)),
    Recipe("digits-mlp", prune=PruneConfig(0.3, "taylor", "global", structured=True, norm=2, skip=("fc1",),
                                           overrides=(("fc2", 0.1),), seed=3)),
    Recipe("digits-cnn", quant=QuantConfig(4, symmetric=False, per_channel=True, rounding="stochastic", seed=2,
                                           skip=("fc2",), activations=ActivationConfig(6, "percentile", 99.9))),
    Recipe("mnist1d-cnn", prune=PruneConfig(0.7, "random"), quant=QuantConfig(1)),
    Recipe("mnist1d-mlp", prune=PruneConfig(0.25, structured=True), int8=Int8Config("dynamic", 64)),
]


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: "+".join(r.steps) or "none")
@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".json"])
def test_round_trip_through_a_file(recipe, suffix, tmp_path):
    path = R.dump(recipe, tmp_path / f"r{suffix}")
    assert R.load(path) == recipe
    assert Recipe.from_dict(recipe.to_dict()) == recipe
    assert Recipe.from_json(recipe.to_json()) == recipe


def test_yaml_is_plain_data_a_person_can_read(tmp_path):
    path = R.dump(RECIPES[2], tmp_path / "r.yaml")
    data = yaml.safe_load(path.read_text())
    assert data["version"] == R.FORMAT and data["model"] == "digits-mlp"
    assert data["prune"]["overrides"] == {"fc2": 0.1} and data["prune"]["skip"] == ["fc1"]
    assert data["quant"] is None and data["int8"] is None
    assert "!!" not in path.read_text()   # no Python tags: safe_load reads it


def test_sections_left_out_take_their_defaults():
    r = R.loads("version: 1\nmodel: digits-cnn\nprune: {amount: 0.4}\nint8: {}\n")
    assert r == Recipe("digits-cnn", prune=PruneConfig(0.4), int8=Int8Config())


BAD = [  # recipe text -> the start of the message after the file name
    ("version: 1\nmodel: digits-cnn\nprune: {amount: 1.5}\n", "prune.amount: prune ratio must be in [0, 1), got 1.5"),
    ("version: 1\nmodel: digits-cnn\nquant: {bits: 0}\n", "quant.bits: bits must be a whole number from 1 to 16"),
    ("version: 1\nmodel: digits-cnn\nquant: {bits: 4.0}\n", "quant.bits: expected a whole number, got 4.0"),
    ("version: 1\nmodel: digits-cnn\nquant: {bits: true}\n", "quant.bits: expected a whole number, got true"),
    ("version: 1\nmodel: digits-cnn\nprune: {amount: half}\n", "prune.amount: expected a number, got 'half' (text)"),
    ("version: 1\nmodel: digits-cnn\nprune: {amount: .nan}\n", "prune.amount: expected a finite number"),
    ("version: 1\nmodel: digits-cnn\nprune: {structured: 1}\n", "prune.structured: expected true or false, got 1"),
    ("version: 1\nmodel: digits-cnn\nprune: {method: l3}\n", "prune.method: unknown pruning method 'l3'"),
    ("version: 1\nmodel: digits-cnn\nprune: {amout: 0.5}\n", "prune.amout: unknown setting; prune has amount,"),
    ("version: 1\nmodel: digits-cnn\nprun: {amount: 0.5}\n", "prun: unknown setting; a recipe has model,"),
    ("version: 1\nmodel: digits-cnn\nprune: 0.5\n", "prune: expected a mapping of settings (or null), got 0.5"),
    ("version: 1\nmodel: digits-cnn\nprune: {skip: fc1}\n", "prune.skip: expected a list of layer names"),
    ("version: 1\nmodel: digits-cnn\nprune: {overrides: {fc1: 1.2}}\n", "prune.overrides: prune ratio for fc1"),
    ("version: 1\nmodel: digits-cnn\nprune: {overrides: [fc1]}\n", "prune.overrides: expected a mapping of layer"),
    ("version: 1\nmodel: digits-cnn\nquant: {activations: {bits: 40}}\n", "quant.activations.bits: activation bits"),
    ("version: 1\nmodel: digits-cnn\nquant: {activations: {bitz: 4}}\n", "quant.activations.bitz: unknown setting"),
    ("version: 1\nmodel: digits-cnn\nint8: {kind: fast}\n", "int8.kind: int8 kind must be one of auto, dynamic"),
    ("version: 1\nmodel: digits-cnn\nint8: {engine: tensorrt}\n",
     "int8.engine: int8 engine must be one of torch, onnxruntime"),
    ("version: 1\nmodel: digits-cnn\nint8: {calibration: 0}\n", "int8.calibration: calibration must be a whole"),
    ("version: 1\nmodel: digits-cnn\nquant: {bits: 4}\nint8: {}\n", "quant, int8: choose one"),
    ("model: digits-cnn\n", "version: missing"),
    ("version: 2\nmodel: digits-cnn\n", "version: this is recipe format 2; this slimcore reads format 1"),
    ("version: 1\n", "model: missing"),
    ("version: 1\nmodel: 7\n", "model: expected text, got 7"),
    ("- prune\n- quant\n", "a recipe is a mapping of settings"),
    ("version: 1\nmodel: [digits-cnn\n", "not valid YAML (line"),
    ("!!python/object/apply:os.system ['echo hacked']\n", "not valid YAML"),   # safe_load: no Python objects
]


@pytest.mark.parametrize("text, message", BAD, ids=[m.split(":")[0] + f"-{i}" for i, (_, m) in enumerate(BAD)])
def test_bad_recipes_are_rejected_with_one_line_naming_the_field(text, message, tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(text)
    with pytest.raises(ValueError) as e:
        R.load(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}: {message}"), msg
    assert "\n" not in msg


def test_bad_json_files_and_suffixes(tmp_path):
    (tmp_path / "r.json").write_text('{"version": 1, "model": "digits-cnn",}')
    with pytest.raises(ValueError, match=r"r\.json: not valid JSON \(line 1"):
        R.load(tmp_path / "r.json")
    (tmp_path / "r.json").write_text('{"version": 1, "model": "digits-cnn", "quant": {"bits": 17}}')
    with pytest.raises(ValueError, match=r"quant\.bits: bits must be a whole number from 1 to 16, got 17"):
        R.load(tmp_path / "r.json")
    with pytest.raises(ValueError, match=r"a recipe file ends in \.yaml, \.yml, \.json; got '\.txt'"):
        R.dump(Recipe("digits-cnn"), tmp_path / "r.txt")
    with pytest.raises(ValueError, match="no such recipe file"):
        R.load(tmp_path / "missing.yaml")


def test_a_recipe_built_in_code_is_checked_too():
    with pytest.raises(ValueError, match="quant, int8: choose one"):
        Recipe("digits-cnn", quant=QuantConfig(8), int8=Int8Config())
    with pytest.raises(ValueError, match="prune: expected a PruneConfig"):
        Recipe("digits-cnn", prune={"amount": 0.5})
    assert hash(RECIPES[3]) == hash(copy.deepcopy(RECIPES[3]))   # plain, hashable data: a cache key


# apply ---------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cnn():
    return slimcore.load_sample("digits-cnn")


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("recipe", [Recipe("digits-cnn"), Recipe("digits-cnn", PruneConfig(0.5)),
                                    Recipe("digits-cnn", PruneConfig(0.5, structured=True), QuantConfig(4)),
                                    Recipe("digits-cnn", int8=Int8Config())], ids=lambda r: "+".join(r.steps) or "none")
def test_apply_never_changes_the_model_it_is_given(cnn, recipe):
    before = _state(cnn.model)
    applied = R.apply(cnn, recipe, timing=False)
    assert applied.model is not cnn.model
    after = cnn.model.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())
    assert applied.figures.base_accuracy == slimcore.accuracy(cnn.model, cnn.test)


@pytest.mark.parametrize("cfg", [PruneConfig(0.5), PruneConfig(0.7, "taylor", "global"),
                                 PruneConfig(0.5, structured=True), PruneConfig(0.3, "l1", "global", True, norm=2)],
                         ids=str)
def test_pruned_figures_are_the_pruning_labs(cnn, cfg):
    from slimui import pruning as page

    report, dense, small = page.result("digits-cnn", cfg)       # what the Pruning page shows
    f = R.apply(cnn, Recipe("digits-cnn", prune=cfg), timing=False).figures
    assert f.accuracy == report.score.value
    if cfg.structured:
        assert (f.kind, f.size_bytes, f.params, f.modelled_bytes) == ("channel-pruned", report.thin.size_bytes,
                                                                      report.thin.params, None)
        assert f.accuracy == report.thin.score.value
    else:
        assert (f.kind, f.size_bytes, f.nonzeros) == ("masked", report.size_bytes, report.nonzeros)
        assert f.modelled_bytes == report.sparse.bytes and f.modelled_detail == report.sparse.detail


@pytest.mark.parametrize("cfg", [QuantConfig(8), QuantConfig(3, symmetric=False, per_channel=True),
                                 QuantConfig(1), QuantConfig(4, ternary=True),
                                 QuantConfig(4, activations=ActivationConfig(6, "percentile", 99.9))], ids=str)
def test_quantized_figures_are_the_quantization_labs(cnn, cfg):
    from slimui import quant as page

    shown = page.variant("digits-cnn", page.key(cfg))           # what the Quantization page shows
    f = R.apply(cnn, Recipe("digits-cnn", quant=cfg), timing=False).figures
    assert f.kind == "fake-quantized"
    assert f.accuracy == shown["score"].value
    assert f.modelled_bytes == shown["size"].bytes
    assert f.size_bytes == slimcore.serialized_bytes(cnn.model)   # measured: fp32 numbers, an fp32-sized file


@pytest.mark.parametrize("label", ["int8 (torch.ao)", "int8 (ONNX Runtime)"])
def test_int8_figures_are_the_quantization_labs(cnn, label):
    """The recipe the page's Export offers for each real int8 row (Int8Config.from_variant) gives the row's figures;
    a recipe without an engine is torch.ao's, as it was before engines could be chosen."""
    from slimcore import int8 as I8
    from slimui import quant as page

    shown = page.int8_figures("digits-cnn", label)
    config = Int8Config.from_variant(I8.variants(cnn)[label])
    f = R.apply(cnn, Recipe("digits-cnn", int8=config), timing=False).figures
    assert (f.kind, f.accuracy, f.size_bytes) == ("int8", shown["score"].value, shown["size_bytes"])
    assert any(shown["notes"] in n for n in f.notes)
    assert (R.loads(R.dumps(Recipe("digits-cnn", int8=config))).int8.engine == config.engine
            == ("torch" if "torch" in label else "onnxruntime"))
    assert R.loads("version: 1\nmodel: digits-cnn\nint8: {}\n").int8.engine == "torch"


@pytest.mark.parametrize("structured", [False, True])
@pytest.mark.parametrize("bits", [8, 3])
def test_pruned_and_quantized_figures_are_the_sweeps(cnn, structured, bits):
    row = S.sweep(cnn.model, cnn.data, (0.5,), (bits,), ("l1",), (structured,)).iloc[0]
    f = R.apply(cnn, Recipe("digits-cnn", PruneConfig(0.5, structured=structured), QuantConfig(bits)),
                timing=False).figures
    assert f.accuracy == row.score
    assert f.modelled_bytes == row.size_bytes and row.size_label == "modelled"


def test_timing_measures_both_models_side_by_side(cnn):
    f = R.apply(cnn, Recipe("digits-cnn", PruneConfig(0.5, structured=True)), max_seconds=0.2).figures
    assert (f.latency_b1.batch, f.latency_batch.batch, f.base_latency_batch.batch) == (1, 256, 256)
    assert f.latency_batch.median_ms > 0 and f.latency_batch.threads == torch.get_num_threads()
    d = f.to_dict()
    assert d["latency_b256"]["median_ms"] == f.latency_batch.median_ms and d["labels"]["size_bytes"].startswith("meas")
    assert (d["metric"], d["accuracy"], d["base_accuracy"]) == ("test accuracy", f.score, f.base_score)


def test_a_channel_prune_that_empties_a_layer_says_so(cnn):
    with pytest.raises(ValueError, match="prune: no channel-pruned model"):
        R.apply(cnn, Recipe("digits-cnn", PruneConfig(0.9, scope="global", structured=True,
                                                     overrides=(("conv1", 0.999),))), timing=False)


@pytest.mark.parametrize("per_channel", [False, True])
def test_a_sweep_rows_recipe_gives_the_rows_figures(per_channel):
    s = slimcore.load_sample("mnist1d-cnn")
    frame = S.sweep(s.model, s.data, (0.0, 0.3, 0.6), (32, 8, 3), ("l1", "taylor"), (False, True), "global",
                    QuantConfig(per_channel=per_channel))
    for row in frame.dropna(subset=["score"]).itertuples():
        recipe = Recipe.from_sweep_row("mnist1d-cnn", row._asdict(), per_channel)
        f = R.apply(s, recipe, timing=False).figures
        assert f.accuracy == row.score, row.config
        if row.size_label == "measured":
            assert f.size_bytes == row.size_bytes, row.config
        elif row.prune_ratio > 0:
            assert f.modelled_bytes == row.size_bytes, row.config
        else:   # unpruned k-bit: the Quantization lab's dense figure (the sweep takes the smallest storage format)
            assert f.modelled_bytes == slimcore.quantization.modelled_bytes(s.model, recipe.quant).bytes


@pytest.mark.parametrize("path", [pytest.param(p, marks=[pytest.mark.slow] if p.name.startswith("minilm") else [])
                                  for p in sorted((ROOT / "recipes").glob("*.yaml"))], ids=lambda p: p.name)
def test_shipped_example_recipes_load_and_apply(path):
    r = R.load(path)
    assert r.model in slimcore.list_samples() and r.steps
    s = slimcore.load_sample(r.model)
    f = R.apply(s, r, timing=False).figures
    assert f.accuracy > f.base_accuracy - 0.05   # examples worth copying: within 5 points of the original


def test_a_sweep_row_of_the_encoders_grid_gives_its_recipe():
    """Rows of slimcore.tradeoffs' family-generic grid: the row's unit and precision, as the grid builds them."""
    row = {"prune_ratio": 0.5, "bits": 8, "method": "l1", "scope": "layer", "structured": True, "prune": "heads",
           "precision": "int8+emb"}
    r = Recipe.from_sweep_row("minilm", row)
    assert r.prune == PruneConfig(0.5, structured=True, unit="heads", norm=2)
    assert r.int8 == Int8Config("dynamic", per_channel=True, embeddings=True) and r.quant is None
    r = Recipe.from_sweep_row("minilm", row | {"structured": False, "prune": "unstructured", "precision": "4-bit",
                                               "bits": 4}, per_channel=True)
    assert r.prune == PruneConfig(0.5) and r.quant == QuantConfig(4, per_channel=True) and r.int8 is None
    assert Recipe.from_sweep_row("digits-cnn", row | {"prune": "channels", "precision": "fp32", "bits": 32}).prune == \
        PruneConfig(0.5, structured=True)


@pytest.mark.parametrize("label, variant", [(k, v) for fam in ("classifier", "encoder")
                                            for k, v in slimcore.int8.VARIANTS[fam].items()])
def test_every_int8_variant_of_the_labs_is_a_recipe_step(label, variant):
    cfg = Int8Config.from_variant(variant)
    assert cfg.variant == variant
    assert R.loads(R.dumps(Recipe("minilm", int8=cfg))).int8 == cfg


@pytest.mark.parametrize("body, message", [
    ("int8: {per_channel: 1}", "int8.per_channel: expected true or false, got 1 (a number)"),
    ("int8: {embeddings: yes please}", "int8.embeddings: expected true or false"),
    ("prune: {amount: 0.5, structured: true, unit: 7}", "prune.unit: expected text, got 7 (a number)")])
def test_encoder_settings_are_checked_strictly(body, message):
    with pytest.raises(ValueError) as e:
        R.loads(f"version: 1\nmodel: minilm\n{body}\n")
    assert message in str(e.value) and "\n" not in str(e.value)


def test_static_int8_is_calibrated_on_the_builders_inputs(cnn):
    with pytest.raises(ValueError, match="int8.calibration: static int8 is calibrated on 512 inputs"):
        R.apply(cnn, Recipe("digits-cnn", int8=Int8Config("static", 64)), timing=False)


@pytest.mark.slow
def test_apply_on_minilm_goes_through_the_family_api():
    s = slimcore.load_sample("minilm")
    before = {k: v.clone() for k, v in s.model.state_dict().items()}
    cfg = PruneConfig(0.3)
    f = R.apply(s, Recipe("minilm", prune=cfg, quant=QuantConfig(4, per_channel=True)), timing=False).figures
    want = slimcore.score(s, slimcore.quantize(dataclasses.replace(s, model=slimcore.prune(s, cfg)),
                                               QuantConfig(4, per_channel=True)))
    assert (f.kind, f.metric, f.score, f.examples) == ("fake-quantized", want.metric, want.value, want.examples)
    assert f.detail["paraphrase_top1"] == want.detail.paraphrase_top1 and f.base_score == pytest.approx(1, abs=1e-6)
    assert f.modelled_bytes < f.size_bytes == slimcore.serialized_bytes(s.model)   # fp32-sized file, k-bit modelled
    assert "accuracy" not in f.to_dict() and f.to_dict()["metric"] == "mean cosine to the original"
    assert all(torch.equal(v, s.model.state_dict()[k]) for k, v in before.items())
