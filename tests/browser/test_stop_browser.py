"""Stopping background work in real headless Chromium: the Trade-offs grid on minilm (slow: a button starts it) is
stopped from its progress bar, the page says how far it got and offers to go on, and going on draws the grid."""
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Served
from tests.browser.helpers import BACKGROUND, CHARTS, STATE, wait_for_chart, wait_idle

pytestmark = pytest.mark.browser   # tests/conftest.py marks everything under tests/browser serial as well


def no_errors(page) -> None:
    assert page.locator("text=Traceback").count() == 0
    assert page.locator("[data-testid='stException']").count() == 0


def test_a_stopped_grid_keeps_its_pieces_and_goes_on(browser, tmp_path):
    served = Served(tmp_path / "results")   # its own result cache: no grid piece of another test on disk
    ctx = browser.new_context(viewport={"width": 1400, "height": 1800})
    try:
        page = ctx.new_page()
        page.set_default_timeout(60_000)
        page.goto(f"{served.url}/Trade-offs?model=minilm")
        build = page.get_by_role("button", name="Build the")   # "Build the N points" (key tradeoff_run)
        expect(build).to_be_visible(timeout=120_000)
        wait_idle(page)
        build.click()

        # The progress bar and its Stop button, drawn by a fragment redrawn every 0.5 s: located afresh each time.
        stop = page.get_by_role("button", name="Stop", exact=True)
        expect(stop).to_be_visible(timeout=BACKGROUND)
        stop.click()
        stopped = page.get_by_text("stopped after")
        go_on = page.get_by_role("button", name="Go on", exact=True)
        expect(stopped).to_be_visible(timeout=BACKGROUND)
        expect(go_on).to_be_visible(timeout=BACKGROUND)
        wait_idle(page)
        assert "(what was finished is kept)" in stopped.first.inner_text()
        expect(page.locator(CHARTS)).to_have_count(0)   # no grid chart: the grid is not complete
        no_errors(page)

        go_on.click()
        expect(stopped).to_have_count(0, timeout=BACKGROUND)   # resubmitted: the message is gone
        chart = page.locator("[data-testid='stPlotlyChart'] .js-plotly-plot").first
        expect(chart).to_be_visible(timeout=BACKGROUND)
        page.wait_for_function(f"() => {STATE} === 'notRunning'", timeout=BACKGROUND)
        # the grid chart (the first one) has its points, the missing pieces computed, the kept ones read
        wait_for_chart(page, 0, "g => g._fullData.some(t => t.mode === 'markers' && t.x.length > 0)",
                       timeout=BACKGROUND)
        expect(page.get_by_role("button", name="Go on", exact=True)).to_have_count(0)
        no_errors(page)
    finally:
        ctx.close()
        served.stop()
