"""Trade-offs on the text encoder: the grid's points are the labs' own models, sizes are labelled, the frontier holds."""
from __future__ import annotations

import pytest
import torch

import slimcore
from slimcore import serialized_bytes
from slimcore import text as T
from slimcore import text_prune as TP
from slimcore import text_quant as TQ
from slimcore import text_tradeoffs as TT
from tests.apptest_utils import app, array, figures, metrics

SMALL = TT.TextGridConfig(("ffn",), (0.0, 0.5), ("fp32", "int8"))


@pytest.fixture(scope="module")
def setup():
    s = slimcore.load_sample("minilm")
    sp = s.data.quick_set.subset(48)
    return s, sp, T.embed(s.model, sp)


@pytest.fixture(scope="module")
def frame(setup):
    s, sp, ref = setup
    return TT.grid(s.model, sp, ref, SMALL)


def test_points_and_validation():
    cfg = TT.TextGridConfig(("unstructured", "heads"), (0.0, 0.5), ("fp32", "int4"))
    assert cfg.points() == [("none", 0.0, "fp32"), ("none", 0.0, "int4"), ("unstructured", 0.5, "fp32"),
                            ("unstructured", 0.5, "int4"), ("heads", 0.5, "fp32"), ("heads", 0.5, "int4")]
    for bad in ({"kinds": ("rows",)}, {"ratios": (1.0,)}, {"precisions": ("int1",)}, {"precisions": ("fp16",)},
                {"kinds": ()}):
        with pytest.raises(ValueError):
            TT.TextGridConfig(**bad)


def test_grid_rows_are_measured_and_labelled(setup, frame):
    s, sp, ref = setup
    assert list(frame["point"]) == ["unpruned, fp32", "unpruned, int8", "FFN neurons -50%, fp32", "FFN neurons -50%, int8"]
    base = frame.iloc[0]
    assert base["mean cosine"] == pytest.approx(1.0, abs=1e-6) and base["size is"] == "measured"
    assert base["size, MiB"] * 2**20 == serialized_bytes(s.model)
    assert (frame["size is"] == "measured").all()  # fp32 thin models and int8 files are real artifacts
    assert frame.loc[1, "size, MiB"] < 0.7 * base["size, MiB"] and frame.loc[2, "size, MiB"] < base["size, MiB"]
    assert (frame["mean cosine"].iloc[1:] < 1).all()
    assert bool(frame.loc[0, "frontier"]) and bool(frame.loc[3, "frontier"])  # best quality; smallest


def test_a_point_is_the_labs_model(setup, frame):
    s, sp, ref = setup
    pruned = TP.evaluate(s.model, TP.TextPruneConfig(0.5, "ffn"), sp, ref)[0]
    assert frame.loc[2, "mean cosine"] == pytest.approx(pruned.quality.mean_cosine, abs=1e-6)
    q = TQ.int8_text(s.model, per_channel=True).model
    assert frame.loc[1, "mean cosine"] == pytest.approx(T.evaluate(q, sp, ref).mean_cosine, abs=1e-6)


def test_int8_with_the_word_table_in_8_bits_is_a_measured_point_below_the_fp32_table(setup):
    s, sp, ref = setup
    net, size, how, rule = TT.build(s.model, "ffn", 0.5, "int8+emb")
    assert how == "measured" and size == serialized_bytes(net) and "word embeddings 8-bit" in rule
    assert size < s.model.embeddings.word_embeddings.weight.numel() * 4   # smaller than the fp32 table alone
    plain = TQ.int8_text(TP.prune_text(s.model, TP.TextPruneConfig(0.5, "ffn")), True, embeddings=True).model
    assert T.evaluate(net, sp, ref) == T.evaluate(plain, sp, ref)       # the Quantization lab's model, pruned
    assert TT.TextGridConfig(precisions=("int8+emb",)).points()[0] == ("none", 0.0, "int8+emb")


def test_fake_quant_and_sparse_points_are_modelled(setup):
    s, _, _ = setup
    net, size, how, rule = TT.build(s.model, "unstructured", 0.5, "fp32")
    assert how == "modelled" and "sparse" in rule and size < serialized_bytes(net)
    net, size, how, rule = TT.build(s.model, "none", 0.0, "int4")
    assert how == "modelled" and "4 bits" in rule and size < serialized_bytes(s.model)
    assert not torch.equal(net.encoder.layer[0].intermediate.dense.weight, s.model.encoder.layer[0].intermediate.dense.weight)


def test_page_builds_a_grid_and_inspects_a_point():
    at = app("views/4_Trade-offs.py", timeout=300)
    at.session_state["model_name"] = "minilm"
    at.run()
    assert not at.exception and at.button(key="text_grid_run")
    at.multiselect(key="text_grid_kinds").set_value(["heads"])
    at.multiselect(key="text_grid_ratios").set_value([0.0, 0.5])
    at.multiselect(key="text_grid_precisions").set_value(["fp32", "int8"]).run()
    at.button(key="text_grid_run").click().run()
    assert not at.exception and not at.error, (at.exception, at.error)
    assert not any("points to build" in i.value for i in at.info)  # the offer is gone once taken, in the same run
    with pytest.raises(KeyError):
        at.button(key="text_grid_run")
    fig = figures(at)["text_grid_scatter"]
    points = [t for t in fig["data"] if t.get("mode") == "markers" and t.get("name") != "chosen"]
    assert sum(len(array(t["x"])) for t in points) == 4  # unpruned and heads -50 %, each fp32 and int8
    assert {t["name"] for t in points} == {"fp32", "real int8 (dynamic, per channel)"}
    assert fig["layout"]["yaxis"]["title"]["text"] == "mean cosine"
    assert any("choose the precision *real int8 (per channel), word embeddings 8-bit too*" in c.value
               for c in at.caption)   # the way below the fp32 word table's 45 MiB, when the grid lacks it
    at.selectbox(key="text_grid_point").set_value("unpruned, fp32").run()
    assert metrics(at)["Mean cosine to original"] == "1.0000"
    at.selectbox(key="text_grid_point").set_value("attention heads -50%, int8").run()
    assert not at.exception
    assert float(metrics(at)["Mean cosine to original"]) < 1
