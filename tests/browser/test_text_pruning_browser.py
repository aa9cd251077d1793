"""The Pruning lab on minilm in real headless Chromium: moving the Prune ratio slider changes the measured quality,
the non-zero count, the marker on the quality curve and the link."""
import time

import pytest
from playwright.sync_api import expect

import slimcore
from slimcore import pruning as P
from slimcore import text as T
from slimcore import text_prune as TP
from slimcore.families import get
from slimcore.families.encoder import cosine_scorer
from tests.browser.helpers import expect_metric, wait_idle

pytestmark = pytest.mark.browser

CHARTS = "[data-testid='stPlotlyChart'] .js-plotly-plot"


def _marker(page) -> list[float]:
    """The current-ratio line of every visible quality curve (during a rerun the replaced chart stays in the page,
    hidden, until the run ends)."""
    return page.locator(CHARTS).evaluate_all(
        "els => els.filter(e => e.offsetParent !== null && e.layout.title.text.includes('Quality against prune ratio'))"
        ".map(e => (e.layout.shapes || []).map(s => s.x0)[0])")


def test_text_prune_slider_moves_quality_and_curve(server, page):
    s = slimcore.load_sample("minilm")
    ref = T.embed(s.model, s.data.quick_set)
    score = cosine_scorer(s.data.quick_set, ref)
    at30, at50 = (P.evaluate(s.model, TP.config(r), score, family=get("encoder"))[0] for r in (0.3, 0.5))

    page.goto(f"{server}/Pruning?model=minilm")
    expect(page.get_by_text("Pruning lab")).to_be_visible(timeout=120_000)
    expect_metric(page, "Mean cosine to original", f"{at30.score.value:.4f}")
    expect_metric(page, "Non-zero parameters", f"{at30.nonzeros:,}")
    wait_idle(page)
    expect(page.locator(CHARTS)).to_have_count(4, timeout=120_000)
    assert _marker(page) == pytest.approx([0.3])

    thumb = page.get_by_role("slider").first   # Prune ratio: the lab's only slider
    thumb.focus()
    for _ in range(4):                          # 0.30 -> 0.50 in steps of 0.05
        thumb.press("ArrowRight")
    expect_metric(page, "Mean cosine to original", f"{at50.score.value:.4f}")
    expect_metric(page, "Non-zero parameters", f"{at50.nonzeros:,}")
    assert at50.score.value < at30.score.value
    wait_idle(page)
    deadline = time.monotonic() + 30   # plotly redraws the chart in place a moment after the page is idle
    while _marker(page) != pytest.approx([0.5]) and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert _marker(page) == pytest.approx([0.5])
    assert "prune_ratio=0.5" in page.url
    assert page.locator("text=Traceback").count() == 0
    expect(page.get_by_text("What it buys: the real models, timed")).to_be_visible()
    expect(page.locator("[data-testid='stDataFrame']").first).to_be_visible(timeout=120_000)
