"""The Quantization lab on minilm in real headless Chromium: moving the Bit width slider with the keyboard redraws
the grid, the curve's marker and the simulated mean cosine, which is the one slimcore measures."""
import pytest
from playwright.sync_api import expect

import slimcore
from slimcore import text as T
from slimcore import text_quant as TQ
from slimcore.quantization import QuantConfig
from tests.browser.helpers import expect_metric, wait_idle

pytestmark = pytest.mark.browser

CHARTS = "[data-testid='stPlotlyChart'] .js-plotly-plot"


def wait_for_grid(page, levels: str, bits: int) -> None:
    """Wait until the weight histogram names this many levels and the curve's marker stands at this bit width."""
    page.wait_for_function(
        "([t, b]) => { const c = document.querySelectorAll(\"[data-testid='stPlotlyChart'] .js-plotly-plot\");"
        " return c.length === 5 && c[0].data && c[0].data[1].name.startsWith(t)"
        " && c[4].layout && c[4].layout.shapes && c[4].layout.shapes[0].x0 === b; }",
        arg=[levels, bits], timeout=600_000)


def test_bits_slider_moves_the_grid_and_the_measured_cosine(server, page):
    s = slimcore.load_sample("minilm")
    ref = T.embed(s.model, s.data.quick_set)
    want = {b: format(T.evaluate(TQ.fake_quantized(s.model, QuantConfig(b, per_channel=False)), s.data.quick_set,
                                 ref).mean_cosine, ".4f")
            for b in (8, 7)}

    page.goto(f"{server}/Quantization?model=minilm")
    wait_for_grid(page, "255 quantization levels", 8)     # 8-bit symmetric: 2^8 - 1 levels
    expect_metric(page, "Mean cosine to original", want[8])
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=600_000)
    wait_idle(page)   # the first visit measures the curve, builds int8 and times it: let it finish

    thumb = page.locator("[data-testid='stSlider']", has_text="Bit width").locator("input[type='range']")
    thumb.focus()
    page.keyboard.press("ArrowLeft")
    wait_for_grid(page, "127 quantization levels", 7)
    expect_metric(page, "Mean cosine to original", want[7])
    assert thumb.input_value() == "7"
    expect(page.get_by_text("Size at 7-bit (modelled)")).to_be_visible()
    assert page.locator("text=Traceback").count() == 0
    assert page.locator("[data-testid='stException']").count() == 0
