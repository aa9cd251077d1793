"""The dashboard with the text model: time from opening each lab on minilm to its figures, and the server's memory.

Starts `streamlit run app.py` as a user would, opens every page with ?model=minilm in headless Chromium, waits until
the page has finished running (Trade-offs and Sensitivity wait for a button press before their grids; not pressed),
and reads the server process's resident memory (psutil, with its children) after each.
Target: the dashboard's memory with the text model loaded <= 2.5 GB.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

import psutil
from playwright.sync_api import sync_playwright

if TYPE_CHECKING:  # mypy sees this folder as the package `benchmarks`; run as a script, the folder is on sys.path
    from benchmarks._util import CHROMIUM_ARGS, start_dashboard
else:
    from _util import CHROMIUM_ARGS, start_dashboard

PAGES = ["", "Pruning", "Quantization", "Distillation", "Trade-offs", "Sensitivity"]


def rss_mib(proc: psutil.Process) -> float:
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20


def main() -> None:
    server, url, t0 = start_dashboard()
    ps = psutil.Process(server.pid)
    print(f"server up in {time.perf_counter() - t0:.1f} s; memory {rss_mib(ps):,.0f} MiB before any page")
    peak = 0.0
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            for visit in ("first", "again"):
                for name in PAGES:
                    t = time.perf_counter()
                    page.goto(f"{url}/{name}?model=minilm")
                    page.wait_for_selector("h1", timeout=120_000)  # the lab's title: the page has started drawing
                    first = time.perf_counter() - t
                    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
                                           timeout=300_000)
                    done = time.perf_counter() - t
                    mem = rss_mib(ps)
                    peak = max(peak, mem)
                    errors = page.locator("text=Traceback").count()
                    print(f"{visit:5s} {name or 'home':13s} title {first:5.1f} s, page finished {done:5.1f} s, "
                          f"server memory {mem:,.0f} MiB{'  TRACEBACK SHOWN' if errors else ''}")
            browser.close()
    finally:
        server.terminate()
    print(f"peak server memory with the text model: {peak:,.0f} MiB ({peak / 1024:.2f} GiB; target <= 2.5 GB)")


if __name__ == "__main__":
    main()
