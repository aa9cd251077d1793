"""The Quantization page in real headless Chromium: moving the Bit width slider with the keyboard redraws the grid,
the accuracy and the curve's marker, with no traceback."""
import pytest
from playwright.sync_api import expect

from tests.browser.helpers import metric, wait_idle

pytestmark = pytest.mark.browser

CHARTS = "[data-testid='stPlotlyChart'] .js-plotly-plot"


def legend_of_levels(page) -> str:
    """The name of the grid-levels trace of the weight histogram (it counts the levels)."""
    return page.locator(CHARTS).nth(0).evaluate("e => e.data[1].name")


def wait_for_levels(page, text: str) -> None:
    page.wait_for_function(
        "t => { const c = document.querySelectorAll(\"[data-testid='stPlotlyChart'] .js-plotly-plot\");"
        " return c.length === 5 && c[0].data && c[0].data[1].name.startsWith(t); }", arg=text, timeout=180_000)
    wait_idle(page)


def test_bit_width_slider_redraws_the_figures(server, page):
    page.goto(server + "/Quantization")
    wait_for_levels(page, "255 quantization levels")  # 8-bit symmetric: 2^8 - 1 levels
    expect(page.locator(CHARTS)).to_have_count(5)
    assert page.locator("text=Traceback").count() == 0
    acc8 = metric(page, "Accuracy (simulated)")
    marker = "e => e.data.find(t => t.name === 'current setting').x[0]"
    assert page.locator(CHARTS).nth(4).evaluate(marker) == 8

    # Streamlit 1.67's slider thumb is an <input type="range"> (implicit role "slider", no role attribute)
    thumb = page.locator("[data-testid='stSlider']", has_text="Bit width").locator("input[type='range']")
    thumb.focus()
    page.keyboard.press("ArrowLeft")
    wait_for_levels(page, "127 quantization levels")
    assert page.locator(CHARTS).nth(4).evaluate(marker) == 7

    page.keyboard.press("Home")  # 1 bit: binary, two levels
    wait_for_levels(page, "2 quantization levels")
    assert thumb.input_value() == "1"
    expect(page.locator("[data-testid='stMetric']", has_text="Accuracy (simulated)").locator(
        "[data-testid='stMetricValue']")).not_to_have_text(acc8)
    assert page.locator(CHARTS).nth(4).evaluate(marker) == 1

    page.keyboard.press("End")  # 16 bits: too many levels to draw each
    wait_for_levels(page, "65,535 quantization levels")
    assert "every" in legend_of_levels(page)
    assert page.locator("text=Traceback").count() == 0
    assert page.locator("[data-testid='stException']").count() == 0
