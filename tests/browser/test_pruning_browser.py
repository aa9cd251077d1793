"""The Pruning page in real headless Chromium: moving the Prune ratio slider changes the figures and the plots."""
import time

import pytest
from playwright.sync_api import expect

import slimcore
from slimcore import pruning as P
from tests.browser.helpers import BACKGROUND, expect_metric, wait_idle

pytestmark = pytest.mark.browser


def _mask_mean(page):
    charts = page.locator("[data-testid='stPlotlyChart'] .js-plotly-plot")
    # the sparsity mask (looked up by its title); plotly.js keeps a binary-encoded z as {dtype, bdata, shape} with the
    # decoded rows in _inputArray
    return charts.evaluate_all("els => { const e = els.filter(e => e.offsetParent !== null &&"
                               " e.layout.title.text.includes(' mask'))[0]; const z = e.data[0].z; let s = 0, n = 0;"
                          " for (const row of Array.from(z._inputArray || z))"
                          "   for (const v of Array.from(row.length === undefined ? [row] : row)) { s += v; n += 1 }"
                          " return s / n }")


def test_prune_ratio_slider_moves_figures_and_plots(server, page):
    page.goto(f"{server}/Pruning")
    s = slimcore.load_sample(slimcore.DEFAULT_SAMPLE)
    at_half = P.evaluate(s.model, P.PruneConfig(0.5), s.test)[0]
    expect_metric(page, "Non-zero parameters", f"{at_half.nonzeros:,}")
    wait_idle(page)
    expect(page.locator("[data-testid='stPlotlyChart'] .js-plotly-plot")).to_have_count(4, timeout=BACKGROUND)
    kept_before = _mask_mean(page)
    assert kept_before == pytest.approx(0.5, abs=0.01)

    thumb = page.get_by_role("slider").first  # the slider's range input (Prune ratio is the page's only slider)
    thumb.focus()
    for _ in range(30):  # 0.50 -> 0.80 in steps of 0.01
        thumb.press("ArrowRight")
    at_80 = P.evaluate(s.model, P.PruneConfig(0.8), s.test)[0]
    expect_metric(page, "Non-zero parameters", f"{at_80.nonzeros:,}")
    expect_metric(page, "Test accuracy", f"{at_80.score.value:.2%}")
    wait_idle(page)
    page.wait_for_function("() => { const c = document.querySelectorAll('[data-testid=stPlotlyChart] .js-plotly-plot');"
                           " return c.length === 4 }")
    deadline = time.monotonic() + 30  # plotly redraws the chart in place a moment after the page is idle
    while abs(_mask_mean(page) - 0.2) > 0.01 and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert _mask_mean(page) == pytest.approx(0.2, abs=0.01)
    assert page.locator("text=Traceback").count() == 0
    expect(page.get_by_text("What it buys: the real models, timed")).to_be_visible()
    expect(page.locator("[data-testid='stDataFrame']").first).to_be_visible()
