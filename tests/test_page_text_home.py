"""The home page on the text sample (minilm): the same page as every model's (views/0_Home.py), with the encoder's
figures (mean cosine, MiB, batch 32) and its family panel: the embeddings' similarities."""
from __future__ import annotations

import numpy as np
import pytest

import slimcore
from slimcore import text as T
from tests.apptest_utils import array, figures, metrics, run_for_model


@pytest.fixture(scope="module")
def at():
    return run_for_model("app.py", "minilm")


def test_home_shows_measured_figures(at):
    s = slimcore.load_sample("minilm")
    m = metrics(at)
    assert m["Parameters"] == f"{s.card['parameters']:,}"
    assert m["Size (measured)"] == f"{slimcore.serialized_bytes(s.model) / 2**20:,.1f} MiB"
    assert m["Mean cosine to the original"] == "1.0000"   # the family's metric: the original against itself
    assert float(m["Paraphrase found (top-1)"].rstrip("%")) > 90
    assert m["Latency (measured)"].endswith(" ms") and float(m["Latency (measured)"].split()[0]) > 0
    assert "Test accuracy" not in m
    assert any("batch 32" in c.value for c in at.caption)   # the encoder's timing batch, from the family
    assert any("pretrained sentence encoder" in c.value for c in at.sidebar.caption)
    assert not at.error and not at.exception


def test_similarity_picture_is_the_encoders(at):
    fig = figures(at)["home_sim"]
    z = array(fig["data"][0]["z"])
    z = z.reshape(12, 12) if z.ndim == 1 else z
    assert np.allclose(np.diag(z), 1, atol=1e-3) and np.allclose(z, z.T, atol=1e-3)
    # the first six test items are paraphrase groups: each sentence is most similar to its partner
    off = z - 2 * np.eye(12)
    assert all(off[i].argmax() == (i ^ 1) for i in range(12))
    table = at.table[-1].value   # a table, wrapped: a data grid in a side column cut the sentences
    assert len(table) == 12 and table["is its paraphrase"].mean() > 0.8


def test_layer_choice_changes_the_histogram(at):
    s = slimcore.load_sample("minilm")
    table = at.dataframe[0].value
    linears = list(T.linear_layers(s.model))
    assert list(table["layer"])[:len(linears)] == linears   # the compressible layers, then the embedding tables
    assert set(table["type"][len(linears):]) == {"table (lookup)"}
    assert "embeddings.word_embeddings.weight" in set(table["layer"])
    assert table["parameters"].sum() == sum(p.numel() for p in s.model.parameters() if p.dim() >= 2) + sum(
        m.bias.numel() for m in T.linear_layers(s.model).values())
    assert "home_examples" not in figures(at)   # the digit gallery is the classifiers' panel
    before = figures(at)["home_hist"]["layout"]["title"]["text"]
    layer = "encoder.layer.3.intermediate.dense"
    at.selectbox(key="home_layer").set_value(layer).run()
    after = figures(at)["home_hist"]["layout"]["title"]["text"]
    assert before != after and f"{T.linear_layers(s.model)[layer].weight.numel():,} weights" in after
    assert not at.exception
