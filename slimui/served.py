"""The dashboard served in a process of its own, as the README starts it (`python -m slimui`), on a free port of
127.0.0.1: what the browser tests and the benchmarks drive."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Dashboard:
    """`python -m slimui` on a free port with its own result cache folder (`results`), its output in a log file
    outside the checkout. `warmup`: whether it warms up; `prefetch`: whether it prepares slider positions ahead.
    Slow work runs in the background worker (never inline). Raises RuntimeError when it does not start within
    `timeout` seconds. `env`: more environment variables (SLIMLAB_WARMUP_SAMPLES...); `cwd`: the folder it is
    started in (default: the checkout, whose slimui it runs)."""

    def __init__(self, results: Path, warmup: bool = True, prefetch: bool = True, env: dict[str, str] | None = None,
                 timeout: float = 60.0, cwd: Path = ROOT) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(tempfile.gettempdir()) / f"slimlab-dashboard-{self.port}.log"
        environ = {k: v for k, v in os.environ.items() if k != "SLIMLAB_JOBS"}
        environ |= {"SLIMLAB_RESULTS": str(results), "SLIMLAB_WARMUP": "1" if warmup else "0",
                    "SLIMLAB_PREFETCH": "1" if prefetch else "0", **(env or {})}
        self.cwd = cwd
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "slimui", "--server.headless", "true", "--server.address", "127.0.0.1",
             "--server.port", str(self.port), "--browser.gatherUsageStats", "false"],
            cwd=cwd, env=environ, stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        deadline = self.started + timeout
        while True:
            try:
                if urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError as e:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.proc.kill()
                    raise RuntimeError(f"the dashboard did not start (exit {self.proc.poll()}); see {self.log}") from e
                time.sleep(0.2)
        self.ready = time.monotonic() - self.started   # seconds until it answered

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
