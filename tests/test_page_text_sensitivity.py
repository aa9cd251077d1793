"""AppTest of the Sensitivity lab on the text sample (minilm): the 6 x 4 scan comes behind a button, each heatmap cell
is the drop in mean cosine that slimcore measures with only that cell compressed, the table is sorted, and bad link
values give a message, never a traceback."""
import numpy as np
import pytest

import slimcore
from slimcore import text as T
from slimcore import text_quant as TQ
from tests.apptest_utils import run_link, array, figures

PAGE = "views/5_Sensitivity.py"


def open_page(**query: str):
    return run_link(PAGE, model="minilm", **query)


def heat(at) -> np.ndarray:
    return array(figures(at)["text_sens_heat"]["data"][0]["z"]).astype(float)


def test_scan_behind_a_button_and_each_cell_is_slimcores_measurement():
    at = open_page(sens_ratio="0.6")
    assert "text_sens_heat" not in figures(at)
    assert any("24 evaluations" in i.value for i in at.info)
    at.button(key="text_sens_scan").click().run()
    assert not at.exception and not at.error
    assert not any("24 evaluations" in i.value for i in at.info)  # the offer is gone once taken, in the same run
    z = heat(at)
    assert z.shape == (6, 4) and (z > 0).all()
    s = slimcore.load_sample("minilm")
    quick = s.data.quick_set
    ref = T.embed(s.model, quick)
    cfg = TQ.CellConfig("prune", 0.6)
    model = TQ.cell_variant(s.model, cfg, TQ.select(s.model, ["ffn_out"], [2]))
    assert z[2, list(T.GROUPS).index("ffn_out")] == pytest.approx(1 - T.evaluate(model, quick, ref).mean_cosine, abs=1e-6)
    table = at.dataframe[0].value
    drops = list(table["drop in mean cosine"])
    assert len(table) == 24 and drops == sorted(drops, reverse=True)
    assert drops[0] == pytest.approx(z.max())
    worst = table.iloc[0]
    assert any(f"{worst['group']} of layer {worst['transformer layer']}" in c.value for c in at.caption)

    at.run()   # a rerun shows the scan again without a click (cached pieces)
    assert "text_sens_heat" in figures(at)
    at.radio(key="sens_kind").set_value("quantize").run()   # another setting: asked for again, not computed
    assert not at.exception and "text_sens_heat" not in figures(at)
    assert at.slider(key="sens_bits").value == 4


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
