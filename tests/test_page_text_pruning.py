"""AppTest of the Pruning lab on the text sample (minilm): the numbers it shows are slimcore's, the slider and the kind
drive the figures, structured pruning shows a thin model, bad links give messages, teacher mode hides the extras."""
from __future__ import annotations

import pytest
import torch

import slimcore
from slimcore import text as T
from slimcore import text_prune as TP
from tests.apptest_utils import app, array, figures, metrics, run_for_model

PAGE = "views/1_Pruning.py"


@pytest.fixture(scope="module")
def s() -> T.TextSample:
    return slimcore.load_sample("minilm")


@pytest.fixture(scope="module")
def ref(s) -> torch.Tensor:
    return T.embed(s.model, s.data.quick_set)


def _expected(s, ref, cfg) -> TP.TextPruneReport:
    return TP.evaluate(s.model, cfg, s.data.quick_set, ref)[0]


@pytest.fixture(scope="module")
def at():
    return run_for_model(PAGE, "minilm")


def test_default_view_shows_measured_figures_of_30_percent_unstructured(at, s, ref):
    want = _expected(s, ref, TP.TextPruneConfig(0.3, "unstructured"))
    m = metrics(at)
    assert at.title[0].value == "Pruning lab — minilm (text)"
    assert m["Mean cosine to original"] == f"{want.quality.mean_cosine:.4f}"
    assert m["Spearman of pair similarities"] == f"{want.quality.spearman:.4f}"
    assert m["Non-zero parameters"] == f"{want.nonzeros:,}"
    assert m["Dense size (measured)"] == f"{want.size_bytes / 2**20:,.2f} MiB"
    assert m["Sparse size (modelled)"] == f"{want.sparse.bytes / 2**20:,.2f} MiB"
    figs = figures(at)
    assert set(figs) == {"text_prune_layers", "text_prune_curve", "text_prune_hist", "text_prune_mask"}
    bars = array(figs["text_prune_layers"]["data"][0]["y"])
    assert len(bars) == 36 and bars == pytest.approx([30.0] * 36, abs=0.01)
    curve = figs["text_prune_curve"]
    assert list(array(curve["data"][0]["x"])) == pytest.approx([0.0, 0.25, 0.5, 0.75, 0.9])
    cos = array(curve["data"][0]["y"])
    assert cos[0] == pytest.approx(1.0) and cos[-1] < cos[1] < 1
    assert curve["layout"]["shapes"][0]["x0"] == 0.3                       # the current ratio marked
    hist = figs["text_prune_hist"]                                          # the default layer, its magnitude cut
    cut = want.thresholds["encoder.layer.0.intermediate.dense"]
    assert sorted(sh["x0"] for sh in hist["layout"]["shapes"]) == pytest.approx([-cut, cut])
    assert array(hist["data"][0]["y"]).sum() == 1536 * 384
    assert array(hist["data"][1]["y"]).sum() == 1536 * 384 - round(0.3 * 1536 * 384)
    table = at.dataframe[0].value
    assert list(table["model"]) == ["original", "masked (L1) at 0.30"]
    assert (table["latency b=32, ms"] > 0).all() and (table["latency b=1, ms"] > 0).all()
    assert any("no real speed-up" in md.value for md in at.markdown)
    assert not at.error and all("noisy" in w.value for w in at.warning)


def test_moving_the_slider_and_choosing_ffn_removes_neurons_for_real(at, s, ref):
    before = metrics(at)
    at.slider(key="prune_ratio").set_value(0.5)
    at.radio(key="prune_kind").set_value("ffn").run()
    assert not at.exception and not at.error
    want = _expected(s, ref, TP.TextPruneConfig(0.5, "ffn"))
    m = metrics(at)
    assert m["Mean cosine to original"] == f"{want.quality.mean_cosine:.4f}" != before["Mean cosine to original"]
    assert m["Parameters"] == f"{TP.thin_parameters({'heads': [12] * 6, 'ffn': [768] * 6}):,}"
    assert m["Thin model (measured)"] == f"{want.size_bytes / 2**20:,.2f} MiB"
    assert "Sparse size (modelled)" not in m and m["Kept per layer"] == "768 of 1536 neurons"
    figs = figures(at)
    assert "text_prune_units" in figs and "text_prune_mask" not in figs
    assert list(array(figs["text_prune_layers"]["data"][0]["y"])) == [768] * 6
    kept = array(figs["text_prune_units"]["data"][0]["z"]).reshape(6, 1536)
    assert (kept.sum(1) == 768).all()
    hist = figs["text_prune_hist"]          # FFN in of layer 0: half its rows gone, no magnitude cut drawn
    assert not hist["layout"].get("shapes") and array(hist["data"][1]["y"]).sum() == 768 * 384
    assert any("really smaller (12 heads and 768 FFN neurons" in md.value for md in at.markdown)


def test_heads_at_95_percent_keep_one_head_and_the_layer_choice_follows(at, s, ref):
    at.radio(key="prune_kind").set_value("heads")
    at.slider(key="prune_ratio").set_value(0.95)
    at.selectbox(key="prune_layer").set_value("encoder.layer.2.attention.output.dense").run()
    assert not at.exception and not at.error
    assert metrics(at)["Kept per layer"] == "1 of 12 heads"
    assert list(array(figures(at)["text_prune_layers"]["data"][0]["y"])) == [11] * 6
    hist = figures(at)["text_prune_hist"]
    assert "encoder.layer.2.attention.output.dense" in hist["layout"]["title"]["text"]
    assert array(hist["data"][1]["y"]).sum() == 384 * 32            # one head's 32 columns left


def test_the_whole_test_split_button_measures_the_current_setting(at, s):
    at.radio(key="prune_kind").set_value("ffn")
    at.slider(key="prune_ratio").set_value(0.5).run()
    assert "Mean cosine to original" in metrics(at)
    before = len(at.metric)
    at.button(key="text_prune_full_button").click().run()
    assert not at.exception and not at.error
    full = T.evaluate(TP.prune_text(s.model, TP.TextPruneConfig(0.5, "ffn")), s.test, T.embed(s.model, s.test))
    cosines = [m.value for m in at.metric if m.label == "Mean cosine to original"]
    assert len(at.metric) == before + 5 and len(cosines) == 2
    assert abs(float(cosines[1]) - full.mean_cosine) <= 1e-4
    assert any(f"{len(s.test)} held-out sentences (the whole test split" in md.value for md in at.markdown)


def test_a_bad_link_is_ignored_with_a_message_and_teacher_mode_hides_the_extras():
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
    assert "prune_layer" not in keys and "text_prune_retime" not in keys
    assert "text_prune_full_button" in keys
    hist = figures(page)["text_prune_hist"]["layout"]["title"]["text"]   # a layer that removing heads changes
    assert hist.startswith("encoder.layer.0.attention.output.dense")
