"""Real-browser fixtures: the app served on 127.0.0.1 by `streamlit run`, driven by Debian's headless Chromium."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT

CHROMIUM = Path(os.environ.get("SLIMLAB_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _need_browser() -> None:
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)  # in CI a missing browser is a failure, never a silent skip
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """The dashboard served by `streamlit run app.py` on a free port of 127.0.0.1, as a user starts it, with slow
    work in the background worker. `results`: its result cache folder; `warmup`: whether it warms up."""

    def __init__(self, results: Path, warmup: bool = False) -> None:
        _need_browser()
        port = _free_port()
        self.log = Path(tempfile.gettempdir()) / f"slimlab-streamlit-{port}.log"   # outside the checkout
        env = {k: v for k, v in os.environ.items() if k != "SLIMLAB_JOBS"}   # slow work in the background
        # No speculative slider positions on a test server: on 2 cores they starve the next tests' pages.
        env |= {"SLIMLAB_RESULTS": str(results), "SLIMLAB_WARMUP": "1" if warmup else "0", "SLIMLAB_PREFETCH": "0"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.address",
             "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false"],
            cwd=ROOT, stdout=open(self.log, "w"), stderr=subprocess.STDOUT, env=env)
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while True:
            try:
                if urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    self.proc.kill()
                    pytest.fail(f"streamlit did not start (exit {self.proc.poll()}); see {self.log}")
                time.sleep(0.3)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """Start the dashboard as a user would (no warm-up: the tests decide what is computed) and yield its URL."""
    served = Served(tmp_path_factory.mktemp("results"))
    yield served.url
    served.stop()


@pytest.fixture(scope="session")
def browser():
    _need_browser()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)  # a 2-core CI machine draws slowly: no assertion gives up after 5 s
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1800})
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    ctx.close()
