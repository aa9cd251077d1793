"""Uploads: every accepted format gives the sample model's own figures; every bad input a clear message and no code
run."""
from __future__ import annotations

import io
import os
import pickle
import warnings
import zipfile

import numpy as np
import pytest
import torch
from torch import nn

import slimcore
from slimcore import pruning as P
from slimcore import upload as U
from slimcore.distillation import make_student
from tests.conftest import load_classifier
from tests.hostile_files import refused


def _bytes(save, obj) -> bytes:
    buf = io.BytesIO()
    save(obj, buf)
    return buf.getvalue()


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


class Payload:
    """A pickle that, when unpickled, creates a directory: proof that code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (self.marker,)


@pytest.fixture(scope="module")
def cnn() -> slimcore.Sample:
    return load_classifier("digits-cnn")


@pytest.fixture(scope="module")
def files(cnn) -> dict[str, bytes]:
    x = cnn.test.x[:4]
    return {"script": _bytes(torch.jit.save, torch.jit.script(cnn.model)),
            "trace": _bytes(torch.jit.save, torch.jit.trace(cnn.model, x)),
            "export": _bytes(torch.export.save, torch.export.export(cnn.model, (x,))),
            "state": _bytes(torch.save, cnn.model.state_dict())}


@pytest.mark.parametrize("kind", ["script", "trace", "export", "state"])
def test_every_format_gives_the_models_own_outputs_and_accuracy(cnn, files, kind):
    up = U.load_upload(files[kind], "model.pt")
    assert U.is_upload(up.name)
    assert up.data.name == "digits"  # 1x8x8 inputs, 10 outputs: evaluated on the shipped digits test split
    torch.testing.assert_close(up.model(cnn.test.x), cnn.model(cnn.test.x), rtol=0, atol=1e-5)
    assert up.card["test_accuracy"] == slimcore.accuracy(cnn.model, cnn.test)
    assert [tuple(m.weight.shape) for m in slimcore.weight_layers(up.model).values()] == \
        [tuple(m.weight.shape) for m in slimcore.weight_layers(cnn.model).values()]


def test_rebuilt_model_prunes_exactly_like_the_original(cnn, files):
    up = U.load_upload(files["script"], "model.pt")
    ours = slimcore.accuracy(P.prune(up.model, 0.7, "l1", "global"), up.test)
    assert ours == slimcore.accuracy(P.prune(cnn.model, 0.7, "l1", "global"), cnn.test)
    assert ours < up.card["test_accuracy"]


def test_mnist1d_models_are_matched_to_mnist1d_and_safetensors_state_dicts_load():
    s = slimcore.load_sample("mnist1d-cnn")
    up = U.load_upload(_bytes(torch.jit.save, torch.jit.script(s.model)), "m.pt")
    assert up.data.name == "mnist1d" and up.card["test_accuracy"] == s.card["test_accuracy"] or \
        abs(up.card["test_accuracy"] - s.card["test_accuracy"]) < 1e-6
    # safetensors: an 8-byte header length, a JSON header, raw little-endian bytes (written by hand here)
    import json
    state = {k: v.contiguous() for k, v in s.model.state_dict().items()}
    header, offset, body = {}, 0, b""
    for k, v in state.items():
        raw = v.numpy().tobytes()
        header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [offset, offset + len(raw)]}
        offset, body = offset + len(raw), body + raw
    head = json.dumps(header).encode()
    up = U.load_upload(len(head).to_bytes(8, "little") + head + body, "m.safetensors")
    assert up.card["format"] == "safetensors" and up.card["sample_architecture"] == "mnist1d-cnn"


def test_batchnorm_dropout_and_pooling_are_rebuilt_and_uploaded_data_is_split():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout(0.2),
                        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 16), nn.BatchNorm1d(16), nn.GELU(),
                        nn.Linear(16, 5)).eval()
    for m in net.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2)
    x = np.random.default_rng(0).normal(size=(200, 3, 6, 6)).astype(np.float32)
    y = net(torch.from_numpy(x)).argmax(1).numpy()  # labels the model gets right: accuracy must be 100 %
    data = _npz(x=x, y=y)
    for blob in (_bytes(torch.jit.save, torch.jit.script(net)),
                 _bytes(torch.export.save, torch.export.export(net, (torch.from_numpy(x[:2]),)))):
        up = U.load_upload(blob, "net.pt", data, "mine.npz")
        assert (len(up.data.train), len(up.data.val), len(up.data.test)) == (120, 20, 60)
        assert up.card["test_accuracy"] == 1.0 and up.data.classes == 5
        student = make_student(up.model, 0.5, 0)  # distillation has a student family for any rebuilt model
        assert student(up.test.x[:3]).shape == (3, 5)
        assert sum(p.numel() for p in student.parameters()) < sum(p.numel() for p in up.model.parameters())


# ------------------------------------------------------------------ bad input: a clear message each, and no code run

_refused = refused


def test_a_pickle_with_a_code_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    _refused(_bytes(torch.save, {"fc.weight": torch.zeros(2), "x": Payload(str(marker))}), "never unpickles code")
    _refused(pickle.dumps(Payload(str(marker)), protocol=2), "never unpickles code")
    assert not marker.exists()


def test_a_pt2_whose_pickled_parts_carry_code_is_refused_before_torch_export_load(tmp_path, files):
    marker = tmp_path / "pwned"
    src = zipfile.ZipFile(io.BytesIO(files["export"]))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for n in src.namelist():
            z.writestr(n, _bytes(torch.save, Payload(str(marker))) if "/sample_inputs/" in n else src.read(n))
    evil = out.getvalue()
    _refused(evil, "never unpickles code")
    assert not marker.exists()
    # why the check exists: torch.export.load itself runs the payload (then fails, with whatever error torch gives)
    with pytest.raises(Exception):  # noqa: B017
        torch.export.load(io.BytesIO(evil))
    assert marker.exists()


def test_a_torchscript_archive_that_runs_code_on_load_is_refused(files):
    src = zipfile.ZipFile(io.BytesIO(files["script"]))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for n in src.namelist():
            body = src.read(n)
            code = "/code/" in n and n.endswith(".py") and b"def forward" in body  # any module's code: file names
            z.writestr(n, body + b"\n  def __setstate__(self, state):\n    pass\n" if code else body)  # get mangled
    _refused(out.getvalue(), "__setstate__")


@pytest.mark.parametrize("cut", [0.5, 0.98])
def test_a_truncated_file_is_refused(files, cut):
    for kind in ("script", "export", "state"):
        blob = files[kind]
        _refused(blob[:int(len(blob) * cut)], "truncated or corrupt")


def test_an_empty_file_is_refused():
    _refused(b"", "empty")
    _refused(_bytes(torch.jit.save, torch.jit.script(nn.Linear(2, 2))), "empty", data=b"")


def test_files_of_the_wrong_format_are_refused():
    _refused(b"\x89PNG\r\n\x1a\n" + bytes(100), "not a PyTorch model")
    _refused(b"name,value\n1,2\n", "not a PyTorch model")
    _refused(b"\x89HDF\r\n\x1a\n" + bytes(100), "HDF5")
    _refused(_npz(x=np.zeros((30, 64)), y=np.zeros(30, dtype=int)), "evaluation data")
    _refused(_bytes(torch.save, [1, 2, 3]), "no state dict")


def test_a_state_dict_for_another_architecture_names_the_closest_fit(cnn):
    other = _bytes(torch.save, slimcore.zoo.DigitsCNN(channels=(16, 32)).state_dict())
    msg = _refused(other, "fits none of the sample architectures", "closest is digits-cnn", "conv1.weight")
    assert "16x1x3x3 here" in msg
    _refused(_bytes(torch.save, {"encoder.layer.0.weight": torch.zeros(3, 3)}), "fits none")


def test_torchscript_branches_are_refused_pointing_to_torch_export_which_runs_them():
    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(64, 64), nn.Linear(64, 10)

        def forward(self, x):
            x = x.flatten(1)
            return self.b(x + self.a(x))

    torch.manual_seed(0)
    net = Residual().eval()
    x = torch.zeros(2, 1, 8, 8)
    _refused(_bytes(torch.jit.save, torch.jit.script(net)), "single chain", "add", "torch.export (.pt2)")
    up = U.load_upload(_bytes(torch.export.save, torch.export.export(net, (x,))), "residual.pt2")
    assert up.card["graph"] and up.card["data_source"] == "shipped"
    digits = up.data.test.x[:50]
    assert torch.equal(up.model(digits), net(digits))
    lstm = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.Softplus(), nn.Linear(8, 10))
    _refused(_bytes(torch.jit.save, torch.jit.script(lstm)), "softplus", "does not support")
    _refused(_bytes(torch.jit.save, torch.jit.script(nn.Sequential(nn.ReLU()))), "no Linear or Conv layer")


def test_an_oversized_file_is_refused_before_it_is_read(files):
    _refused(files["state"], "limit is", limit=1000)
    _refused(files["state"], "data file", "limit is", data=bytes(len(files["state"]) + 2),
             limit=len(files["state"]) + 1)


def test_a_zip_that_would_expand_far_beyond_the_limit_is_refused(files):
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", bytes(50_000_000))  # 50 MB of zeros: about 50 kB compressed
    blob = bomb.getvalue()
    assert len(blob) < 100_000
    _refused(blob, "would expand to", limit=1_000_000)
    _refused(files["state"], "data file would expand to", data=blob, limit=len(files["state"]) * 10)


def test_nan_weights_are_refused_naming_the_tensor(cnn):
    state = cnn.model.state_dict()
    state["fc1.weight"] = state["fc1.weight"].clone()
    state["fc1.weight"][0, :3] = float("nan")
    _refused(_bytes(torch.save, state), "fc1.weight", "3 NaN")


def test_data_that_does_not_fit_the_model_is_refused(files):
    rng = np.random.default_rng(0)
    blob = files["script"]
    _refused(blob, "does not fit the model", "3 x 32 x 32",
             data=_npz(x=rng.normal(size=(40, 3, 32, 32)).astype(np.float32), y=np.zeros(40, dtype=np.int64)))
    _refused(blob, "labels go up to 12", data=_npz(x=np.zeros((40, 1, 8, 8), np.float32), y=np.full(40, 12)))
    _refused(blob, "no array y", data=_npz(x=np.zeros((40, 1, 8, 8), np.float32)))
    _refused(blob, "NaN", data=_npz(x=np.full((40, 1, 8, 8), np.nan, np.float32), y=np.zeros(40, dtype=np.int64)))
    _refused(blob, "at least 20", data=_npz(x=np.zeros((5, 1, 8, 8), np.float32), y=np.zeros(5, dtype=np.int64)))
    _refused(blob, "one label per example", data=_npz(x=np.zeros((40, 1, 8, 8), np.float32), y=np.zeros(39, int)))
    obj = io.BytesIO()
    np.savez(obj, x=np.array([{"a": 1}] * 30, dtype=object), y=np.zeros(30, dtype=int))
    _refused(blob, "never unpickles", data=obj.getvalue())
    _refused(blob, "truncated", data=_npz(x=np.zeros((40, 64)), y=np.zeros(40, dtype=int))[:300])


def test_a_model_that_fits_no_shipped_dataset_asks_for_data():
    net = nn.Sequential(nn.Flatten(), nn.Linear(17, 3))
    _refused(_bytes(torch.jit.save, torch.jit.script(net)), "fits none of the shipped datasets", ".npz")


@pytest.mark.parametrize("name,shown", [
    ("../../etc/passwd", "../../etc/passwd"), ("C:\\Users\\me\\model.pt", "C:\\Users\\me\\model.pt"),
    ("<script>/script>.pt", "<script>/script>.pt"), ("", "unnamed file"),   # whole: the page escapes it
    ("mo\x00del\x1b[31m.pt", "model[31m.pt"), ("\u202egnp.pt", "gnp.pt"), ("x" * 500 + ".pt", "x" * 119 + "…"),
    ("**bold** [link](javascript:alert(1)).pt", "**bold** [link](javascript:alert(1)).pt"),
])
def test_odd_file_names_are_shown_safely_and_change_nothing(files, name, shown):
    assert U.display_name(name) == shown
    up = U.load_upload(files["state"], name)
    assert up.card["name"] == shown and up.name == U.upload_name(files["state"])  # named by content, not by file name


# ------------------------------------------------------------------ regressions from a hostile review of this code

def _rezip(blob: bytes, edit) -> bytes:
    """A copy of a zip archive with each entry passed through edit(name, bytes) -> list of (name, bytes)."""
    src, out = zipfile.ZipFile(io.BytesIO(blob)), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for info in src.infolist():
            for name, body in edit(info.filename, src.read(info.filename)):
                z.writestr(name, body)
    return out.getvalue()


def test_a_pt2_with_a_duplicate_entry_cannot_show_the_check_one_copy_and_the_loader_another(tmp_path, files):
    marker = tmp_path / "pwned"
    evil = _bytes(torch.save, Payload(str(marker)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name while writing it
        blob = _rezip(files["export"], lambda n, b: [(n, evil), (n, b)] if "/sample_inputs/" in n else [(n, b)])
    _refused(blob, "two entries of the same name")
    assert not marker.exists()


def test_torchscript_code_that_would_write_files_while_loading_is_refused_however_it_is_spelled(tmp_path):

    target = tmp_path / "written"
    target.write_bytes(bytes(16))

    class Tag(nn.Module):
        def __init__(self, path: str) -> None:
            super().__init__()
            self.path = path

        def forward(self, x):
            return x

        @torch.jit.export
        def __getstate__(self) -> tuple[str, bool]:
            return (self.path, self.training)

        @torch.jit.export
        def __setstate__(self, state: tuple[str, bool]) -> None:
            self.path, self.training = state
            torch.from_file(self.path, True, 16, dtype=torch.uint8).fill_(65)

    class Carrier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body, self.tag = nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), Tag(str(target))

        def forward(self, x):
            return self.body(x)

    blob = _bytes(torch.jit.save, torch.jit.script(Carrier()))
    for spelling in (b"def __setstate__", b"def\t__setstate__", b"def  __setstate__"):
        _refused(_rezip(blob, lambda n, b, spelling=spelling: [(n, b.replace(b"def __setstate__", spelling))]),
                 "refused")
    assert target.read_bytes() == bytes(16)  # nothing was written


def test_torchscript_that_would_allocate_gigabytes_while_freezing_is_refused_unrun():
    class Bomb(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(64, 10)

        def forward(self, x):
            return self.fc(x.flatten(1)) + torch.ones(20000, 20000).sum() * 0.0

    _refused(_bytes(torch.jit.save, torch.jit.script(Bomb())), "without running it")


def test_a_rebuild_that_differs_in_one_output_is_refused_even_beside_huge_outputs():
    good = nn.Sequential(nn.Flatten(), nn.Linear(64, 3)).eval()
    with torch.no_grad():
        good[1].bias[2] = -1e8  # a huge column used to widen a max-based tolerance
    bad = nn.Sequential(nn.Flatten(), nn.Linear(64, 3)).eval()
    bad.load_state_dict(good.state_dict())
    with torch.no_grad():
        bad[1].bias[0] += 5.0
    read = U.ReadModel(bad, "TorchScript", "rebuilt from the graph", good, None)
    with pytest.raises(U.UploadError, match="differ"):
        U._check_rebuild(read, torch.randn(8, 1, 8, 8))
    U._check_rebuild(U.ReadModel(good, "TorchScript", "rebuilt from the graph", good, None), torch.randn(8, 1, 8, 8))


def test_settings_that_change_what_a_layer_computes_are_refused_and_a_conv_without_bias_is_accepted():
    class SumPool(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(16, 10)

        def forward(self, x):
            return self.fc(torch.nn.functional.avg_pool2d(x, 2, divisor_override=1).flatten(1))

    _refused(_bytes(torch.jit.save, torch.jit.script(SumPool())), "divisor_override")
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.ReLU(), nn.Flatten(), nn.Linear(256, 10)).eval()
    for blob in (_bytes(torch.jit.save, torch.jit.script(net)),
                 _bytes(torch.export.save, torch.export.export(net, (torch.zeros(2, 1, 8, 8),)))):
        up = U.load_upload(blob, "nobias.pt")
        assert slimcore.weight_layers(up.model)["0"].bias is None


def test_impossible_headers_and_dtypes_get_messages_not_exceptions():
    import json

    for shape in ([0, -5], [2.0], [2**62, 2**62, 0]):
        head = json.dumps({"a": {"dtype": "F32", "shape": shape, "data_offsets": [0, 0]}}).encode()
        _refused(len(head).to_bytes(8, "little") + head, "safetensors file is truncated or corrupt")
    blob = _bytes(torch.jit.save, torch.jit.script(nn.Sequential(nn.Flatten(), nn.Linear(64, 10))))
    _refused(blob, "at most 64-bit", data=_npz(x=np.zeros((40, 1, 8, 8), np.longdouble), y=np.zeros(40, int)))
    _refused(blob, "beyond 2**62", data=_npz(x=np.zeros((40, 1, 8, 8), np.float32), y=np.full(40, 2**63, np.uint64)))
    buf = io.BytesIO()  # an .npy header that declares 4 TB for an array of a few bytes
    with zipfile.ZipFile(buf, "w") as z:
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                      "shape": (10**6, 1, 10**6)})
        z.writestr("x.npy", b"\x93NUMPY\x01\x00"[:0] + header.getvalue() + bytes(64))
        z.writestr("y.npy", _npz(y=np.zeros(3))[:0] + header.getvalue())
    _refused(blob, "declares shape", data=buf.getvalue())


def test_a_rebuilt_chain_with_batchnorm_prunes_channels_as_its_thin_model_computes():
    """Structured pruning's masked model zeroes a removed channel's BatchNorm too, so it computes what the model
    with the channels really removed computes (a chain knows its input shape from its data)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(),
                        nn.Linear(8 * 64, 10)).eval()
    with torch.no_grad():
        net[1].running_mean.uniform_(-1, 1)
        net[1].bias.uniform_(-1, 1)
    up = U.load_upload(_bytes(torch.jit.save, torch.jit.script(net)), "bn.pt")
    assert up.model.input_shape == (1, 8, 8)
    x = up.test.x[:64]
    keep = P.masks(up.model, P.PruneConfig(0.5, structured=True))
    thin, effective = P.split_channels(up.model, keep, x[:1])
    dense = P.apply_masks(up.model, effective, structured=True)
    with torch.no_grad():
        torch.testing.assert_close(thin(x), dense(x), atol=1e-5, rtol=1e-5)
