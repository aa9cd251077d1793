"""Shared fixtures (the repository root and loaded sample models, read-only), the Hypothesis profiles, and the test
tiers: markers put on by file and by what a test calls, so nobody has to remember them (see pytest.ini and README)."""
from __future__ import annotations

import inspect
import os
import types
from pathlib import Path

import pytest
from hypothesis import settings

# Under pytest-xdist the workers share the cores: each gets its share of threads (torch's own pool and, through the
# environment, the subprocesses tests start), not all of them each. Oversubscribed, torch's threads wait on each other
# and a 0.4 s test can take 10 s. An OMP_NUM_THREADS set by hand wins.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
if _WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))

# Pages run their slow parts in the background worker (slimcore.jobs); in AppTest a page run is one script run, with
# no browser to poll for the results, so the tests run them inline (the browser tests serve the app as users get it).
# Results kept on disk go to a folder of this test run, never to the user's cache.
os.environ.setdefault("SLIMLAB_JOBS", "inline")
if "SLIMLAB_RESULTS" not in os.environ:
    import tempfile
    os.environ["SLIMLAB_RESULTS"] = tempfile.mkdtemp(prefix="slimlab-results-")

import torch  # noqa: E402

import slimcore  # noqa: E402  (after the thread count: importing slimcore imports torch)
from slimcore.text import TextSample  # noqa: E402

if _WORKERS > 1:
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

ROOT = Path(__file__).resolve().parent.parent

# The stored golden figures and the shipped sample weights were computed, and checked by every session and CI run
# until 2026-11-26, on AMD EPYC machines (as slimcore.metrics.cpu_name() names them). Another kind of CPU gets other
# SIMD kernels from PyTorch and MKL, and float32 results that differ in their last bits (training amplifies them):
# tests that compare bit for bit do so only there, and check the same thing more loosely elsewhere.
RECORDED_ON = "AMD EPYC"


def recording_cpu() -> bool:
    """Whether this machine's CPU is the kind the stored figures and weights were computed on."""
    from slimcore.metrics import cpu_name

    return cpu_name().startswith(RECORDED_ON)


def load_classifier(name: str) -> slimcore.Sample:
    """slimcore.load_sample of a classifier sample, typed as one (load_sample's type covers the text sample too)."""
    s = slimcore.load_sample(name)
    assert isinstance(s, slimcore.Sample), name
    return s


def load_text() -> TextSample:
    """slimcore.load_sample("minilm"), typed as the text sample it is."""
    s = slimcore.load_sample("minilm")
    assert isinstance(s, TextSample)
    return s

# Hypothesis: the profile decides how many examples a property test tries (tests set no max_examples of their own).
# "ci" tries at least as many as any test used to ask for; "dev" a handful, so the fast tier stays fast.
settings.register_profile("ci", max_examples=300, deadline=None)
settings.register_profile("dev", max_examples=10, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") == "true" else "dev"))

def _uses_apptest(fn, seen: set) -> bool:
    """Whether a function builds an AppTest: it names AppTest, calls a helper of tests/apptest_utils.py, or calls a
    function of the test package that does."""
    fn = inspect.unwrap(getattr(fn, "__func__", fn))
    code = getattr(fn, "__code__", None)
    if code is None or code in seen:
        return False
    seen.add(code)
    names, stack = set(), [code]
    while stack:  # the function's names and those of the functions and lambdas nested in it
        c = stack.pop()
        names.update(c.co_names)
        stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    if "AppTest" in names:
        return True
    for name in names:
        obj = fn.__globals__.get(name)
        where = getattr(obj, "__module__", None) or ""
        if where == "tests.apptest_utils":
            return True
        if inspect.isfunction(obj) and where.startswith("tests.") and _uses_apptest(obj, seen):
            return True
    return False


def _item_uses_apptest(item: pytest.Item) -> bool:
    """The test function or any fixture it requests (directly or through other fixtures) builds an AppTest."""
    seen: set = set()
    if _uses_apptest(getattr(item, "function", None), seen):
        return True
    info = getattr(item, "_fixtureinfo", None)
    return any(_uses_apptest(d.func, seen) for defs in (info.name2fixturedefs.values() if info else ()) for d in defs
               if (getattr(d.func, "__module__", None) or "").startswith("tests"))


def pytest_collection_modifyitems(config, items):
    """browser: everything under tests/browser, also serial (each xdist worker would start its own server and Chromium).
    apptest: tests/test_page_*.py, tests/test_app_home.py and any other test that builds an AppTest.
    slow, and serial for single tests, are set in the test files themselves."""
    for item in items:
        path = Path(str(item.path)).resolve()
        rel = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        if rel.parts[:2] == ("tests", "browser"):
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.serial)
        elif rel.name.startswith("test_page_") or rel.name == "test_app_home.py" or _item_uses_apptest(item):
            item.add_marker(pytest.mark.apptest)


@pytest.fixture(scope="session", params=slimcore.list_samples("classifier"))
def sample(request) -> slimcore.Sample:
    """Each shipped sample model in turn (tests must not change it)."""
    return load_classifier(request.param)


@pytest.fixture(scope="session")
def digits_cnn() -> slimcore.Sample:
    return load_classifier("digits-cnn")


@pytest.fixture
def fresh_results(tmp_path):
    """This test's own result cache and job table: what it expects to compute (a button offering a scan) is not
    found already computed by another test run before it in the same process."""
    from slimcore import store
    from slimui import work

    before = work.use_results(store.Store(tmp_path / "results"))
    work.clear()
    yield
    work.clear()
    work.use_results(before)
