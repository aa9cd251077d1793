"""Upload benchmark: a ~25 M-parameter model from file to first figures, in slimcore and in the real dashboard.

The model is an MLP for 8x8 digits, 64-4096-4096-2048-10 (25.4 M parameters, 102 MB as TorchScript), with seeded
random weights: what is timed is reading, rebuilding, checking and measuring it, which does not depend on training.

Every upload is read in a confined process (slimcore.sandbox): the figures say what that costs beside reading in
the server process itself (slimcore.upload.inspect, the reader's own work), and --hostile uploads every file of the
hostile review (tests/hostile_files.py) and reports, per file, the message, the server process's memory growth
(sampled every 10 ms) and the reading process's peak.

Usage: python benchmarks/bench_upload.py [--no-browser] [--hostile]
"""
from __future__ import annotations

import io
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, cast

import psutil
import torch
from torch import nn

if TYPE_CHECKING:  # mypy sees this folder as the package `benchmarks`; run as a script, the folder is on sys.path
    from benchmarks._util import CHROMIUM_ARGS, start_dashboard
else:
    from _util import CHROMIUM_ARGS, start_dashboard

import slimcore
from slimcore import plots, sandbox
from slimcore import upload as U

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.hostile_files import hostile  # noqa: E402


def big_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 4096), nn.ReLU(), nn.Linear(4096, 4096), nn.ReLU(),
                         nn.Linear(4096, 2048), nn.ReLU(), nn.Linear(2048, 10)).eval()


def files(model: nn.Module) -> dict[str, bytes]:
    out = {}
    for label, save in [("TorchScript", lambda b: torch.jit.save(torch.jit.script(model), b)),
                        ("torch.export", lambda b: torch.export.save(
                            torch.export.export(model, (torch.zeros(2, 1, 8, 8),)), b))]:
        buf = io.BytesIO()
        save(buf)
        out[label] = buf.getvalue()
    return out


def server_side(blobs: dict[str, bytes], params: int) -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; model: {params / 1e6:.1f} M parameters")
    for label, blob in blobs.items():
        t0 = time.perf_counter()
        U.inspect(blob, None)   # the reader's own work, here in the server process (as before the sandbox)
        here = time.perf_counter() - t0
        t0 = time.perf_counter()
        s = U.load_upload(blob, f"big.{'pt2' if 'export' in label else 'pt'}")
        t1 = time.perf_counter()
        print(f"{label:<13} read in the server process {here:5.2f} s; in the confined reader and rebuilt here "
              f"{t1 - t0:5.2f} s (the sandbox's overhead {t1 - t0 - here:+.2f} s)")
        m = slimcore.measure(s, timing=False)  # the home page's baseline figures
        t2 = time.perf_counter()
        layer = max(m.layers, key=lambda r: r.params).name
        weight = cast(torch.Tensor, slimcore.weight_layers(s.model)[layer].weight)   # a Linear or Conv layer's
        plots.weight_histogram(weight.detach().numpy().ravel())
        t3 = time.perf_counter()
        print(f"{label:<13} {len(blob) / 2**20:6.1f} MiB: read + rebuild + check + test accuracy {t1 - t0:5.2f} s, "
              f"baseline figures (accuracy, layer table, serialized size) {t2 - t1:5.2f} s, histogram of the "
              f"largest layer ({m.layers[[r.name for r in m.layers].index(layer)].params:,} weights) {t3 - t2:5.2f} s"
              f"; total {t3 - t0:5.2f} s")


def browser_side(blob: bytes) -> None:
    """From choosing the file in the browser to the histogram, layer table and metrics painted."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        path = Path(tmp) / "big-mlp.pt"
        path.write_bytes(blob)
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = b.new_page(viewport={"width": 1400, "height": 1800})
        proc, url, _ = start_dashboard()
        try:
            page.goto(url)
            page.locator("[data-testid='stMetric']").first.wait_for(timeout=60_000)
            page.locator("[data-testid='stPlotlyChart'] .js-plotly-plot").nth(2).wait_for(timeout=60_000)
            for run in range(2):
                t0 = time.perf_counter()  # from the file chosen in the browser: it is sent, then read at once
                page.locator("[data-testid='stFileUploader'] input[type='file']").first.set_input_files(str(path))
                page.get_by_text("(your upload)").first.wait_for(timeout=120_000)
                t1 = time.perf_counter()
                page.locator("[data-testid='stMetric']", has_text="Parameters").filter(
                    has_text=f"{sum(p.numel() for p in big_model().parameters()):,}").wait_for(timeout=120_000)
                first = slimcore.weight_layers(big_model())  # the histogram shows the first layer: its title names it
                n = cast(torch.Tensor, next(iter(first.values())).weight).numel()
                page.locator("[data-testid='stPlotlyChart'] .js-plotly-plot", has_text=f"{n:,} weights").wait_for(
                    timeout=120_000)
                page.locator("[data-testid='stDataFrame']").first.wait_for(timeout=120_000)
                t2 = time.perf_counter()
                page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')")
                t3 = time.perf_counter()
                print(f"browser, {'first' if run == 0 else 'same file again'}: file chosen -> its card shown "
                      f"{t1 - t0:.2f} s -> metrics, layer table and the three charts painted {t2 - t0:.2f} s; page "
                      f"finished (latency timed too) {t3 - t0:.2f} s")
                page.goto(url)  # a fresh page for the second run (the upload stays on the server: a cache hit)
                page.locator("[data-testid='stMetric']").first.wait_for(timeout=60_000)
            errors = page.locator("[data-testid='stException']").count()
            print(f"tracebacks shown: {errors}")
        finally:
            proc.terminate()
            proc.wait(10)
            b.close()


class Peak:
    """This process's resident memory sampled every 10 ms while in the block: its peak growth over the start."""

    def __enter__(self) -> Peak:
        self.proc, self.peak, self.stop = psutil.Process(), 0, threading.Event()
        self.start = self.proc.memory_info().rss

        def sample() -> None:
            while not self.stop.wait(0.01):
                self.peak = max(self.peak, self.proc.memory_info().rss - self.start)
        self.thread = threading.Thread(target=sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss - self.start)


def hostile_side() -> None:
    """Every hostile file uploaded as the dashboard reads it: the message, the server process's memory growth, the
    reading process's peak (the largest of the readers so far: ru_maxrss of the children)."""
    with tempfile.TemporaryDirectory() as tmp:
        marker = Path(tmp) / "code-ran"
        files = hostile(str(marker))
        print(f"hostile uploads (reader limits: {sandbox.LIMITS.said()}):")
        for name, (model, data) in files.items():
            t0 = time.perf_counter()
            with Peak() as peak:
                try:
                    U.load_upload(model, "hostile.pt", data, "hostile.npz" if data else None)
                    said = "ACCEPTED"
                except U.UploadError as e:
                    said = str(e)
            child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**10
            print(f"  {name:<44} {len(model) + len(data or b''):>10,} B  {time.perf_counter() - t0:5.1f} s  server "
                  f"+{peak.peak / 2**20:6.1f} MiB  readers' peak so far {child:7.1f} MiB  -> {said[:110]}")
        print(f"code executed: {'YES' if marker.exists() else 'none'} "
              f"(marker folder {'created' if marker.exists() else 'never created'})")


if __name__ == "__main__":
    if "--hostile" in sys.argv:
        hostile_side()
        sys.exit()
    model = big_model()
    blobs = files(model)
    server_side(blobs, sum(p.numel() for p in model.parameters()))
    if "--no-browser" not in sys.argv:
        browser_side(blobs["TorchScript"])
