"""A/B comparison and projector mode in headless Chromium: a pinned A survives a reload (it is in the link), and in
projector mode every lab's main control and main chart fit one 1280 x 800 screen, with large type."""
import re

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import BACKGROUND, wait_complete, wait_idle

pytestmark = pytest.mark.browser


def test_a_pinned_setting_survives_a_reload(server, page):
    page.goto(f"{server}/Pruning?model=digits-cnn")
    wait_idle(page)
    page.get_by_role("button", name="Pin as A").click()
    page.wait_for_url(re.compile(r"ab=digits-cnn"), timeout=60_000)
    wait_idle(page)
    thumb = page.get_by_role("slider").first
    thumb.focus()
    for _ in range(3):
        thumb.press("ArrowRight")
    page.wait_for_url(re.compile(r"prune_ratio=0\.53"), timeout=60_000)
    panel = page.locator(".st-key-ab_panel")
    expect(panel).to_contain_text("prune_ratio: 0.5 → 0.53", timeout=60_000)
    wait_idle(page)
    before = panel.locator("[data-testid='stDataFrame']").inner_text()
    page.reload()
    expect(panel).to_contain_text("prune_ratio: 0.5 → 0.53", timeout=60_000)
    wait_idle(page)
    assert panel.locator("[data-testid='stDataFrame']").inner_text() == before   # the same A, the same B
    assert "ab=digits-cnn" in page.url and "prune_ratio=0.53" in page.url
    page.get_by_role("button", name="Back to A").click()
    expect(page.locator("[data-testid='stSliderThumbValue']").first).to_have_text("0.50", timeout=60_000)


@pytest.mark.parametrize("lab,chart", [("Pruning", 0), ("Quantization", 0), ("Distillation", 1),
                                       ("Trade-offs", 0), ("Sensitivity", 0)])
def test_projector_mode_fits_the_main_control_and_chart_on_one_screen(server, browser, lab, chart):
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    page = ctx.new_page()
    try:
        page.goto(f"{server}/{lab}?model=digits-cnn&projector=1")
        page.wait_for_function(f"() => document.querySelectorAll('[data-testid=stPlotlyChart]').length > {chart}",
                               timeout=BACKGROUND)
        wait_complete(page, BACKGROUND)
        size = page.evaluate("() => getComputedStyle(document.documentElement).fontSize")
        assert size == "20px"
        assert "projector=1" in page.url
        control = page.locator("[data-testid='stMain'] [data-testid='stSlider'], "
                               "[data-testid='stMain'] [data-testid='stMultiSelect']").first.bounding_box()
        graph = page.locator("[data-testid='stPlotlyChart']").nth(chart).bounding_box()
        assert control["y"] >= 0 and control["y"] + control["height"] <= 800, control
        assert graph["y"] >= 0 and graph["y"] + graph["height"] <= 800, graph
    finally:
        ctx.close()
