"""AppTest of the Quantization page: the figures are slimcore's, follow the Bit width slider, and bad input gives a
message, never a traceback."""
import math
import shutil

import numpy as np
import pytest
import torch

import slimcore
from slimcore import plots
from slimcore import quantization as q
from tests.apptest_utils import app, array, figures, metrics, run_page

PAGE = "views/2_Quantization.py"


@pytest.fixture
def page():
    return run_page(PAGE)


def levels_drawn(at) -> np.ndarray:
    """The grid levels drawn over the weight histogram (the line trace; NaN separates the vertical segments)."""
    x = array(figures(at)["q_levels"]["data"][1]["x"]).astype(float)
    return np.unique(x[~np.isnan(x)])


def set_bits(at, bits: int):
    at.slider(key="bit_width").set_value(bits).run()
    assert not at.exception, at.exception
    return at


def test_page_shows_every_figure_and_the_three_models(page):
    assert set(figures(page)) == {"q_levels", "q_values", "q_error", "q_sqnr", "q_curve"}
    table = page.dataframe[0].value.set_index("model")
    assert list(table.index) == ["fp32 (original)", "fp32 (ONNX Runtime)", "simulated: 8-bit fake quant",
                                 "real int8 (ONNX Runtime)", "real int8 (torch.ao)"]   # the default engine first
    b1, b256 = "latency, batch 1 (measured)", "latency, batch 256 (measured)"
    assert list(table.columns) == ["engine", "accuracy (measured)", "size", b1, b256]
    assert list(table["engine"]) == ["torch", "ONNX Runtime", "torch", "ONNX Runtime", "torch.ao"]
    fp32 = table.loc[["fp32 (original)", "fp32 (ONNX Runtime)"], "accuracy (measured)"]
    assert fp32.iloc[0] == fp32.iloc[1] and table.loc["fp32 (ONNX Runtime)", b256].endswith("× fp32")
    sim = table.loc["simulated: 8-bit fake quant"]
    assert sim["size"].endswith("(modelled)") and sim[b1].startswith("= fp32")
    from slimui import quant as ui

    for label in ("int8 (ONNX Runtime)", "int8 (torch.ao)"):
        real, int8 = table.loc[f"real {label}"], ui.int8_figures(slimcore.DEFAULT_SAMPLE, label)
        assert all(real[c].endswith("× fp32") for c in (b1, b256))
        assert int8["kind"] == "static"   # digits-cnn has convolutions: calibrated static int8 in both engines
        assert real["size"] == f"{int8['size_bytes'] / 1024:,.1f} KiB (measured file)"
        assert real["accuracy (measured)"] == f"{int8['score'].value:.2%}"
    captions = [c.value for c in page.caption]
    assert any("static" in c and "calibrated on 512 training inputs" in c for c in captions)   # torch.ao's notes
    assert any("ONNX Runtime static int8 (QDQ)" in c and "on 512 training inputs" in c for c in captions)
    why = next(m.value for m in page.markdown if m.value.startswith("**Why the engines differ.**"))
    ort, ao = (ui.int8_figures(slimcore.DEFAULT_SAMPLE, k)["score"].value for k in ("int8 (ONNX Runtime)",
                                                                                  "int8 (torch.ao)"))
    assert f"ONNX Runtime {ort:.2%}" in why and f"torch.ao {ao:.2%}" in why and "at batch 256 (" in why
    assert not page.error
    assert len(page.get("latex")) >= 6  # the formulas are on the page


def test_moving_bit_width_changes_accuracy_and_levels_as_slimcore_computes_them(page):
    s = slimcore.load_sample(slimcore.DEFAULT_SAMPLE)
    w = s.model.conv1.weight
    seen = {}
    for bits in (8, 3, 2):
        set_bits(page, bits)
        expected = slimcore.accuracy(q.quantize(s.model, bits), s.test)
        shown = metrics(page)["Accuracy (simulated)"]
        assert shown == f"{expected:.2%}"
        drawn = levels_drawn(page)
        grid = q.levels(w, bits).numpy()
        step = math.ceil(len(grid) / plots.MAX_LEVEL_LINES)  # dense grids: every step-th level is drawn
        np.testing.assert_allclose(drawn, grid[::step], rtol=1e-6)
        curve = figures(page)["q_curve"]["data"]
        marker = next(t for t in curve if t["name"] == "current setting")
        assert array(marker["x"])[0] == bits and array(marker["y"])[0] == pytest.approx(expected * 100)
        seen[bits] = shown
    assert len(set(seen.values())) == 3  # 8, 3 and 2 bits give three different accuracies here


def test_binary_and_ternary_draw_their_two_and_three_levels(page):
    set_bits(page, 1)
    assert len(levels_drawn(page)) == 2
    page.checkbox(key="ternary").check().run()
    assert not page.exception
    assert len(levels_drawn(page)) == 3
    assert array(figures(page)["q_values"]["data"][0]["x"]).size == 3


def test_the_curve_is_cached_and_follows_scheme_not_bits(page):
    curve8 = figures(page)["q_curve"]["data"][0]
    set_bits(page, 4)
    assert figures(page)["q_curve"]["data"][0] == curve8  # the same cached curve, only the marker moves
    page.radio(key="scheme").set_value("asymmetric").run()
    page.radio(key="granularity").set_value("per channel").run()
    assert not page.exception
    assert figures(page)["q_curve"]["data"][0] != curve8


def test_activation_quantization_changes_the_result(page):
    set_bits(page, 8)
    weights_only = metrics(page)["Accuracy (simulated)"]
    page.radio(key="quant_target").set_value("weights and activations").run()
    page.select_slider(key="act_bits").set_value(2).run()
    assert not page.exception and not page.error
    assert metrics(page)["Accuracy (simulated)"] != weights_only
    assert "A2)" in figures(page)["q_curve"]["layout"]["title"]["text"]


def test_layer_choice_drives_the_histograms_and_survives_a_model_switch(page):
    s = slimcore.load_sample(slimcore.DEFAULT_SAMPLE)
    page.selectbox(key="quant_layer").set_value("fc1").run()
    hist = figures(page)["q_levels"]["data"][0]
    assert array(hist["y"]).sum() == s.model.fc1.weight.numel()
    page.sidebar.selectbox(key="model_select").set_value("mnist1d-cnn").run()  # it has no fc1
    assert not page.exception and not page.error
    assert page.selectbox(key="quant_layer").value == "conv1"
    assert list(page.selectbox(key="quant_layer").options) == ["conv1", "conv2", "conv3", "fc"]


@pytest.mark.parametrize("bad", [0, 17])
def test_bits_outside_the_range_give_a_message_not_a_traceback(page, bad):
    from slimui import quant as ui

    page.slider(key="bit_width").set_value(bad).run()  # the widget refuses it and keeps a valid value
    assert not page.exception and 1 <= page.slider(key="bit_width").value <= 16
    with pytest.raises(ValueError, match="bits must be a whole number from 1 to 16"):
        ui.config(bad, False, "symmetric", "per tensor", "weights only")
    with pytest.raises(ValueError, match="unknown scheme"):
        ui.config(8, False, "skewed", "per tensor", "weights only")


def test_settings_that_do_not_apply_are_explained(page):
    set_bits(page, 1)
    page.radio(key="scheme").set_value("asymmetric").run()
    assert not page.exception and not page.error
    assert "does not apply" in page.info[0].value


def test_onnx_runtime_files_are_kept_so_a_restart_opens_sessions_instead_of_exporting(page, monkeypatch):
    """The page's ONNX Runtime models come from files kept in the result cache: with the process's models dropped
    (as after a restart), the table is rebuilt from them without a new export, and gives the same figures."""
    from slimcore import int8 as I8
    from slimui import quant as ui
    from slimui import work

    name = slimcore.DEFAULT_SAMPLE
    kept = work.find("ort_files", name, tuple(ui.int8_labels(name)))
    assert kept is not None and kept["labels"] == ["int8 (ONNX Runtime)"]
    before = ui.int8_model(name, "int8 (ONNX Runtime)").model.onnx
    ui.engine_table.clear()
    monkeypatch.setattr(I8, "table_files", lambda s: pytest.fail("exported again"))
    assert ui.int8_model(name, "int8 (ONNX Runtime)").model.onnx == before == kept["int8"][0].tobytes()
    assert ui.ort_fp32(name).onnx == kept["fp32"].tobytes()


def test_time_again_times_fp32_and_int8_afresh(page):
    from slimcore import jobs

    key = f"timing|quant|{slimcore.DEFAULT_SAMPLE}"     # the page's timing job in the worker
    first = jobs.worker().get(key).result
    page.button(key="quant_retime").click().run()
    assert not page.exception and not page.error
    again = jobs.worker().get(key).result
    assert again is not first and again["int8 (torch.ao)"][256].batch == 256
    assert again["int8 (ONNX Runtime)"][256].batch == 256   # both engines timed beside fp32
    shown = page.dataframe[0].value.set_index("model").loc["fp32 (original)", "latency, batch 1 (measured)"]
    assert shown == f"{again['fp32'][1].median_ms:.3f} ms (IQR {again['fp32'][1].iqr_ms:.3f})"


def test_cached_model_is_never_changed_by_the_page(page):
    from slimui import cache

    cached = cache.sample(slimcore.DEFAULT_SAMPLE).model
    before = {k: v.clone() for k, v in cached.state_dict().items()}
    for bits in (2, 1):
        set_bits(page, bits)
    page.radio(key="quant_target").set_value("weights and activations").run()
    page.checkbox(key="ternary").check().run()
    assert all(torch.equal(before[k], v) for k, v in cached.state_dict().items())
    assert all(not m._forward_pre_hooks for m in cached.modules())


def test_nan_weights_give_a_message_not_a_traceback(tmp_path, monkeypatch):
    from slimcore import zoo
    from slimui import cache
    from slimui import quant as ui

    for f in zoo.SAMPLE_DIR.glob("*"):
        if f.is_file():
            shutil.copy(f, tmp_path)
    state = torch.load(tmp_path / "digits-cnn.pt", weights_only=True)
    state["conv2.weight"][0, 0, 0, 0] = math.nan
    torch.save(state, tmp_path / "digits-cnn.pt")
    monkeypatch.setattr(zoo, "SAMPLE_DIR", tmp_path)
    from slimui import work
    caches = (cache._sample, cache.baseline, ui.ranges, ui.variant, ui.layer_detail, ui.engine_table, ui.scorer,
              ui.original, ui.fake_score, ui.fp32_bytes, work)
    for c in caches:
        c.clear()
    try:
        at = app(PAGE).run()
        assert not at.exception
        assert "conv2" in at.error[0].value and "NaN" in at.error[0].value
    finally:
        for c in caches:
            c.clear()
