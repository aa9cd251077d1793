"""The Trade-offs and Sensitivity pages in real headless Chromium: the sweep, its frontier and the pipeline draw,
switching the x axis redraws the chart, the budget slider moves the allocation, and no traceback appears."""
import pytest
from playwright.sync_api import expect

from tests.browser.helpers import BACKGROUND, wait_idle

pytestmark = pytest.mark.browser

CHARTS = "[data-testid='stPlotlyChart'] .js-plotly-plot"


def no_errors(page) -> None:
    assert page.locator("text=Traceback").count() == 0
    assert page.locator("[data-testid='stException']").count() == 0


def test_tradeoffs_draw_and_the_x_axis_switches(server, page):
    page.goto(server + "/Trade-offs")
    expect(page.locator(CHARTS)).to_have_count(3, timeout=BACKGROUND)   # frontier chart, waterfall, published ratios
    wait_idle(page)
    no_errors(page)
    chart = page.locator(CHARTS).nth(0)
    assert "size" in chart.evaluate("e => e.layout.xaxis.title.text")
    assert chart.evaluate("e => e.data.some(t => t.name === 'Pareto frontier')")
    ratios = page.locator(CHARTS).nth(2).evaluate("e => e.data.map(t => t.name)")
    assert any(n.endswith("(reference)") for n in ratios) and any(n.startswith("ours") for n in ratios)

    page.locator("[data-testid='stRadio']", has_text="Accuracy against").get_by_text("MACs", exact=True).click()
    page.wait_for_function("() => { const c = document.querySelectorAll(\"[data-testid='stPlotlyChart'] "
                           ".js-plotly-plot\"); return c.length === 3 && c[0].layout && "
                           "c[0].layout.xaxis.title.text.includes('multiply-accumulates') }", timeout=60_000)
    wait_idle(page)
    no_errors(page)
    expect(page.get_by_text("Every experiment")).to_be_visible()
    expect(page.get_by_role("button", name="Download the experiments (CSV)")).to_be_visible()


def test_sensitivity_draws_and_the_budget_moves_the_allocation(server, page):
    page.goto(server + "/Sensitivity")
    expect(page.locator(CHARTS)).to_have_count(3, timeout=BACKGROUND)   # heatmap, curves, allocation bars
    wait_idle(page)
    no_errors(page)
    size = page.locator("[data-testid='stMetric']", has_text="Size (modelled)").locator("[data-testid='stMetricValue']")
    before = size.inner_text()
    thumb = page.locator("[data-testid='stSlider']", has_text="Accuracy budget").locator("input[type='range']")
    thumb.focus()
    page.keyboard.press("End")   # 5 points: more room, a smaller model
    expect(size).not_to_have_text(before, timeout=60_000)
    wait_idle(page)
    expect(page.locator(CHARTS)).to_have_count(3, timeout=60_000)
    no_errors(page)
