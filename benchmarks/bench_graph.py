"""Any real model: a ResNet-18 (11.2 M parameters with 10 classes, random seeded weights, torchvision's parameter
names) uploaded as a torch.export program (.pt2) and as name + safetensors, with the 8x8 digits scaled to 3 x 32 x 32
images as evaluation data. Prints:

1. each stage of reading the .pt2 upload: in the confined reading process (torch.export.load, the graph described
   as plain data and rebuilt; all of read_model with its archive checks; data read and matched, tensors handed over:
   inspect) and in the server
   (rebuilding the graph model, the card's accuracy); the same for name + safetensors (which exports the model);
2. upload to first figures in headless Chromium: the model file chosen (the data already chosen) -> the home page's
   "Test accuracy" of the upload shown, and -> the page complete;
3. structured pruning at 50 % of channels (coupled channels removed together): parameters, and latency of the
   original and the thin model at batch 1 and 32 (median and IQR, 2 threads), the speed-up.

    .venv/bin/python benchmarks/bench_graph.py [--no-browser]

Target (issue 18, 2 cores): upload to first figures <= 10 s for the ResNet-18 .pt2."""
from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import slimcore  # noqa: E402
from slimcore import architectures as A  # noqa: E402
from slimcore import graph as G  # noqa: E402
from slimcore import metrics as M  # noqa: E402
from slimcore import pruning as P  # noqa: E402
from slimcore import sandbox  # noqa: E402
from slimcore import upload as U  # noqa: E402
from slimcore.data import digit_images  # noqa: E402


def files() -> dict[str, bytes]:
    model = A.build("resnet18", 10, 3, seed=0)
    x, y = digit_images(32, 3)
    ep = torch.export.export(model, (torch.as_tensor(x[:2]),), dynamic_shapes=({0: torch.export.Dim("batch")},))
    pt2, npz = io.BytesIO(), io.BytesIO()
    torch.export.save(ep, pt2)
    np.savez(npz, x=x, y=y)
    from safetensors.torch import save
    return {"pt2": pt2.getvalue(), "npz": npz.getvalue(),
            "safetensors": save({k: v.contiguous() for k, v in model.state_dict().items()})}


def clock(label: str, fn, out: dict):
    t0 = time.perf_counter()
    result = fn()
    out[label] = time.perf_counter() - t0
    return result


def stages(f: dict[str, bytes]) -> None:
    torch.set_num_threads(1)   # as the reading process runs
    s: dict[str, float] = {}
    data = f["pt2"]
    ep = clock("torch.export.load", lambda: torch.export.load(io.BytesIO(data)), s)
    desc, tensors = clock("graph described as plain data", lambda: G.describe(ep), s)
    clock("graph model rebuilt from it", lambda: G.build(desc, tensors), s)
    clock("model file read and checked (read_model)", lambda: U.read_model(data), s)
    clock("whole reader, in-process (inspect)", lambda: U.inspect(data, f["npz"]), s)
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    doc, blob = sandbox.read(data, f["npz"], U.MAX_MODEL_BYTES)
    s["confined reading process, in all"] = time.perf_counter() - t0
    s["  of which process start and imports"] = (s["confined reading process, in all"]
                                                 - s["whole reader, in-process (inspect)"])
    up = clock("server: graph model and card (assemble)", lambda: U.assemble(doc, blob, data, "resnet18.pt2", f["npz"]),
               s)
    t0 = time.perf_counter()
    U.load_upload(data, "resnet18.pt2", f["npz"], "images.npz")
    s["load_upload, end to end"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    named = U.load_upload(f["safetensors"], "resnet18.safetensors", f["npz"], "images.npz", architecture="resnet18")
    s["name + safetensors: load_upload, end to end"] = time.perf_counter() - t0
    assert isinstance(named, slimcore.Sample)   # images with labels: a classifier
    print(f"\n1. Reading the upload (ResNet-18 .pt2, {len(data) / 2**20:.1f} MiB; data {len(f['npz']) / 2**20:.1f} MiB,"
          f" {len(up.data.train) + len(up.data.val) + len(up.data.test):,} images of 3 x 32 x 32)")
    for k, v in s.items():
        print(f"   {k:<48} {v:7.2f} s")
    print(f"   test accuracy: program {up.card['test_accuracy']:.2%}, name + safetensors "
          f"{named.card['test_accuracy']:.2%} (random weights, 10 classes); identical outputs: "
          f"{torch.equal(up.model(up.test.x[:64]), named.model(named.test.x[:64]))}")
    prune(up)


def prune(up) -> None:
    cfg = P.PruneConfig(0.5, structured=True)
    t0 = time.perf_counter()
    thin = slimcore.api.prune(up, cfg)
    took = time.perf_counter() - t0
    full_p, thin_p = (sum(p.numel() for p in m.parameters()) for m in (up.model, thin))
    print(f"\n3. Structured pruning, 50 % of channels (L1, per layer, {len(P.coupled_layers(up.model))} coupled groups"
          f" removed together): {took:.2f} s; parameters {full_p:,} -> {thin_p:,}; "
          f"output {tuple(thin(up.test.x[:2]).shape)}")
    print(f"   {'batch':>5} {'original ms (IQR)':>20} {'thin ms (IQR)':>18} {'speed-up':>9}")
    for batch in (1, 32):
        lat = M.compare_latency({"original": up.model, "thin": thin}, up.test.x[:batch], batch=batch, threads=2,
                                repeats=30, max_seconds=10.0)
        a, b = lat["original"], lat["thin"]
        print(f"   {batch:>5} {a.median_ms:>12.2f} ({a.iqr_ms:.2f}) {b.median_ms:>11.2f} ({b.iqr_ms:.2f}) "
              f"{a.median_ms / b.median_ms:>8.2f}x")
    score = slimcore.api.score(up, thin)
    print(f"   thin model: {score}")


def browser(f: dict[str, bytes]) -> None:
    from playwright.sync_api import sync_playwright

    from benchmarks.bench_browser import ARGS
    from slimui.served import Dashboard
    from tests.browser.helpers import PENDING, STATE

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "resnet18.pt2").write_bytes(f["pt2"])
        (folder / "images.npz").write_bytes(f["npz"])
        server = Dashboard(folder / "results", warmup=False, prefetch=False)
        try:
            with sync_playwright() as p:
                b = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
                page = b.new_page(viewport={"width": 1400, "height": 1800})
                page.goto(server.url)
                page.wait_for_function(f"{STATE} === 'notRunning' && !({PENDING})", timeout=300_000)
                page.get_by_text("Upload your own model").first.click()
                pickers = page.locator("[data-testid='stFileUploader'] input[type='file']")
                pickers.nth(1).set_input_files(str(folder / "images.npz"))
                page.wait_for_function(f"{STATE} === 'notRunning'", timeout=60_000)
                t0 = time.monotonic()
                pickers.nth(0).set_input_files(str(folder / "resnet18.pt2"))
                page.get_by_text("resnet18.pt2 (your upload)").wait_for(timeout=120_000)
                page.locator("[data-testid='stMetric']", has_text="Test accuracy").first.wait_for(timeout=60_000)
                first = time.monotonic() - t0
                page.wait_for_function(f"{STATE} === 'notRunning' && !({PENDING})", timeout=300_000, polling=50)
                complete = time.monotonic() - t0
                b.close()
        finally:
            server.stop()
    print(f"\n2. Chromium, the .pt2 chosen (data already chosen) -> first figures (the upload's test accuracy shown):"
          f" {first:.2f} s; -> page complete (charts, latency timed): {complete:.2f} s  [target <= 10 s]")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-browser", action="store_true")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads available")
    f = files()
    stages(f)
    if not args.no_browser:
        browser(f)


if __name__ == "__main__":
    main()
