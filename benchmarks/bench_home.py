"""Foundation benchmark: score evaluation (the family's metric) and home-figure build time per sample model (every
family), the dashboard's cold start
to first render and model switch in a real browser, and its resident memory.

Usage: python benchmarks/bench_home.py
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, cast

import torch

if TYPE_CHECKING:  # mypy sees this folder as the package `benchmarks`; run as a script, the folder is on sys.path
    from benchmarks._util import CHROMIUM_ARGS, start_dashboard, timed
else:
    from _util import CHROMIUM_ARGS, start_dashboard, timed

import slimcore
from slimcore import plots
from slimcore import text as T

SHOWN = 12   # slimui.home.SHOWN and slimui.cache.examples: what the family panel shows


def family_picture(s) -> None:
    """The home's family panel: a classifier's test inputs with predictions, an encoder's sentence similarities."""
    if slimcore.family_of(s).name == "encoder":
        emb = T.embed(s.model, s.test)
        T.nearest(emb)
        plots.similarity_heatmap((emb[:SHOWN] @ emb[:SHOWN].T).numpy(), list(s.test.texts[:SHOWN]), "cosine")
        return
    probs = slimcore.predict(s.model, s.test.x[:SHOWN]).softmax(1)
    plots.example_gallery(s.test.x[:SHOWN].numpy(), s.test.y[:SHOWN].tolist(), probs.argmax(1).tolist(),
                          probs.max(1).values.tolist())


def home_figures(s) -> None:
    """What the home page computes for a model: its measurement and its three figures."""
    m = slimcore.measure(s)  # with timing, which the page does last
    layer = slimcore.family_of(s).layers(s.model)[m.layers[0].name]
    w = cast(torch.Tensor, layer.weight).detach().numpy().ravel()   # a compressible (Linear or Conv) layer's
    plots.weight_histogram(w)
    plots.layer_bars([r.name for r in m.layers], [r.params for r in m.layers], "p", "p")
    family_picture(s)


def server_side() -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'model':<13} {'test n':>6} {'score':>22} {'eval median':>12} {'eval p95':>9} {'home figures':>13}")
    for name in slimcore.list_samples():
        t0 = time.perf_counter()
        s = slimcore.load_sample(name)
        load_ms = (time.perf_counter() - t0) * 1000
        score = slimcore.family_of(s).scorer(s, "test")
        v = score(s.model)
        text = f"{v.metric.short} {v.metric.format(v.value)}"
        repeats = 30 if slimcore.family_of(s).name == "classifier" else 3
        ev = timed(lambda: score(s.model), repeats=repeats)  # noqa: B023 (called at once)
        fig = timed(lambda: home_figures(s), repeats=3)  # noqa: B023 (called at once)
        print(f"{name:<13} {len(s.test):>6} {text:>22} {ev['median_ms']:>9.2f} ms "
              f"{ev['p95_ms']:>6.2f} ms {fig['median_ms']:>10.0f} ms   (first load incl. data {load_ms:.0f} ms)")


def browser_side() -> None:
    import psutil
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)  # the browser is up first
        page = b.new_page(viewport={"width": 1400, "height": 1800})
        proc, url, t0 = start_dashboard()
        try:
            print(f"cold start: server healthy after {time.perf_counter() - t0:.2f} s")
            page.goto(url)
            page.locator("[data-testid='stMetric']").first.wait_for(timeout=60_000)
            print(f"cold start -> first render (process start to the first figures painted): "
                  f"{time.perf_counter() - t0:.2f} s")
            page.locator("[data-testid='stPlotlyChart'] .js-plotly-plot").nth(2).wait_for(timeout=60_000)
            print(f"cold start -> all three home charts drawn: {time.perf_counter() - t0:.2f} s")
            page.locator("[data-testid='stMetric']", has_text="Latency").locator(
                "[data-testid='stMetricValue']").wait_for(timeout=60_000)
            print(f"cold start -> latency timed and shown (the page's last figure): {time.perf_counter() - t0:.2f} s")
            for name in ["digits-mlp", "mnist1d-mlp", "mnist1d-cnn", "digits-cnn", "digits-mlp", "mnist1d-cnn"]:
                card = slimcore.load_sample(name).card
                page.get_by_role("combobox", name="Model", exact=True).click()
                option = page.get_by_role("option", name=name, exact=True)
                option.wait_for()
                t1 = time.perf_counter()  # from the user's pick of a model in the open list
                option.click()
                page.locator("[data-testid='stMetric']", has_text="Parameters").locator(
                    "[data-testid='stMetricValue']").filter(has_text=f"{card['parameters']:,}").wait_for(timeout=60_000)
                page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')")
                print(f"switch to {name:<12} -> figures shown: {time.perf_counter() - t1:.2f} s")
            rss = psutil.Process(proc.pid).memory_info().rss
            print(f"dashboard resident memory after visiting all models: {rss / 2**20:.0f} MiB")
        finally:
            proc.terminate()
            proc.wait(10)
            b.close()


if __name__ == "__main__":
    server_side()
    try:
        browser_side()
    except Exception as e:  # no chromium here: the server-side figures still stand
        print(f"browser part skipped: {type(e).__name__}: {e}")
