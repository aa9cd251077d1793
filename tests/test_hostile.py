"""The hostile review of uploads, links and the cache, kept as tests: each finding of issue 16 as a regression test,
and property-based fuzzers over the fields a file or a link declares. Throughout: a clear UploadError (never another
exception, never a traceback), no code run, and the server process never holding what a file declares."""
from __future__ import annotations

import io
import json

import numpy as np
import psutil
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from markdown_it import MarkdownIt
from torch import nn

from slimcore import data as D
from slimcore import sandbox
from slimcore import upload as U
from slimui.safe import code, md
from tests.hostile_files import Wasteful, declare, hostile, npz_bomb, refused, rewrite, saved, small_pt2

_refused = refused


_bytes, _declare = saved, declare


@pytest.fixture(scope="module")
def pt2() -> bytes:
    return small_pt2()


# ---------------------------------------------------------------------------------------------- the six findings

def test_1_a_zero_stride_weight_is_refused_from_its_declaration(pt2):
    """A 302 KB .pt2 declaring [300, 2000000] with zero strides made the server allocate 6.7 GB."""
    rss = psutil.Process().memory_info().rss
    with pytest.raises(U.UploadError, match="zero stride"):
        U.read_model(_declare(pt2, [300, 2_000_000], [0, 0]))
    with pytest.raises(U.UploadError, match="larger than the bytes it stores"):
        U.read_model(_declare(pt2, [10, 64], [64, 1], offset=100))
    _refused(_declare(pt2, [300, 2_000_000], [2_000_000, 1]), "MB limit")
    assert psutil.Process().memory_info().rss - rss < 100 * 2**20   # nothing the file declared was allocated here


def test_2_a_method_call_on_a_weight_is_refused_before_torchscript_runs_it():
    """fc1.weight.new_ones([20000, 20000]) passed the allowlist and torch.jit.freeze computed it (+1.1 GB)."""
    blob = _bytes(torch.jit.save, torch.jit.script(Wasteful()))
    msg = _refused(blob, "refused without running it")
    assert "new_ones" in msg


NASTY = ["x` [a link](http://evil.example) ![img](http://evil.example/p.png) `", "``` ` ``", "<img src=x onerror=1>",
         "[x](javascript:alert(1))", "www.evil.example", "http://evil.example", ":red[alarm] :material/home:",
         "$\\frac{1}{0}$", "# heading\n- list", "**bold** _it_ ~~gone~~", "\\` escaped", "&lt;b&gt;", "\u202e\u0000"]


def _tokens(text: str) -> list[str]:
    def walk(tokens):
        for t in tokens:
            yield t.type
            yield from walk(t.children or [])
    return list(walk(MarkdownIt("commonmark").parse(text)))


@pytest.mark.parametrize("value", NASTY)
def test_3_user_text_carries_no_link_image_or_html(value):
    for shown in (md(value), code(value), f"Ignored {code('teacher=' + value)} in the link: {md(value)}."):
        kinds = _tokens(shown)
        assert not {"link_open", "image", "html_inline", "html_block", "heading_open", "bullet_list_open"} & set(kinds)
        # bare addresses (GitHub's autolinks) cannot form: outside code, every ':' and '.' is escaped
        outside = shown
        for span in code(value), code("teacher=" + value):
            outside = outside.replace(span, "")
        assert "://" not in outside and "www." not in outside


def test_3_a_code_span_shows_the_value_whole():
    for value in NASTY[:4]:
        html = MarkdownIt("commonmark").render(code(value))
        assert html.count("<code>") == 1 and "<a " not in html


def test_4_data_that_expands_beyond_the_memory_limit_is_refused_by_the_reader(tmp_path):
    """A 388 KB .npz expanding to 380 MiB was accepted; now the reading process is limited, and the server keeps
    at most the upload budget."""
    blob = npz_bomb()
    assert len(blob) < 2 * 10**6
    net = nn.Sequential(nn.Flatten(), nn.Linear(800, 10))
    model = _bytes(torch.jit.save, torch.jit.script(net))
    small = sandbox.Limits(memory=int(1.3 * 2**30))
    doc_err = None
    try:
        sandbox.read(model, blob, 10**9, small)   # a limit above the data: the reader's memory stops it
    except U.UploadError as e:
        doc_err = str(e)
    assert doc_err is not None and "GiB of memory" in doc_err and "Traceback" not in doc_err


def test_4_the_uploads_of_every_session_share_one_budget():
    from slimui.cache import UploadStore

    store = UploadStore(budget=1000)

    class S:
        def __init__(self, name: str, size: int) -> None:
            self.name, self.card = name, {"memory_bytes": size}
    for i in range(3):
        store.put(S(f"u{i}", 400))
    assert store.get("u0") is None and store.get("u1") is not None and store.held() == 800
    store.put(S("big", 900))    # the newest stays; everything else makes room
    assert store.held() == 900 and store.get("u2") is None


def test_4_one_upload_above_the_budget_is_refused(tmp_path):
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    with pytest.raises(U.UploadError, match="uploads may take"):
        U.load_upload(_bytes(torch.jit.save, torch.jit.script(net)), "m.pt", budget=1000)


def test_5_a_shipped_dataset_in_the_cache_folder_is_used_only_when_signed(tmp_path, monkeypatch):
    """A mnist1d-*.npz with shifted labels in the cache folder was used silently (3.8 % instead of 65 %)."""
    monkeypatch.setenv("SLIMLAB_CACHE", str(tmp_path))
    good = D._mnist1d_arrays()
    path = next(tmp_path.glob("mnist1d-*.npz"))
    assert path.with_name(path.name + ".mac").exists()
    buf = io.BytesIO()
    np.savez(buf, **{**good, "y_test": (good["y_test"] + 1) % 10})   # the labels shifted, the signature left
    path.write_bytes(buf.getvalue())
    again = D._mnist1d_arrays()
    assert np.array_equal(again["y_test"], good["y_test"])
    path.write_bytes(b"PK\x03\x04" + b"\0" * 100)                      # a damaged file: not even opened
    assert np.array_equal(D._mnist1d_arrays()["y_test"], good["y_test"])


def test_6_names_are_shown_whole_and_escaped():
    assert U.display_name("<script>/script>.pt") == "<script>/script>.pt"
    assert "<" not in md(U.display_name("<script>/script>.pt")).replace("\\<", "")


# -------------------------------------------------------------------------------------------------------- fuzzers

@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=hs.lists(hs.integers(-3, 3_000_000), min_size=0, max_size=4),
       strides=hs.lists(hs.integers(-3, 3_000_000), min_size=0, max_size=4),
       offset=hs.integers(-5, 10**9), dtype=hs.sampled_from([None, 0, 1, 7, 11, 99, "x"]))
def test_fuzz_the_declared_fields_of_a_pt2_weight(pt2, sizes, strides, offset, dtype):
    blob = _declare(pt2, sizes, strides, offset, dtype)
    rss = psutil.Process().memory_info().rss
    try:
        U.read_model(blob)
    except U.UploadError as e:
        assert "Traceback" not in str(e)
    assert psutil.Process().memory_info().rss - rss < 200 * 2**20


@settings(max_examples=60, deadline=None)
@given(header=hs.dictionaries(hs.text(max_size=8), hs.one_of(
    hs.fixed_dictionaries({"dtype": hs.sampled_from(["F32", "I64", "F16", "Q", ""]),
                           "shape": hs.lists(hs.integers(-2, 10**9), max_size=4),
                           "data_offsets": hs.lists(hs.integers(-2, 10**9), min_size=0, max_size=3)}),
    hs.integers(), hs.text(max_size=5)), max_size=3), body=hs.binary(max_size=64))
def test_fuzz_a_safetensors_header(header, body):
    raw = json.dumps(header).encode()
    blob = len(raw).to_bytes(8, "little") + raw + body
    try:
        U.read_model(blob)
    except U.UploadError as e:
        assert "Traceback" not in str(e)


@settings(max_examples=200, deadline=None)
@given(hs.text())
def test_fuzz_escaping_any_text(value):
    shown = md(value)
    kinds = _tokens(shown)
    assert not {"link_open", "image", "html_inline", "html_block"} & set(kinds)
    assert _tokens(code(value)) in (["paragraph_open", "inline", "code_inline", "paragraph_close"],
                                    ["paragraph_open", "inline", "text", "paragraph_close"])   # "(empty)"


@settings(max_examples=100, deadline=None)
@given(hs.text(max_size=40))
def test_fuzz_a_link_value_for_every_kind_of_parameter(value):
    from slimui.urlstate import Bool, Choice, Float, Int, Invalid

    for p in (Float("r", 0.5, 0.0, 1.0, 0.01), Int("b", 8, 1, 16), Choice("m", ("l1", "random")),
              Bool("s", False)):
        try:
            p.read([value] if getattr(p, "multi", False) else value)
        except Invalid:
            pass


def test_no_code_runs_from_any_hostile_file(tmp_path):
    marker = tmp_path / "ran"
    for name, (model, data) in hostile(str(marker)).items():
        msg = _refused(model, data=data)
        assert msg, name
    assert not marker.exists()


def test_2_every_method_call_in_torchscript_code_is_held_to_the_allowlist():
    blob = saved(torch.jit.save, torch.jit.script(nn.Sequential(nn.Flatten(), nn.Linear(64, 10))))
    evil = rewrite(blob, ".py", lambda code: code + b"\n\ndef evil(x: Tensor) -> Tensor:\n  return x.matmul(x)\n")
    with pytest.raises(U.UploadError, match=r"method \.matmul\(\)"):
        U.read_model(evil)
