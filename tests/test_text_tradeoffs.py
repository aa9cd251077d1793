"""Trade-offs on the text encoder through the one grid of every family (slimcore.tradeoffs): the points are the labs'
own models, sizes are labelled measured or modelled, the frontier holds, and the page builds and inspects a grid."""
from __future__ import annotations

import pytest
import torch

import slimcore
from slimcore import serialized_bytes
from slimcore import text as T
from slimcore import text_quant as TQ
from slimcore import tradeoffs as TR
from slimcore.pruning import PruneConfig
from tests.apptest_utils import app, array, figures, metrics

SMALL = TR.GridConfig(("ffn",), ("l1",), (0.0, 0.5), ("fp32", "int8"), per_channel=True)


@pytest.fixture(scope="module")
def s():
    return slimcore.load_sample("minilm")


@pytest.fixture(scope="module")
def frame(s):
    return TR.grid(s, SMALL)


def test_points_and_validation(s):
    cfg = TR.GridConfig(("unstructured", "heads"), ("l1",), (0.0, 0.5), ("fp32", "4-bit"))
    assert cfg.pieces() == [("unstructured", "l1", 0.0), ("unstructured", "l1", 0.5), ("heads", "l1", 0.5)]
    for bad in ({"ratios": (1.0,)}, {"precisions": ("1-bit", "0-bit")}, {"precisions": ("fp16",)}, {"kinds": ()}):
        with pytest.raises(ValueError):
            TR.GridConfig(**bad)
    fam = slimcore.family_of(s)
    for bad, what in (({"kinds": ("channels",)}, "pruning 'channels'"),
                      ({"methods": ("obs",)}, "pruning method 'obs'")):
        with pytest.raises(ValueError, match=what):
            TR.GridConfig(**bad).check(fam)
    with pytest.raises(ValueError, match="real engine"):   # a classifier has no real int8 point in the grid
        TR.GridConfig(precisions=("int8",)).check(slimcore.family_of(slimcore.load_sample("digits-mlp")))


@pytest.mark.slow
def test_grid_rows_are_measured_and_labelled(s, frame):
    assert list(frame.config) == ["unpruned · fp32", "unpruned · int8", "L1 50% FFN neurons · fp32",
                                  "L1 50% FFN neurons · int8"]
    assert list(frame.columns) == TR.COLUMNS and frame.attrs["metric"] == slimcore.family_of(s).metric
    base = frame.iloc[0]
    assert base.score == pytest.approx(1.0, abs=1e-6) and base.size_label == "measured"
    assert base.size_bytes == serialized_bytes(s.model)
    assert (frame.size_label == "measured").all()  # fp32 thin models and int8 files are real artifacts
    assert frame.size_bytes[1] < 0.7 * base.size_bytes and frame.size_bytes[2] < base.size_bytes
    assert (frame.score.iloc[1:] < 1).all()
    front = slimcore.pareto(frame, "size_bytes", "score")
    assert 0 in front.index and 3 in front.index   # best quality; smallest


@pytest.mark.slow
def test_a_point_is_the_labs_model(s, frame):
    pruned = slimcore.prune(s, PruneConfig(0.5, structured=True, unit="ffn", norm=2))
    assert frame.score[2] == slimcore.score(s, pruned, "quick").value
    q = TQ.int8_text(s.model, per_channel=True).model
    assert frame.score[1] == slimcore.score(s, q, "quick").value
    assert frame.detail[1].mean_cosine == frame.score[1]   # the family's detail record rides along


@pytest.mark.slow
def test_int8_with_the_word_table_in_8_bits_is_a_measured_point_below_the_fp32_table(s):
    net, size, how, rule = TR.build(s, "ffn", 0.5, "int8+emb")
    assert how == "measured" and size == serialized_bytes(net) and "word embeddings 8-bit" in rule
    assert size < s.model.embeddings.word_embeddings.weight.numel() * 4   # smaller than the fp32 table alone
    pruned = slimcore.prune(s, PruneConfig(0.5, structured=True, unit="ffn", norm=2))
    plain = TQ.int8_text(pruned, True, embeddings=True).model
    sp = s.data.quick_set.subset(24)
    ref = T.embed(s.model, sp)
    assert T.evaluate(net, sp, ref) == T.evaluate(plain, sp, ref)       # the Quantization lab's model, pruned


@pytest.mark.slow
def test_fake_quant_and_sparse_points_are_modelled(s):
    net, size, how, rule = TR.build(s, "unstructured", 0.5, "fp32")
    assert how == "modelled" and "sparse" in rule and size < serialized_bytes(net)
    net, size, how, rule = TR.build(s, "unstructured", 0.0, "4-bit")
    assert how == "modelled" and "4 bits" in rule and size < serialized_bytes(s.model)
    assert not torch.equal(net.encoder.layer[0].intermediate.dense.weight,
                           s.model.encoder.layer[0].intermediate.dense.weight)


@pytest.mark.usefixtures("fresh_results")   # the grid is not found built by another test
def test_page_builds_a_grid_and_inspects_a_point():
    at = app("views/4_Trade-offs.py", timeout=300)
    at.session_state["model_name"] = "minilm"
    at.run()
    assert not at.exception and at.button(key="tradeoff_run")
    at.toggle(key="tradeoff_structured").set_value(False)
    at.multiselect(key="tradeoff_ratios").set_value([0.0, 0.5])
    at.multiselect(key="tradeoff_precisions").set_value(["fp32", "int8"]).run()
    at.button(key="tradeoff_run").click().run()
    assert not at.exception and not at.error, (at.exception, at.error)
    assert not any("points to build" in i.value for i in at.info)  # the offer is gone once taken, in the same run
    with pytest.raises(KeyError):
        at.button(key="tradeoff_run")
    fig = figures(at)["tradeoff_chart"]
    points = [t for t in fig["data"] if t.get("mode") == "markers" and t.get("name") != "chosen"]
    assert sum(len(array(t["x"])) for t in points) == 4  # unpruned and weights -50 %, each fp32 and int8
    assert {t["name"] for t in points} == {"fp32", "int8"}
    assert fig["layout"]["yaxis"]["title"]["text"] == "mean cosine to the original"
    assert "tradeoff_waterfall" not in figures(at) and at.button(key="tradeoff_pipe_run")   # slow: waits for a click
    assert any("choose the precision *real int8 (torch.ao, per channel), word embeddings 8-bit too*" in c.value
               for c in at.caption)   # the way below the fp32 word table, when the grid lacks it
    at.selectbox(key="tradeoff_point").set_value("unpruned · fp32").run()
    assert metrics(at)["Mean cosine to original"] == "1.0000"
    at.selectbox(key="tradeoff_point").set_value("L1 50% weights · int8").run()
    assert not at.exception
    assert float(metrics(at)["Mean cosine to original"]) < 1
    assert [s.value for s in at.subheader if s.value == "Export"]   # the point can be taken home
    assert any("python -m slimcore apply --recipe recipe.yaml" in c.value for c in at.code)
    yaml = next(c.value for c in at.code if "model: minilm" in c.value)
    assert "amount: 0.5" in yaml and "int8:" in yaml
    at.button(key="tradeoff_to_pruning").click().run()   # an encoder's configuration opens in its Pruning lab
    assert not at.exception and [t.value for t in at.title] == ["Pruning lab"]
    assert at.slider(key="prune_ratio").value == 0.5 and at.radio(key="prune_kind").value == "unstructured"
    assert at.selectbox(key="prune_method").value == "l1" and at.radio(key="prune_scope").value == "layer"
