"""Shareable links in real headless Chromium: a Pruning link sets the slider and the figures, moving the slider
rewrites the page's URL, the back button restores the earlier view, and ?teacher=1 hides the advanced controls."""
import re

import pytest
from playwright.sync_api import expect

import slimcore
from slimcore import pruning as P
from tests.browser.helpers import expect_metric, wait_idle

pytestmark = pytest.mark.browser

THUMB_VALUE = "[data-testid='stSliderThumbValue']"


def test_a_link_sets_the_slider_and_moving_it_rewrites_the_url(server, page):
    page.goto(f"{server}/Pruning?model=digits-mlp&prune_ratio=0.8")
    s = slimcore.load_sample("digits-mlp")
    at_80 = P.evaluate(s.model, P.PruneConfig(0.8), s.test)[0]
    expect_metric(page, "Non-zero parameters", f"{at_80.nonzeros:,}")
    wait_idle(page)
    expect(page.locator(THUMB_VALUE).first).to_have_text("0.80")
    assert page.locator("text=Traceback").count() == 0

    thumb = page.get_by_role("slider").first   # Prune ratio is the page's only slider
    thumb.focus()
    thumb.press("ArrowRight")
    page.wait_for_url(re.compile(r"/Pruning\?.*prune_ratio=0\.81(&|$)"), timeout=60_000)
    assert "model=digits-mlp" in page.url
    at_81 = P.evaluate(s.model, P.PruneConfig(0.81), s.test)[0]
    expect_metric(page, "Non-zero parameters", f"{at_81.nonzeros:,}")
    wait_idle(page)

    page.go_back()   # the previous URL is the view to restore
    page.wait_for_url(re.compile(r"prune_ratio=0\.8(&|$)"), timeout=60_000)
    expect(page.locator(THUMB_VALUE).first).to_have_text("0.80", timeout=60_000)
    expect_metric(page, "Non-zero parameters", f"{at_80.nonzeros:,}")


def test_a_teacher_link_hides_the_advanced_controls(server, page):
    page.goto(f"{server}/Pruning?model=digits-mlp&teacher=1&prune_ratio=0.6")
    expect(page.get_by_text("Teacher mode", exact=False).first).to_be_visible(timeout=60_000)
    wait_idle(page)
    expect(page.locator(THUMB_VALUE).first).to_have_text("0.60", timeout=60_000)
    # drawn first, so that the absence checks below cannot pass on a page still being drawn
    expect(page.get_by_role("button", name="Prune gradually and fine-tune")).to_be_visible(timeout=60_000)
    expect(page.locator("[data-testid='stRadio']", has_text="Channel norm")).to_have_count(0)
    expect(page.locator("[data-testid='stNumberInput']")).to_have_count(0)   # gradual pruning's steps and epochs
    assert "teacher=1" in page.url
