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
    widget = f"lesson_{lesson.id}_{index}"
    (at.radio(key=widget).set_value(0) if step.options else at.number_input(key=widget).set_value(step.number.lo)).run()
    at.button(key="lesson_reveal").click().run()
    if any(b.label == "Train" for b in at.button) and not measured(at):   # the step asks for a trained student
        at.button(key="train").click().run()
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
