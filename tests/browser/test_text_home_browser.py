"""The home page on the text sample in real headless Chromium: picked in the sidebar, the same page shows the encoder's
own figures (its metric, its timing batch) and its family panel (the sentences' similarities)."""
import re

import pytest

import slimcore
from slimcore import text as T
from tests.browser.helpers import choose, expect_metric, metric, wait_for_chart, wait_idle

pytestmark = pytest.mark.browser


def test_pick_minilm_and_see_its_embeddings(server, page):
    s = slimcore.load_sample("minilm")
    top1 = T.paraphrase_top1(T.embed(s.model, s.test), s.test)
    page.goto(server)
    wait_idle(page)
    choose(page, "Model", "minilm")
    # the first visit loads the encoder and embeds the test sentences: minutes on a busy 2-core machine
    page.locator("[data-testid='stMetric']", has_text="Paraphrase found (top-1)").first.wait_for(timeout=240_000)
    expect_metric(page, "Paraphrase found (top-1)", f"{top1:.1%}")
    expect_metric(page, "Parameters", f"{s.card['parameters']:,}")
    wait_idle(page)
    assert "model=minilm" in page.url
    assert metric(page, "Size (measured)").endswith("MiB") and metric(page, "Mean cosine to the original") == "1.0000"
    expect_metric(page, "Latency (measured)", re.compile(r"^[0-9.]+ ms$"))   # timed last, at batch 1
    # the sentences' cosine-similarity heatmap (a handle taken once waited out 60 s on a replaced chart in one CI run)
    wait_for_chart(page, 2, "g => g.data.length === 1 && g.data[0].type === 'heatmap'"
                            " && g.data[0].colorbar?.title?.text === 'cosine' && !!g.data[0].z")
    assert page.locator("text=Traceback").count() == 0
