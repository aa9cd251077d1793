"""The home page on the text sample (minilm): card, measured figures, layers, and the embeddings' similarities."""
from __future__ import annotations

import numpy as np
import pytest

from slimcore import text as T
from tests.apptest_utils import array, figures, metrics, run_for_model


@pytest.fixture(scope="module")
def at():
    return run_for_model("app.py", "minilm")


def test_home_shows_measured_figures(at):
    m = metrics(at)
    assert m["Parameters"] == "22,565,376"
    size = float(m["Size (measured)"].split()[0])
    assert 80 < size < 95  # MiB of the fp32 state dict
    assert float(m["Paraphrase found (top-1)"].rstrip("%")) > 90
    for k in ("Latency b=1 (measured)", "Latency b=32 (measured)"):
        assert m[k].endswith(" ms") and float(m[k].split()[0]) > 0
    assert any("pretrained sentence encoder" in c.value for c in at.sidebar.caption)
    assert not at.error and not at.exception


def test_similarity_picture_is_the_encoders(at):
    fig = figures(at)["text_home_sim"]
    z = array(fig["data"][0]["z"])
    z = z.reshape(12, 12) if z.ndim == 1 else z
    assert np.allclose(np.diag(z), 1, atol=1e-3) and np.allclose(z, z.T, atol=1e-3)
    # the first six test items are paraphrase groups: each sentence is most similar to its partner
    off = z - 2 * np.eye(12)
    assert all(off[i].argmax() == (i ^ 1) for i in range(12))
    table = at.dataframe[-1].value
    assert len(table) == 12 and table["is its paraphrase"].mean() > 0.8


def test_layer_choice_changes_the_histogram(at):
    assert "embeddings" in set(at.dataframe[0].value["group"]) and len(at.dataframe[0].value) == 36 + 3
    before = figures(at)["text_home_hist"]["layout"]["title"]["text"]
    at.selectbox(key="text_home_layer").set_value("encoder.layer.3.intermediate.dense").run()
    after = figures(at)["text_home_hist"]["layout"]["title"]["text"]
    assert before != after and "589,824 weights" in after
    assert not at.exception
