"""AppTest of the Sensitivity page: the heatmap and curves are slimcore's per-layer scan, the allocation shown is
slimcore's and meets the budget the slider sets, and a budget nothing can meet is a message, not an error."""
import importlib

import numpy as np
import pytest

import slimcore
from tests.apptest_utils import app, array, figures, metrics, run_for_model, run_page

S = importlib.import_module("slimcore.sweep")  # the module: `slimcore.sweep` may be the exported function
SE = importlib.import_module("slimcore.sensitivity")

PAGE = "views/5_Sensitivity.py"


@pytest.fixture
def page():
    return run_page(PAGE)


@pytest.fixture(scope="module")
def cnn():
    return slimcore.load_sample(slimcore.DEFAULT_SAMPLE)


def test_the_heatmap_is_the_per_layer_scan_on_validation(page, cnn):
    figs = figures(page)
    assert set(figs) == {"sens_heatmap", "sens_curves", "sens_alloc"}
    want = SE.scan_sample(cnn, SE.ScanConfig("prune"))
    heat = figs["sens_heatmap"]["data"][0]
    assert list(heat["y"]) == list(slimcore.weight_layers(cnn.model))
    assert list(heat["x"]) == [f"{r:.0%}" for r in SE.RATIOS]
    grid = want.pivot(index="group", columns="setting", values="score").loc[list(heat["y"])].to_numpy()
    assert array(heat["z"]) == pytest.approx(grid * 100)
    curves = {t["name"]: array(t["y"]) for t in figs["sens_curves"]["data"]}
    assert curves["fc1"] == pytest.approx(grid[2] * 100)
    assert not page.error


def test_the_allocation_shown_is_slimcores_and_meets_the_budget(page, cnn):
    for budget in (1.0, 3.0, 0.0):
        page.slider(key="sens_budget").set_value(budget).run()
        assert not page.exception
        sens = SE.scan_sample(cnn, SE.ScanConfig("prune"))
        a = S.allocate(cnn.model, sens, cnn.data.val, budget, cnn.test)
        shown = metrics(page)
        assert shown["Drop, validation (measured)"] == f"{a.drop:.2f} pt" and a.drop <= budget
        assert shown["Test accuracy (measured)"] == f"{a.result.test_accuracy:.2%}"
        assert shown["Size (modelled)"] == f"{a.result.size_bytes / 1024:,.1f} KiB"
        bars = {t["name"]: array(t["y"]) for t in figures(page)["sens_alloc"]["data"]}
        assert bars["allocated per layer"] == pytest.approx([a.result.settings[n] * 100 for n in a.result.settings])
        table = page.dataframe[0].value
        assert list(table["model"]) == [o.name for o in (a.result, *a.uniform)]
        assert table["validation, % (measured)"].iloc[0] == round(a.result.accuracy * 100, 2)


def test_quantization_scans_bit_widths(page, cnn):
    page.radio(key="sens_kind").set_value("quantize").run()
    assert not page.exception and not page.error
    heat = figures(page)["sens_heatmap"]["data"][0]
    assert list(heat["x"]) == [f"{b}-bit" for b in SE.BITS]
    want = SE.scan_sample(cnn, SE.ScanConfig("quantize"))
    grid = want.pivot(index="group", columns="setting", values="score")
    grid = grid.loc[list(heat["y"]), list(SE.BITS)]
    assert array(heat["z"]) == pytest.approx(grid.to_numpy() * 100)
    assert "bits per weight" in figures(page)["sens_alloc"]["layout"]["yaxis"]["title"]["text"]


def test_a_budget_nothing_can_meet_leaves_the_model_and_says_so():
    at = app(PAGE)
    at.session_state["model_name"] = "mnist1d-mlp"   # every layer loses accuracy at 8 bits already on validation
    at.run()
    at.radio(key="sens_kind").set_value("quantize").run()
    at.slider(key="sens_budget").set_value(0.0).run()
    assert not at.exception and not at.error
    assert "No layer can be quantized" in at.warning[0].value
    assert metrics(at)["Drop, validation (measured)"] == "0.00 pt"


@pytest.mark.parametrize("name", slimcore.list_samples("classifier"))
def test_every_sample_model_renders(name):
    at = run_for_model(PAGE, name)
    assert set(figures(at)) == {"sens_heatmap", "sens_curves", "sens_alloc"}
    assert np.isfinite(array(figures(at)["sens_heatmap"]["data"][0]["z"])).all()
