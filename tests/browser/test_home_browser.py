"""The home page in real headless Chromium: it renders, and switching the model changes the figures."""
import pytest
from playwright.sync_api import expect

import slimcore
from tests.browser.helpers import BACKGROUND, choose, expect_metric, metric, wait_for_chart, wait_idle

pytestmark = pytest.mark.browser


def test_home_renders_and_switches_model(server, page):
    page.goto(server)
    default = slimcore.load_sample(slimcore.DEFAULT_SAMPLE)
    expect_metric(page, "Test accuracy", f"{default.card['test_accuracy']:.2%}")
    wait_idle(page)
    expect(page.locator("[data-testid='stPlotlyChart'] .js-plotly-plot")).to_have_count(3, timeout=BACKGROUND)
    assert page.locator("text=Traceback").count() == 0
    gallery = page.locator("[data-testid='stPlotlyChart'] .js-plotly-plot").nth(2)
    assert set(gallery.evaluate("e => e.data.map(t => t.type)")) == {"heatmap"}  # digit images

    choose(page, "Model", "mnist1d-mlp")
    other = slimcore.load_sample("mnist1d-mlp")
    expect_metric(page, "Test accuracy", f"{other.card['test_accuracy']:.2%}")
    expect_metric(page, "Parameters", f"{other.card['parameters']:,}")
    wait_idle(page)
    assert "mnist1d-mlp" in page.url
    expect(page.locator("[data-testid='stPlotlyChart'] .js-plotly-plot")).to_have_count(3, timeout=BACKGROUND)
    expect(gallery).to_be_visible()
    wait_for_chart(page, 2, "g => g.data.every(t => t.type === 'scatter')")  # the gallery: 1-D signals
    assert metric(page, "Size (measured)").endswith("KiB")
