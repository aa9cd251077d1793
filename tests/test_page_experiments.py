"""AppTest of the Distillation page's experiments section (slimui.experiments.section), drawn alone: nothing is trained
in a page run until asked; once asked, the results are slimcore.experiments' own numbers, kept for every session; the
slider and the class select compute their new settings by themselves; published figures are named as such; encoders
get a note. The students' training is shrunk to one epoch and two seeds (the page's defaults take minutes)."""
from dataclasses import replace

import pytest
from streamlit.testing.v1 import AppTest

import slimcore
from slimcore import experiments as E
from tests.apptest_utils import array, figures

TINY = replace(E.TRAINING, epochs=1)


def _section(name: str, teacher: bool) -> None:
    from slimui import cache, experiments

    experiments.section(cache.sample(name), teacher)


def _encoder() -> None:
    import types

    from slimcore.text import TextData, TextSplit
    from slimui import experiments

    empty = TextSplit((), (), (), (), ())
    experiments.section(types.SimpleNamespace(name="an encoder", data=TextData(empty, empty, "")), False)


def section(teacher: bool = False) -> AppTest:
    return AppTest.from_function(_section, args=("digits-cnn", teacher), default_timeout=300)


@pytest.fixture
def tiny(monkeypatch, fresh_results):
    from slimui import experiments as ui

    monkeypatch.setattr(ui, "TRAINING", TINY)
    monkeypatch.setattr(ui, "SEEDS", 2)
    monkeypatch.setattr(ui, "FRACTIONS", (0.05, 1.0))
    return ui


def text(at: AppTest) -> str:
    return " ".join(e.value for elements in (at.markdown, at.caption, at.info) for e in elements)


def test_nothing_is_trained_until_asked(tiny):
    at = section().run()
    assert not at.exception and not at.error
    assert [t.label for t in at.tabs] == ["Scarce labels", "Dark knowledge", "Weak vs strong"]
    assert not figures(at)
    assert len(at.info) == 3 and "Not computed yet" in at.info[0].value and "about" in at.info[0].value
    for key in ("exp_run_scarce_button", "exp_run_dark_button", "exp_run_ws_button"):
        assert at.button(key=key).label.startswith("Run the")
    assert at.slider(key="exp_labels").value == 5 and at.selectbox(key="exp_class").value == 3


def test_scarce_labels_draws_the_experiments_own_numbers_and_keeps_them(tiny):
    at = section().run()
    at.button(key="exp_run_scarce_button").click().run()
    assert not at.exception and not at.error
    chart = figures(at)["exp_scarce_chart"]
    s = slimcore.load_sample("digits-cnn")
    direct = [E.scarce_labels(s, E.ScarceConfig(f, 2, TINY)) for f in (0.05, 1.0)]
    assert array(chart["data"][0]["x"]).tolist() == [5, 100]
    assert array(chart["data"][0]["y"]) == pytest.approx([r.distilled.mean * 100 for r in direct])
    assert array(chart["data"][2]["y"]) == pytest.approx([r.scratch.mean * 100 for r in direct])
    assert any(d["name"].startswith("published reference") for d in chart["data"])
    table = at.dataframe[0].value
    assert len(table) == 6 and set(table["seeds"]) == {2}
    assert "Published reference, not ours" in text(at) and "same budget" in text(at)
    at.slider(key="exp_labels").set_value(37).run()               # asked once: a new share computes by itself
    assert array(figures(at)["exp_scarce_chart"]["data"][0]["x"]).tolist() == [5, 37, 100]
    again = section().run()                                         # another session: read from the result cache
    assert "exp_scarce_chart" in figures(again) and "exp_run_scarce_button" not in [b.key for b in again.button]


def test_dark_knowledge_follows_the_class_select(tiny):
    at = section().run()
    at.button(key="exp_run_dark_button").click().run()
    assert not at.exception and not at.error
    chart = figures(at)["exp_dark_chart"]
    r = E.dark_knowledge(slimcore.load_sample("digits-cnn"), E.DarkConfig(3, 2, TINY))
    assert array(chart["data"][0]["y"])[:2] == pytest.approx([r.recall_distilled.mean * 100,
                                                              r.accuracy_distilled.mean * 100])
    assert array(chart["data"][1]["y"])[0] == pytest.approx(0.0)   # the scratch student never says 3
    assert "published reference" in chart["data"][2]["name"]
    at.selectbox(key="exp_class").set_value(7).run()
    assert "no 7" in figures(at)["exp_dark_chart"]["layout"]["title"]["text"]


def test_weak_vs_strong_shows_four_arms(tiny):
    at = section(teacher=True).run()
    at.button(key="exp_run_ws_button").click().run()
    assert not at.exception and not at.error
    chart = figures(at)["exp_ws_chart"]
    assert len(array(chart["data"][0]["y"])) == 4
    table = at.dataframe[0].value
    assert list(table["student"]) == list(E.ARMS.values()) and "per seed, %" not in table.columns   # teacher mode


def test_encoders_get_a_note():
    at = AppTest.from_function(_encoder).run()
    assert not at.exception
    assert "classifiers" in at.info[0].value and not at.tabs
