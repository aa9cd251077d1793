"""Uploads in real headless Chromium: a bad file gets a message and changes nothing; a good one becomes the model of
this browser session only, and a lab works on it."""
import io

import pytest
import torch
from playwright.sync_api import expect

import slimcore
from slimcore import pruning as P
from tests.browser.helpers import BACKGROUND, expect_metric, wait_idle

pytestmark = pytest.mark.browser


def _pick(page, path) -> None:
    page.locator("[data-testid='stFileUploader'] input[type='file']").first.set_input_files(str(path))
    expect(page.locator("[data-testid='stFileChipName']")).to_have_text(path.name, timeout=60_000)  # sent; read at once


def test_upload_a_bad_file_then_a_good_one(server, browser, page, tmp_path):
    s = slimcore.load_sample("mnist1d-mlp")
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(s.model), buf)
    good, bad = tmp_path / "my model.pt", tmp_path / "notes.txt"
    good.write_bytes(buf.getvalue())
    bad.write_bytes(b"these are not weights\n" * 20)

    page.goto(server)
    default = slimcore.load_sample(slimcore.DEFAULT_SAMPLE)
    expect_metric(page, "Test accuracy", f"{default.card['test_accuracy']:.2%}")
    page.get_by_text("Upload your own model").first.click()   # closed until asked for: the model card comes first
    _pick(page, bad)
    expect(page.get_by_text("cannot be used: this is not a PyTorch model file")).to_be_visible(timeout=60_000)
    expect_metric(page, "Test accuracy", f"{default.card['test_accuracy']:.2%}")  # nothing changed
    assert page.locator("[data-testid='stException']").count() == 0

    _pick(page, good)  # replaces the bad file in the same picker
    expect(page.get_by_text("my model.pt (your upload)")).to_be_visible(timeout=60_000)
    expect_metric(page, "Test accuracy", f"{s.card['test_accuracy']:.2%}")
    expect_metric(page, "Parameters", f"{s.card['parameters']:,}")
    wait_idle(page)
    assert "model=upload-" in page.url
    expect(page.locator("[data-testid='stPlotlyChart'] .js-plotly-plot")).to_have_count(3, timeout=BACKGROUND)

    page.get_by_role("link", name="Pruning").first.click()  # the upload stays this session's model on a lab
    want = P.evaluate(s.model, P.PruneConfig(0.5), s.test)[0]
    expect_metric(page, "Non-zero parameters", f"{want.nonzeros:,}")
    assert page.locator("[data-testid='stException']").count() == 0

    other = browser.new_context(viewport={"width": 1400, "height": 1800}).new_page()  # another user: untouched
    other.goto(server)
    expect_metric(other, "Test accuracy", f"{default.card['test_accuracy']:.2%}")
    other.context.close()


def test_export_from_a_lab_gives_a_zip_that_loads_elsewhere_with_the_pages_figures(server, page, tmp_path):
    import json
    import zipfile

    import onnxruntime as ort

    page.goto(f"{server}/Pruning?model=digits-mlp&prune_ratio=0.7&prune_structured=1")
    shown = page.locator("[data-testid='stMetric']", has_text="Test accuracy").locator(
        "[data-testid='stMetricValue']").inner_text()
    wait_idle(page)
    button = page.get_by_role("button", name="Download model (zip)")
    button.scroll_into_view_if_needed()
    with page.expect_download(timeout=120_000) as dl:
        button.click()
    path = tmp_path / "export.zip"
    dl.value.save_as(path)
    z = zipfile.ZipFile(path)
    names = set(z.namelist())
    assert {"recipe.yaml", "figures.json"} <= names and any(n.endswith(".onnx") for n in names)
    figures = json.loads(z.read("figures.json"))
    assert f"{figures['figures']['accuracy']:.2%}" == shown  # the zip's measured figure is the page's
    s = slimcore.load_sample("digits-mlp")
    onnx = next(n for n in names if n.endswith(".onnx"))
    session = ort.InferenceSession(z.read(onnx), providers=["CPUExecutionProvider"])
    x = s.test.x.numpy()
    logits = session.run(None, {session.get_inputs()[0].name: x})[0]
    assert f"{(logits.argmax(1) == s.test.y.numpy()).mean():.2%}" == shown  # and a runtime elsewhere agrees


def test_a_resnet18_program_with_image_data_becomes_the_model_and_a_lab_works_on_it(server, page, tmp_path):
    """A ResNet-18 exported with torch.export (residual adds: run as its graph) and 3 x 32 x 32 images: the card says
    how it runs and which channels are tied; the Pruning page shows the figures slimcore computes for it."""
    import numpy as np

    from slimcore import architectures as A
    from slimcore import upload as U
    from slimcore.data import digit_images

    model = A.build("resnet18", 10, 3, seed=0)
    x, y = digit_images(32, 3)
    program = tmp_path / "resnet18.pt2"
    torch.export.save(torch.export.export(model, (torch.as_tensor(x[:2]),),
                                          dynamic_shapes=({0: torch.export.Dim("batch")},)), str(program))
    images = tmp_path / "images.npz"
    np.savez(images, x=x, y=y)
    up = U.load_upload(program.read_bytes(), "resnet18.pt2", images.read_bytes(), "images.npz")

    page.goto(server)
    page.get_by_text("Upload your own model").first.click()
    pickers = page.locator("[data-testid='stFileUploader'] input[type='file']")
    pickers.nth(1).set_input_files(str(images))   # the data first: alone it waits for a model
    pickers.nth(0).set_input_files(str(program))
    expect(page.get_by_text("resnet18.pt2 (your upload)")).to_be_visible(timeout=120_000)
    expect_metric(page, "Test accuracy", f"{up.card['test_accuracy']:.2%}")
    expect_metric(page, "Parameters", f"{up.card['parameters']:,}")
    expect(page.get_by_text("run as its graph").first).to_be_visible()
    expect(page.get_by_text("conv1 + layer1.0.conv2 + layer1.1.conv2").first).to_be_visible()
    assert page.locator("[data-testid='stException']").count() == 0

    page.get_by_role("link", name="Pruning").first.click()
    want = P.evaluate(up.model, P.PruneConfig(0.5), up.test)[0]
    expect_metric(page, "Non-zero parameters", f"{want.nonzeros:,}")
    assert page.locator("[data-testid='stException']").count() == 0
