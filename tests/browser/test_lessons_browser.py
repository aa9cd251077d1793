"""Every lesson, end to end, in headless Chromium: each step's link opens the lab at the step's setting (nothing in
the link refused, no control away from the step), the reveal waits for a prediction and then shows the measured
figure; and a lesson followed from the Lessons page by its links (in-app navigation, one session) sets each step's
view, not the one the session had."""
import re

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from slimui import lessons as L
from tests.browser.helpers import BACKGROUND, wait_complete, wait_idle

pytestmark = pytest.mark.browser

FOUND = L.load_all()[0]


def predict(page, step: L.Step) -> None:
    box = page.locator(".st-key-lesson_banner")
    if step.options:
        box.locator("[data-testid='stRadio']").get_by_text(step.options[0].label, exact=True).click()
    else:
        assert step.number is not None   # a step without options asks for a number
        field = box.locator("[data-testid='stNumberInput'] input")
        field.fill(f"{step.number.lo:g}")
        field.press("Enter")
    wait_idle(page)


@pytest.mark.parametrize("lesson_id", list(FOUND))
def test_every_step_of_the_lesson_opens_its_view_and_reveals_the_measured_figure(server, page, lesson_id):
    lesson = FOUND[lesson_id]
    for index, step in enumerate(lesson.steps):
        page.goto(server + L.url(lesson, index))
        box = page.locator(".st-key-lesson_banner")
        expect(box).to_contain_text(f"step {index + 1} of {len(lesson.steps)}", timeout=60_000)
        wait_idle(page)
        main = page.locator("[data-testid='stMain']")
        assert "not taken as written" not in main.inner_text()
        assert "away from this step's setting" not in box.inner_text()
        reveal = box.get_by_role("button", name="Reveal the measured answer")
        expect(reveal).to_be_disabled()   # predict first
        assert page.locator("[data-testid='stMain'] [data-testid='stMetric']").count() == 0   # no answer on screen
        predict(page, step)
        reveal.click()
        wait_idle(page)
        train = page.get_by_role("button", name="Train", exact=True)
        run = page.locator("button:visible").filter(has_text=re.compile(r"^Run the .* experiment$"))
        for _ in range(30):   # the step's figure may need a button: a trained student, an experiment run
            wait_complete(page, BACKGROUND)   # nothing left drawing in the background: the buttons stay put
            if "Measured:" in box.inner_text():
                break
            try:   # a button found may be redrawn before the click lands: then look again
                if train.count() and train.is_enabled():
                    train.click(timeout=5_000)
                elif run.count():
                    run.first.click(timeout=5_000)
                else:
                    page.wait_for_timeout(1000)
            except PlaywrightTimeout:
                continue
        expect(box.get_by_text("Measured:")).to_be_visible(timeout=BACKGROUND)
        text = box.inner_text()
        assert re.search(r"Measured: .+ = [-\d.,]+ ?(%|×|KiB|MiB|B|dB)?", text), text
        if step.options:
            assert "is right" in text or "the measurement says" in text
        else:
            assert "You predicted" in text and "off)" in text


def test_a_lesson_followed_by_its_links_sets_each_steps_view(server, page):
    assert "per-layer-vs-global" in FOUND   # the lesson followed below
    page.goto(f"{server}/Pruning?model=digits-cnn&prune_ratio=0.3&prune_method=random")   # the session's own view
    wait_idle(page)
    page.locator("[data-testid='stSidebarNav']").get_by_role("link", name=re.compile("Lessons")).click()  # in-app
    page.wait_for_url(re.compile(r"/Lessons"), timeout=60_000)
    card = page.locator(".st-key-lesson_card_per-layer-vs-global")
    card.get_by_role("link", name="Start ▶").click()
    page.wait_for_url(re.compile(r"/Pruning\?.*lesson=per-layer-vs-global"), timeout=60_000)
    box = page.locator(".st-key-lesson_banner")
    expect(box).to_contain_text("step 1 of 4", timeout=60_000)
    wait_idle(page)
    expect(page.locator("[data-testid='stSliderThumbValue']").first).to_have_text("0.80")
    expect(page.get_by_role("combobox", name="Method")).to_have_value("L1 magnitude |w|")
    box.get_by_role("link", name="Next step →").click()
    expect(box).to_contain_text("step 2 of 4", timeout=60_000)
    wait_idle(page)
    assert "prune_scope=global" in page.url
    expect(page.locator("[data-testid='stRadio']", has_text="Scope")
           .locator("input[type=radio]").nth(1)).to_be_checked()
    assert "away from this step's setting" not in box.inner_text()
