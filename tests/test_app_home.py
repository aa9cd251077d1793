"""AppTest of the home page: figures are the measured ones, switching model changes them, sessions stay apart."""
import pytest
import torch

import slimcore
from tests.apptest_utils import app, array, figures, metrics


@pytest.fixture
def home():
    at = app().run()
    assert not at.exception, at.exception
    return at


def test_home_shows_default_model_and_measured_figures(home):
    s = slimcore.load_sample(slimcore.DEFAULT_SAMPLE)
    shown = metrics(home)
    assert shown["Test accuracy"] == f"{slimcore.accuracy(s.model, s.test):.2%}"
    assert shown["Parameters"] == f"{sum(p.numel() for p in s.model.parameters()):,}"
    assert shown["Size (measured)"] == f"{slimcore.serialized_bytes(s.model) / 1024:,.1f} KiB"
    assert shown["Latency (measured)"].endswith(" ms")
    table = home.dataframe[0].value
    assert list(table["layer"]) == list(slimcore.weight_layers(s.model))   # no tables outside the compressed layers
    assert "home_sim" not in figures(home) and "Paraphrase found (top-1)" not in shown   # the encoder's panel
    assert not home.error


def test_time_again_measures_latency_afresh(home):
    from slimcore import jobs

    key = f"timing|baseline|{slimcore.DEFAULT_SAMPLE}"    # the page's timing job in the worker
    first = jobs.worker().get(key).result
    home.button(key="home_retime").click().run()
    assert not home.exception and not home.error
    again = jobs.worker().get(key).result
    assert again is not first and sorted(again) == [1, 256]   # timed afresh, not the kept result
    assert (again[1].batch, again[256].batch) == (1, 256)
    assert metrics(home)["Latency (measured)"] == f"{again[1].median_ms:.3f} ms"


def test_histogram_is_the_chosen_layer(home):
    s = slimcore.load_sample(slimcore.DEFAULT_SAMPLE)
    for layer in ("conv1", "fc1"):
        home.selectbox(key="home_layer").set_value(layer).run()
        hist = figures(home)["home_hist"]["data"][0]
        assert array(hist["y"]).sum() == slimcore.weight_layers(s.model)[layer].weight.numel()


def test_switching_model_changes_every_figure(home):
    before_metrics, before_figs = metrics(home), figures(home)
    home.sidebar.selectbox(key="model_select").set_value("mnist1d-cnn").run()
    assert not home.exception
    after = metrics(home)
    s = slimcore.load_sample("mnist1d-cnn")
    assert after["Test accuracy"] == f"{s.card['test_accuracy']:.2%}"
    assert after["Parameters"] != before_metrics["Parameters"]
    assert figures(home)["home_examples"] != before_figs["home_examples"]
    assert list(home.dataframe[0].value["layer"]) == ["conv1", "conv2", "conv3", "fc"]


def test_model_choice_comes_from_the_url():
    at = app()
    at.query_params["model"] = "digits-mlp"
    at.run()
    assert metrics(at)["Parameters"] == f"{slimcore.load_sample('digits-mlp').card['parameters']:,}"


def test_sessions_are_isolated_and_cached_model_untouched():
    a, b = app().run(), app().run()
    from slimui import cache
    cached = cache.sample("digits-cnn").model
    before = {k: v.clone() for k, v in cached.state_dict().items()}
    a.sidebar.selectbox(key="model_select").set_value("digits-mlp").run()
    a.selectbox(key="home_layer").set_value("fc2").run()
    b.run()
    assert b.sidebar.selectbox(key="model_select").value == "digits-cnn"
    assert a.sidebar.selectbox(key="model_select").value == "digits-mlp"
    assert metrics(b)["Parameters"] == f"{sum(p.numel() for p in cached.parameters()):,}"
    assert all(torch.equal(before[k], v) for k, v in cached.state_dict().items())


def test_corrupt_weights_show_a_message_not_a_traceback(tmp_path, monkeypatch):
    import shutil

    from slimcore import zoo
    from slimui import cache

    for f in zoo.SAMPLE_DIR.glob("*"):
        if f.is_file():
            shutil.copy(f, tmp_path)
    (tmp_path / "digits-cnn.pt").write_bytes(b"garbage")
    monkeypatch.setattr(zoo, "SAMPLE_DIR", tmp_path)
    cache._sample.clear()
    try:
        at = app().run()
        assert not at.exception
        assert "digits-cnn.pt" in at.error[0].value and "sample_models/train.py" in at.error[0].value
    finally:
        cache._sample.clear()
        cache.baseline.clear()


def test_the_residual_sample_is_offered_and_measured(home):
    """digits-resnet (BatchNorm, residual adds) is in the model list; its figures are its card's and its table lists
    every conv, the 1x1 projection and the classifier."""
    select = home.sidebar.selectbox(key="model_select")
    assert "digits-resnet" in select.options
    select.set_value("digits-resnet").run()
    assert not home.exception and not home.error
    s = slimcore.load_sample("digits-resnet")
    shown = metrics(home)
    assert shown["Test accuracy"] == f"{s.card['test_accuracy']:.2%}"
    assert shown["Parameters"] == f"{s.card['parameters']:,}"
    assert list(home.dataframe[0].value["layer"]) == list(slimcore.weight_layers(s.model))
