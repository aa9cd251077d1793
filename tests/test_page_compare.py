"""A/B comparison, presets and reset on every lab page (AppTest): pin A, move a control, and A's figures stand beside
B's with the differences; A is in the link, so a new session opened from it shows the same comparison; a broken
value of A in the link is reported and replaced by the default; presets and Reset set the controls."""
import time

import pytest

import slimcore
from tests.apptest_utils import app, run_link

MODEL = slimcore.DEFAULT_SAMPLE

# lab page, the control moved after pinning (key, value), its link value, a figure both sides have once computed
LABS = [("views/1_Pruning.py", ("prune_ratio", 0.8), "0.8", "Test accuracy (measured)"),
        ("views/2_Quantization.py", ("bit_width", 4), "4", "Size (modelled)")]


def table(at):
    frames = [d.value for d in at.dataframe if list(d.value.columns)[:3] == ["figure", "A", "B (now)"]]
    assert frames, "no A/B table drawn"
    return frames[0].set_index("figure")


@pytest.mark.parametrize("page,moved,written,figure", LABS)
def test_pin_move_and_see_a_beside_b_then_reload_from_the_link(page, moved, written, figure):
    at = app(page).run()
    assert not at.exception
    before = at.dataframe and [d for d in at.dataframe if "B (now)" in d.value.columns]
    assert not before   # nothing pinned: no table
    at.button(key="ab_pin").click().run()
    key, value = moved
    (at.slider(key=key) if key == "prune_ratio" or key == "bit_width" else at.selectbox(key=key)).set_value(value).run()
    assert not at.exception
    t = table(at)
    row = t.loc[figure]
    assert row["A"] != row["B (now)"] and row["B − A"] not in ("—", "")
    assert at.query_params["ab"] == MODEL and at.query_params[key] == written
    assert "a." + key not in at.query_params   # A is the default setting: nothing but the marker

    again = run_link(page, **{"ab": MODEL, key: written})   # the link opened in a new session
    t2 = table(again)
    assert t2.loc[figure, "A"] == row["A"] and t2.loc[figure, "B (now)"] == row["B (now)"]


def test_a_pinned_a_in_the_link_is_read_and_a_broken_value_reported():
    at = run_link("views/1_Pruning.py", **{"ab": MODEL, "a.prune_ratio": "0.3", "prune_ratio": "0.6"})
    t = table(at)
    assert t.loc["Weights removed (counted)", "A"] == "30.00%"
    assert t.loc["Weights removed (counted)", "B (now)"] == "60.00%"
    assert any("prune_ratio: 0.3 → 0.6" in m.value for m in at.markdown)
    bad = run_link("views/1_Pruning.py", **{"ab": MODEL, "a.prune_ratio": "<script>", "prune_ratio": "0.6"})
    assert any("pinned setting A" in i.value and "not a number" in i.value for i in bad.info)
    assert table(bad).loc["Weights removed (counted)", "A"] == "50.00%"   # the default


def test_back_to_a_sets_the_controls_to_a_and_unpin_removes_it():
    at = run_link("views/2_Quantization.py", **{"ab": MODEL, "a.bit_width": "3", "bit_width": "6"})
    at.button(key="ab_restore").click().run()
    assert at.slider(key="bit_width").value == 3
    at.button(key="ab_unpin").click().run()
    assert "ab" not in at.query_params and not [d for d in at.dataframe if "B (now)" in d.value.columns]


@pytest.mark.parametrize("page,preset,expect", [
    ("views/1_Pruning.py", "breaks-it", {"prune_ratio": 0.7, "prune_structured": True}),
    ("views/2_Quantization.py", "breaks-it", {"bit_width": 2}),
    ("views/3_Distillation.py", "aggressive", {"student": "1/8"}),
])
def test_presets_set_the_controls_and_reset_restores_the_defaults(page, preset, expect):
    at = app(page).run()
    defaults = {k: at.session_state[k] for k in expect}
    at.button(key=f"ab_preset_{preset}").click().run()
    assert not at.exception
    assert {k: at.session_state[k] for k in expect} == expect
    at.button(key="ab_reset").click().run()
    assert {k: at.session_state[k] for k in expect} == defaults


@pytest.mark.parametrize("page", ["views/3_Distillation.py", "views/4_Trade-offs.py", "views/5_Sensitivity.py"])
def test_every_other_lab_pins_and_compares(page):
    at = app(page, timeout=600).run()
    assert not at.exception
    at.button(key="ab_pin").click().run()
    at.button(key="ab_preset_breaks-it").click().run()
    assert not at.exception and at.query_params["ab"] == MODEL
    assert any(m.value.startswith("**A/B comparison** — A is pinned") and "differs from A" in m.value
               for m in at.markdown)
    if page != "views/3_Distillation.py":   # the grid and the allocation are computed unasked on digits-cnn
        for _ in range(120):
            frames = [d.value for d in at.dataframe if "B (now)" in d.value.columns]
            if frames and (frames[0]["A"] != "—").any():
                break
            time.sleep(1)
            at.run()
        assert frames and (frames[0]["A"] != "—").any(), frames


def test_a_pinned_a_belongs_to_its_model():
    at = run_link("views/1_Pruning.py", **{"ab": MODEL, "a.prune_ratio": "0.3"})
    assert [d for d in at.dataframe if "B (now)" in d.value.columns]
    at.session_state["model_name"] = "digits-mlp"   # the sidebar's choice
    at.run()
    assert not at.exception and not at.error
    assert any("pinned as A was for another model" in i.value for i in at.info)
    assert not [d for d in at.dataframe if "B (now)" in d.value.columns] and "ab" not in at.query_params
    other = run_link("views/1_Pruning.py", **{"ab": MODEL, "a.prune_ratio": "0.3", "model": "digits-mlp"})
    assert not [d for d in other.dataframe if "B (now)" in d.value.columns]   # a link's A for another model
