"""Real-browser speed of the dashboard, as a visitor meets it (headless Chromium, the server started as the README
starts it: `python -m slimui`). Prints:

1. the warm-up's time from an empty result cache (every sample's default views), and after a restart with the cache
   in place;
2. for every sample and page, opened by its link after the warm-up: the first chart, the page's script run finished
   (Streamlit's `data-test-script-state` = notRunning) and the page complete (no "being computed" placeholder left);
3. slider moves on the Pruning and Quantization pages (keyboard steps on the main slider): release -> the run that
   redraws every chart finished (p50 / p95 over the moves), and -> complete (the timing that follows, in the
   background);
4. the server's resident memory after every page of every sample;
5. after a restart with the disk cache in place: every page of every sample again, opened at once.

    .venv/bin/python benchmarks/bench_browser.py [--samples digits-cnn minilm] [--moves 6] [--results DIR]

Targets (issue 15, 2 cores, nothing else running): first chart <= 2 s and complete page <= 4 s after warm-up,
<= 5 s after a restart with the cache; slider p95 <= 300 ms (classifiers) / <= 1 s (minilm) and idle <= 1 s after a
move; warm-up from empty <= 3 min; memory <= 1.2 GB."""
from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import slimcore  # noqa: E402
from slimui.served import Dashboard  # noqa: E402
from tests.browser.helpers import PENDING, STATE  # noqa: E402  (the page states the browser tests wait for)

PAGES = ["", "Pruning", "Quantization", "Distillation", "Trade-offs", "Sensitivity"]
SLIDER_PAGES = ["Pruning", "Quantization"]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
CHART = "[data-testid=stPlotlyChart] .js-plotly-plot"


class Server(Dashboard):
    """The dashboard as the README starts it, warming up; its log says when the warm-up is done."""

    def __init__(self, results: Path) -> None:
        super().__init__(results, warmup=True)

    def warmup_seconds(self, timeout: float = 900) -> float:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = re.search(r"SlimLab warm-up: .* ready in ([\d.]+) s(.*)", self.log.read_text())
            if m:
                if m.group(2).strip():
                    print(f"  warm-up reported failures: {m.group(2).strip()}")
                return float(m.group(1))
            time.sleep(0.5)
        raise SystemExit("the warm-up did not finish")

    def rss_mib(self) -> float:
        p = psutil.Process(self.proc.pid)
        return sum(q.memory_info().rss for q in [p, *p.children(recursive=True)]) / 2**20


def open_page(page, url: str, timeout: float = 300) -> dict[str, float]:
    """Open a page by its link: seconds to the first chart, to the end of its script run, to complete."""
    t0 = time.monotonic()
    page.goto(url)
    page.wait_for_selector(CHART, timeout=timeout * 1000)
    chart = time.monotonic() - t0
    page.wait_for_function(f"{STATE} === 'notRunning'", timeout=timeout * 1000)
    idle = time.monotonic() - t0
    page.wait_for_function(f"{STATE} === 'notRunning' && !({PENDING})", timeout=timeout * 1000, polling=50)
    return {"chart": chart, "idle": idle, "complete": time.monotonic() - t0}


def move_slider(page, timeout: float = 300) -> dict[str, float]:
    """One keyboard step of the page's first slider: seconds from the key's release to the end of the run that
    redraws the charts, and to the page complete (the background work that follows)."""
    thumb = page.get_by_role("slider").first
    thumb.focus()
    page.evaluate("window.__ran = false; const a = document.querySelector('[data-testid=stApp]');"
                  "window.__obs = new MutationObserver(() => { if (a.getAttribute('data-test-script-state') === "
                  "'running') window.__ran = true; }); window.__obs.observe(a, {attributes: true});")
    t0 = time.monotonic()
    thumb.press("ArrowRight")
    page.wait_for_function(f"window.__ran && {STATE} === 'notRunning'", timeout=timeout * 1000, polling=10)
    redrawn = time.monotonic() - t0
    page.wait_for_function(f"{STATE} === 'notRunning' && !({PENDING})", timeout=timeout * 1000, polling=50)
    return {"redrawn": redrawn, "complete": time.monotonic() - t0}


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def visit_all(browser, server: Server, samples: list[str], label: str, targets: tuple[float, float]) -> None:
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    worst = {"chart": 0.0, "complete": 0.0}
    print(f"\n{label}: first chart / run finished / complete, seconds after navigation (targets: chart "
          f"<= {targets[0]:g} s, complete <= {targets[1]:g} s)")
    for name in samples:
        cells = []
        for p in PAGES:
            r = open_page(page, f"{server.url}/{p}?model={name}")
            worst = {k: max(worst[k], r[k]) for k in worst}
            cells.append(f"{p or 'Home'} {r['chart']:.1f}/{r['idle']:.1f}/{r['complete']:.1f}")
        print(f"  {name:12s} " + " · ".join(cells), flush=True)
    print(f"  worst: first chart {worst['chart']:.1f} s, complete {worst['complete']:.1f} s")
    page.close()


def sliders(browser, server: Server, samples: list[str], moves: int) -> None:
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    print(f"\nSlider moves ({moves} keyboard steps per page, after the page is complete): release -> run finished "
          "(charts redrawn), p50 / p95 / max; -> complete (background timing done), p50 / max")
    for name in samples:
        for p in SLIDER_PAGES:
            open_page(page, f"{server.url}/{p}?model={name}")
            rs = [move_slider(page) for _ in range(moves)]
            red, comp = [r["redrawn"] * 1000 for r in rs], [r["complete"] for r in rs]
            print(f"  {name:12s} {p:13s} redrawn {statistics.median(red):5.0f} / {pct(red, 0.95):5.0f} / "
                  f"{max(red):5.0f} ms · complete {statistics.median(comp):.1f} / {max(comp):.1f} s", flush=True)
    page.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", nargs="*", default=slimcore.list_samples())
    ap.add_argument("--moves", type=int, default=6)
    ap.add_argument("--results", type=Path, help="a result folder to start from (default: a new, empty one)")
    ap.add_argument("--skip-restart", action="store_true")
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright

    results = a.results or Path(tempfile.mkdtemp(prefix="slimlab-bench-results-"))
    print(f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; torch {__import__('torch').__version__}; result "
          f"folder {results} ({len(list(results.glob('*.json')))} files at start)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        server = Server(results)
        print(f"server answered after {server.ready:.1f} s; warm-up ({'empty' if a.results is None else 'given'} "
              f"cache): {server.warmup_seconds():.1f} s; resident memory then {server.rss_mib():.0f} MiB")
        visit_all(browser, server, a.samples, "After warm-up", (2.0, 4.0))
        sliders(browser, server, a.samples, a.moves)
        print(f"\nServer resident memory after every page of every sample: {server.rss_mib():.0f} MiB "
              "(target <= 1,229 MiB = 1.2 GiB)")
        server.stop()
        if not a.skip_restart:
            server = Server(results)
            print(f"\nRestarted with the cache in place ({len(list(results.glob('*.json')))} files): answered after "
                  f"{server.ready:.1f} s; pages opened at once, while its warm-up reads the cache")
            visit_all(browser, server, a.samples, "After a restart (disk cache)", (5.0, 5.0))
            print(f"  the restart's warm-up took {server.warmup_seconds():.1f} s")
            server.stop()
        browser.close()


if __name__ == "__main__":
    main()
