"""Quantization of the text encoder (slimcore.text_quant): our fake quantization agrees with PyTorch's, real int8
stays close to fp32 (per channel closer than per tensor), per-group int8 really leaves the other groups fp32, the
shared model is never changed, and bad settings are refused with a message."""
import copy

import pytest
import torch
from torch import nn

import slimcore
from slimcore import int8 as I
from slimcore import quantization as Q
from slimcore import serialized_bytes
from slimcore import text as T
from slimcore import text_quant as TQ
from slimcore.quantization import QuantConfig, qparams


@pytest.fixture(scope="module")
def s():
    return slimcore.load_sample("minilm")


@pytest.fixture(scope="module")
def quick(s):
    return s.data.quick_set


@pytest.fixture(scope="module")
def ref(s, quick):
    return T.embed(s.model, quick)


@pytest.fixture(scope="module")
def tiny(s):
    """A few held-out sentences: enough to run the scans end to end quickly."""
    return s.data.quick_set.subset(12)


@pytest.fixture(scope="module")
def int8_quality(s, quick, ref):
    return {pc: T.evaluate(TQ.int8_text(s.model, pc).model, quick, ref) for pc in (False, True)}


LAYER = "encoder.layer.3.intermediate.dense"


@pytest.mark.parametrize("bits,symmetric", [(8, True), (4, True), (8, False), (3, False)])
def test_fake_quantization_of_a_text_linear_equals_pytorchs_per_tensor(s, bits, symmetric):
    w = T.linear_layers(s.model)[LAYER].weight.detach()
    ours = Q.quantized_weights(s.model, QuantConfig(bits, per_channel=False, symmetric=symmetric),
                               TQ.layers(s.model, [LAYER]))[f"{LAYER}.weight"]
    qp = qparams(w, bits, symmetric)
    if symmetric:  # the grid itself, written out: max|w| over 2^(k-1) - 1 codes, zero point 0
        assert float(qp.scale) == pytest.approx(float(w.abs().max()) / (2 ** (bits - 1) - 1), rel=1e-6)
    theirs = torch.fake_quantize_per_tensor_affine(w, float(qp.scale), int(qp.zero_point), qp.qmin, qp.qmax)
    assert torch.equal(ours, theirs)
    assert torch.unique(ours).numel() <= qp.qmax - qp.qmin + 1


@pytest.mark.parametrize("bits,symmetric", [(8, True), (4, True), (6, False)])
def test_fake_quantization_of_a_text_linear_equals_pytorchs_per_channel(s, bits, symmetric):
    w = T.linear_layers(s.model)[LAYER].weight.detach()
    ours = Q.quantized_weights(s.model, QuantConfig(bits, per_channel=True, symmetric=symmetric),
                               TQ.layers(s.model, [LAYER]))[f"{LAYER}.weight"]
    qp = qparams(w, bits, symmetric, axis=0)
    assert qp.scale.shape == (w.shape[0],)
    theirs = torch.fake_quantize_per_channel_affine(w, qp.scale, qp.zero_point, 0, qp.qmin, qp.qmax)
    assert torch.equal(ours, theirs)


def test_fake_quant_changes_exactly_the_chosen_linears_and_keeps_embeddings_fp32(s):
    only = TQ.select(s.model, ["ffn_out"], [5])
    assert only == ["encoder.layer.5.output.dense"]
    v = TQ.fake_quantized(s.model, QuantConfig(4, per_channel=False), only)
    new, old = v.state_dict(), s.model.state_dict()
    changed = {k for k in old if not torch.equal(new[k], old[k])}
    assert changed == {"encoder.layer.5.output.dense.weight"}
    everything = TQ.fake_quantized(s.model, QuantConfig(4, per_channel=True)).state_dict()
    changed = {k for k in old if not torch.equal(everything[k], old[k])}
    assert changed == {f"{n}.weight" for n in T.linear_layers(s.model)} and len(changed) == 36  # no embedding, bias, LN


@pytest.mark.slow
def test_sixteen_bits_is_indistinguishable_and_fewer_bits_move_the_embeddings(s, quick, ref):
    q16 = T.evaluate(TQ.fake_quantized(s.model, QuantConfig(16, per_channel=False)), quick, ref)
    assert q16.mean_cosine > 0.9999 and q16.top1_agreement == 1.0
    q8pc = T.evaluate(TQ.fake_quantized(s.model, QuantConfig(8, per_channel=True)), quick, ref)
    q3 = T.evaluate(TQ.fake_quantized(s.model, QuantConfig(3, per_channel=False)), quick, ref)
    assert q16.mean_cosine > q8pc.mean_cosine > q3.mean_cosine


def test_int8_embeddings_stay_close_and_per_channel_is_closer(int8_quality):
    per_tensor, per_channel = int8_quality[False], int8_quality[True]
    assert per_channel.mean_cosine > per_tensor.mean_cosine > 0.9
    assert per_channel.mean_cosine >= 0.97            # the bar for per channel, on the quick set
    assert per_channel.spearman > 0.98


def test_int8_is_measured_smaller_and_the_modelled_8_bit_size_agrees(s):
    r = TQ.int8_text(s.model, True)
    assert r.kind == "dynamic" and all(I.is_dynamic_int8(m) for m in T.linear_layers(r.model).values())
    measured = serialized_bytes(r.model)
    assert measured < 0.7 * serialized_bytes(s.model)
    modelled = Q.modelled_bytes(s.model, QuantConfig(8, per_channel=True), TQ.layers(s.model)).bytes
    assert modelled == pytest.approx(measured, rel=0.02)   # the rule (weights at 8 bits, the rest fp32) is the file


def test_build_offers_the_three_encoders_through_the_one_int8_entry_point(s):
    """int8.build on the encoder: its family's table (ONNX Runtime per tensor and per channel first, then torch.ao
    per tensor, per channel, per channel + 8-bit word table, built by int8_text); static int8 has no encoder path in
    either engine and says so."""
    assert list(I.variants(s)) == list(TQ.INT8_VARIANTS) == [
        "ONNX Runtime int8 per tensor, embeddings too", "ONNX Runtime int8 per channel, embeddings too",
        "int8 per tensor", "int8 per channel", "int8 per channel, embeddings too"]
    r, direct = I.build(s, "int8 per channel"), TQ.int8_text(s.model, True)
    assert r.notes == direct.notes and all(I.is_dynamic_int8(m) for m in T.linear_layers(r.model).values())
    assert serialized_bytes(r.model) == serialized_bytes(direct.model)
    with pytest.raises(ValueError, match="static int8 is not available"):
        I.build(s, I.Int8Variant("static"))
    with pytest.raises(ValueError, match="static int8 calibrates activation ranges from float inputs"):
        I.build(s, I.Int8Variant("static", engine="onnxruntime"))


@pytest.mark.slow
def test_int8_word_embeddings_are_8_bit_rows_and_change_nothing_else(s, quick, ref):
    """The word-embedding table in 8 bits: each row on its own 256-level grid over [min, max] (our rule, checked
    against the stored codes), a lookup returns the dequantized rows, every other weight is the plain int8 model's,
    the file loses most of the table's bytes, and the embeddings stay close."""
    from torch.ao.nn.quantized import Embedding as QuantizedEmbedding

    plain, both = TQ.int8_text(s.model, True), TQ.int8_text(s.model, True, embeddings=True)
    table = both.model.embeddings.word_embeddings
    assert isinstance(table, QuantizedEmbedding) and any("word-embedding table" in n for n in both.notes)
    w = s.model.embeddings.word_embeddings.weight.detach()
    qw = table.weight()
    assert qw.dtype == torch.quint8 and qw.qscheme() == torch.per_channel_affine_float_qparams
    lo, hi = w.min(1).values, w.max(1).values
    step = (hi - lo) / 255
    assert torch.allclose(qw.q_per_channel_scales().float(), step, rtol=1e-5)
    dequantized = qw.dequantize()
    assert ((dequantized - w).abs() <= step[:, None] / 2 + 1e-6).all()   # rounding to the nearest level
    ids = torch.tensor([list(quick.ids[0]) + [T.PAD_ID] * 2, list(quick.ids[1][:len(quick.ids[0]) + 2])])
    assert torch.allclose(table(ids), dequantized[ids], atol=1e-6)   # (the kernel computes q * scale + offset)
    twin = copy.deepcopy(plain.model)   # the plain int8 model with the dequantized table: the same encoder
    twin.embeddings.word_embeddings.weight.data = dequantized
    assert torch.allclose(twin(ids), both.model(ids), atol=1e-6)
    table_fp32 = w.numel() * 4
    assert serialized_bytes(both.model) < serialized_bytes(plain.model) - 0.7 * table_fp32
    q = T.evaluate(both.model, quick, ref)
    assert q.mean_cosine >= 0.97 and q.spearman > 0.98


@pytest.mark.parametrize("group", list(T.GROUPS))
def test_per_group_int8_leaves_the_other_groups_fp32(s, group):
    q = TQ.int8_text(s.model, False, [group]).model
    original = T.linear_layers(s.model)
    for name, m in T.linear_layers(q).items():
        if T.group_of(name) == group:
            assert I.is_dynamic_int8(m), name
        else:
            assert type(m) is nn.Linear and torch.equal(m.weight, original[name].weight), name
    assert sum(I.is_dynamic_int8(m) for m in q.modules()) == 6 * len(T.GROUPS[group])


@pytest.mark.slow
def test_the_shared_model_is_never_changed(s, tiny):
    before = {k: v.clone() for k, v in s.model.state_dict().items()}
    cfg = QuantConfig(3, per_channel=True)
    TQ.fake_quantized(s.model, cfg)
    TQ.int8_text(s.model, True)
    TQ.int8_text(s.model, False, ["qkv"], embeddings=True)
    TQ.group_variant(s.model, "ffn_in", "fake", cfg)
    after = s.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(type(m) is nn.Linear for m in T.linear_layers(s.model).values())


@pytest.mark.slow
def test_group_scan_has_every_group_and_method(s, tiny):
    ref = T.embed(s.model, tiny)
    rows = TQ.group_sensitivity(s.model, tiny, ref, QuantConfig(4, per_channel=False))
    assert [(r.group, r.method) for r in rows] == [(g, m) for g in T.GROUPS for m in TQ.GROUP_METHODS]
    assert {r.layers for r in rows} == {6, 18}    # q/k/v has three Linear layers per transformer layer
    assert all(0.0 <= r.drop < 1.0 for r in rows)
    assert rows[2].label == "fake 4-bit per tensor (simulated)" and rows[1].label == "real int8 per channel"


def test_modelled_size_counts_bits_and_grids(s):
    linears = T.linear_layers(s.model)
    weights = sum(m.weight.numel() for m in linears.values())
    total = sum(t.numel() for t in s.model.state_dict().values())
    a = Q.modelled_bytes(s.model, QuantConfig(4, per_channel=False), TQ.layers(s.model)).bytes
    b = Q.modelled_bytes(s.model, QuantConfig(4, per_channel=True, symmetric=False), TQ.layers(s.model)).bytes
    assert a == weights / 2 + 36 * 4 + (total - weights) * 4
    assert b - a == sum(m.weight.shape[0] for m in linears.values()) * 8 - 36 * 4


def test_kernel_times_cover_the_three_shapes(s):
    ks = TQ.kernel_times(s.model, [4], repeats=5, max_seconds=0.05)
    assert [k.shape for k in ks] == ["384x384", "384x1536", "1536x384"]
    assert all(k.tokens == 4 and k.fp32.median_ms > 0 and k.int8.median_ms > 0 for k in ks)


@pytest.mark.parametrize("kwargs,message", [
    (dict(bits=0), "from 1 to 16"), (dict(bits=17), "from 1 to 16"), (dict(bits=8.0), "whole number"),
    (dict(bits=True), "whole number"), (dict(per_channel="yes"), "True or False"),
    (dict(symmetric=1), "True or False")])
def test_bad_quant_configs_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        QuantConfig(**{"bits": 8, "per_channel": False, **kwargs})


def test_unknown_layers_and_groups_are_refused(s):
    with pytest.raises(ValueError, match="unknown layer group"):
        TQ.select(s.model, ["ffn"])
    with pytest.raises(ValueError, match="numbered 0 to 5"):
        TQ.select(s.model, None, [6])
    with pytest.raises(ValueError, match="not encoder Linear layers"):
        TQ.fake_quantized(s.model, QuantConfig(8, per_channel=False), ["embeddings.word_embeddings"])
    with pytest.raises(ValueError, match="not Linear layers"):
        I.dynamic_int8(s.model, True, {"encoder.layer.0.nope"})
    with pytest.raises(ValueError, match="method must be"):
        TQ.group_variant(s.model, "qkv", "int4", QuantConfig(8, per_channel=False))
    with pytest.raises(ValueError, match="not an encoder Linear"):
        TQ.layer_grid(s.model, "embeddings.LayerNorm", QuantConfig(8, per_channel=False))
