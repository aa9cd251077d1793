"""The text sample's home page in real headless Chromium: picked in the sidebar, it shows the encoder's own figures."""
import pytest
from playwright.sync_api import expect

import slimcore
from slimcore import text as T
from tests.browser.helpers import choose, expect_metric, metric, wait_idle

pytestmark = pytest.mark.browser


def test_pick_minilm_and_see_its_embeddings(server, page):
    s = slimcore.load_sample("minilm")
    top1 = T.paraphrase_top1(T.embed(s.model, s.test), s.test)
    page.goto(server)
    wait_idle(page)
    choose(page, "Model", "minilm")
    expect_metric(page, "Paraphrase found (top-1)", f"{top1:.1%}")
    expect_metric(page, "Parameters", f"{s.card['parameters']:,}")
    wait_idle(page)
    assert "model=minilm" in page.url
    assert metric(page, "Size (measured)").endswith("MiB") and metric(page, "Latency b=32 (measured)").endswith("ms")
    heat = page.locator("[data-testid='stPlotlyChart'] .js-plotly-plot").nth(2)
    expect(heat).to_be_visible()
    page.wait_for_function("g => g.data.length === 1 && g.data[0].type === 'heatmap'", arg=heat.element_handle())
    assert page.locator("text=Traceback").count() == 0
