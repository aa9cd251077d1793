"""AppTest of uploads: the home page's form, every lab on an uploaded model, bad files, and sessions side by side."""
from __future__ import annotations

import io
import threading

import numpy as np
import pytest
import torch

import slimcore
from slimcore import pruning as P
from slimcore import upload as U
from tests.apptest_utils import app, figures, metrics

LABS = ["pages/1_Pruning.py", "pages/2_Quantization.py", "pages/3_Distillation.py", "pages/4_Trade-offs.py",
        "pages/5_Sensitivity.py"]


def _script(model) -> bytes:
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(model), buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def mlp_file() -> bytes:
    return _script(slimcore.load_sample("digits-mlp").model)


def _upload(at, blob: bytes, filename: str, data: bytes | None = None):
    at.file_uploader(key="upload_model").upload(filename, blob)
    if data is not None:
        at.file_uploader(key="upload_data").upload("data.npz", data)
    at.run()  # a chosen file is read at once: no button to press
    assert not at.exception, at.exception
    return at


def test_an_upload_becomes_this_sessions_model_with_its_own_figures(mlp_file):
    at = _upload(app().run(), mlp_file, "my mlp.pt")
    name = at.session_state["model_name"]
    assert name == U.upload_name(mlp_file) and at.query_params["model"] in (name, [name])
    assert not at.error
    s = slimcore.load_sample("digits-mlp")
    m = metrics(at)
    assert m["Test accuracy"] == f"{slimcore.accuracy(s.model, s.test):.2%}" and m["Parameters"] == "50,610"
    assert "my mlp.pt" in at.subheader[0].value.replace("\\", "") and "TorchScript" in at.markdown[1].value
    assert at.selectbox(key="model_select").value == name
    assert "(upload)" in at.selectbox(key="model_select").format_func(name)
    assert {"home_hist", "home_params", "home_examples"} <= set(figures(at))


@pytest.mark.parametrize("page", LABS)
def test_every_lab_works_on_an_uploaded_model(mlp_file, page):
    from slimui import cache

    up = cache.add_upload(mlp_file, "my mlp.pt")
    at = app(page)
    at.session_state["model_name"] = up.name
    at.session_state["my_uploads"] = {up.name: "my_mlp.pt"}
    at.run()
    assert not at.exception and not at.error, (at.exception, at.error)
    text = " ".join(e.value for e in [*at.markdown, *at.caption, *at.title, *at.subheader]).replace("\\", "")
    assert "my_mlp.pt" in text and up.name not in text.replace(f"slimlab-{up.name}", "")  # its file name, not its hash
    if page.endswith("Pruning.py"):  # the same figures as for the sample architecture it was exported from
        s = slimcore.load_sample("digits-mlp")
        want = P.evaluate(s.model, P.PruneConfig(0.5), s.test)[0]
        assert metrics(at)["Test accuracy"] == f"{want.accuracy:.2%}"


def test_distillation_trains_a_student_for_an_uploaded_model(mlp_file):
    from slimui import cache

    up = cache.add_upload(mlp_file, "my mlp.pt")
    at = app(LABS[2])
    at.session_state["model_name"] = up.name
    at.session_state["epochs"] = 1
    at.run()
    at.button(key="train").click().run()
    assert not at.exception and not at.error, (at.exception, at.error)
    assert any("student" in str(v).lower() for v in (d.value for d in at.dataframe))


def test_uploaded_data_is_used_and_a_bad_file_changes_nothing(mlp_file):
    at = app().run()
    rng = np.random.default_rng(1)
    s = slimcore.load_sample("digits-mlp")
    buf = io.BytesIO()
    np.savez(buf, x=s.data.val.x.numpy(), y=s.data.val.y.numpy())
    at = _upload(at, mlp_file, "mlp.pt", buf.getvalue())
    good = at.session_state["model_name"]
    assert "your data" in at.markdown[1].value and f"{len(s.data.val) - round(0.1 * len(s.data.val)) - round(0.3 * len(s.data.val)):,} train" in at.markdown[1].value
    before = metrics(at)
    for blob, name, words in [(b"", "empty.pt", "empty"), (rng.bytes(5000), "noise.bin", "not a PyTorch model"),
                              (mlp_file[:len(mlp_file) // 2], "half.pt", "truncated or corrupt")]:
        at.file_uploader(key="upload_data").set_value(None)
        at.file_uploader(key="upload_model").set_value(None)
        _upload(at, blob, name)
        assert len(at.error) == 1 and words in at.error[0].value.replace("\\", "") and "Nothing else changed" in \
            at.error[0].value
        assert at.session_state["model_name"] == good and metrics(at) == before


def test_a_link_to_an_upload_no_longer_kept_says_so():
    at = app()
    at.query_params["model"] = "upload-0123456789abcdef"
    at.run()
    assert not at.exception and at.session_state["model_name"] == slimcore.DEFAULT_SAMPLE  # unknown: the default
    at = app()
    at.session_state["model_name"] = "upload-0123456789abcdef"
    at.run()
    assert not at.exception and "no longer on the server" in at.error[0].value


def test_a_link_to_a_kept_upload_opens_it(mlp_file):
    from slimui import cache

    up = cache.add_upload(mlp_file, "shared.pt")
    at = app()
    at.query_params["model"] = up.name
    at.run()
    assert not at.exception and not at.error and at.session_state["model_name"] == up.name


def test_sessions_moving_sliders_at_once_see_only_their_own_settings(mlp_file, monkeypatch):
    """Four sessions, two models (one uploaded), each moving the prune ratio at the same time: every session's
    figures are those of its own model and ratio, and the shared models are untouched."""
    from streamlit.runtime.scriptrunner import magic

    from slimui import cache

    # Each AppTest compiles the page in a script cache of its own, and CPython 3.11's ast.parse is not safe in
    # threads at once ("SystemError: AST constructor recursion depth mismatch"; this failed a CI run). A real server
    # compiles a page once, under its script cache's lock; the same lock here keeps the sessions themselves concurrent.
    parse_lock, add_magic = threading.Lock(), magic.add_magic

    def locked_add_magic(*args, **kwargs):
        with parse_lock:
            return add_magic(*args, **kwargs)

    monkeypatch.setattr(magic, "add_magic", locked_add_magic)

    up = cache.add_upload(mlp_file, "mine.pt")
    models = {up.name: up, "digits-cnn": cache.sample("digits-cnn")}
    before = {n: {k: v.clone() for k, v in s.model.state_dict().items()} for n, s in models.items()}
    plans = [(up.name, [0.3, 0.8, 0.5]), ("digits-cnn", [0.9, 0.2, 0.6]), (up.name, [0.95, 0.1]),
             ("digits-cnn", [0.4, 0.7])]
    seen, errors = {}, []

    def session(i: int, name: str, ratios: list[float]) -> None:
        try:
            at = app(LABS[0])
            at.session_state["model_name"] = name
            at.run()
            for r in ratios:
                at.slider(key="prune_ratio").set_value(r).run()
                assert not at.exception and not at.error, (at.exception, at.error)
                seen.setdefault(i, []).append((r, metrics(at)["Non-zero parameters"], metrics(at)["Test accuracy"]))
        except BaseException as e:  # report in the main thread
            errors.append(e)

    threads = [threading.Thread(target=session, args=(i, n, rs)) for i, (n, rs) in enumerate(plans)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for i, (name, ratios) in enumerate(plans):
        s = models[name]
        for r, nonzeros, acc in seen[i]:
            want = P.evaluate(s.model, P.PruneConfig(r), s.test)[0]
            assert (nonzeros, acc) == (f"{want.nonzeros:,}", f"{want.accuracy:.2%}"), (name, r)
    for n, s in models.items():
        assert all((before[n][k] == v).all() for k, v in s.model.state_dict().items())


def test_a_colour_image_model_with_its_own_data_draws_every_home_figure():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(64, 3))
    x = np.random.default_rng(0).normal(size=(60, 3, 6, 6)).astype(np.float32)
    buf = io.BytesIO()
    np.savez(buf, x=x, y=np.arange(60) % 3)
    at = _upload(app().run(), _script(net.eval()), "colour.pt", buf.getvalue())
    assert not at.error, at.error
    assert metrics(at)["Parameters"] == f"{sum(p.numel() for p in net.parameters()):,}"
    gallery = figures(at)["home_examples"]["data"]
    assert len(gallery) == 12 and {t["type"] for t in gallery} == {"heatmap"}  # 18 test images; 12 shown


def test_two_sessions_uploading_the_same_bytes_each_see_only_their_own_file_name(mlp_file):
    a = _upload(app().run(), mlp_file, "alice-secret-project.pt")
    b = _upload(app().run(), mlp_file, "bob.pt")
    assert a.session_state["model_name"] == b.session_state["model_name"]  # one shared, read-only model
    shown_b = " ".join(e.value for e in [*b.subheader, *b.markdown, *b.caption]).replace("\\", "")
    assert "bob.pt" in shown_b and "alice" not in shown_b
    shown_a = " ".join(e.value for e in [*a.run().subheader, *a.markdown, *a.caption]).replace("\\", "")
    assert "alice-secret-project.pt" in shown_a and "bob" not in shown_a
