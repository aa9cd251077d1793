"""Where a sweep's independent pieces run: here, one after another (the default: nothing to install or start), or on
a Ray cluster when asked (`--ray auto|ADDRESS` on the command line, $SLIMLAB_RAY_ADDRESS for the dashboard).

Every sweep (the Trade-offs grid of any family, a sensitivity scan, an allocation search) is written once as
`executor.map(fn, shared, items, on_done)`: `fn(shared, item)` is a module-level function of slimcore that computes one
piece from what all pieces share (the loaded sample, the grid's settings, weight scores). The in-process executor
calls it item by item. The Ray executor puts `shared` into the cluster's object store once, sends the items in
batches (a task computes several pieces, so a task's overhead is paid once per batch), and hands each batch's
results to `on_done` as its task finishes, in whatever order they finish; the returned list is in item order, so the
caller cannot tell where a piece was computed. Ray core tasks, not Ray Tune: a sweep here is a fixed list of
deterministic evaluations with no search, early stopping or checkpoints, so tasks are all it needs.

Faults: a task whose worker dies is run again by Ray (`retries` times); a piece is deterministic, so its retry gives
the same figures, and each piece's result is taken once, from the task that finished. When the caller stops (an
exception from `on_done`, Ctrl-C) the tasks not yet finished are cancelled on the cluster.
"""
from __future__ import annotations

import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .paths import child_env

ENV = "SLIMLAB_RAY_ADDRESS"           # the dashboard's cluster: "auto", or host:port of a running Ray head
OnDone = Callable[[int, Any], None]   # on_done(item index, its result), as each piece is finished


class ExecutorError(RuntimeError):
    """The cluster cannot be used (Ray not installed, no head at the address): said in one line."""


class Executor(Protocol):
    @property
    def name(self) -> str: ...

    def warm(self) -> None: ...

    @property
    def workers(self) -> int: ...

    def map(self, fn: Callable[[Any, Any], Any], shared: Any, items: Sequence[Any],
            on_done: OnDone | None = None, tick: Callable[[], None] | None = None) -> list[Any]: ...


class InProcess:
    """Each piece in this process, one after another: today's behaviour."""

    name = "in-process"

    def warm(self) -> None:
        """Nothing to start."""

    @property
    def workers(self) -> int:
        return 1

    def map(self, fn: Callable[[Any, Any], Any], shared: Any, items: Sequence[Any],
            on_done: OnDone | None = None, tick: Callable[[], None] | None = None) -> list[Any]:
        out = []
        for i, item in enumerate(items):
            out.append(fn(shared, item))
            if on_done is not None:
                on_done(i, out[-1])
        return out


# What a Ray worker process keeps between tasks: the shared payload of the sweeps it works on, by object id (fetched
# and unpickled once per worker, not once per task).
_payloads: dict[str, Any] = {}
_connect_lock = threading.Lock()
_payload_lock = threading.Lock()


def _payload(box: list[Any]) -> Any:
    import ray
    key = box[0].hex()
    with _payload_lock:
        if key not in _payloads:
            _payloads.clear()          # one sweep at a time per worker: drop the previous sweep's model
            _payloads[key] = ray.get(box[0])
        return _payloads[key]


def _ready() -> int:
    """A Ray task that imports what the sweeps need (torch and slimcore take seconds to import in a new worker)."""
    from . import sensitivity, sweep, tradeoffs  # noqa: F401
    return os.getpid()


def _batch(box: list[Any], fn: Callable[[Any, Any], Any], items: list[Any]) -> list[Any]:
    """A Ray task: several pieces of one sweep, computed one after another in a worker."""
    shared = _payload(box)   # the reference is boxed in a list so that Ray does not fetch it for every task
    return [fn(shared, item) for item in items]


WAIT = 0.5   # seconds a Ray map waits for a task before it lets its caller look up (tick)
_remote: dict[int, Any] = {}


def _remote_batch(retries: int) -> Any:
    """_batch as a Ray task (registered once per process and retry count)."""
    import ray
    if retries not in _remote:
        _remote[retries] = ray.remote(num_cpus=1, max_retries=retries, retry_exceptions=False)(_batch)
    return _remote[retries]


def check_address(address: str) -> None:
    """An ExecutorError unless `address` is "auto", host:port or ray://host:port."""
    if address == "auto":
        return
    host, _, port = address.split("://")[-1].rpartition(":")
    if not host or not port.isdigit() or ("://" in address and not address.startswith("ray://")):
        raise ExecutorError(f"a Ray address is 'auto', host:port of a head (e.g. 127.0.0.1:6379) or "
                            f"ray://host:port of its client server, got {address!r}")


def _answers(address: str, timeout: float = 5.0) -> None:
    """An ExecutorError unless something listens at host:port (a Ray head's GCS, or a ray:// client server)."""
    check_address(address)
    host, _, port = address.split("://")[-1].rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise ExecutorError(f"no Ray cluster answers at {address}: {e.strerror or e}") from None


@dataclass
class Ray:
    """Pieces on a Ray cluster (`address`: "auto", or host:port of a head started with `ray start --head`). The
    cluster's workers import slimcore from this checkout (the same path on every node, as on one machine or a
    shared filesystem) or from an installed SlimLab of the same version. `batch`: pieces per task (default: about
    four tasks per worker CPU, so progress moves and a lost worker costs little)."""

    address: str
    batch: int | None = None
    retries: int = 3

    @property
    def name(self) -> str:
        return f"ray ({self.address})"

    def connect(self) -> None:
        try:
            import ray
        except ImportError:
            raise ExecutorError("Ray is not installed here: pip install ray==2.60.0 (or leave the Ray address unset "
                                "to run in this process)") from None
        with _connect_lock:   # the dashboard's warm-up and its worker may connect at the same time
            if ray.is_initialized():
                return
            if self.address != "auto":
                _answers(self.address)   # ray.init would retry an address where nothing listens for ever
            self._init(ray)

    def _init(self, ray: Any) -> None:
        try:
            ray.init(address=self.address, log_to_driver=False, configure_logging=False, namespace="slimlab",
                     runtime_env={"env_vars": child_env()})
        except (ConnectionError, RuntimeError, ValueError) as e:
            line = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise ExecutorError(f"no Ray cluster at {self.address!r}: {line}") from None

    @property
    def workers(self) -> int:
        import ray
        self.connect()
        return max(1, int(ray.cluster_resources().get("CPU", 1)))   # type: ignore[no-untyped-call]  # ray: unannotated

    def warm(self) -> None:
        """Start the cluster's workers now, without waiting for them: one task per worker CPU that imports what
        the sweeps need, so that a sweep soon after finds them ready (the CLI starts them while it loads the model,
        the dashboard when it starts)."""
        import ray
        self.connect()
        task = ray.remote(num_cpus=1)(_ready)
        for _ in range(self.workers):
            task.remote()   # runs whether or not its result is ever read

    def batches(self, n: int) -> list[range]:
        """The items' indices in the tasks' batches."""
        size = self.batch or max(1, math.ceil(n / (4 * self.workers)))
        return [range(i, min(i + size, n)) for i in range(0, n, size)]

    def map(self, fn: Callable[[Any, Any], Any], shared: Any, items: Sequence[Any],
            on_done: OnDone | None = None, tick: Callable[[], None] | None = None) -> list[Any]:
        import ray
        from ray.exceptions import RayTaskError
        self.connect()
        if not items:
            return []
        task = _remote_batch(self.retries)
        box = [ray.put(shared)]   # once into the object store; each worker fetches it once
        pending = {task.remote(box, fn, [items[i] for i in idx]): idx for idx in self.batches(len(items))}
        out: list[Any] = [None] * len(items)
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=WAIT)
                if not ready and tick is not None:
                    tick()   # nothing finished for a while: the caller may stop (a page's Stop) meanwhile
                for ref in ready:
                    idx = pending.pop(ref)
                    try:
                        results = ray.get(ref)
                    except RayTaskError as e:   # a piece failed on a worker: its own error, as in this process
                        raise (e.cause if isinstance(getattr(e, "cause", None), Exception) else e) from None
                    stop: BaseException | None = None
                    for i, result in zip(idx, results):   # every piece of the batch is handed over, even when
                        out[i] = result                   # the caller stops at the first (it keeps what it got)
                        if on_done is not None:
                            try:
                                on_done(i, result)
                            except BaseException as e:
                                stop = stop or e
                    if stop is not None:
                        raise stop
        except BaseException:
            for ref in pending:   # the caller stopped (Ctrl-C, a page's Stop) or a piece failed: stop the rest
                ray.cancel(ref, force=True)
            raise
        return out


def _free_ports(n: int) -> list[int]:
    """n distinct loopback ports free now."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class LocalCluster:
    """A Ray head on this machine's loopback address (`cpus` worker CPUs, no dashboard) for tests and benchmarks:
    `with LocalCluster(2) as address: ...`. It is ended by ending its own process group, never by `ray stop`, which
    would end every cluster on the machine."""

    def __init__(self, cpus: int = 2, timeout: float = 120.0) -> None:
        self.cpus, self.timeout = cpus, timeout
        self.address, self._temp = "", ""
        self._head: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> str:
        ports = _free_ports(7)   # its own ports and folder: another head on the machine does not collide with it
        port = ports[0]
        self._temp = tempfile.mkdtemp(prefix="slimray-", dir="/tmp")   # short: Ray's socket paths live under it
        ray_cli = Path(sys.executable).with_name("ray")
        self._head = subprocess.Popen(
            [str(ray_cli), "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}",
             f"--num-cpus={self.cpus}", "--include-dashboard=false", "--disable-usage-stats",
             f"--temp-dir={self._temp}", *(f"--{flag}={p}" for flag, p in zip(
                 ("dashboard-agent-listen-port", "dashboard-agent-grpc-port",
                  "metrics-export-port", "runtime-env-agent-port", "node-manager-port", "object-manager-port"),
                 ports[1:]))],
            env=dict(os.environ, **child_env(), RAY_AUTH_MODE="disabled"), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        self.address = f"127.0.0.1:{port}"
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                _answers(self.address, timeout=1.0)
                return self.address
            except ExecutorError:
                if time.monotonic() > deadline or self._head.poll() is not None:
                    self.__exit__()
                    raise ExecutorError(f"the local Ray head did not start within {self.timeout:.0f} s") from None
                time.sleep(0.5)

    def __exit__(self, *exc: object) -> None:
        import ray
        if ray.is_initialized():
            ray.shutdown()
        if self._head is None:
            return
        try:
            os.killpg(self._head.pid, signal.SIGTERM)
            self._head.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self._head.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._head = None
        shutil.rmtree(self._temp, ignore_errors=True)


def resolve(address: str | None = None) -> Executor:
    """The executor for a Ray address (None or "": this process; "auto" or host:port: that cluster)."""
    address = (address or "").strip()
    return Ray(address) if address else InProcess()


def address_from_env() -> str:
    """The dashboard's Ray address ($SLIMLAB_RAY_ADDRESS), "" when sweeps run in the process."""
    return os.environ.get(ENV, "").strip()


def from_env() -> Executor:
    """The dashboard's executor: the cluster at $SLIMLAB_RAY_ADDRESS, else this process."""
    return resolve(address_from_env())


__all__ = ["ENV", "Executor", "ExecutorError", "InProcess", "Ray", "LocalCluster", "resolve", "from_env",
           "address_from_env", "check_address"]
