"""The Trade-offs lab (one page for every family) on minilm in real headless Chromium: build a small grid behind its
button, see its points, inspect one."""
import pytest
from playwright.sync_api import expect

import slimcore
from slimcore import text as T
from slimcore import text_quant as TQ
from tests.browser.helpers import expect_metric, wait_for_chart, wait_idle

pytestmark = pytest.mark.browser


def _drop(page, label: str, option: str) -> None:
    """Remove one chosen option from the multiselect with this label."""
    box = page.locator("[data-testid='stMultiSelect']", has_text=label)
    box.get_by_role("button", name=f"Remove {option}").first.click()  # the chip's delete control
    wait_idle(page)


def test_text_grid_builds_and_a_point_opens(server, page):
    s = slimcore.load_sample("minilm")
    ref = T.embed(s.model, s.data.quick_set)
    int8 = T.evaluate(TQ.int8_text(s.model, per_channel=True).model, s.data.quick_set, ref)

    page.goto(f"{server}/Trade-offs?model=minilm")
    expect(page.get_by_role("button", name="Build the")).to_be_visible(timeout=120_000)
    wait_idle(page)
    page.get_by_text("Structured too").first.click()
    wait_idle(page)   # single weights only: unpruned and -50 %
    _drop(page, "Prune ratios", "25%")
    _drop(page, "Precisions", "4-bit fake quant (simulated)")
    run = page.get_by_role("button", name="Build the 4 points")
    expect(run).to_be_visible()
    run.click()
    chart = page.locator("[data-testid='stPlotlyChart'] .js-plotly-plot").first
    expect(chart).to_be_visible(timeout=180_000)
    wait_idle(page)
    # plotly keeps the decoded arrays in _fullData (data may still hold the base64 form)
    wait_for_chart(page, 0, "g => g._fullData.filter(t => t.mode === 'markers' && t.name !== 'chosen')"
                            ".reduce((n, t) => n + t.x.length, 0) === 4")
    page.get_by_role("combobox", name="Configuration").click()
    page.get_by_role("option", name="unpruned · int8").click()
    expect_metric(page, "Mean cosine to original", f"{int8.mean_cosine:.4f}")
    assert page.locator("text=Traceback").count() == 0
