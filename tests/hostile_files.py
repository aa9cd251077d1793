"""Hostile files of the upload review (issue 16), built the same way by the tests (tests/test_hostile.py) and the
benchmark (benchmarks/bench_upload.py --hostile); and the one way the tests assert that an upload is refused."""
from __future__ import annotations

import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest
import torch
from torch import nn


def saved(save, obj) -> bytes:
    buf = io.BytesIO()
    save(obj, buf)
    return buf.getvalue()


def rewrite(archive: bytes, name_end: str, change) -> bytes:
    """The zip archive with the entry whose name ends so rewritten by change(bytes) -> bytes."""
    src, out = zipfile.ZipFile(io.BytesIO(archive)), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            content = src.read(info.filename)
            dst.writestr(info, change(content) if info.filename.endswith(name_end) else content)
    return out.getvalue()


def small_pt2() -> bytes:
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    return saved(torch.export.save, torch.export.export(net.eval(), (torch.zeros(2, 8, 8),)))


def declare(archive: bytes, sizes, strides, offset=0, dtype=None) -> bytes:
    """A .pt2 with its first weight declared with these sizes, strides, offset (and dtype code)."""
    def change(content: bytes) -> bytes:
        doc = json.loads(content)
        meta = next(iter(doc["config"].values()))["tensor_meta"]
        meta["sizes"] = [{"as_int": s} for s in sizes]
        meta["strides"] = [{"as_int": s} for s in strides]
        meta["storage_offset"] = {"as_int": offset}
        if dtype is not None:
            meta["dtype"] = dtype
        return json.dumps(doc).encode()
    return rewrite(archive, "weights_config.json", change)


class Wasteful(nn.Module):
    """A model whose TorchScript code calls a method on its weight that allocates 1.6 GB while the archive loads."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc1(x.flatten(1)) + self.fc1.weight.new_ones([20000, 20000]).sum()


def npz_bomb(examples: int = 120_000) -> bytes:
    """A small compressed .npz whose x expands to examples x 800 float32 (384 MB for 120,000)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, x=np.zeros((examples, 1, 40, 20), np.float32), y=np.zeros(examples, np.int64))
    return buf.getvalue()


def pickle_payload(marker: str) -> bytes:
    """A pickle that creates the folder `marker` when unpickled: proof that code ran."""
    class Payload:
        def __reduce__(self):
            return os.mkdir, (marker,)
    return pickle.dumps({"w": Payload()}, protocol=2)


def hostile(marker: str) -> dict[str, tuple[bytes, bytes | None]]:
    """Every hostile upload of the review, by name: (model file, data file or None)."""
    pt2 = small_pt2()
    mlp = saved(torch.jit.save, torch.jit.script(nn.Sequential(nn.Flatten(), nn.Linear(800, 10))))
    return {
        "pt2 zero strides [300, 2000000]": (declare(pt2, [300, 2_000_000], [0, 0]), None),
        "pt2 weight beyond its bytes": (declare(pt2, [10, 64], [64, 1], offset=100), None),
        "TorchScript weight.new_ones([20000, 20000])": (saved(torch.jit.save, torch.jit.script(Wasteful())), None),
        "npz expanding to 384 MB": (mlp, npz_bomb()),
        "pickle payload": (pickle_payload(marker), None),
        "truncated TorchScript": (mlp[: len(mlp) // 2], None),
    }


def refused(blob: bytes, *words: str, data: bytes | None = None, **kw) -> str:
    """Upload `blob` (and `data`) and assert it is refused with one clear line holding `words`; return the line."""
    from slimcore import upload as U

    with pytest.raises(U.UploadError) as e:
        U.load_upload(blob, "file.pt", data, "data.npz", **kw)
    msg = str(e.value)
    assert "Traceback" not in msg and len(msg) < 600
    for w in words:
        assert w in msg, msg
    return msg
