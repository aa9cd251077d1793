"""The Distillation lab on the text sample in real headless Chromium: moving the temperature reshapes the teacher's
in-batch similarity distribution at once, with the right numbers, and writes the setting into the link."""
import numpy as np
import pytest
import torch
from playwright.sync_api import expect

import slimcore
from slimcore import text_distill as TD
from tests.browser.helpers import expect_metric, wait_for_chart, wait_idle

pytestmark = pytest.mark.browser


def _entropy(rows: torch.Tensor, t: float) -> str:
    p = torch.softmax(rows[0] / t, 0).double().numpy()
    return f"{float(-(p * np.log2(p)).sum()):.2f} bits"


def test_temperature_slider_reshapes_the_similarity_distribution(server, page):
    s = slimcore.load_sample("minilm")
    pool = TD.training_pool(s.data.train, 0)
    batch = TD.batches(pool, 32, 0, 0)[0]
    rows = TD.similarity_logits(TD.embed_ids(s.model, tuple(pool.ids[i] for i in batch)))

    page.goto(f"{server}/Distillation?model=minilm")
    wait_idle(page)
    expect_metric(page, "Teacher's entropy", _entropy(rows, 0.2))
    chart = page.locator("[data-testid='stPlotlyChart'] .js-plotly-plot").first
    expect(chart).to_be_visible()
    wait_for_chart(page, 0, "g => g.layout.title.text.includes('T = 0.2:')")
    top = chart.evaluate("g => Math.max(...Array.from(g.data[0].y))")
    # all 31 other sentences drawn as categories (plotly would read '#1' as a number and drop '#1 ★')
    assert chart.evaluate("g => g._fullLayout.xaxis.type") == "category"
    assert chart.evaluate("g => g._fullData[0].x.length") == 31

    thumb = page.get_by_role("slider", name="Temperature T of the similarity softmax")
    thumb.focus()
    for _ in range(3):   # 0.2 -> 0.3 -> 0.5 -> 0.7 (log-spaced steps)
        thumb.press("ArrowRight")
    expect_metric(page, "Teacher's entropy", _entropy(rows, 0.7))
    page.wait_for_function("() => { const c = document.querySelectorAll('[data-testid=stPlotlyChart] .js-plotly-plot');"
                           " return c.length === 1 && c[0].layout.title.text.includes('T = 0.7:') }")
    flat = page.locator("[data-testid='stPlotlyChart'] .js-plotly-plot").first.evaluate(
        "g => Math.max(...Array.from(g.data[0].y))")
    expected = float(torch.softmax(rows[0] / 0.7, 0).max()) * 100
    assert flat == pytest.approx(expected, abs=1e-3) and flat < top
    wait_idle(page)
    assert "temperature=0.7" in page.url and "model=minilm" in page.url
    assert page.locator("text=Traceback").count() == 0
