"""Ways to read and drive a Streamlit page in a real browser."""
from __future__ import annotations

from playwright.sync_api import Page, expect

# How long a test waits for what a fresh server computes in its background worker (a first chart, a grid): the tests
# prove what is drawn; how fast it is drawn is the benchmarks' business (benchmarks/bench_browser.py). Generous, as a
# 2-core CI machine also runs the browser and what earlier tests left in the worker.
BACKGROUND = 180_000
STATE = "document.querySelector('[data-testid=stApp]')?.getAttribute('data-test-script-state')"
PENDING = "document.querySelector('[data-testid=stMain]')?.innerText.includes('\u23f3')"   # work in the background


def wait_idle(page: Page, timeout: float = 60_000) -> None:
    """Wait until the page's script run has finished (slow work may still be computed in the background)."""
    page.wait_for_selector("[data-testid='stApp']")
    page.wait_for_function(f"() => {STATE} === 'notRunning'", timeout=timeout)


def wait_complete(page: Page, timeout: float = 180_000) -> None:
    """Wait until the page is complete: its run finished and no placeholder of background work left."""
    page.wait_for_function(f"() => {STATE} === 'notRunning' && !({PENDING})", timeout=timeout, polling=100)


def metric(page: Page, label: str) -> str:
    """The value shown by the metric with this label."""
    box = page.locator("[data-testid='stMetric']", has_text=label).first
    return box.locator("[data-testid='stMetricValue']").inner_text()


def choose(page: Page, label: str, option: str) -> None:
    """Pick an option in the selectbox with this label."""
    page.get_by_role("combobox", name=label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()


def expect_metric(page: Page, label: str, value: str) -> None:
    expect(page.locator("[data-testid='stMetric']", has_text=label).first.locator(
        "[data-testid='stMetricValue']")).to_have_text(value, timeout=60_000)


CHARTS = "[data-testid='stPlotlyChart'] .js-plotly-plot"


def wait_for_chart(page: Page, n: int, predicate: str, timeout: float = 60_000) -> None:
    """Wait until the n-th plotly chart on the page satisfies `predicate`, a JS function of the chart node (g =>
    ...). The chart is looked up afresh on every poll: a rerun can replace the node, and a handle taken once would
    then wait on a detached chart forever."""
    page.wait_for_function(f"([n]) => {{ const g = document.querySelectorAll({CHARTS!r})[n];"
                           f" try {{ return !!g && !!g.data && ({predicate})(g); }} catch (e) {{ return false; }} }}",
                           arg=[n], timeout=timeout)
