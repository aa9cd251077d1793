"""AppTest of the Sensitivity lab on the text sample (minilm), the page every family shares: the 6 x 4 scan of
(transformer layer x kind of Linear) cells comes behind a button, each heatmap cell is the drop in mean cosine that
slimcore.sensitivity measures with only that cell compressed, whole groups scan too, the table is sorted, and bad link
values give a message, never a traceback."""
import numpy as np
import pytest

import slimcore
from slimcore import sensitivity as SE
from slimcore import text as T
from tests.apptest_utils import LINK_TIMEOUT, array, figures, run_link

pytestmark = pytest.mark.usefixtures("fresh_results")   # each test finds nothing computed before it

PAGE = "views/5_Sensitivity.py"


def open_page(**query: str):
    return run_link(PAGE, LINK_TIMEOUT, model="minilm", **query)   # timeout given: no query key can be it


def heat(at) -> np.ndarray:
    return array(figures(at)["sens_heatmap"]["data"][0]["z"]).astype(float)


def test_scan_behind_a_button_and_each_cell_is_slimcores_measurement():
    at = open_page(sens_ratio="0.6")
    assert "sens_heatmap" not in figures(at)
    assert any("24 evaluations" in i.value for i in at.info)
    at.button(key="sens_scan").click().run()
    assert not at.exception and not at.error
    assert not any("24 evaluations" in i.value for i in at.info)  # the offer is gone once taken, in the same run
    z = heat(at)
    assert z.shape == (6, 4) and (z > 0).all()
    s = slimcore.load_sample("minilm")
    quick = s.data.quick_set
    ref = T.embed(s.model, quick)
    cell = next(g for g in slimcore.family_of(s).layer_groups(s.model) if g.row == "layer 2" and g.column == "FFN out")
    model = SE.variant(s.model, cell.layers, SE.ScanConfig("prune"), 0.6)
    drop = 1 - T.evaluate(model, quick, ref).mean_cosine
    assert z[2, list(T.GROUPS).index("ffn_out")] == pytest.approx(drop, abs=1e-6)
    table = at.dataframe[0].value
    drops = list(table["drop in mean cosine"])
    assert len(table) == 24 and drops == sorted(drops, reverse=True)
    assert drops[0] == pytest.approx(z.max())
    worst = table.iloc[0]
    assert any(f"most sensitive: **{worst['group']}**" in c.value for c in at.caption)

    at.run()   # a rerun shows the scan again without a click (cached pieces)
    assert "sens_heatmap" in figures(at)
    at.radio(key="sens_kind").set_value("quantize").run()   # another setting: asked for again, not computed
    assert not at.exception and "sens_heatmap" not in figures(at)
    assert at.slider(key="sens_bits").value == 4
    assert "sens_alloc" not in figures(at) and "sens_allocate" not in [b.key for b in at.button]  # scan first
    assert at.slider(key="sens_budget").value == pytest.approx(0.01)   # a drop of mean cosine, not points


def test_whole_groups_scan_one_kind_of_linear_across_every_layer():
    at = open_page(sens_kind="quantize", sens_bits="3", sens_whole="1")
    assert any("4 evaluations" in i.value for i in at.info)
    at.button(key="sens_scan").click().run()
    assert not at.exception and not at.error
    z = heat(at)
    assert z.shape == (1, 4) and (z > 0).all()


@pytest.mark.slow
def test_allocation_behind_a_button_meets_its_cosine_budget():
    budget = 0.005
    at = open_page(sens_kind="quantize", sens_bits="6", sens_whole="1", sens_budget=str(budget))
    at.button(key="sens_scan").click().run()
    assert not at.exception and "sens_alloc" not in figures(at)
    assert any("about a minute" in i.value for i in at.info)
    at.button(key="sens_allocate").click().run()
    assert not at.exception and not at.error
    shown = {m.label: m.value for m in at.metric}
    drop = float(shown["Drop, validation (measured)"])
    assert 0 <= drop <= budget and "Test mean cosine (measured)" in shown
    table = at.dataframe[-1].value
    assert list(table.columns[2:5]) == ["validation, mean cosine (measured)", "drop, mean cosine",
                                        "test, mean cosine (measured)"]
    assert table["drop, mean cosine"].iloc[0] == pytest.approx(drop, abs=1e-4)
    bars = {t["name"]: array(t["y"]) for t in figures(at)["sens_alloc"]["data"]}
    groups = list(figures(at)["sens_alloc"]["data"][0]["x"])
    assert groups == [f"{T.GROUP_LABELS[g]} (all layers)" for g in T.GROUPS]
    assert set(bars["allocated per layer"]) <= {6, 32} and 6 in set(bars["allocated per layer"])  # some, not all
    assert any("predicted drop" in c.value for c in at.caption)
    at.run()   # a rerun shows it again without a click (cached)
    assert not at.exception and "sens_alloc" in figures(at)


def test_bad_link_values_give_a_message():
    at = open_page(sens_ratio="3", sens_kind="distill")
    assert at.slider(key="sens_ratio").value == 0.5
    info = " ".join(i.value for i in at.info)
    assert "sens_ratio=3" in info and "sens_kind=distill" in info


def test_teacher_mode_hides_the_granularity():
    at = open_page(sens_kind="quantize", teacher="1")
    assert "sens_granularity" not in [r.key for r in at.radio]
    at = open_page(sens_kind="quantize")
    assert "sens_granularity" in [r.key for r in at.radio]
