"""AppTest of the Pruning page: the slider drives every figure, numbers equal slimcore's, bad settings give messages."""
import pytest

import slimcore
from slimcore import pruning as P
from tests.apptest_utils import app, array, figures, metrics, run_for_model, run_page

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
    assert shown["Test accuracy"] == f"{want.accuracy:.2%}"
    assert shown["Non-zero parameters"] == f"{want.nonzeros:,}"
    assert shown["Dense size (measured)"] == f"{want.dense_bytes / 1024:,.1f} KiB"
    assert shown["Sparse size (modelled)"] == f"{want.sparse.bytes / 1024:,.1f} KiB"
    assert shown["Thin model (measured)"] == f"{want.small_bytes / 1024:,.1f} KiB"
    assert set(figures(page)) == {"prune_hist", "prune_mask", "prune_layers", "prune_curve"}
    table = page.dataframe[0].value
    assert list(table["model"].str.split(" ").str[0]) == ["original", "masked", "channels"]
    assert (table["latency b=256, ms"] > 0).all()
    assert not page.error
    assert all("noisy" in w.value for w in page.warning), "only a busy CPU may raise a warning here"


def test_moving_prune_ratio_changes_sparsity_accuracy_and_plots(page):
    before, figs = metrics(page), figures(page)
    page.slider(key="prune_ratio").set_value(0.9).run()
    assert not page.exception
    after, figs2 = metrics(page), figures(page)
    want = _expected(slimcore.DEFAULT_SAMPLE, P.PruneConfig(0.9))
    assert after["Non-zero parameters"] == f"{want.nonzeros:,}" != before["Non-zero parameters"]
    assert after["Test accuracy"] == f"{want.accuracy:.2%}" != before["Test accuracy"]
    assert array(figs2["prune_mask"]["data"][0]["z"]).mean() < array(figs["prune_mask"]["data"][0]["z"]).mean()
    bars = array(figs2["prune_layers"]["data"][0]["y"])
    assert bars == pytest.approx([90.0] * len(bars), abs=0.05)  # per layer: every layer loses 90 %
    current = figs2["prune_curve"]["data"][-1]
    assert array(current["x"])[0] == 0.9 and array(current["y"])[0] == pytest.approx(want.accuracy * 100)


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
    assert metrics(page)["Test accuracy"] == f"{want.accuracy:.2%}"


def test_structured_removes_channels_and_an_emptying_ratio_warns(page):
    page.toggle(key="prune_structured").set_value(True).run()
    assert not page.exception
    mask = array(figures(page)["prune_mask"]["data"][0]["z"])
    rows = mask.reshape(20, 3, -1)  # conv1: 20 filters of 3 x 3, tiled
    assert ((rows.min(axis=(1, 2)) == rows.max(axis=(1, 2)))).all(), "whole filters kept or removed"
    page.slider(key="prune_ratio").set_value(0.99).run()
    assert not page.exception and not page.error
    warnings = " ".join(w.value for w in page.warning)
    assert "every weight of conv1" in warnings and "No channel-pruned model" in warnings
    assert len(page.dataframe[0].value) == 2  # original and masked: no channel-pruned model to time


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
    assert metrics(at)["Test accuracy"] == f"{want.accuracy:.2%}"


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
    before = page.dataframe[0].value["latency b=256, ms"].tolist()
    page.button(key="prune_retime").click().run()
    assert not page.exception
    assert page.dataframe[0].value["latency b=256, ms"].tolist() != before  # a cached table would be identical
