"""SlimLab installed from its wheel and served from a folder outside the checkout, as `slimlab` serves it: the
app, its pages, its lessons, its Streamlit settings and every sample come from the package, and they work."""
import pytest
from playwright.sync_api import expect

import slimcore
from slimcore import pruning as P
from tests.browser.conftest import Served
from tests.browser.helpers import expect_metric, wait_idle
from tests.wheel_utils import ROOT, build, install

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    work = tmp_path_factory.mktemp("installed")
    env = install(build(work), work / "site-packages")
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    served = Served(work / "results", cwd=elsewhere, PYTHONPATH=env["PYTHONPATH"])
    yield served
    served.stop()


def test_the_installed_dashboard_serves_every_sample_its_labs_and_lessons(installed, page):
    assert not installed.cwd.is_relative_to(ROOT)
    for name in slimcore.list_samples():   # every sample's home: its card's figures, from the package's files
        page.goto(f"{installed.url}/?model={name}")
        s = slimcore.load_sample(name)
        label = "Test accuracy" if "test_accuracy" in s.card else "Parameters"
        value = f"{s.card['test_accuracy']:.2%}" if "test_accuracy" in s.card else f"{s.card['parameters']:,}"
        expect_metric(page, label, value)
        wait_idle(page)
        assert page.locator("text=Traceback").count() == 0, name

    s = slimcore.load_sample("digits-mlp")   # a lab computes from the installed code
    r = P.evaluate(s.model, P.PruneConfig(0.3), s.test)[0]
    page.goto(f"{installed.url}/Pruning?model=digits-mlp&prune_ratio=0.30")
    expect_metric(page, "Non-zero parameters", f"{r.nonzeros:,}")
    expect_metric(page, "Test accuracy", f"{r.score.value:.2%}")
    wait_idle(page)

    page.goto(f"{installed.url}/Lessons")   # the lessons are read from the package
    for lesson in sorted((ROOT / "lessons").glob("*.yaml")):
        title = next(line for line in lesson.read_text().splitlines() if line.startswith("title:"))[6:].strip()
        expect(page.get_by_text(title, exact=True).first).to_be_visible()
    assert page.locator("text=Traceback").count() == 0
