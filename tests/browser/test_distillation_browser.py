"""The Distillation page in real headless Chromium: the temperature slider softens the teacher live, and Train
produces the curves and the comparison table."""
import pytest
from playwright.sync_api import expect

from tests.browser.helpers import BACKGROUND, wait_idle

pytestmark = pytest.mark.browser


def _soft_trace_name(page):
    chart = page.locator("[data-testid='stPlotlyChart'] .js-plotly-plot").nth(1)
    return chart.evaluate("e => e.data[1].name")


def test_temperature_and_training(server, page):
    page.goto(f"{server}/Distillation")
    wait_idle(page)
    expect(page.locator("[data-testid='stPlotlyChart'] .js-plotly-plot")).to_have_count(2, timeout=BACKGROUND)
    assert _soft_trace_name(page).startswith("T = 4 ")
    thumb = page.get_by_role("slider").first  # Temperature
    thumb.focus()
    for _ in range(4):  # 4.0 -> 6.0 in steps of 0.5
        thumb.press("ArrowRight")
    page.wait_for_function("() => { const c = document.querySelectorAll('[data-testid=stPlotlyChart] .js-plotly-plot');"
                           " return c.length > 1 && c[1].data[1].name.startsWith('T = 6 ') }")
    wait_idle(page)

    epochs = page.get_by_label("Epochs")
    epochs.fill("2")
    epochs.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Train", exact=True).click()
    expect(page.get_by_text("against the one trained on labels alone")).to_be_visible(timeout=120_000)
    wait_idle(page)
    expect(page.locator("[data-testid='stPlotlyChart'] .js-plotly-plot")).to_have_count(4, timeout=BACKGROUND)
    assert page.locator("text=Traceback").count() == 0
