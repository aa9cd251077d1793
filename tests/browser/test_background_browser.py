"""Slow work off the request path, in real headless Chromium: a slider move is answered while the previous setting's
timing still runs in the background; a restarted server serves the figures it kept on disk; a tampered result file
is recomputed, never shown."""
import json

import pytest
from playwright.sync_api import expect

from slimui.served import Dashboard
from tests.browser.conftest import Served
from tests.browser.helpers import PENDING, STATE, metric, wait_complete

pytestmark = pytest.mark.browser

CURVE = ("els => els.filter(e => e.layout.title.text.includes('against prune ratio'))"
         ".map(e => Array.from(e.data[0].y._inputArray || e.data[0].y))[0]")


def _curve(page) -> list[float]:
    return page.locator("[data-testid='stPlotlyChart'] .js-plotly-plot").evaluate_all(CURVE)


def test_a_slider_move_is_answered_while_the_timing_runs(server, page):
    page.goto(f"{server}/Pruning?model=minilm")
    wait_complete(page, 300_000)   # a cold server: the curve and the timing are computed first
    before = metric(page, "Non-zero parameters")
    thumb = page.get_by_role("slider").first
    thumb.focus()
    thumb.press("ArrowRight")      # 0.30 -> 0.35
    page.wait_for_function(f"() => {STATE} === 'notRunning'", timeout=60_000)
    expect(page.locator("[data-testid='stMetric']", has_text="Non-zero parameters").first).not_to_have_text(before)
    # The run is over, and the new setting's models are timed in the background: the page says so, it is not busy.
    expect(page.get_by_text("Timing the real models side by side")).to_be_visible()
    moved = metric(page, "Non-zero parameters")
    page.wait_for_function("() => document.querySelector('[data-testid=stMain]').innerText.includes('so far')",
                           timeout=60_000)   # that timing job has started
    thumb.focus()
    thumb.press("ArrowRight")      # 0.35 -> 0.40, while it runs
    page.wait_for_function(f"() => {STATE} === 'running'", timeout=10_000)
    page.wait_for_function(f"() => {STATE} === 'notRunning'", timeout=60_000)
    assert page.evaluate(f"() => {PENDING}")   # answered before the timing is done
    assert metric(page, "Non-zero parameters") != moved
    wait_complete(page, 300_000)   # and the timing of the setting now shown follows
    expect(page.locator("[data-testid='stDataFrame']").first).to_be_visible()
    assert page.locator("text=Traceback").count() == 0


def test_a_restarted_server_serves_kept_figures_and_recomputes_a_tampered_file(browser, tmp_path):
    results = tmp_path / "results"
    pages = []

    def visit(served: Dashboard) -> tuple[str, list[float]]:
        ctx = browser.new_context(viewport={"width": 1400, "height": 1800})
        page = ctx.new_page()
        pages.append(ctx)
        page.goto(f"{served.url}/Pruning?model=digits-mlp")
        wait_complete(page)
        page.wait_for_function(f"() => ({CURVE})([...document.querySelectorAll('.js-plotly-plot')]) != null",
                               timeout=180_000)   # the curve drawn (its job done is not yet its chart drawn)
        note = page.get_by_text("Quality curve:").first.inner_text()
        return note, _curve(page)

    first = Served(results)
    try:
        note, curve = visit(first)
    finally:
        first.stop()
    assert "computed in" in note and len(curve) > 10
    files = sorted(results.glob("prune_curve-*.json"))
    assert len(files) == 1

    again = Served(results)          # restarted, the cache in place
    try:
        note, kept = visit(again)
    finally:
        again.stop()
    assert "read from the result cache" in note and kept == curve

    doc = json.loads(files[0].read_text())
    doc["value"][1]["fields"]["value"] = 0.123   # one point of the curve changed, its signature left as it was
    files[0].write_text(json.dumps(doc))
    third = Served(results)
    try:
        note, back = visit(third)
    finally:
        third.stop()
    assert "computed in" in note and back == curve and 0.123 not in back   # not trusted: computed again
    assert "result cache" in third.log.read_text() and "not trusted" in third.log.read_text()
    for ctx in pages:
        ctx.close()


def test_python_m_slimui_serves_with_its_warm_up(browser, tmp_path):
    """The README's run command: the server warms up as it starts; a page it prepared opens complete at once."""
    import time
    import urllib.request

    served = Served(tmp_path / "results", warmup=True, SLIMLAB_WARMUP_SAMPLES="digits-mlp")
    log = served.log
    try:
        deadline = time.time() + 240
        while "SlimLab warm-up:" not in log.read_text():   # nobody visited: it started with the server
            assert served.proc.poll() is None and time.time() < deadline, log.read_text()[-2000:]
            time.sleep(0.5)
        line = next(ln for ln in log.read_text().splitlines() if "SlimLab warm-up:" in ln)
        assert "of 1 samples ready" in line and "failed" not in line, line
        assert urllib.request.urlopen(f"{served.url}/_stcore/health").read() == b"ok"
        ctx = browser.new_context(viewport={"width": 1400, "height": 1800})
        page = ctx.new_page()
        start = time.monotonic()
        page.goto(f"{served.url}/Pruning?model=digits-mlp")
        wait_complete(page, 60_000)
        assert not page.evaluate(f"() => {PENDING}")
        expect(page.locator("[data-testid='stDataFrame']").first).to_be_visible()   # timed by the warm-up
        print(f"warmed Pruning page complete after {time.monotonic() - start:.1f} s")
        ctx.close()
    finally:
        served.stop()
