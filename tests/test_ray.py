"""Sweeps on a real Ray cluster: a local head on the loopback address with 2 CPUs, started for this module. A grid, a
sensitivity scan, an allocation and the text grid computed there equal the same computed in this process; results
stream back as tasks finish; a worker killed mid-sweep loses nothing and duplicates nothing; stopping a sweep
cancels the cluster's tasks; the CLI's --ray and the dashboard's SLIMLAB_RAY_ADDRESS give the same numbers."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

import slimcore
from slimcore import executor as X
from slimcore import sensitivity as SE
from slimcore import tradeoffs as T
from slimcore.sweep import allocate_sample
from slimui.served import free_port
from tests.apptest_utils import figures, run_page

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.serial   # the cluster's two workers need the machine's two cores
ray = pytest.importorskip("ray") if os.environ.get("CI") != "true" else __import__("ray")


@pytest.fixture(scope="module")
def cluster():
    """A local Ray head (loopback, 2 CPUs, no dashboard) for this module: its address."""
    with X.LocalCluster(cpus=2) as address:
        X.resolve(address).connect()
        yield address


class Enough(Exception):
    pass


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))
    assert a.attrs.keys() == b.attrs.keys()


CNN_GRID = T.GridConfig(("unstructured", "channels"), ("l1", "taylor"), (0.0, 0.3, 0.6, 0.9),
                        ("fp32", "8-bit", "2-bit"))


def test_a_grid_on_the_cluster_equals_the_grid_in_process(cluster, digits_cnn):
    here = T.grid(digits_cnn, CNN_GRID)
    seen = []
    there = T.grid(digits_cnn, CNN_GRID, executor=X.Ray(cluster, batch=2),
                   on_progress=lambda done, total: seen.append((done, total)))
    _same(here, there)
    total = len(CNN_GRID.pieces())
    assert [d for d, _ in seen] == list(range(1, total + 1)) and {t for _, t in seen} == {total}
    assert len(there) == total * len(CNN_GRID.precisions)


def _slow_item(folder: str, item: int) -> int:
    """A piece that takes a while and leaves a mark for each time it runs, named by its process (imported by the
    cluster's workers)."""
    (Path(folder) / f"{item}.{os.getpid()}.started").touch()
    time.sleep(0.4)
    (Path(folder) / f"{item}.{os.getpid()}").touch()
    return item * item


def _failing_item(_shared: object, item: int) -> int:
    if item == 3:
        raise ValueError("piece 3 cannot be built")
    return item


def test_results_stream_back_as_tasks_finish(cluster, tmp_path):
    arrived: list[float] = []
    t0 = time.perf_counter()
    out = X.Ray(cluster, batch=1).map(_slow_item, str(tmp_path), list(range(8)),
                                      lambda i, r: arrived.append(time.perf_counter() - t0))
    assert out == [i * i for i in range(8)]
    # 8 pieces of 0.4 s on 2 workers: the first arrive about 1.2 s before the last, not all at once at the end
    assert arrived[-1] - arrived[0] > 0.8, arrived


def test_a_piece_failing_on_a_worker_raises_its_own_error_here(cluster):
    with pytest.raises(ValueError, match="^piece 3 cannot be built$"):
        X.Ray(cluster, batch=2).map(_failing_item, None, list(range(6)))


def test_stopping_at_a_batch_still_hands_over_its_other_pieces(cluster, tmp_path):
    got: list[int] = []

    def stop_at_first(i: int, _result: int) -> None:
        got.append(i)
        raise Enough

    with pytest.raises(Enough):
        X.Ray(cluster, batch=3).map(_slow_item, str(tmp_path), list(range(6)), stop_at_first)
    assert len(got) == 3   # the whole batch that finished, though the caller stopped at its first piece


def test_a_scan_and_an_allocation_on_the_cluster_equal_them_in_process(cluster, digits_cnn):
    cfg = SE.ScanConfig("prune", settings=(0.3, 0.6, 0.9))
    ex = X.Ray(cluster)
    here, there = SE.scan_sample(digits_cnn, cfg), SE.scan_sample(digits_cnn, cfg, executor=ex)
    _same(here, there)
    a, b = allocate_sample(digits_cnn, here, 1.0), allocate_sample(digits_cnn, here, 1.0, executor=ex)
    assert (a.result, a.uniform, a.tries) == (b.result, b.uniform, b.tries)


@pytest.mark.slow
def test_the_text_grid_on_the_cluster_equals_it_in_process(cluster):
    s = slimcore.load_sample("minilm")
    cfg = T.GridConfig(("unstructured", "heads"), ("l1",), (0.0, 0.5), ("fp32", "int8", "4-bit"))
    _same(T.grid(s, cfg), T.grid(s, cfg, executor=X.Ray(cluster)))


def _running_tasks() -> list[psutil.Process]:
    """The cluster's worker processes running a batch of a sweep now (Ray titles them ray::_batch)."""
    return [p for p in psutil.process_iter(["name", "cmdline"])
            if "ray::_batch" in " ".join(p.info["cmdline"] or [p.info["name"] or ""])]


def test_a_worker_killed_at_half_way_loses_and_duplicates_nothing(cluster, digits_cnn):
    cfg = T.GridConfig(("unstructured", "channels"), ("l1",), T.RATIOS, ("fp32", "8-bit", "4-bit"))
    killed: list[int] = []

    def kill_at_half(done: int, total: int) -> None:
        if not killed and done >= total // 2:
            for _ in range(200):   # a worker busy with a task: its task is lost with it and must be run again
                for proc in _running_tasks():
                    try:
                        proc.kill()
                    except psutil.NoSuchProcess:   # it finished meanwhile: another one
                        continue
                    killed.append(proc.pid)
                    return
                time.sleep(0.05)

    there = T.grid(digits_cnn, cfg, executor=X.Ray(cluster, batch=1), on_progress=kill_at_half)
    assert killed, "no worker was running a task at half way: nothing was killed"
    assert not psutil.pid_exists(killed[0]) or psutil.Process(killed[0]).status() == psutil.STATUS_ZOMBIE
    keys = ["prune", "method", "prune_ratio", "precision"]
    assert not there.duplicated(subset=keys).any()
    assert len(there) == len(cfg.pieces()) * len(cfg.precisions)
    _same(T.grid(digits_cnn, cfg), there)


def test_a_piece_whose_worker_is_killed_runs_again_and_comes_back_once(cluster, tmp_path):
    killed: list[int] = []

    def kill_one(i: int, _result: int) -> None:
        if killed:
            return
        for _ in range(100):   # a piece under way now (started, not finished): kill the process running it
            under_way = [f.name.split(".")[:2] for f in tmp_path.glob("*.started")
                         if not (tmp_path / f.name.removesuffix(".started")).exists()]
            for item, pid in under_way:
                try:
                    psutil.Process(int(pid)).kill()
                except psutil.NoSuchProcess:
                    continue
                killed.append(int(item))
                return
            time.sleep(0.02)

    out = X.Ray(cluster, batch=1).map(_slow_item, str(tmp_path), list(range(12)), kill_one)
    assert killed, "no piece was under way when the first one came back"
    assert out == [i * i for i in range(12)]
    starts = [f.name.split(".")[0] for f in tmp_path.glob("*.started")]
    assert starts.count(str(killed[0])) == 2, "the killed piece did not run again"


def test_stopping_a_sweep_cancels_its_tasks_on_the_cluster(cluster, tmp_path):
    def stop_after_two(i: int, _result: int) -> None:
        got.append(i)
        if len(got) == 2:
            raise Enough

    got: list[int] = []
    with pytest.raises(Enough):
        X.Ray(cluster, batch=1).map(_slow_item, str(tmp_path), list(range(40)), stop_after_two)
    time.sleep(3)   # what was not cancelled would go on running meanwhile (40 x 0.4 s on 2 workers: 8 s)
    ran = len([f for f in tmp_path.iterdir() if f.suffix != ".started"])
    assert 2 <= ran <= 6, f"{ran} of 40 pieces ran after the sweep was stopped at 2"


def test_the_cli_sweeps_on_the_cluster_with_the_same_csv(cluster, tmp_path):
    args = [sys.executable, "-m", "slimcore", "sweep", "--model", "digits-mlp", "--ratios", "0,0.5,0.9",
            "--bits", "32,8,3", "--methods", "l1", "random"]
    here = subprocess.run([*args, "--out", str(tmp_path / "here.csv")], cwd=ROOT, capture_output=True, text=True)
    there = subprocess.run([*args, "--out", str(tmp_path / "there.csv"), "--ray", cluster], cwd=ROOT,
                           capture_output=True, text=True)
    assert here.returncode == 0 and there.returncode == 0, there.stderr[-2000:]
    assert (tmp_path / "here.csv").read_bytes() == (tmp_path / "there.csv").read_bytes()
    assert f"on ray ({cluster})" in there.stdout


def test_the_cli_says_in_one_line_when_no_cluster_answers(tmp_path):
    r = subprocess.run([sys.executable, "-m", "slimcore", "sweep", "--model", "digits-mlp", "--ratios", "0",
                        "--bits", "32", "--out", str(tmp_path / "t.csv"), "--ray", f"127.0.0.1:{free_port()}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "no Ray cluster answers at 127.0.0.1:" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "t.csv").exists()


def test_the_cli_says_a_malformed_address_is_a_bad_argument(tmp_path):
    r = subprocess.run([sys.executable, "-m", "slimcore", "sweep", "--model", "digits-mlp", "--out",
                        str(tmp_path / "t.csv"), "--ray", "http://head"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and "--ray: a Ray address is 'auto', host:port" in r.stderr


def test_the_trade_offs_page_draws_the_same_with_the_cluster(cluster, fresh_results, tmp_path, monkeypatch):
    from slimcore import store
    from slimui import work
    here = figures(run_page("views/4_Trade-offs.py"))["tradeoff_chart"]
    work.use_results(store.Store(tmp_path / "on-the-cluster"))   # nothing kept: every piece computed there
    work.clear()
    monkeypatch.setenv(X.ENV, cluster)
    maps = []
    real_map = X.Ray.map
    monkeypatch.setattr(X.Ray, "map", lambda self, *a, **k: maps.append(self.address) or real_map(self, *a, **k))
    page = run_page("views/4_Trade-offs.py")
    assert maps and set(maps) == {cluster}   # the grid was computed there
    assert figures(page)["tradeoff_chart"] == here
    assert any(cluster in c.value for c in page.caption)


@pytest.mark.slow
def test_ctrl_c_stops_a_cli_sweep_on_the_cluster(cluster, tmp_path):
    out = tmp_path / "t.csv"
    cli = subprocess.Popen([sys.executable, "-m", "slimcore", "sweep", "--model", "minilm", "--no-structured",
                            "--ratios", "0,0.25,0.5,0.75", "--bits", "32,8,4", "--out", str(out), "--ray", cluster],
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not _running_tasks() and cli.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _running_tasks(), "the sweep never ran a task on the cluster"
    cli.send_signal(signal.SIGINT)
    _, err = cli.communicate(timeout=60)
    assert cli.returncode == 130 and "interrupted" in err and "Traceback" not in err, err[-2000:]
    assert not out.exists()
    time.sleep(2)
    assert not _running_tasks(), "the cluster still runs the stopped sweep's tasks"
