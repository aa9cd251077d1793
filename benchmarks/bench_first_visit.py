"""One page's first visit on a fresh server (empty result cache, no warm-up), in headless Chromium: seconds until the
page is complete (its run finished, no background placeholder left) and how long its quality curve's job took (the
provenance kept with the result). --post-script-gc turns Streamlit's full garbage collection after every script run
back on (the served default is off: .streamlit/config.toml), to measure what it costs while a placeholder polls.

    .venv/bin/python benchmarks/bench_first_visit.py [--page Quantization] [--model minilm] [--post-script-gc]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # mypy sees this folder as the package `benchmarks`; run as a script, the folder is on sys.path
    from benchmarks import _util
else:
    import _util  # noqa: F401  (puts the repository on the path)

from slimui.served import Dashboard
from tests.browser.helpers import PENDING, STATE  # the same page states the browser tests wait for


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--page", default="Quantization")
    ap.add_argument("--model", default="minilm")
    ap.add_argument("--post-script-gc", action="store_true")
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright

    results = Path(tempfile.mkdtemp(prefix="slimlab-first-visit-"))
    gc = "true" if a.post_script_gc else "false"
    server = Dashboard(results, warmup=False, prefetch=False, env={"STREAMLIT_RUNNER_POST_SCRIPT_GC": gc})
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=_util.CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            start = time.monotonic()
            page.goto(f"{server.url}/{a.page}?model={a.model}")
            page.wait_for_function(f"() => {STATE} === 'notRunning' && !({PENDING})", timeout=1_200_000, polling=200)
            total = time.monotonic() - start
            browser.close()
    finally:
        server.stop()
    curves = {f.name.split("-")[0]: round(json.loads(f.read_text())["provenance"]["seconds"], 1)
              for f in results.glob("*_curve-*.json")}
    print(f"{a.model} {a.page}, post-script GC {'on' if a.post_script_gc else 'off'}: page complete after "
          f"{total:.1f} s; curve jobs computed in {curves or 'none'} s")


if __name__ == "__main__":
    main()
