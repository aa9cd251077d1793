"""The package as pip builds it (pyproject.toml): what the wheel holds, and that the installed code runs from outside
the checkout with nothing read from it; and the `slimlab` command's own options."""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import slimcore
from slimui import __main__ as slimlab
from tests.wheel_utils import ROOT, build, install


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("build"))


def test_the_wheel_holds_the_dashboard_the_samples_and_both_commands(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = z.read(info).decode()
        entry = z.read(info.replace("METADATA", "entry_points.txt")).decode()
        shipped = {n: z.read(n) for n in names}
    # every page, lesson and sample file of the checkout, byte for byte, where slimui.paths / slimcore.paths look
    for folder, into, pattern in [("views", "slimui/dashboard/views", "*.py"),
                                  ("lessons", "slimui/dashboard/lessons", "*.yaml"),
                                  ("sample_models", "slimcore/sample_models", "*.pt"),
                                  ("sample_models", "slimcore/sample_models", "*.json")]:
        files = sorted((ROOT / folder).glob(pattern))
        assert files
        for f in files:
            assert shipped.get(f"{into}/{f.name}") == f.read_bytes(), f"{into}/{f.name}"
    for f in ["slimui/dashboard/app.py", "slimui/dashboard/.streamlit/config.toml"]:
        assert shipped[f] == (ROOT / f.removeprefix("slimui/dashboard/")).read_bytes()
    for package in ["slimcore", "slimui"]:
        code = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / package).rglob("*.py")
                      if "__pycache__" not in p.parts)
        assert set(code) <= names
        assert f"{package}/py.typed" in names
    assert f"Version: {slimcore.__version__}" in meta
    assert "Requires-Dist: torch==2.13.0" in meta   # pinned, as requirements.txt: a range pulls a CUDA build
    assert "slimlab = slimui.__main__:main" in entry and "slimlab-cli = slimcore.cli:main" in entry
    assert not any(n.startswith(("tests/", "benchmarks/")) for n in names)


@pytest.mark.slow
def test_the_installed_package_runs_outside_the_checkout_and_sweeps_as_the_clone_does(wheel, tmp_path):
    site, elsewhere = tmp_path / "site-packages", tmp_path / "elsewhere"
    elsewhere.mkdir()
    # the checkout is not on this interpreter's path: only what the wheel installed, and the venv's other packages
    env = install(wheel, site) | {"SLIMLAB_CACHE": str(tmp_path / "cache")}
    where = subprocess.run(
        [sys.executable, "-c", "import slimcore, slimcore.paths as c, slimui.paths as u, slimui.lessons as l; "
                               "print(slimcore.__file__, c.SAMPLE_DIR, u.APP, len(l.load_all()[0]), sep='\\n')"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert where.returncode == 0, where.stderr
    module, samples, app, lessons = where.stdout.split()
    for path in (module, samples, app):
        assert Path(path).is_relative_to(site), path
    assert int(lessons) == len(list((ROOT / "lessons").glob("*.yaml")))

    def sweep(cwd: Path, environ: dict[str, str]) -> bytes:
        out = tmp_path / f"{cwd.name}.csv"
        run = subprocess.run([sys.executable, "-m", "slimcore", "sweep", "--model", "digits-cnn", "--out", str(out)],
                             cwd=cwd, env=environ, capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr
        return out.read_bytes()

    clone_env = {k: v for k, v in env.items() if k != "PYTHONPATH"} | {"SLIMLAB_CACHE": str(tmp_path / "cache2")}
    assert sweep(elsewhere, env) == sweep(ROOT, clone_env)


def test_slimlab_passes_streamlit_options_through_and_leaves_the_default_port_to_streamlit():
    ours, rest = slimlab.parse([])
    assert rest == [] and ours.cache is None   # 8501, or STREAMLIT_SERVER_PORT / a config's server.port
    assert slimlab.parse(["--port", "8777", "--server.headless", "true"])[1] == [
        "--server.port", "8777", "--server.headless", "true"]
    assert slimlab.parse(["--server.port", "8777"])[1] == ["--server.port", "8777"]
    assert slimlab.parse(["--server.port=8777"])[1] == ["--server.port=8777"]


@pytest.mark.parametrize("argv", [["--port", "0"], ["--port", "http"], ["--port", "70000"],
                                  ["--port", "8777", "--server.port", "8000"]])
def test_slimlab_refuses_a_port_that_is_not_one(argv, capsys):
    with pytest.raises(SystemExit) as e:
        slimlab.parse(argv)
    assert e.value.code == 2 and "--port" in capsys.readouterr().err


def test_slimlab_cache_option_sets_the_cache_folder_and_runs_the_installed_app(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr("streamlit.web.cli.main", lambda prog_name: seen.update(argv=list(sys.argv)))
    monkeypatch.setattr(slimlab.threading, "Thread", lambda **kw: type("T", (), {"start": lambda self: None})())
    monkeypatch.delenv("SLIMLAB_CACHE", raising=False)
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    slimlab.main(["--cache", str(tmp_path / "new" / "cache"), "--server.headless", "true"])
    assert os.environ["SLIMLAB_CACHE"] == str((tmp_path / "new" / "cache").resolve())
    assert (tmp_path / "new" / "cache").is_dir()
    assert seen["argv"] == ["streamlit", "run", str(slimlab.APP), "--server.headless", "true"]


def test_slimlab_says_in_one_line_when_the_cache_folder_cannot_be_made(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setattr("streamlit.web.cli.main", lambda prog_name: pytest.fail("started anyway"))
    with pytest.raises(SystemExit) as e:
        slimlab.main(["--cache", str(blocker / "cache")])
    assert str(e.value).startswith(f"slimlab: cannot use {blocker / 'cache'} as the cache folder")
