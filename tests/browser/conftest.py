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


@pytest.fixture(scope="session")
def server():
    """Start the dashboard as a user would and yield its URL; stopped by PID at the end."""
    _need_browser()
    port = _free_port()
    log = open(Path(tempfile.gettempdir()) / f"slimlab-streamlit-{port}.log", "w")   # outside the checkout
    env = {k: v for k, v in os.environ.items() if k != "SLIMLAB_JOBS"}   # slow work in the background, as served
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.address",
         "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                pytest.fail(f"streamlit did not start (exit {proc.poll()})")
            time.sleep(0.3)
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


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
