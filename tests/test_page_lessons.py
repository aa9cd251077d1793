"""Every lesson step in AppTest: its link opens the lab at the step's setting (no setting refused, none moved), the
reveal waits for a prediction, and then shows the figure the lab measured — for a Pruning score, the very value of
the page's accuracy metric. The Lessons page lists every lesson with a link to its first step."""
import time

import pytest

from slimui import lessons as L
from slimui.safe import md
from tests.apptest_utils import app

STEPS = [(lesson.id, i) for lesson in L.load_all()[0].values() for i in range(len(lesson.steps))]


def open_step(lesson: L.Lesson, index: int):
    page, query = L.link(lesson, index)
    at = app(page, timeout=600)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def measured(at) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith("**Measured:**")]


@pytest.mark.parametrize("lesson_id,index", STEPS, ids=[f"{a}-{i + 1}" for a, i in STEPS])
def test_a_step_opens_its_view_and_reveals_the_measured_figure(lesson_id, index):
    lesson = L.load_all()[0][lesson_id]
    step = lesson.steps[index]
    at = open_step(lesson, index)
    assert not at.exception and not at.error, (at.exception, at.error)
    assert not [i.value for i in at.info if "not taken as written" in i.value]
    assert not [w.value for w in at.warning if "away from this step's setting" in w.value]
    assert any(f"step {index + 1} of {len(lesson.steps)}" in m.value for m in at.markdown)
    assert at.button(key="lesson_reveal").disabled   # predict first
    assert not at.metric and not at.get("plotly_chart")   # and the figures wait for the prediction
    widget = f"lesson_{lesson.id}_{index}"
    (at.radio(key=widget).set_value(0) if step.options else at.number_input(key=widget).set_value(step.number.lo)).run()
    assert not at.metric   # a prediction alone does not show the answer
    at.button(key="lesson_reveal").click().run()
    if any(b.label == "Train" for b in at.button) and not measured(at):   # the step asks for a trained student
        at.button(key="train").click().run()
    for button in [b for b in at.button if (b.key or "").startswith("exp_run_")]:   # an experiment to run
        if not measured(at):
            button.click().run()
    deadline = time.monotonic() + 300
    while not measured(at) and time.monotonic() < deadline:   # a figure the page measures in the background
        time.sleep(1)
        at.run()
    assert measured(at), [i.value for i in at.info]
    if step.options:
        assert any("is right" in s.value for s in at.success) or any("the measurement says" in e.value
                                                                     for e in at.error)
    if step.lab == "Pruning" and step.figure == "score":
        accuracy = next(m.value for m in at.metric if m.label == "Test accuracy")
        assert f"= **{accuracy}**" in measured(at)[0]


def test_the_lessons_page_lists_every_lesson_with_a_link_to_its_first_step():
    at = app("views/6_Lessons.py").run()
    assert not at.exception and not at.warning
    found = L.load_all()[0]
    assert len(found) >= 6
    text = " ".join(m.value for m in at.markdown)
    for lesson in found.values():
        assert md(lesson.title) in text


@pytest.mark.parametrize("step", ["²", "0", "99999", "-1", "1e3", ""])
def test_a_broken_step_in_the_link_is_a_note_not_a_crash(step):
    at = app("views/1_Pruning.py")
    at.query_params["lesson"] = "what-pruning-removes"
    at.query_params["step"] = step
    at.run()
    assert not at.exception and not at.error
    assert any("not on this server" in i.value for i in at.info)
    assert at.metric   # the lab itself is drawn


def test_back_to_the_steps_setting_restores_it_after_the_student_moved_a_control():
    lesson = L.load_all()[0]["per-layer-vs-global"]
    at = open_step(lesson, 0)
    at.slider(key="prune_ratio").set_value(0.3).run()
    assert any("away from this step's setting" in w.value for w in at.warning)
    at.button(key="lesson_back").click().run()
    assert at.slider(key="prune_ratio").value == 0.8
    assert not any("away from this step's setting" in w.value for w in at.warning)


def test_a_step_drops_an_ab_pin_and_the_settings_the_session_had():
    at = app("views/1_Pruning.py").run()
    at.slider(key="prune_ratio").set_value(0.3).run()
    at.button(key="ab_pin").click().run()
    lesson = L.load_all()[0]["per-layer-vs-global"]
    page, query = L.link(lesson, 1)
    at.switch_page(page)
    at.query_params.clear() if hasattr(at.query_params, "clear") else None
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    assert at.slider(key="prune_ratio").value == 0.8 and at.radio(key="prune_scope").value == "global"
    assert "ab" not in at.query_params and not [d for d in at.dataframe if "B (now)" in d.value.columns]
