"""AppTest of the Distillation lab on the text sample (minilm): the untrained student's figures at once, a temperature
picture that follows the slider, a Distill button that trains and compares, runs kept per setting, teacher mode."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import slimcore
from slimcore import distillation as D
from slimcore import serialized_bytes
from slimcore import text as T
from slimcore import text_distill as TD
from tests.apptest_utils import app, array, figures, metrics, run_for_model

PAGE = "views/3_Distillation.py"


@pytest.fixture(scope="module")
def sample():
    return slimcore.load_sample("minilm")


@pytest.fixture(scope="module")
def at():
    return run_for_model(PAGE, "minilm")


def table(at, column: str):
    """The first dataframe with this column."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def quality_rows(at) -> list[str]:
    return [m.value for m in at.metric if m.label == "Mean cosine to original"]


def test_untrained_student_is_shown_at_once(at, sample):
    student = TD.student_from_teacher(sample.model, 3)
    quick = sample.data.quick_set
    q = T.evaluate(student, quick, T.embed(sample.model, quick))
    m = metrics(at)
    assert m["Layers"] == "3 of 6"
    assert m["Parameters"] == f"{D.parameters(student):,}"
    assert m["Size (measured)"] == f"{serialized_bytes(student) / 2**20:,.1f} MiB"
    assert m["Mean cosine to original"] == f"{q.mean_cosine:.4f}"
    assert m["Paraphrase found (top-1)"] == f"{q.paraphrase_top1:.1%}"
    assert any("0, 3, 5" in c.value for c in at.caption)
    assert any("press **Train**" in i.value for i in at.info) and "distill_loss" not in figures(at)


def test_temperature_reshapes_the_similarity_distribution(at, sample):
    pool = TD.training_pool(sample.data.train, 0)
    batch = TD.batches(pool, 32, 0, 0)[0]
    rows = TD.similarity_logits(TD.embed_ids(sample.model, tuple(pool.ids[i] for i in batch)))
    def expected(t: float) -> np.ndarray:
        return np.sort(torch.softmax(rows[0] / t, 0).numpy() * 100)[::-1]
    fig = figures(at)["distill_similarity"]
    assert fig["layout"]["xaxis"]["type"] == "category" and len(fig["data"][0]["x"]) == 31
    sharp = array(fig["data"][0]["y"])
    assert sharp == pytest.approx(expected(0.2), abs=1e-3) and sharp.sum() == pytest.approx(100, abs=1e-3)
    top = table(at, "sentence")
    assert top["teacher, %"].tolist() == pytest.approx(expected(0.2)[:8], abs=0.006)
    assert top["is"].iloc[0] != "another group"   # the nearest sentence is a variant of the anchor or its paraphrase
    h_sharp = float(metrics(at)["Teacher's entropy"].split()[0])
    at.select_slider(key="temperature").set_value(1.0).run()
    assert not at.exception
    fig = figures(at)["distill_similarity"]
    flat = array(fig["data"][0]["y"])
    assert flat == pytest.approx(expected(1.0), abs=1e-3) and flat.max() < sharp.max()
    assert float(metrics(at)["Teacher's entropy"].split()[0]) > h_sharp + 1
    assert "T = 1:" in fig["layout"]["title"]["text"] and at.query_params["temperature"] == "1.0"
    at.select_slider(key="temperature").set_value(0.2).run()


def test_fewer_layers_change_the_student_at_once(at):
    at.slider(key="student_layers").set_value(1).run()
    m = metrics(at)
    assert m["Layers"] == "1 of 6" and m["Speed-up (modelled)"] == "~6.0x"
    assert int(m["Parameters"].replace(",", "")) < 17_000_000
    at.slider(key="student_layers").set_value(3).run()


def test_distill_trains_compares_and_keeps_the_run(at, sample):
    at.slider(key="student_layers").set_value(1)
    at.number_input(key="epochs").set_value(1).run()
    at.button(key="train").click().run(timeout=600)
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    figs = figures(at)
    assert array(figs["distill_score"]["data"][0]["x"]).tolist() == [0, 1]
    cos = array(figs["distill_score"]["data"][0]["y"])
    assert cos[1] > cos[0] + 0.05    # training raised the quick-set mean cosine over the untrained student
    untrained_quick, trained, untrained = (float(v) for v in quality_rows(at))
    assert trained > untrained + 0.05
    compared = table(at, "model").set_index("model")
    assert list(compared["layers"]) == [6, 1]
    assert compared.iloc[0]["mean cosine to the original"] == 1.0
    assert compared.iloc[1]["mean cosine to the original"] == pytest.approx(trained, abs=1e-4)
    assert (compared[["latency b=1, ms", "latency b=32, ms"]] > 0).all().all()
    assert compared.iloc[1]["size, KiB (measured)"] < compared.iloc[0]["size, KiB (measured)"]
    assert at.button(key="train").disabled
    loss = figs["distill_loss"]["data"]   # the encoder's parts, by name: similarity rows (soft) and embeddings (hard)
    assert "similarity rows" in loss[0]["name"] and "MSE" in loss[1]["name"]
    # the trained student joins the temperature picture, closer to the teacher's distribution than before training
    assert [t["name"] for t in figs["distill_similarity"]["data"]][2] == "trained student (this setting)"
    m = metrics(at)
    assert float(m["T² · KL, trained student"]) < float(m["T² · KL, untrained student"])
    # another setting has no run yet; coming back shows the kept one without training again
    at.select_slider(key="temperature").set_value(0.5).run()
    assert "distill_score" not in figures(at) and not at.button(key="train").disabled
    at.select_slider(key="temperature").set_value(0.2).run(timeout=30)
    assert array(figures(at)["distill_score"]["data"][0]["y"]) == pytest.approx(cos)
    assert table(at, "model").equals(compared.reset_index())   # latency kept too: not timed again


def test_teacher_mode_hides_alpha_lr_and_seed():
    at = app(PAGE)
    at.query_params.update({"model": "minilm", "teacher": "1", "alpha": "0.2"})
    at.run()
    assert not at.exception and not at.error
    keys = {w.key for w in [*at.slider, *at.select_slider, *at.number_input]}
    assert {"student_layers", "temperature", "epochs"} <= keys
    assert not keys & {"alpha", "lr", "seed", "batch_size"}
    assert any("hidden in teacher mode" in i.value for i in at.info)


@pytest.mark.parametrize("old", ["mse_weight", "text_alpha"])
def test_an_old_link_weighing_the_embeddings_opens_with_the_opposite_alpha(old):
    """The text lab's alpha weighed the embedding MSE; alpha is now the soft (similarity) term's weight in every
    family, so an old link's 0.2 is alpha 0.8: the same loss, the address bar rewritten."""
    at = app(PAGE)
    at.query_params.update({"model": "minilm", old: "0.2"})
    at.run()
    assert not at.exception and not at.error
    assert at.slider(key="alpha").value == pytest.approx(0.8)
    assert at.query_params.get("alpha") in ("0.8", ["0.8"]) and old not in at.query_params
    assert "0.8 x T² x KL" in " ".join(m.value for m in at.markdown)


def test_a_bad_link_value_gets_a_message_not_a_traceback():
    at = app(PAGE)
    at.query_params.update({"model": "minilm", "student_layers": "9", "temperature": "hot"})
    at.run()
    assert not at.exception and not at.error
    note = " ".join(i.value for i in at.info)
    assert "`student_layers=9`" in note and "`temperature=hot`" in note
    assert metrics(at)["Layers"] == "3 of 6"
