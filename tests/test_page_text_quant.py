"""AppTest of the Quantization lab on the text sample (minilm): the figures are slimcore's, follow the Weight bits
slider and the granularity, real int8 is measured beside fp32, the group scan and the whole-split figures come
behind their buttons, and bad link values give a message, never a traceback."""
import numpy as np
import pytest

import slimcore
from slimcore import quantization as Q
from slimcore import serialized_bytes
from slimcore import text as T
from slimcore import text_quant as TQ
from slimcore.quantization import QuantConfig
from tests.apptest_utils import LINK_TIMEOUT, array, figures, metrics, run_link

PAGE = "views/2_Quantization.py"
COSINE = "Mean cosine to original"


@pytest.fixture(scope="module")
def s():
    return slimcore.load_sample("minilm")


@pytest.fixture(scope="module")
def ref(s):
    return T.embed(s.model, s.data.quick_set)


def open_page(**query: str):
    return run_link(PAGE, LINK_TIMEOUT, model="minilm", **query)   # timeout given: no query key can be it


@pytest.fixture(scope="module")
def page():
    """The page on minilm, run once (its first run measures the curve, builds int8 and times it)."""
    return open_page()


_seen: dict = {}


def expected_cosine(s, ref, bits, per_channel) -> str:
    """The mean cosine slimcore measures for this setting on the quick set (each setting computed once)."""
    if (bits, per_channel) in _seen:
        return _seen[bits, per_channel]
    q = T.evaluate(TQ.fake_quantized(s.model, QuantConfig(bits, per_channel=per_channel)), s.data.quick_set, ref)
    _seen[bits, per_channel] = f"{q.mean_cosine:.4f}"
    return _seen[bits, per_channel]


def marker(at) -> float:
    return figures(at)["q_curve"]["layout"]["shapes"][0]["x0"]


def levels_name(at) -> str:
    return figures(at)["q_levels"]["data"][1]["name"]


def test_default_view_shows_simulated_quality_modelled_size_and_the_int8_table(page, s, ref):
    shown = metrics(page)
    assert shown[COSINE] == expected_cosine(s, ref, 8, False)
    assert shown["Mean cosine (simulated)"] == shown[COSINE]   # the family's headline, then its detail figures
    assert set(figures(page)) == {"q_levels", "q_values", "q_error", "q_sqnr", "q_curve"}
    assert levels_name(page).startswith("255 quantization levels") and marker(page) == 8
    size = Q.modelled_bytes(s.model, QuantConfig(8, per_channel=False), TQ.layers(s.model))
    assert shown["Size at 8-bit (modelled)"] == f"{size.bytes / 2**20:,.1f} MiB"
    assert any("Fake quantization: simulated" in m.value for m in page.markdown)
    assert any("activation quantization is not available for sentence encoders" in c.value for c in page.caption)
    table = page.dataframe[0].value.set_index("model")
    both = "real int8 per channel, embeddings too"
    ort = ["real ONNX Runtime int8 per tensor, embeddings too", "real ONNX Runtime int8 per channel, embeddings too"]
    assert list(table.index) == ["fp32 (original)", "fp32 (ONNX Runtime)", "simulated: 8-bit fake quant", *ort,
                                 "real int8 per tensor", "real int8 per channel", both]
    assert list(table["engine"].iloc[3:]) == ["ONNX Runtime"] * 2 + ["torch.ao"] * 3
    b1, b32 = "latency, batch 1 (measured)", "latency, batch 32 (measured)"
    assert all(table.loc[k, c].endswith("× fp32") for k in (*ort, "real int8 per tensor", "real int8 per channel",
                                                            both) for c in (b1, b32))
    size = serialized_bytes(TQ.int8_text(s.model, True).model)
    assert table.loc["real int8 per channel", "size"] == f"{size / 2**20:,.1f} MiB (measured file)"
    small = serialized_bytes(TQ.int8_text(s.model, True, embeddings=True).model)
    assert table.loc[both, "size"] == f"{small / 2**20:,.1f} MiB (measured file)" and small < size / 2
    assert any("word-embedding table (30,522 x 384) is stored in 8 bits" in c.value for c in page.caption)
    assert table.loc["simulated: 8-bit fake quant", "mean cosine (measured)"] == shown[COSINE]
    pc, pt = (float(table.loc[f"real int8 {k}", "mean cosine (measured)"]) for k in ("per channel", "per tensor"))
    assert pc > pt
    notes = [c.value for c in page.caption] + [w.value for w in page.warning]
    assert any("as fast as fp32 at batch 1" in n and "at batch 32" in n for n in notes)
    assert page.radio(key="export_choice").options == ["simulated 8-bit (fake quantization)",
                                                       *(f"real {k}" for k in TQ.INT8_VARIANTS)]


def test_the_curve_holds_every_bit_width_and_matches_the_slider(page):
    curve = figures(page)["q_curve"]["data"]
    xs, cos = array(curve[0]["x"]), array(curve[0]["y"]).astype(float)
    assert list(xs) == list(range(1, 17)) and curve[0]["name"] == "mean cosine"
    assert cos[-1] > 0.9999 and cos[1] < cos[7]             # 16 bits ~ the original; 2 bits far from it
    assert f"{cos[list(xs).index(8)]:.4f}" == metrics(page)[COSINE]


def test_moving_bits_and_per_channel_follow_slimcore(page, s, ref):
    page.slider(key="bit_width").set_value(4).run()
    assert not page.exception
    assert metrics(page)[COSINE] == expected_cosine(s, ref, 4, False)
    assert levels_name(page).startswith("15 quantization levels") and marker(page) == 4
    assert "Size at 4-bit (modelled)" in metrics(page)
    page.radio(key="granularity").set_value("per channel").run()
    assert not page.exception
    assert metrics(page)[COSINE] == expected_cosine(s, ref, 4, True)
    assert float(metrics(page)[COSINE]) > float(expected_cosine(s, ref, 4, False))
    assert "widest" in figures(page)["q_levels"]["layout"]["annotations"][0]["text"]
    page.selectbox(key="quant_layer").set_value("encoder.layer.5.output.dense").run()
    assert "encoder.layer.5.output.dense (384 × 1536)" in figures(page)["q_levels"]["layout"]["title"]["text"]


def test_binary_ternary_asymmetric_and_stochastic_work_on_the_encoder_too(page, s, ref):
    """The settings the old text page did not offer, now offered on every family: each figure is slimcore's."""
    page.slider(key="bit_width").set_value(1).run()
    assert not page.exception and levels_name(page).startswith("2 quantization levels")
    binary = QuantConfig(1, per_channel=page.radio(key="granularity").value == "per channel")
    want = T.evaluate(Q.quantize(s.model, config=binary, layers=TQ.layers(s.model)), s.data.quick_set, ref)
    assert metrics(page)[COSINE] == f"{want.mean_cosine:.4f}"
    page.checkbox(key="ternary").check().run()
    assert not page.exception and levels_name(page).startswith("3 quantization levels")
    page.checkbox(key="ternary").uncheck().run()
    page.slider(key="bit_width").set_value(4).run()
    page.radio(key="scheme").set_value("asymmetric").run()
    page.selectbox(key="rounding").set_value("stochastic (seed 0)").run()
    assert not page.exception and not page.error
    cfg = QuantConfig(4, symmetric=False, per_channel=binary.per_channel, rounding="stochastic")
    want = T.evaluate(Q.quantize(s.model, config=cfg, layers=TQ.layers(s.model)), s.data.quick_set, ref)
    assert metrics(page)[COSINE] == f"{want.mean_cosine:.4f}"
    assert "quant_target" not in [r.key for r in page.radio]   # activations: classifiers only, said in a caption
    page.radio(key="scheme").set_value("symmetric").run()
    page.selectbox(key="rounding").set_value("to nearest").run()


def test_group_scan_measures_each_group_alone(page, s, ref):
    page.slider(key="bit_width").set_value(4).run()
    page.radio(key="granularity").set_value("per tensor").run()
    assert "tq_groups" not in figures(page)
    page.button(key="text_quant_groups").click().run()
    assert not page.exception
    bars = figures(page)["tq_groups"]["data"]
    assert [b["name"] for b in bars] == ["real int8 per tensor", "real int8 per channel",
                                         "fake 4-bit per tensor (simulated)"]
    model = TQ.group_variant(s.model, "ffn_out", "int8 per tensor", QuantConfig(4, per_channel=False))
    drop = 1 - T.evaluate(model, s.data.quick_set, ref).mean_cosine
    assert array(bars[0]["y"]).astype(float)[list(T.GROUPS).index("ffn_out")] == pytest.approx(drop, abs=1e-6)
    assert any("Measured most sensitive group" in c.value for c in page.caption)
    page.slider(key="bit_width").set_value(5).run()   # the last scan stays, labelled with its bit width
    assert "(bits 4)" in figures(page)["tq_groups"]["layout"]["title"]["text"]


def test_whole_test_split_comes_behind_a_button(page, s):
    page.button(key="text_quant_full").click().run()
    assert not page.exception
    full = page.dataframe[-1].value
    assert len(full) == 6 and full["model"].iloc[0].startswith("fake ")   # the simulation, then 5 real int8 models
    test_ref = T.embed(s.model, s.test)
    q = T.evaluate(TQ.int8_text(s.model, True).model, s.test, test_ref)
    assert full.set_index("model").loc["real int8 per channel", COSINE] == f"{q.mean_cosine:.4f}"
    assert any("496 held-out sentences (the whole test split" in c.value for c in page.caption)


def test_bad_link_values_give_a_message_and_teacher_mode_hides_retiming():
    at = open_page(bit_width="99", teacher="1")
    assert at.slider(key="bit_width").value == 8
    assert any("bit_width=99" in i.value for i in at.info)
    assert "quant_retime" not in [b.key for b in at.button]
    assert not np.isnan(float(metrics(at)[COSINE]))
