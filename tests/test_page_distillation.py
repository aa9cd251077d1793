"""AppTest of the Distillation page: the temperature softens the teacher live, training fills curves and a comparison,
results are kept by setting, and sessions never see each other's settings."""
import pytest
import torch

import slimcore
from slimcore import distillation as D
from tests.apptest_utils import app, array, figures, run_page

PAGE = "views/3_Distillation.py"


@pytest.fixture
def page():
    return run_page(PAGE)


def test_temperature_softens_the_teachers_probabilities(page):
    s = slimcore.load_sample(slimcore.DEFAULT_SAMPLE)
    logits = slimcore.predict(s.model, s.test.x[:1])[0]
    bars = figures(page)["distill_soft"]["data"]
    assert array(bars[0]["y"]) == pytest.approx((torch.softmax(logits, 0) * 100).tolist(), rel=1e-4)
    assert array(bars[1]["y"]) == pytest.approx((D.soften(logits, 4.0) * 100).tolist(), rel=1e-4)
    page.slider(key="temperature").set_value(12.0).run()
    soft = array(figures(page)["distill_soft"]["data"][1]["y"])
    assert soft == pytest.approx((D.soften(logits, 12.0) * 100).tolist(), rel=1e-4)
    assert soft.max() < array(bars[1]["y"]).max()  # flatter
    assert "T = 12" in figures(page)["distill_soft"]["data"][1]["name"]
    assert "Dark knowledge" in " ".join(m.value for m in page.markdown)


def test_choosing_an_example_changes_the_view(page):
    before = figures(page)["distill_soft"]["data"][0]["y"]
    page.number_input(key="example").set_value(5).run()
    assert figures(page)["distill_soft"]["data"][0]["y"] != before


def test_training_fills_curves_and_comparison_then_is_kept(page):
    page.number_input(key="epochs").set_value(2)
    page.selectbox(key="student").set_value("1/8").run()
    assert page.info and "distill_loss" not in figures(page)
    page.button(key="train").click().run()
    assert not page.exception and not page.error
    figs = figures(page)
    assert array(figs["distill_loss"]["data"][0]["x"]).tolist() == [1, 2]
    assert array(figs["distill_score"]["data"][0]["x"]).tolist() == [0, 1, 2]   # epoch 0: the untrained student
    assert [d["name"] for d in figs["distill_score"]["data"]] == ["distilled: held out", "scratch: held out",
                                                                   "distilled: train"]
    table = page.dataframe[0].value.set_index("model")
    assert list(table.index) == ["teacher", "distilled student", "student from scratch"]
    assert table.loc["teacher", "test accuracy, %"] == pytest.approx(97.77, abs=0.01)
    assert table.loc["distilled student", "parameters"] < table.loc["teacher", "parameters"]
    assert (table["latency b=256, ms"] > 0).all()
    again = app(PAGE)                      # another session asking for the same setting gets it at once
    again.session_state["epochs"] = 2
    again.session_state["student"] = "1/8"
    again.run()
    assert again.dataframe[0].value.equals(page.dataframe[0].value)
    assert not [i for i in again.info if "No student trained" in i.value]


def test_grid_point_appears_and_marks_the_slider(page):
    page.number_input(key="epochs").set_value(1)
    page.selectbox(key="student").set_value("1/16").run()
    page.button(key="grid").click().run()
    assert not page.exception
    grid = figures(page)["distill_grid"]
    assert array(grid["data"][0]["x"]).tolist() == [1, 2, 4, 8, 12, 16, 20]
    from slimui import distill as ui

    point = ui.store().get(ui.run_key("digits-cnn", D.DistillConfig(temperature=8.0, alpha=0.5, epochs=1, seed=0,
                                                                     student=D.WIDTHS["1/16"])))
    val = point.history[-1].score
    assert val.examples == len(slimcore.load_sample("digits-cnn").data.val)   # validation, not test
    assert array(grid["data"][0]["y"])[3] == pytest.approx(val.value * 100)
    assert grid["layout"]["shapes"][0]["x0"] == 4.0
    assert "7 of 7 ready" in " ".join(c.value for c in page.caption)


def test_sessions_are_independent():
    a, b = app(PAGE).run(), app(PAGE).run()
    a.slider(key="temperature").set_value(15.0).run()
    b.run()
    assert "T = 4" in figures(b)["distill_soft"]["data"][1]["name"]


def test_alpha_zero_is_the_scratch_run_whatever_the_temperature(page):
    from slimui import distill as ui

    page.number_input(key="epochs").set_value(1)
    page.slider(key="alpha").set_value(0.0)
    page.slider(key="temperature").set_value(9.0).run()
    page.button(key="train").click().run()
    assert not page.exception
    key = ui.run_key("digits-cnn", D.DistillConfig(temperature=9.0, alpha=0.0, epochs=1, seed=0, student=0.5))
    assert key == ui.scratch_key(key)
    assert "plays no part" in " ".join(i.value for i in page.info)
