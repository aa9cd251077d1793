"""The dashboard served with SLIMLAB_RAY_ADDRESS set (a local Ray head with 2 CPUs) draws the same Trade-offs and
Sensitivity pages as without it, in real headless Chromium: the same points, the same heat map, and a line saying
where the grid was computed."""
import os

import pytest
from playwright.sync_api import expect

from slimcore import executor as X
from tests.browser.conftest import Served
from tests.browser.helpers import BACKGROUND, CHARTS, wait_idle

pytestmark = pytest.mark.browser
if os.environ.get("CI") != "true":
    pytest.importorskip("ray")


@pytest.fixture(scope="module")
def on_ray(tmp_path_factory):
    """A dashboard whose sweeps run on a local Ray head: (its URL, the head's address)."""
    with X.LocalCluster(cpus=2) as address:
        served = Served(tmp_path_factory.mktemp("results-ray"), **{X.ENV: address})
        try:
            yield served.url, address
        finally:
            served.stop()


DRAWN = "e => e.data.map(t => [t.name, Array.from(t.x || []), Array.from(t.y || []), JSON.stringify(t.z || null)])"


def drawn(page, url: str, charts: int) -> list:
    page.goto(url)
    expect(page.locator(CHARTS)).to_have_count(charts, timeout=BACKGROUND)
    wait_idle(page)
    assert page.locator("text=Traceback").count() == 0
    return page.locator(CHARTS).nth(0).evaluate(DRAWN)


@pytest.mark.parametrize("path, charts", [("/Trade-offs?model=digits-cnn", 3), ("/Sensitivity?model=digits-cnn", 3)])
def test_the_pages_draw_the_same_with_the_cluster(server, on_ray, page, path, charts):
    url, address = on_ray
    there = drawn(page, url + path, charts)
    expect(page.get_by_text(f"computed on the Ray cluster at {address}")).to_be_visible()
    here = drawn(page, server + path, charts)
    assert page.get_by_text("computed on the Ray cluster").count() == 0
    assert here and there == here
