"""Shared helpers for benchmark scripts: timing statistics and starting the dashboard for real."""
from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# headless Chromium for the browser benchmarks (the same flags as tests/browser/conftest.py and bench_browser.ARGS)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def timed(fn: Callable[[], object], repeats: int = 20, warmup: int = 1) -> dict[str, float]:
    """Milliseconds per call: median, p95 and min over repeats."""
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1000)
    ts.sort()
    return {"median_ms": statistics.median(ts), "p95_ms": ts[min(len(ts) - 1, int(0.95 * len(ts)))], "min_ms": ts[0]}


def start_dashboard(page: str = "app.py") -> tuple[subprocess.Popen[bytes], str, float]:
    """Start `streamlit run` on a free loopback port; return the process, URL and the start time (perf_counter)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", page, "--server.headless", "true",
                             "--server.address", "127.0.0.1", "--server.port", str(port)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
            return proc, url, t0
        except OSError as e:
            if proc.poll() is not None or time.perf_counter() - t0 > 60:
                raise RuntimeError("streamlit did not start") from e
            time.sleep(0.05)


