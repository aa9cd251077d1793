"""AppTest of the Pruning page on every family: the slider drives every figure, numbers equal slimcore's (a
classifier's accuracy; the encoder's cosine to the original), structured pruning shows a thin model, bad settings and
links give messages, teacher mode hides the extras."""
import pytest
import torch

import slimcore
from slimcore import pruning as P
from slimcore import text as T
from slimcore import text_prune as TP
from slimcore.families import get
from slimcore.families.encoder import cosine_scorer
from slimui.pruning import size
from tests.apptest_utils import app, array, figures, metrics, run_for_model, run_page
from tests.conftest import load_text

PAGE = "views/1_Pruning.py"


@pytest.fixture
def page():
    return run_page(PAGE)


def _expected(name, cfg):
    s = slimcore.load_sample(name)
    return P.evaluate(s.model, cfg, s.test, calibration=s.data.train.head(256))[0]


def test_page_shows_the_default_configuration(page):
    want = _expected(slimcore.DEFAULT_SAMPLE, P.PruneConfig(0.5))
    shown = metrics(page)
    assert shown["Test accuracy"] == f"{want.score.value:.2%}"
    assert shown["Non-zero parameters"] == f"{want.nonzeros:,}"
    assert shown["Dense size (measured)"] == f"{want.size_bytes / 1024:,.1f} KiB"
    assert shown["Sparse size (modelled)"] == f"{want.sparse.bytes / 1024:,.1f} KiB"
    assert shown["Thin model (measured)"] == f"{want.thin.size_bytes / 1024:,.1f} KiB"
    assert set(figures(page)) == {"prune_hist", "prune_mask", "prune_layers", "prune_curve"}
    table = page.dataframe[0].value
    assert list(table["model"].str.split(" ").str[0]) == ["original", "masked", "output"]
    assert list(table["accuracy"]) == [f"{_expected(slimcore.DEFAULT_SAMPLE, P.PruneConfig(0.0)).score.value:.2%}",
                                       f"{want.score.value:.2%}", f"{want.thin.score.value:.2%}"]
    assert (table["b=256, ms"] > 0).all()
    assert not page.error
    assert all("noisy" in w.value for w in page.warning), "only a busy CPU may raise a warning here"


def test_moving_prune_ratio_changes_sparsity_accuracy_and_plots(page):
    before, figs = metrics(page), figures(page)
    page.slider(key="prune_ratio").set_value(0.9).run()
    assert not page.exception
    after, figs2 = metrics(page), figures(page)
    want = _expected(slimcore.DEFAULT_SAMPLE, P.PruneConfig(0.9))
    assert after["Non-zero parameters"] == f"{want.nonzeros:,}" != before["Non-zero parameters"]
    assert after["Test accuracy"] == f"{want.score.value:.2%}" != before["Test accuracy"]
    assert array(figs2["prune_mask"]["data"][0]["z"]).mean() < array(figs["prune_mask"]["data"][0]["z"]).mean()
    bars = array(figs2["prune_layers"]["data"][0]["y"])
    assert bars == pytest.approx([90.0] * len(bars), abs=0.05)  # per layer: every layer loses 90 %
    current = figs2["prune_curve"]["data"][-1]
    assert array(current["x"])[0] == 0.9 and array(current["y"])[0] == pytest.approx(want.score.value * 100)


def test_global_scope_prunes_layers_unevenly(page):
    page.radio(key="prune_scope").set_value("global").run()
    bars = array(figures(page)["prune_layers"]["data"][0]["y"])
    assert bars.max() - bars.min() > 10
    want = _expected(slimcore.DEFAULT_SAMPLE, P.PruneConfig(0.5, scope="global"))
    assert list(bars) == pytest.approx([v * 100 for v in want.layer_sparsity.values()])


def test_histogram_draws_the_magnitude_cut_of_the_chosen_layer(page):
    page.selectbox(key="prune_layer").set_value("fc1").run()
    hist = figures(page)["prune_hist"]
    s = slimcore.load_sample(slimcore.DEFAULT_SAMPLE)
    keep = P.masks(s.model, P.PruneConfig(0.5))
    cut = P.threshold(s.model, keep, "fc1")
    assert sorted(shape["x0"] for shape in hist["layout"]["shapes"]) == pytest.approx([-cut, cut])
    assert array(hist["data"][0]["y"]).sum() == s.model.fc1.weight.numel()
    assert array(hist["data"][1]["y"]).sum() == int(keep["fc1"].sum())


@pytest.mark.parametrize("method", ["random", "taylor"])
def test_other_methods_render(page, method):
    page.selectbox(key="prune_method").set_value(method).run()
    assert not page.exception and not page.error
    assert not figures(page)["prune_hist"]["layout"].get("shapes"), "a magnitude cut only means something for L1"
    want = _expected(slimcore.DEFAULT_SAMPLE, P.PruneConfig(0.5, method))
    assert metrics(page)["Test accuracy"] == f"{want.score.value:.2%}"


def test_structured_removes_channels_and_an_emptying_ratio_warns(page):
    page.toggle(key="prune_structured").set_value(True).run()
    assert not page.exception
    mask = array(figures(page)["prune_mask"]["data"][0]["z"])
    rows = mask.reshape(20, 3, -1)  # conv1: 20 filters of 3 x 3, tiled
    assert (rows.min(axis=(1, 2)) == rows.max(axis=(1, 2))).all(), "whole filters kept or removed"
    page.slider(key="prune_ratio").set_value(0.99).run()
    assert not page.exception and not page.error
    warnings = " ".join(w.value for w in page.warning)
    assert "every weight of conv1" in warnings and "No channel-pruned model" in warnings
    assert list(page.dataframe[0].value["model"].str.split(" ").str[0]) == ["original", "masked"]  # none to time


def test_fine_tuning_adds_a_curve_and_a_step_table(page):
    page.number_input(key="prune_steps").set_value(2)
    page.number_input(key="prune_epochs").set_value(1)
    page.slider(key="prune_ratio").set_value(0.8).run()
    page.button(key="prune_finetune").click().run()
    assert not page.exception and not page.error
    curve = figures(page)["prune_curve"]["data"]
    assert [t["name"] for t in curve] == ["one-shot", "gradual + fine-tuned", "current setting"]
    steps = page.dataframe[1].value
    assert list(steps["step"]) == [1, 2] and steps["prune ratio"].iloc[-1] == 0.8
    assert "fine-tuning" in page.success[0].value
    page.slider(key="prune_ratio").set_value(0.6).run()  # the run stays visible at other ratios
    assert "gradual + fine-tuned" in [t["name"] for t in figures(page)["prune_curve"]["data"]]


@pytest.mark.parametrize("name", slimcore.list_samples("classifier"))
def test_every_sample_model_renders(name):
    at = run_for_model(PAGE, name)
    want = _expected(name, P.PruneConfig(0.5))
    assert metrics(at)["Test accuracy"] == f"{want.score.value:.2%}"


def test_sessions_do_not_share_settings_or_change_the_cached_model():
    from slimui import cache

    a, b = app(PAGE).run(), app(PAGE).run()
    s = cache.sample(slimcore.DEFAULT_SAMPLE)  # the very model object the pages share
    before = {k: v.clone() for k, v in s.model.state_dict().items()}
    a.button(key="prune_finetune").click().run()  # fine-tuning trains a copy, never the shared model
    a.slider(key="prune_ratio").set_value(0.95).run()
    b.run()
    assert metrics(b)["Non-zero parameters"] == f"{_expected(s.name, P.PruneConfig(0.5)).nonzeros:,}"
    assert all((before[k] == v).all() for k, v in s.model.state_dict().items())


def test_time_again_retimes_the_models(page):
    before = page.dataframe[0].value["b=256, ms"].tolist()
    page.button(key="prune_retime").click().run()
    assert not page.exception
    assert page.dataframe[0].value["b=256, ms"].tolist() != before  # a cached table would be identical


# ---------------------------------------------------------------------------------- the sentence encoder (minilm)

ENC = get("encoder")


@pytest.fixture(scope="module")
def s() -> T.TextSample:
    return load_text()


@pytest.fixture(scope="module")
def ref(s) -> torch.Tensor:
    return T.embed(s.model, s.data.quick_set)


def _expected_text(s, ref, cfg) -> P.PruneReport:
    return P.evaluate(s.model, cfg, cosine_scorer(s.data.quick_set, ref), family=ENC)[0]


@pytest.fixture(scope="module")
def at():
    return run_for_model(PAGE, "minilm")


def test_encoder_default_view_shows_measured_figures_of_30_percent_unstructured(at, s, ref):
    want = _expected_text(s, ref, TP.config(0.3))
    m = metrics(at)
    assert at.title[0].value == "Pruning lab"
    assert m["Mean cosine to the original"] == f"{want.score.value:.4f}" == m["Mean cosine to original"]
    assert m["Pair-rank Spearman"] == f"{want.score.detail.spearman:.4f}"
    assert m["Non-zero parameters"] == f"{want.nonzeros:,}"
    assert m["Dense size (measured)"] == f"{want.size_bytes / 2**20:,.2f} MiB" == size(want.size_bytes)
    assert m["Sparse size (modelled)"] == f"{want.sparse.bytes / 2**20:,.2f} MiB"
    assert "Thin model (measured)" not in m   # single weights: nothing removed for real
    figs = figures(at)
    assert set(figs) == {"prune_layers", "prune_curve", "prune_hist", "prune_mask"}
    layers = ENC.layers(s.model)
    bars = array(figs["prune_layers"]["data"][0]["y"])
    assert len(bars) == len(layers) and bars == pytest.approx([30.0] * len(layers), abs=0.01)
    curve = figs["prune_curve"]
    assert list(array(curve["data"][0]["x"])) == pytest.approx([0.0, 0.25, 0.5, 0.75, 0.9])
    cos = array(curve["data"][0]["y"])
    assert cos[0] == pytest.approx(1.0) and cos[-1] < cos[1] < 1
    assert curve["layout"]["shapes"][0]["x0"] == 0.3                       # the current ratio marked
    hist = figs["prune_hist"]                                               # the default layer, its magnitude cut
    cut = want.thresholds["encoder.layer.0.intermediate.dense"]
    n = layers["encoder.layer.0.intermediate.dense"].weight.numel()
    assert sorted(sh["x0"] for sh in hist["layout"]["shapes"]) == pytest.approx([-cut, cut])
    assert array(hist["data"][0]["y"]).sum() == n and array(hist["data"][1]["y"]).sum() == n - round(0.3 * n)
    table = at.dataframe[0].value
    assert list(table["model"].str.split(" ").str[0]) == ["original", "masked"]
    assert (table["b=32, ms"] > 0).all() and (table["b=1, ms"] > 0).all()
    assert any("no real speed-up" in md.value for md in at.markdown)
    assert not at.error and all("noisy" in w.value for w in at.warning)
    keys = {b.key for b in at.button}
    assert {"prune_finetune", "text_prune_full_button"} <= keys   # fine-tuning waits for its button on every family
    assert at.number_input(key="prune_steps").value == 4 and at.number_input(key="prune_epochs").value == 2


def test_encoder_slider_and_ffn_remove_neurons_for_real(at, s, ref):
    before = metrics(at)
    at.slider(key="prune_ratio").set_value(0.5)
    at.radio(key="prune_kind").set_value("ffn").run()
    assert not at.exception and not at.error
    want = _expected_text(s, ref, TP.config(0.5, "ffn"))
    neurons = s.model.shape()["ffn"][0]
    m = metrics(at)
    assert m["Mean cosine to original"] == f"{want.score.value:.4f}" != before["Mean cosine to original"]
    assert m["Thin model (measured)"] == f"{want.thin.size_bytes / 2**20:,.2f} MiB"
    assert m["Kept per layer"] == f"{neurons // 2} of {neurons} FFN neurons"
    thin = at.dataframe[0].value.iloc[-1]
    assert thin["model"].startswith("FFN neurons removed")
    assert thin["parameters"] == TP.thin_parameters({"heads": s.model.shape()["heads"], "ffn": [neurons // 2] * 6})
    figs = figures(at)
    assert list(array(figs["prune_layers"]["data"][0]["y"])) == [neurons // 2] * 6
    kept = array(figs["prune_mask"]["data"][0]["z"]).reshape(6, neurons)   # the map of the neurons kept
    assert (kept.sum(1) == neurons // 2).all() and "FFN neurons kept" in figs["prune_mask"]["layout"]["title"]["text"]
    hist = figs["prune_hist"]          # FFN in of layer 0: half its rows gone, no magnitude cut drawn
    assert not hist["layout"].get("shapes") and array(hist["data"][1]["y"]).sum() == neurons // 2 * 384
    assert any("really smaller" in md.value for md in at.markdown)


def test_encoder_heads_at_95_percent_keep_one_head_and_the_layer_choice_follows(at, s, ref):
    at.radio(key="prune_kind").set_value("heads")
    at.slider(key="prune_ratio").set_value(0.95)
    at.selectbox(key="prune_layer").set_value("encoder.layer.2.attention.output.dense").run()
    assert not at.exception and not at.error
    heads = s.model.shape()["heads"][0]
    assert metrics(at)["Kept per layer"] == f"1 of {heads} attention heads"
    assert list(array(figures(at)["prune_layers"]["data"][0]["y"])) == [heads - 1] * 6
    hist = figures(at)["prune_hist"]
    assert "encoder.layer.2.attention.output.dense" in hist["layout"]["title"]["text"]
    assert array(hist["data"][1]["y"]).sum() == 384 * T.HEAD_DIM            # one head's columns left


def test_encoder_takes_every_method_and_scope_and_exports_its_recipe(at, s, ref):
    at.radio(key="prune_kind").set_value("heads")
    at.slider(key="prune_ratio").set_value(0.5)
    at.selectbox(key="prune_method").set_value("taylor")
    at.radio(key="prune_scope").set_value("global").run()
    assert not at.exception and not at.error
    cfg = P.PruneConfig(0.5, "taylor", "global", True, 2, unit="heads")
    want = P.evaluate(s.model, cfg, cosine_scorer(s.data.quick_set, ref), family=ENC,
                      calibration=ENC.split(s, "calibration").head(P.CALIBRATION))[0]
    assert metrics(at)["Mean cosine to original"] == f"{want.score.value:.4f}"
    kept = list(array(figures(at)["prune_layers"]["data"][0]["y"]))      # heads removed per layer: one ranking
    assert sum(kept) == round(0.5 * 6 * s.model.shape()["heads"][0]) and len(set(kept)) > 1
    assert "Taylor" in figures(at)["prune_curve"]["layout"]["title"]["text"]
    yaml = next(c.value for c in at.code if "model: minilm" in c.value)   # the Export section's recipe
    assert "method: taylor" in yaml and "scope: global" in yaml and "unit: heads" in yaml
    at.selectbox(key="prune_method").set_value("l1")
    at.radio(key="prune_scope").set_value("layer").run()


def test_encoder_whole_test_split_button_measures_the_current_setting(at, s):
    at.radio(key="prune_kind").set_value("ffn")
    at.slider(key="prune_ratio").set_value(0.5).run()
    assert "Mean cosine to original" in metrics(at)
    before = len(at.metric)
    at.button(key="text_prune_full_button").click().run()
    assert not at.exception and not at.error
    full = T.evaluate(TP.prune_text(s.model, TP.config(0.5, "ffn")), s.test, T.embed(s.model, s.test))
    cosines = [m.value for m in at.metric if m.label == "Mean cosine to original"]
    assert len(at.metric) == before + 5 and len(cosines) == 2
    assert abs(float(cosines[1]) - full.mean_cosine) <= 1e-4
    assert any(f"{len(s.test)} held-out sentences (the whole test split" in md.value for md in at.markdown)


def test_encoder_bad_link_is_ignored_with_a_message_and_teacher_mode_hides_the_extras():
    page = app(PAGE, timeout=300)
    page.session_state["model_name"] = "minilm"
    page.session_state["teacher"] = True
    page.query_params["prune_ratio"] = "1.5"
    page.query_params["prune_kind"] = "heads"
    page.run()
    assert not page.exception and not page.error
    assert any("prune_ratio=1.5" in i.value for i in page.info)
    assert page.slider(key="prune_ratio").value == 0.3 and page.radio(key="prune_kind").value == "heads"
    keys = {w.key for w in page.selectbox} | {b.key for b in page.button}
    assert "prune_layer" not in keys and "prune_retime" not in keys
    assert "text_prune_full_button" in keys
    hist = figures(page)["prune_hist"]["layout"]["title"]["text"]   # a layer that removing heads changes
    assert hist.startswith("encoder.layer.0.attention.output.dense")


@pytest.mark.slow
def test_encoder_fine_tuning_adds_its_run_in_mean_cosine():
    at = run_for_model(PAGE, "minilm")
    at.number_input(key="prune_steps").set_value(1)
    at.number_input(key="prune_epochs").set_value(1)
    at.slider(key="prune_ratio").set_value(0.5).run()
    at.button(key="prune_finetune").click().run()
    assert not at.exception and not at.error
    curve = figures(at)["prune_curve"]["data"]
    tuned = next(t for t in curve if t["name"].startswith("gradual + fine-tuned"))
    steps = at.dataframe[1].value
    assert list(steps["step"]) == [1] and steps["prune ratio"].iloc[-1] == 0.5
    assert list(array(tuned["y"])) == pytest.approx(list(steps["after fine-tuning"]), abs=1e-4)
    assert steps["after fine-tuning"].iloc[-1] > steps["mean cosine right after pruning"].iloc[-1]
    assert "mean cosine" in at.success[0].value
