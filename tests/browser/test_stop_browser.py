"""Stopping background work in real headless Chromium: the Trade-offs grid on minilm (slow: a button starts it) is
stopped from its progress bar, the pieces finished stay kept on disk, the page says how far it got and offers to go
on, and going on computes the rest and draws the grid."""
import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Served
from tests.browser.helpers import BACKGROUND, STATE, wait_for_chart, wait_idle

pytestmark = pytest.mark.browser   # tests/conftest.py marks everything under tests/browser serial as well

# The grid chart: the first plotly chart, titled "... against size (...)"; its points, the chosen one apart.
POINTS = ("g => g.layout.title.text.includes(' against ') ? g._fullData.filter(t => t.mode === 'markers' && "
          "t.name !== 'chosen').reduce((n, t) => n + t.x.length, 0) : -1")


def no_errors(page) -> None:
    assert page.locator("text=Traceback").count() == 0
    assert page.locator("[data-testid='stException']").count() == 0


def test_a_stopped_grid_keeps_its_pieces_and_goes_on(browser, tmp_path):
    results = tmp_path / "results"
    served = Served(results)   # its own result cache: no grid piece of another test on disk
    ctx = browser.new_context(viewport={"width": 1400, "height": 1800})
    try:
        page = ctx.new_page()
        page.set_default_timeout(60_000)
        main = page.locator("[data-testid='stMain']")   # the page's own buttons, not the toolbar's (it has a
        page.goto(f"{served.url}/Trade-offs?model=minilm")   # "Stop" of its own while a script runs)
        build = main.get_by_role("button", name=re.compile(r"^Build the \d+ points$"))   # key tradeoff_run
        expect(build).to_be_visible(timeout=120_000)
        wait_idle(page)
        points = int(re.search(r"\d+", build.inner_text()).group())
        build.click()

        # The progress bar and its Stop button, in a fragment redrawn every 0.5 s: every locator is looked up afresh.
        stop = main.get_by_role("button", name="Stop", exact=True)
        expect(stop).to_be_visible(timeout=BACKGROUND)
        expect(main.locator("[data-testid='stProgress']")).to_be_visible()
        stop.click()
        stopped = main.get_by_text("stopped after")
        expect(stopped).to_be_visible(timeout=BACKGROUND)
        expect(main.get_by_role("button", name="Go on", exact=True)).to_be_visible(timeout=BACKGROUND)
        wait_idle(page)
        note = stopped.first.inner_text()
        done, total = map(int, re.search(r"stopped after (\d+) of (\d+) \(what was finished is kept\)", note).groups())
        assert note.startswith("Sweeping the grid") and 0 < done < total, note
        assert len(list(results.glob("grid_piece-*.json"))) == done   # what was finished is kept on disk
        expect(stop).to_have_count(0)
        expect(main.get_by_role("button", name="Build the")).to_have_count(0)   # not offered again from scratch
        no_errors(page)

        main.get_by_role("button", name="Go on", exact=True).click()
        expect(stopped).to_have_count(0, timeout=BACKGROUND)   # resubmitted: the message is gone
        wait_for_chart(page, 0, f"g => ({POINTS})(g) === {points}", timeout=BACKGROUND)   # every point drawn
        page.wait_for_function(f"() => {STATE} === 'notRunning'", timeout=BACKGROUND)
        assert len(list(results.glob("grid_piece-*.json"))) == total   # the missing pieces, computed and kept
        expect(main.get_by_role("button", name="Go on", exact=True)).to_have_count(0)
        no_errors(page)
    finally:
        ctx.close()
        served.stop()
