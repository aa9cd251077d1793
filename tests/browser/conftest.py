"""Real-browser fixtures: the app served on 127.0.0.1 by `python -m slimui`, driven by Debian's headless Chromium."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from slimui.served import ROOT, Dashboard

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


def Served(results: Path, warmup: bool = False, cwd: Path = ROOT, **env: str) -> Dashboard:
    """The dashboard served as a user starts it (`python -m slimui`) with its own result cache folder, slow work in
    the background worker. No speculative slider positions on a test server: on 2 cores they starve the next tests'
    pages. `warmup`: whether it warms up (the tests decide what is computed: no, by default); `cwd`: the folder it is
    started in (default: the checkout, whose slimui it then runs)."""
    _need_browser()
    try:
        return Dashboard(results, warmup=warmup, prefetch=False, env=env, cwd=cwd)
    except RuntimeError as e:
        pytest.fail(str(e))


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
