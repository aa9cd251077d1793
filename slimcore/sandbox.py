"""A user's files are read in a process of their own, with hard limits, never in the server.

`read(model, data, limit)` starts `python -m slimcore.sandbox`, which confines itself before it reads a byte of the
files (address space, CPU time, open files, the size of files it may write; no network: a network namespace of its
own where the system allows one, and Python's sockets refused in any case), runs every check and reader of
slimcore.upload, and hands back only plain data: a JSON description of the model (standard layers and their
arguments, or a sample architecture's name) and of the data, and the tensors as safetensors. The caller rebuilds the
model from that description (slimcore.upload.assemble), so the process that keeps the model never deserialises a
user's file. The server kills the reader when it runs out of wall time; a reader that hits a limit gets one line
that says which. The command line reads files the same way."""
from __future__ import annotations

import io
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import threading
from dataclasses import asdict, dataclass
from typing import Any, NoReturn, cast

from .paths import child_env

GiB = 2**30


@dataclass(frozen=True)
class Limits:
    """What one reading process may use."""

    memory: int = 3 * GiB      # address space, bytes (torch and the readers alone take about 0.9 GiB of it)
    cpu: int = 60              # CPU seconds
    wall: float = 120.0        # seconds before the server kills it
    files: int = 64            # open file descriptors
    output: int = 2 * GiB      # bytes it may hand back (the description and the tensors)

    def said(self) -> str:
        return f"{self.memory / GiB:g} GiB of memory, {self.cpu} s of CPU, {self.wall:g} s in all"


LIMITS = Limits()


class SandboxError(ValueError):
    """The reading process failed or hit a limit: a message fit to show a person."""


def read(model: bytes, data: bytes | None, limit: int, limits: Limits = LIMITS,
         architecture: str | None = None) -> tuple[dict[str, Any], bytes]:
    """Read an upload in a confined process: (its description, the tensors as safetensors bytes). Raises
    slimcore.upload.UploadError for a file that cannot be used (the reader's own message, or the limit it hit)."""
    from .upload import UploadError

    header = json.dumps({"model": len(model), "data": None if data is None else len(data), "limit": limit,
                         "limits": asdict(limits), "architecture": architecture}).encode()
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    from .data import cache_dir

    env |= child_env() | {"OMP_NUM_THREADS": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "SLIMLAB_CACHE": str(cache_dir())}   # the shipped datasets it may match a model to (HOME is a temp dir)
    with tempfile.TemporaryDirectory(prefix="slimlab-read-") as home, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-m", "slimcore.sandbox"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=err, cwd=home, env=env | {"HOME": home})
        assert proc.stdin is not None   # stdin=PIPE
        stdin, stdout = proc.stdin, cast(io.BufferedReader, proc.stdout)   # stdout=PIPE, buffered: it has read1
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            proc.kill()

        timer = threading.Timer(limits.wall, kill)
        timer.start()

        def feed() -> None:
            try:
                stdin.write(header + b"\n" + model + (data or b""))
                stdin.close()
            except OSError:   # it stopped reading (a limit, or it refused the file early)
                pass

        feeder = threading.Thread(target=feed, name="slimlab-read-feed", daemon=True)
        feeder.start()
        out = bytearray()
        try:
            while chunk := stdout.read1(1 << 20):
                out += chunk
                if len(out) > limits.output:
                    kill()
                    raise UploadError(f"reading the file gave more than {limits.output / GiB:g} GiB of tensors: "
                                      "refused")
            proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            feeder.join(5)
        err.seek(0)
        tail = err.read()[-2000:].decode("utf-8", "replace")
    if killed.is_set():
        raise UploadError(f"reading the file took longer than {limits.wall:g} s: refused (an upload is read with "
                          f"at most {limits.said()})")
    if len(out) < 8 or proc.returncode != 0:
        raise UploadError(_why(proc.returncode, tail, limits))
    size = struct.unpack("<Q", out[:8])[0]
    if size > len(out) - 8:
        raise UploadError("the file could not be read (the reading process stopped half-way)")
    try:
        answer = json.loads(out[8:8 + size])
    except ValueError:
        raise UploadError("the file could not be read (the reading process answered nonsense)") from None
    if not isinstance(answer, dict):
        raise UploadError("the file could not be read (the reading process answered nonsense)")
    if not answer.get("ok"):
        raise UploadError(str(answer.get("message") or "the file could not be read"))
    return answer, bytes(out[8 + size:])


def _why(code: int | None, tail: str, limits: Limits) -> str:
    """A limit or a crash of the reading process, in one line."""
    if code in (-signal.SIGXCPU, -signal.SIGKILL) and "MemoryError" not in tail:
        return (f"reading the file needed more than {limits.cpu} s of CPU: refused (an upload is read with at most "
                f"{limits.said()})")
    if "MemoryError" in tail or "bad_alloc" in tail or "can't allocate memory" in tail or code == -signal.SIGABRT:
        return (f"this file would need more than {limits.memory / GiB:g} GiB of memory to read: refused (an upload "
                f"is read with at most {limits.said()})")
    return f"the file could not be read (the reading process stopped with code {code})"


# ---------------------------------------------------------------------------------------------- the reading process

def _confine(limits: Limits) -> None:
    """Limit this process before it reads anything: memory, CPU, files; and no network."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (limits.memory, limits.memory))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu, limits.cpu + 5))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.files, limits.files))
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))   # it writes no file (its errors: 1 MiB at most)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:   # a network namespace of its own: no interface but a down loopback (where the system lets it)
        import ctypes

        ctypes.CDLL(None, use_errno=True).unshare(0x40000000)   # CLONE_NEWNET
    except (OSError, AttributeError):
        pass
    import socket

    def refused(*args: object, **kwargs: object) -> NoReturn:
        raise OSError("no network while reading an upload")

    socket.socket = refused          # type: ignore[assignment, misc]
    socket.create_connection = refused
    socket.getaddrinfo = refused


def _answer(doc: dict[str, Any], blob: bytes = b"") -> None:
    payload = json.dumps(doc).encode()
    sys.stdout.buffer.write(struct.pack("<Q", len(payload)) + payload + blob)
    sys.stdout.buffer.flush()


def main() -> None:
    stdin = sys.stdin.buffer
    header = json.loads(stdin.readline())
    limits = Limits(**header["limits"])
    _confine(limits)
    model = stdin.read(header["model"])
    data = None if header["data"] is None else stdin.read(header["data"])
    import torch

    torch.set_num_threads(1)
    from .upload import UploadError, inspect

    try:
        doc, blob = inspect(model, data, header["limit"], header.get("architecture"))
    except UploadError as e:
        return _answer({"ok": False, "message": str(e)})
    except MemoryError:
        return _answer({"ok": False, "message": f"this file would need more than {limits.memory / GiB:g} GiB of "
                                                f"memory to read: refused (an upload is read with at most "
                                                f"{limits.said()})"})
    except RuntimeError as e:
        if "allocate" in str(e) or "memory" in str(e).lower():
            return _answer({"ok": False, "message": f"this file would need more than {limits.memory / GiB:g} GiB "
                                                    f"of memory to read: refused (an upload is read with at most "
                                                    f"{limits.said()})"})
        line = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
        return _answer({"ok": False, "message": f"the file could not be read (RuntimeError: {line})"})
    except Exception as e:   # a case no check foresaw: still one line, never a traceback
        line = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
        return _answer({"ok": False, "message": f"the file could not be read ({type(e).__name__}: {line})"})
    _answer({"ok": True, **doc}, blob)


if __name__ == "__main__":
    main()
