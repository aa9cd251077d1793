"""Shareable state: every lab's settings come from and go back to the URL, so a link reproduces the view; bad URL
values are ignored with a message; teacher mode (?teacher=1) hides the advanced controls and keeps the main ones."""
import json
import math

import pytest
from streamlit.elements.lib import policies

from slimui import urlstate as U
from tests.apptest_utils import app, figures, metrics

MODEL = "digits-mlp"   # the smallest model: every page draws in a few seconds
WIDGETS = ("slider", "select_slider", "selectbox", "radio", "toggle", "checkbox", "number_input", "multiselect",
           "button")

# Per lab: a link setting every URL key to a non-default value (in the canonical form the page writes back), the
# widget values it must produce, and where the view must differ from the default view.
LINKS = {
    "views/1_Pruning.py": (
        {"prune_ratio": "0.9", "prune_method": "random", "prune_scope": "global", "prune_structured": "1",
         "prune_norm": "2", "prune_layer": "fc2", "prune_steps": "3", "prune_epochs": "1"},
        {"prune_ratio": 0.9, "prune_method": "random", "prune_scope": "global", "prune_structured": True,
         "prune_norm": 2, "prune_layer": "fc2", "prune_steps": 3, "prune_epochs": 1},
        ["Non-zero parameters", "Test accuracy"]),
    "views/2_Quantization.py": (
        {"bit_width": "3", "ternary": "1", "scheme": "asymmetric", "granularity": "per-channel",
         "quant_target": "weights-and-activations", "act_bits": "6", "calibration": "99.9th-percentile",
         "rounding": "stochastic-seed-0", "quant_layer": "fc2"},
        {"bit_width": 3, "ternary": True, "scheme": "asymmetric", "granularity": "per channel",
         "quant_target": "weights and activations", "act_bits": 6, "calibration": "99.9th percentile",
         "rounding": "stochastic (seed 0)", "quant_layer": "fc2"},
        ["Accuracy (simulated)", "q_values", "q_sqnr"]),
    "views/3_Distillation.py": (
        {"temperature": "10.5", "alpha": "0.3", "student": "1-4", "epochs": "3", "seed": "7", "example": "5"},
        {"temperature": 10.5, "alpha": 0.3, "student": "1/4", "epochs": 3, "seed": 7, "example": 5},
        ["distill_soft", "distill_input"]),
    "views/4_Trade-offs.py": (
        {"tradeoff_methods": ["l1", "random"], "tradeoff_structured": "0", "tradeoff_scope": "global",
         "tradeoff_granularity": "per-channel", "tradeoff_x": "macs", "tradeoff_pipe_prune": "0.9",
         "tradeoff_pipe_bits": "5", "tradeoff_point": "random-50-weights-4-bit"},
        {"tradeoff_methods": ["l1", "random"], "tradeoff_structured": False, "tradeoff_scope": "global",
         "tradeoff_granularity": "per channel", "tradeoff_x": "MACs", "tradeoff_pipe_prune": 0.9,
         "tradeoff_pipe_bits": 5, "tradeoff_point": "random 50% weights · 4-bit"},
        ["Configurations", "tradeoff_chart", "tradeoff_waterfall"]),
    "views/5_Sensitivity.py": (
        {"sens_kind": "quantize", "sens_method": "taylor", "sens_granularity": "per-channel", "sens_budget": "2.5"},
        {"sens_kind": "quantize", "sens_method": "taylor", "sens_granularity": "per channel", "sens_budget": 2.5},
        ["sens_heatmap", "Drop, validation (measured)"]),
}
# Per lab: a widget to move, its new value and how the URL must then read.
MOVES = {"views/1_Pruning.py": ("slider", "prune_ratio", 0.8, "0.8"),
         "views/2_Quantization.py": ("radio", "granularity", "per channel", "per-channel"),
         "views/3_Distillation.py": ("slider", "temperature", 8.5, "8.5"),
         "views/4_Trade-offs.py": ("radio", "tradeoff_x", "MACs", "macs"),
         "views/5_Sensitivity.py": ("slider", "sens_budget", 2.0, "2")}
# Per lab: what teacher mode hides, and the main controls it keeps.
TEACHER = {"views/1_Pruning.py": ({"prune_norm", "prune_steps", "prune_epochs", "prune_retime"},
                                  {"prune_ratio", "prune_method", "prune_scope", "prune_structured", "prune_layer",
                                   "prune_finetune"}),
           "views/2_Quantization.py": ({"quant_target", "act_bits", "calibration", "rounding", "quant_retime"},
                                       {"bit_width", "ternary", "scheme", "granularity", "quant_layer"}),
           "views/3_Distillation.py": ({"alpha", "epochs", "seed"},   # and "Time again", drawn after a training
                                       {"temperature", "student", "example", "train"}),
           "views/4_Trade-offs.py": ({"tradeoff_methods", "tradeoff_scope", "tradeoff_granularity"},
                                     {"tradeoff_structured", "tradeoff_x", "tradeoff_point", "tradeoff_pipe_prune",
                                      "tradeoff_pipe_bits"}),
           "views/5_Sensitivity.py": ({"sens_method", "sens_granularity"}, {"sens_kind", "sens_budget"})}


def widgets(at) -> dict:
    """Every keyed widget drawn in the last run, by key, with its value."""
    return {w.key: getattr(w, "value", None) for kind in WIDGETS for w in at.get(kind) if w.key}


def view(at, what: list[str]) -> dict:
    """The metrics and figures named in `what`, as comparable values."""
    shown, figs = metrics(at), figures(at)
    return {w: shown[w] if w in shown else json.dumps(figs[w]["data"], sort_keys=True) for w in what}


def open_link(page: str, params: dict | None = None, teacher: bool = False, model: str = MODEL):
    """A page opened from a link: ?model=digits-mlp (or `model`) plus `params`; checked to have raised nothing."""
    at = app(page, timeout=600)
    at.query_params.update({"model": model} | ({"teacher": "1"} if teacher else {}) | (params or {}))
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def notes(at) -> str:
    return " ".join(i.value for i in at.info)


@pytest.fixture(scope="module")
def default_views():
    """Each lab's default view of MODEL (opened from a link with only ?model=)."""
    return {page: view(open_link(page), what) for page, (_, _, what) in LINKS.items()}


@pytest.fixture
def warnings(monkeypatch):
    """Streamlit's 'created with a default value but also had its value set via the Session State API' warnings."""
    seen = []
    monkeypatch.setattr(policies, "_shown_default_value_warning", False)  # Streamlit warns once per process
    monkeypatch.setattr(policies._LOGGER, "warning", lambda msg, *a, **k: seen.append(msg % a))
    return seen


# --- the parameters alone ---------------------------------------------------------------------------------------

def test_values_are_read_and_written_in_a_compact_stable_form():
    ratio = U.Float("r", 0.5, 0.0, 0.99, 0.01)
    assert [ratio.write(v) for v in (0.8, 0.0, 0.15000000000000002, 0.5)] == ["0.8", "0", "0.15", "0.5"]
    assert ratio.read("0.80") == (0.8, None)
    value, remark = ratio.read("0.555")
    assert value == 0.56 and "rounded" in remark
    assert U.Float("t", 4.0, 1.0, 20.0, 0.5).write(4.0) == "4"
    assert (U.Bool("b").write(True), U.Bool("b").write(False)) == ("1", "0")
    assert [U.Bool("b").read(r)[0] for r in ("1", "true", "0", "False")] == [True, True, False, False]
    grid = U.Choice("g", ["per tensor", "per channel"])
    assert grid.default == "per tensor" and grid.write("per channel") == "per-channel"
    assert grid.read("per-channel")[0] == grid.read("per channel")[0] == "per channel"
    assert U.Choice("n", [1, 2]).read("2") == (2, None)
    many = U.Choices("m", ["l1", "random", "taylor"], ["l1"])
    assert many.write(["taylor", "l1"]) == ["taylor", "l1"] and many.write([]) == [""]
    assert many.read(["taylor", "l1"])[0] == ["taylor", "l1"] and many.read([""])[0] == []


@pytest.mark.parametrize("param, raw, why", [
    (U.Float("r", 0.5, 0.0, 0.99, 0.01), "abc", "not a number"),
    (U.Float("r", 0.5, 0.0, 0.99, 0.01), "5", "outside 0 to 0.99"),
    (U.Float("r", 0.5, 0.0, 0.99, 0.01), "nan", "outside"),
    (U.Int("i", 8, 1, 16), "8.5", "not a whole number"),
    (U.Int("i", 8, 1, 16), "0", "outside 1 to 16"),
    (U.Bool("b"), "maybe", "not 1 or 0"),
    (U.Choice("c", ["l1", "random"]), "evil", "not one of l1, random"),
    (U.Choices("m", ["l1", "random"]), ["l1", "evil"], "not one of"),
])
def test_invalid_values_raise_a_short_reason(param, raw, why):
    with pytest.raises(U.Invalid, match=why):
        param.read(raw)


def test_a_page_cannot_declare_an_impossible_default():
    with pytest.raises(ValueError):
        U.Float("r", 1.5, 0.0, 0.99, 0.01)
    with pytest.raises(ValueError):
        U.Choice("c", ["a", "b"], "z")
    with pytest.raises(ValueError):
        U.Choice("c", ["a b", "a-b"])   # two options, one URL token


# --- every lab from a link --------------------------------------------------------------------------------------

@pytest.mark.parametrize("page", list(LINKS))
def test_a_link_reproduces_the_view(page, default_views, warnings):
    link, want, what = LINKS[page]
    at = open_link(page, link)
    shown = widgets(at)
    assert {k: shown[k] for k in want} == want
    assert "link" not in notes(at), notes(at)
    assert view(at, what) != default_views[page], "the link's settings must change the figures"
    written = dict(at.query_params)
    assert written == {"model": MODEL} | link, "the page writes the same link back"
    again = open_link(page, {k: v for k, v in written.items() if k != "model"})
    assert widgets(again) == shown and view(again, what) == view(at, what)
    assert not [w for w in warnings if "default value" in w], warnings


def test_pruning_link_from_the_issue_sets_the_ratio_and_thins_the_model(default_views):
    at = open_link("views/1_Pruning.py", {"prune_ratio": "0.9"})
    assert at.slider(key="prune_ratio").value == 0.9
    nonzero = int(metrics(at)["Non-zero parameters"].replace(",", ""))
    assert nonzero < int(default_views["views/1_Pruning.py"]["Non-zero parameters"].replace(",", ""))
    assert dict(at.query_params) == {"model": MODEL, "prune_ratio": "0.9"}


@pytest.mark.parametrize("page", list(MOVES))
def test_moving_a_widget_updates_the_url_and_the_default_leaves_it(page):
    kind, key, value, text = MOVES[page]
    at = open_link(page)
    assert key not in at.query_params
    default = getattr(at, kind)(key=key).value
    getattr(at, kind)(key=key).set_value(value).run()
    assert not at.exception
    assert at.query_params[key] == text and at.query_params["model"] == MODEL
    getattr(at, kind)(key=key).set_value(default).run()
    assert key not in at.query_params, "a value equal to its default is left out of the link"


# --- bad links --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("page, key, raw, default", [
    ("views/1_Pruning.py", "prune_ratio", "abc", 0.5),
    ("views/1_Pruning.py", "prune_ratio", "5", 0.5),
    ("views/1_Pruning.py", "prune_method", "evil", "l1"),
    ("views/1_Pruning.py", "prune_layer", "conv9", "fc1"),
    ("views/2_Quantization.py", "bit_width", "99", 8),
    ("views/3_Distillation.py", "temperature", "nan", 4.0),
    ("views/3_Distillation.py", "example", "100000", 0),
    ("views/4_Trade-offs.py", "tradeoff_x", "<script>", "size"),
    ("views/5_Sensitivity.py", "sens_budget", "-1", 1.0),
])
def test_an_invalid_value_is_ignored_with_a_message(page, key, raw, default):
    at = open_link(page, {key: raw})
    assert f"`{key}={raw}`" in notes(at) and "default is used" in notes(at)
    assert widgets(at)[key] == default
    assert key not in at.query_params, "the bad value is dropped from the URL"
    at.run()
    assert "link" not in notes(at), "said once, not on every rerun"


def test_several_bad_values_at_once_keep_the_good_ones():
    at = open_link("views/1_Pruning.py", {"prune_ratio": "5", "prune_method": "evil", "prune_scope": "global",
                                          "prune_structured": "maybe"})
    said = notes(at)
    assert all(f"`{k}=" in said for k in ("prune_ratio", "prune_method", "prune_structured"))
    assert "prune_scope" not in said and at.radio(key="prune_scope").value == "global"
    assert dict(at.query_params) == {"model": MODEL, "prune_scope": "global"}


def test_an_off_grid_value_is_rounded_to_the_step_and_said_so():
    at = open_link("views/1_Pruning.py", {"prune_ratio": "0.555"})
    assert at.slider(key="prune_ratio").value == 0.56 and "rounded to 0.56" in notes(at)
    assert at.query_params["prune_ratio"] == "0.56"


def test_a_trade_off_point_not_in_the_grid_is_ignored():
    at = open_link("views/4_Trade-offs.py", {"tradeoff_point": "taylor-99-weights-1-bit"})
    assert "`tradeoff_point=taylor-99-weights-1-bit`" in notes(at)
    assert "tradeoff_point" not in at.query_params   # the best point, the default, is shown


# --- the URL and session state from elsewhere ----------------------------------------------------------------

def test_a_value_sent_by_another_page_wins_over_the_url():
    at = app("views/1_Pruning.py")   # as Trade-offs' "Open in Pruning" does: session state set, then the page opens
    at.query_params.update(model=MODEL, prune_ratio="0.9")
    at.session_state["prune_ratio"] = 0.30000000000000004
    at.session_state["prune_structured"] = True
    at.run()
    assert not at.exception
    assert at.slider(key="prune_ratio").value == pytest.approx(0.3) and at.toggle(key="prune_structured").value
    assert at.query_params["prune_ratio"] == "0.3" and at.query_params["prune_structured"] == "1"


def test_switching_labs_keeps_each_labs_keys_apart():
    at = app("app.py")
    at.query_params["model"] = MODEL
    at.run()
    at.switch_page("views/2_Quantization.py").run()
    at.slider(key="bit_width").set_value(4).run()
    at.switch_page("views/1_Pruning.py").run()   # the Quantization widgets' state is still in the session
    assert not at.exception and not at.error
    assert at.slider(key="prune_ratio").value == 0.5 and "link" not in notes(at)
    at.slider(key="prune_ratio").set_value(0.7).run()
    assert at.query_params["prune_ratio"] == "0.7"
    at.switch_page("views/2_Quantization.py").run()   # the URL still carries bit_width: it comes back
    assert not at.exception and at.slider(key="bit_width").value == 4


def test_a_layer_of_another_model_falls_back_quietly():
    at = open_link("views/2_Quantization.py", {"quant_layer": "fc3"})
    assert at.selectbox(key="quant_layer").value == "fc3"
    at.selectbox(key="model_select").set_value("digits-cnn").run()   # no fc3 in the CNN
    assert not at.exception and not at.error and "link" not in notes(at)
    assert at.selectbox(key="quant_layer").value == "conv1" and "quant_layer" not in at.query_params


# --- teacher mode -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("page", list(TEACHER))
def test_teacher_link_hides_the_advanced_controls(page):
    hidden, kept = TEACHER[page]
    full = widgets(open_link(page))
    assert hidden <= set(full), "the advanced controls exist outside teacher mode"
    at = open_link(page, teacher=True)
    shown = set(widgets(at))
    assert not hidden & shown, hidden & shown
    assert kept <= shown, kept - shown
    assert at.toggle(key="teacher_mode").value is True
    assert any("Teacher mode" in c.value and "teacher=1" in c.value for c in at.caption)
    assert at.query_params["teacher"] == "1"


def test_teacher_mode_uses_the_defaults_and_ignores_advanced_values_in_the_link():
    link = {"prune_ratio": "0.8", "prune_norm": "2", "prune_steps": "9"}
    at = open_link("views/1_Pruning.py", link, teacher=True)
    assert at.slider(key="prune_ratio").value == 0.8
    assert "`prune_norm=2`: hidden in teacher mode" in notes(at) and "`prune_steps=9`" in notes(at)
    assert dict(at.query_params) == {"model": MODEL, "teacher": "1", "prune_ratio": "0.8"}
    assert "in 5 steps" in " ".join(m.value for m in at.markdown)   # the default number of steps


def test_the_sidebar_toggle_switches_teacher_mode_and_the_link():
    at = open_link("views/3_Distillation.py")
    at.slider(key="alpha").set_value(0.25).run()
    at.toggle(key="teacher_mode").set_value(True).run()
    assert "alpha" not in widgets(at) and at.query_params["teacher"] == "1" and "alpha" not in at.query_params
    at.toggle(key="teacher_mode").set_value(False).run()
    assert "alpha" in widgets(at) and "teacher" not in at.query_params


def test_teacher_mode_follows_the_session_to_another_lab():
    at = app("app.py")
    at.query_params.update(model=MODEL, teacher="1")
    at.run()
    at.switch_page("views/1_Pruning.py").run()
    assert "prune_norm" not in widgets(at)
    at.query_params.pop("teacher")   # a link without it, or a switch that drops it: the session remembers
    at.switch_page("views/5_Sensitivity.py").run()
    assert not at.exception and "sens_method" not in widgets(at) and at.query_params["teacher"] == "1"


def test_a_bad_teacher_value_is_ignored_with_a_message():
    at = open_link("views/5_Sensitivity.py", {"teacher": "please"})
    assert at.toggle(key="teacher_mode").value is False and "sens_method" in widgets(at)
    assert any("teacher=please" in c.value for c in at.sidebar.caption)
    assert "teacher" not in at.query_params


def test_float_formatting_never_writes_a_long_tail():
    ratio = U.Float("r", 0.5, 0.0, 0.99, 0.01)
    for i in range(100):
        text = ratio.write(i * 0.01)
        assert len(text) <= 4 and math.isclose(float(text), round(i * 0.01, 2))


# --- links made before one key per setting ------------------------------------------------------------------------

def test_old_text_keys_take_their_new_names_on_a_text_models_link():
    old = {"model": ["minilm"], "text_bits": ["4"], "text_per_channel": ["1"], "text_sens_per_channel": ["0"],
           "teacher": ["1"], "prune_scope": ["global"]}
    assert U.renamed(old, text=True) == {"model": ["minilm"], "teacher": ["1"], "prune_scope": ["global"],
                                         "bit_width": ["4"], "granularity": ["per-channel"],
                                         "sens_granularity": ["per-tensor"]}
    assert U.renamed(U.renamed(old, text=True), text=True) == U.renamed(old, text=True)   # once is enough
    assert len(set(U.RENAMED.values())) == len(U.RENAMED), "one new key per old key"


def test_where_a_link_has_both_keys_the_one_its_lab_read_wins():
    both = {"model": ["minilm"], "bit_width": ["3"], "text_bits": ["6"]}
    assert U.renamed(both, text=True) == {"model": ["minilm"], "bit_width": ["6"]}   # the text lab read text_bits
    digits = {"model": ["digits-mlp"], "bit_width": ["3"], "text_bits": ["6"]}
    assert U.renamed(digits, text=False) == {"model": ["digits-mlp"], "bit_width": ["3"]}   # text_bits never read


def test_an_unreadable_old_switch_is_passed_on_for_the_lab_to_reject():
    assert U.renamed({"text_per_channel": ["maybe"]}, text=True) == {"granularity": ["maybe"]}


@pytest.mark.parametrize("link, want, url", [
    ({"text_sens_kind": "quantize", "text_sens_bits": "3", "text_sens_per_channel": "1"},
     {"sens_kind": "quantize", "sens_bits": 3, "sens_granularity": "per channel"},
     {"sens_kind": "quantize", "sens_bits": "3", "sens_granularity": "per-channel"}),
    ({"text_sens_ratio": "0.7", "sens_budget": "0.02"},   # an old key beside a key both families share
     {"sens_kind": "prune", "sens_ratio": 0.7, "sens_budget": 0.02}, {"sens_ratio": "0.7", "sens_budget": "0.02"}),
])
def test_an_old_text_link_opens_the_same_view_and_the_url_gets_the_new_keys(link, want, url):
    at = open_link("views/5_Sensitivity.py", link, model="minilm")   # the text lab: its scan waits for a button
    shown = widgets(at)
    assert {k: shown[k] for k in want} == want
    assert "link" not in notes(at), notes(at)
    assert dict(at.query_params) == {"model": "minilm"} | url
    at.run()
    assert {k: widgets(at)[k] for k in want} == want and dict(at.query_params) == {"model": "minilm"} | url


def test_an_old_text_key_on_a_classifier_link_changes_nothing():
    at = open_link("views/2_Quantization.py", {"text_bits": "4", "scheme": "asymmetric"})
    assert at.slider(key="bit_width").value == 8 and at.radio(key="scheme").value == "asymmetric"
    assert dict(at.query_params) == {"model": MODEL, "scheme": "asymmetric"}


def test_a_setting_follows_the_lab_to_the_other_family_fitted_to_its_slider():
    at = open_link("views/1_Pruning.py", {"prune_ratio": "0.57"})
    at.sidebar.selectbox(key="model_select").set_value("minilm").run(timeout=600)   # one prune ratio for both
    assert not at.exception and not at.error
    assert at.slider(key="prune_ratio").value == 0.55 and at.query_params["prune_ratio"] == "0.55"


def test_a_value_with_backticks_cannot_break_out_of_the_notice_into_a_link():
    from markdown_it import MarkdownIt

    evil = "x` [here](http://evil.example) ![i](http://evil.example/p.png) `"
    at = open_link("views/1_Pruning.py", {"prune_ratio": evil})
    html = MarkdownIt("commonmark").render(notes(at))
    assert "<a " not in html and "<img" not in html and "default is used" in html
    assert at.slider(key="prune_ratio").value == 0.5


def test_an_unknown_model_in_the_link_is_said_not_replaced_silently():
    at = open_link("views/1_Pruning.py", model="no-such-model")
    said = " ".join(w.value for w in at.warning)
    assert "no-such-model" in said and "does not have" in said and "digits-cnn" in said
    assert at.query_params["model"] != "no-such-model"
    at.run()
    assert not any("no-such-model" in w.value for w in at.warning), "said once"
