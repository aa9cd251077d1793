"""Simulated quantization: our grids agree bit for bit with PyTorch's fake-quantization kernels, keep the promised
properties (levels, error bound, idempotence, ~6 dB per bit), and never touch the model they are given."""
import dataclasses
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch import nn

import slimcore
from slimcore import quantization as q
from tests.conftest import ROOT

BITS = st.integers(2, 16)
FLOATS = st.floats(-(2.0 ** 60), 2.0 ** 60, width=32, allow_nan=False, allow_infinity=False)  # subnormals included
SETTINGS = settings(suppress_health_check=[HealthCheck.too_slow])  # examples, deadline: the profile (tests/conftest.py)


def arrays(min_dims: int = 1, max_dims: int = 4):
    return hnp.arrays(np.float32, hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=7),
                      elements=FLOATS)


def codes(x: torch.Tensor, qp: q.QParams) -> torch.Tensor:
    """Integer codes of values already on a grid."""
    return torch.round(x / q._broadcast(qp.scale, x, qp.axis)) + q._broadcast(qp.zero_point, x, qp.axis)


# --- agreement with the PyTorch reference ------------------------------------------------------------------------

@SETTINGS
@given(arrays(), BITS, st.booleans())
def test_per_tensor_is_bit_exact_with_torch(a, bits, symmetric):
    x = torch.from_numpy(a)
    qp = q.qparams(x, bits, symmetric)
    ours = q.fake_quantize(x, bits, symmetric)
    ref = torch.fake_quantize_per_tensor_affine(x, float(qp.scale), int(qp.zero_point), qp.qmin, qp.qmax)
    assert torch.equal(ours, ref)


@SETTINGS
@given(arrays(min_dims=2), BITS, st.booleans(), st.data())
def test_per_channel_is_bit_exact_with_torch(a, bits, symmetric, data):
    x = torch.from_numpy(a)
    axis = data.draw(st.integers(0, x.dim() - 1))
    qp = q.qparams(x, bits, symmetric, axis)
    ours = q.fake_quantize(x, bits, symmetric, axis)
    ref = torch.fake_quantize_per_channel_affine(x, qp.scale, qp.zero_point, axis, qp.qmin, qp.qmax)
    assert torch.equal(ours, ref)


@pytest.mark.parametrize("symmetric", [True, False])
def test_ties_round_half_to_even_like_torch(symmetric):
    qp = q.qparams_from_range(torch.tensor(-8.0), torch.tensor(7.0), 4, symmetric)
    x = (torch.arange(-20, 20) + 0.5) * qp.scale  # every value exactly halfway between two codes
    ref = torch.fake_quantize_per_tensor_affine(x, float(qp.scale), int(qp.zero_point), qp.qmin, qp.qmax)
    assert torch.equal(q.apply_qparams(x, qp), ref)


# --- properties of the grid --------------------------------------------------------------------------------------

@SETTINGS
@given(arrays(), st.integers(2, 10), st.booleans())
def test_at_most_two_to_the_k_distinct_values(a, bits, symmetric):
    out = q.fake_quantize(torch.from_numpy(a), bits, symmetric)
    assert torch.unique(out).numel() <= 2 ** bits - (1 if symmetric else 0)


@SETTINGS
@given(arrays(min_dims=2), st.integers(2, 8), st.booleans())
def test_at_most_two_to_the_k_values_per_channel(a, bits, symmetric):
    out = q.fake_quantize(torch.from_numpy(a), bits, symmetric, axis=0)
    assert all(torch.unique(row).numel() <= 2 ** bits for row in out.reshape(out.shape[0], -1))


@SETTINGS
@given(arrays(), BITS, st.booleans(), st.booleans())
def test_error_is_at_most_half_a_step_inside_the_clipping_range(a, bits, symmetric, per_channel):
    x = torch.from_numpy(a)
    axis = 0 if per_channel else None
    qp = q.qparams(x, bits, symmetric, axis)
    lo, hi = (q._broadcast(v, x, axis) for v in qp.clip_range())
    inside = (x >= lo) & (x <= hi)
    step = q._broadcast(qp.scale, x, axis).expand_as(x)
    err = (q.fake_quantize(x, bits, symmetric, axis) - x).abs()
    assert bool((err[inside] <= step[inside] / 2 * (1 + 1e-5)).all())
    # a min/max grid reaches the data, but rounding the zero point to an integer can shift an asymmetric grid by up
    # to half a step: the values it leaves outside are still within half a step of its ends
    assert bool(((x >= lo - step / 2 * (1 + 1e-5)) & (x <= hi + step / 2 * (1 + 1e-5))).all())
    if symmetric:  # a symmetric grid reaches max|x| (up to the float rounding of qmax * scale)
        assert bool((x.abs() <= hi * (1 + 1e-6)).all())


def test_values_outside_the_range_saturate_and_only_there_the_error_grows():
    qp = q.qparams_from_range(torch.tensor(-1.0), torch.tensor(1.0), 4, True)
    x = torch.tensor([-5.0, -1.0, 0.3, 1.0, 5.0])
    out = q.apply_qparams(x, qp)
    assert out[0] == -1.0 and out[-1] == 1.0  # clamped to the ends of the grid
    assert (out[1:4] - x[1:4]).abs().max() <= qp.scale / 2


@SETTINGS
@given(arrays(), BITS, st.booleans())
def test_quantizing_twice_equals_quantizing_once(a, bits, symmetric):
    x = torch.from_numpy(a)
    qp = q.qparams(x, bits, symmetric)
    once = q.apply_qparams(x, qp)
    assert torch.equal(q.apply_qparams(once, qp), once)  # a projection onto the grid: exact
    again = q.fake_quantize(once, bits, symmetric)        # the grid refitted to the quantized tensor
    if symmetric:
        assert torch.equal(again, once)
    else:  # an integer zero point can shift an asymmetric grid by half a step and clip one end, so a refit may
        # differ (documented in slimcore.quantization): never by more than one step of the first grid
        assert bool(((again - once).abs() <= qp.scale * (1 + 1e-5)).all())


@SETTINGS
@given(arrays(min_dims=2), st.integers(2, 12))
def test_per_channel_quantizing_twice_equals_once(a, bits):
    once = q.fake_quantize(torch.from_numpy(a), bits, True, axis=0)
    assert torch.equal(q.fake_quantize(once, bits, True, axis=0), once)


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("axis", [None, 0])
def test_sqnr_rises_about_six_db_per_bit_on_gaussian_data(symmetric, axis):
    w = torch.randn(64, 1024, generator=torch.Generator().manual_seed(0))
    bits = np.arange(4, 13)
    sqnr = [q.sqnr_db(w, q.fake_quantize(w, int(b), symmetric, axis)) for b in bits]
    slope = np.polyfit(bits, sqnr, 1)[0]
    assert 5.5 <= slope <= 6.5, slope
    assert all(np.diff(sqnr) > 4)  # and every bit helps


def test_qparams_match_the_documented_grid():
    x = torch.tensor([-3.0, 0.5, 1.0])
    sym = q.qparams(x, 8, True)
    assert (sym.qmin, sym.qmax, int(sym.zero_point)) == (-127, 127, 0)
    assert float(sym.scale) == pytest.approx(3.0 / 127)
    asym = q.qparams(x, 8, False)
    assert (asym.qmin, asym.qmax) == (0, 255)
    assert float(asym.scale) == pytest.approx(4.0 / 255)
    assert int(asym.zero_point) == round(3.0 / (4.0 / 255))
    assert q.qrange(2, True) == (-1, 1) and q.qrange(2, False) == (0, 3)


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("bits", [2, 3, 8])
def test_levels_are_the_grid_and_hold_every_quantized_value(bits, symmetric):
    w = torch.randn(300, generator=torch.Generator().manual_seed(1))
    grid = q.levels(w, bits, symmetric)
    assert len(grid) == 2 ** bits - (1 if symmetric else 0)
    out = torch.unique(q.fake_quantize(w, bits, symmetric))
    assert all(bool((grid == v).any()) for v in out)
    if symmetric:
        assert torch.equal(grid, -grid.flip(0))


def test_levels_per_channel_are_one_grid_per_channel():
    w = torch.randn(5, 40) * torch.arange(1, 6).unsqueeze(1)
    grid = q.levels(w, 3, True, axis=0)
    assert grid.shape == (5, 7)
    assert torch.allclose(grid[:, -1], w.abs().amax(1))


def test_zero_and_constant_tensors_give_no_nan():
    for x in (torch.zeros(4, 3), torch.full((4, 3), 0.37), torch.full((4, 3), -2.0), torch.zeros(0), torch.zeros(3, 0)):
        for symmetric in (True, False):
            for axis in (None, 0):
                out = q.fake_quantize(x, 4, symmetric, axis)
                assert out.shape == x.shape and bool(torch.isfinite(out).all())
                assert torch.allclose(out, x, atol=1e-6)  # a constant is on its own grid (0 is always on it)
        assert bool(torch.isfinite(q.binarize(x)).all()) and bool(torch.isfinite(q.ternarize(x)).all())
    assert q.sqnr_db(torch.zeros(3), torch.zeros(3)) == math.inf


@pytest.mark.parametrize("bad", [0, 1, 17, 2.5, True, "8"])
def test_bits_outside_the_range_are_refused_clearly(bad):
    with pytest.raises(ValueError, match="bits must be"):
        q.fake_quantize(torch.randn(4), bad)


def test_nan_and_infinite_weights_are_refused_clearly():
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="NaN or infinite"):
            q.fake_quantize(torch.tensor([1.0, bad]), 8)


def test_stochastic_rounding_is_seeded_and_unbiased():
    x = torch.full((200_000,), 0.3)
    qp = q.qparams_from_range(torch.tensor(-1.0), torch.tensor(1.0), 3, True)  # step 1/3: 0.3 lies between 0 and 1/3
    a = q.apply_qparams(x, qp, "stochastic", torch.Generator().manual_seed(5))
    b = q.apply_qparams(x, qp, "stochastic", torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    assert torch.allclose(torch.unique(a), torch.tensor([0.0, 1 / 3]))
    assert float(a.mean()) == pytest.approx(0.3, abs=2e-3)  # nearest rounding would give 1/3 everywhere


# --- binary, ternary, fixed point --------------------------------------------------------------------------------

def test_binary_is_sign_times_mean_abs_per_channel():
    w = torch.randn(6, 30, generator=torch.Generator().manual_seed(2))
    w[0, 0] = 0.0
    b = q.binarize(w)
    for row, brow in zip(w, b):
        a = row.abs().mean()
        assert torch.allclose(brow.abs(), a.expand_as(brow))
        assert torch.equal(brow > 0, row >= 0)
    assert torch.unique(q.binarize(w, axis=None)).numel() == 2


def test_ternary_thresholds_at_point_seven_of_mean_abs():
    w = torch.randn(6, 50, generator=torch.Generator().manual_seed(3))
    t = q.ternarize(w)
    for row, trow in zip(w, t):
        delta = 0.7 * row.abs().mean()
        kept = row.abs() > delta
        a = row.abs()[kept].mean()
        assert torch.equal(trow == 0, ~kept)
        assert torch.allclose(trow[kept].abs(), a.expand(int(kept.sum())))
        assert torch.equal(torch.sign(trow[kept]), torch.sign(row[kept]))
        assert torch.unique(trow).numel() == 3


def test_fixed_point_rounds_to_the_grid_and_saturates():
    x = torch.tensor([0.126, -0.126, 3.9, 100.0, -100.0, 0.0])
    out = q.fixed_point(x, 2, 3)  # Q2.3: step 1/8, range -4 .. 4 - 1/8
    assert out.tolist() == [0.125, -0.125, 3.875, 3.875, -4.0, 0.0]
    assert torch.equal(out * 8, torch.round(out * 8))
    with pytest.raises(ValueError):
        q.fixed_point(x, 20, 20)


# --- whole models ------------------------------------------------------------------------------------------------

def state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("kw", [dict(bits=8), dict(bits=1), dict(bits=3, ternary=True), dict(bits=4, per_channel=True,
                                symmetric=False, rounding="stochastic")])
def test_quantize_returns_a_new_model_and_never_touches_its_input(sample, kw):
    before = state(sample.model)
    hooks = {n: dict(m._forward_pre_hooks) for n, m in sample.model.named_modules()}
    out = q.quantize(sample.model, **kw, activations=q.ActivationConfig(4), calibration=sample.data.train.x[:64])
    assert all(torch.equal(before[k], v) for k, v in sample.model.state_dict().items())
    assert {n: dict(m._forward_pre_hooks) for n, m in sample.model.named_modules()} == hooks
    assert out is not sample.model
    assert all(p1.data_ptr() != p2.data_ptr() for p1, p2 in zip(out.parameters(), sample.model.parameters()))
    new = out.state_dict()
    for name in slimcore.weight_layers(sample.model):
        if f"{name}.bias" in before:   # convolutions before a BatchNorm have none
            assert torch.equal(new[f"{name}.bias"], before[f"{name}.bias"])  # biases stay fp32
        assert not torch.equal(new[f"{name}.weight"], before[f"{name}.weight"])


def test_quantize_puts_the_quantized_weights_in_the_copy(digits_cnn):
    out = q.quantize(digits_cnn.model, bits=4, per_channel=True)
    for name, m in slimcore.weight_layers(digits_cnn.model).items():
        assert torch.equal(out.get_submodule(name).weight, q.fake_quantize(m.weight, 4, True, axis=0))
    binary = q.quantize(digits_cnn.model, bits=1)
    assert torch.unique(binary.fc1.weight).numel() == 2


def test_quantized_weights_are_a_cheap_variant_for_functional_call(digits_cnn):
    cfg = q.QuantConfig(bits=3, per_channel=True)
    new = q.quantized_weights(digits_cnn.model, cfg)
    x = digits_cnn.test.x[:64]
    with torch.inference_mode():
        via_dict = torch.func.functional_call(digits_cnn.model, new, (x,))
        via_copy = q.quantize(digits_cnn.model, config=cfg)(x)
    assert torch.equal(via_dict, via_copy)


def test_skip_keeps_layers_fp32_and_unknown_layers_are_refused(digits_cnn):
    out = q.quantize(digits_cnn.model, bits=2, skip=("conv1",))
    assert torch.equal(out.conv1.weight, digits_cnn.model.conv1.weight)
    with pytest.raises(ValueError, match="unknown layer"):
        q.quantize(digits_cnn.model, bits=2, skip=("nope",))


def test_a_model_without_weights_or_with_nan_weights_gets_a_clear_message():
    with pytest.raises(ValueError, match="no Linear or Conv"):
        q.quantize(nn.Sequential(nn.ReLU()), bits=4)
    bad = nn.Linear(3, 2)
    with torch.no_grad():
        bad.weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite"):
        q.quantize(nn.Sequential(bad), bits=4)


def test_activation_quantization_is_calibrated_and_changes_outputs(digits_cnn):
    x = digits_cnn.data.train.x[:256]
    mm = q.calibrate(digits_cnn.model, x, "minmax")
    pc = q.calibrate(digits_cnn.model, x, "percentile", 99.0)
    assert list(mm) == list(slimcore.weight_layers(digits_cnn.model))
    assert all(pc[n][1] <= mm[n][1] and pc[n][0] >= mm[n][0] for n in mm)
    assert mm["conv1"] == (float(x.min()), float(x.max()))
    weights_only = q.quantize(digits_cnn.model, bits=8)
    both = q.quantize(digits_cnn.model, bits=8, activations=q.ActivationConfig(3), calibration=mm)
    test = digits_cnn.test.x[:50]
    with torch.inference_mode():
        assert not torch.equal(weights_only(test), both(test))
        seen = []
        h = both.fc1.register_forward_pre_hook(lambda m, a: seen.append(a[0]))
        both(test)
        h.remove()
    assert torch.unique(seen[0]).numel() <= 2 ** 3  # the fc1 input is on a 3-bit grid
    with pytest.raises(ValueError, match="calibration"):
        q.quantize(digits_cnn.model, bits=8, activations=q.ActivationConfig())


def test_layer_errors_report_mse_and_sqnr(digits_cnn):
    m = digits_cnn.model
    errs = q.layer_errors(m, q.quantize(m, bits=6))
    assert [e.name for e in errs] == list(slimcore.weight_layers(m))
    for e in errs:
        w = slimcore.weight_layers(m)[e.name].weight
        qw = q.fake_quantize(w, 6)
        assert e.mse == pytest.approx(float(((w - qw) ** 2).mean()), rel=1e-5)
        assert e.sqnr_db == pytest.approx(10 * math.log10(float((w ** 2).mean()) / e.mse), rel=1e-5)
        assert e.distinct <= 63
    exact = q.layer_errors(m, m)
    assert all(e.sqnr_db == math.inf and e.mse == 0 for e in exact)
    as_dict = q.layer_errors(m, q.quantized_weights(m, q.QuantConfig(bits=6)))
    assert as_dict == errs


def test_layer_errors_follow_the_given_layers(digits_cnn):
    """Only the given layers are reported (a family's compressible layers), from a quantized weight dict too."""
    m = digits_cnn.model
    only = {"fc1": m.fc1}
    qw = q.quantized_weights(m, q.QuantConfig(3), only)
    (e,) = q.layer_errors(m, qw, only)
    assert e.name == "fc1" and e.sqnr_db == q.sqnr_db(m.fc1.weight, qw["fc1.weight"])


@pytest.mark.parametrize("cfg", [q.QuantConfig(4), q.QuantConfig(3, symmetric=False, per_channel=True),
                                 q.QuantConfig(1, per_channel=True), q.QuantConfig(8, ternary=True)], ids=str)
def test_layer_grid_is_what_the_layer_is_quantized_onto(digits_cnn, cfg):
    """The drawn grid holds every quantized value (per channel: the widest channel's grid is drawn, and said)."""
    w = digits_cnn.model.conv2.weight
    g = q.layer_grid(w, cfg)
    assert g["shape"] == tuple(w.shape) and np.array_equal(g["q"], q.quantize_tensor(w, cfg).numpy().ravel())
    assert len(g["levels"]) == (3 if cfg.ternary else 2 if cfg.bits == 1 else 2 ** cfg.bits - cfg.symmetric)
    assert ("widest" in g["note"]) == cfg.per_channel and (g["half_step"] is None) == (cfg.ternary or cfg.bits == 1)
    if not cfg.per_channel:
        assert np.isin(g["q"], g["levels"]).all()


def test_eight_bit_per_channel_is_within_half_a_point_of_fp32(sample):
    fp32 = slimcore.accuracy(sample.model, sample.test)
    acc = slimcore.accuracy(q.quantize(sample.model, bits=8, per_channel=True), sample.test)
    assert abs(acc - fp32) <= 0.005


def test_quality_by_bits_is_one_quantized_model_per_bit_width(digits_cnn):
    cfg = q.QuantConfig(per_channel=True)
    curve = q.quality_by_bits(digits_cnn.model, slimcore.families.family_of(digits_cnn).scorer(digits_cnn), cfg,
                              [2, 4, 16])
    assert [p.bits for p in curve] == [2, 4, 16]
    assert curve[1].value == slimcore.accuracy(q.quantize(digits_cnn.model, 4, per_channel=True), digits_cnn.test)
    assert curve[2].value == pytest.approx(slimcore.accuracy(digits_cnn.model, digits_cnn.test), abs=0.003)
    assert curve[1].score.metric.short == "accuracy" and curve[1].score.examples == len(digits_cnn.test)


def test_config_is_validated_plain_data():
    cfg = q.QuantConfig(bits=4, per_channel=True, activations=q.ActivationConfig(6, "percentile", 99.9), skip=["fc1"])
    assert q.QuantConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert cfg.skip == ("fc1",)
    for bad in (dict(bits=0), dict(bits=17), dict(rounding="up"), dict(skip="fc1")):
        with pytest.raises(ValueError):
            q.QuantConfig(**bad)
    for bad in (dict(bits=1), dict(method="mean"), dict(percentile=20)):
        with pytest.raises(ValueError):
            q.ActivationConfig(**bad)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.bits = 3  # frozen


def test_modelled_size_counts_codes_scales_and_fp32_biases(digits_cnn):
    m = digits_cnn.model
    layers = slimcore.weight_layers(m)
    weights = sum(lyr.weight.numel() for lyr in layers.values())
    biases = sum(lyr.bias.numel() for lyr in layers.values())
    s8 = q.modelled_bytes(m, q.QuantConfig(bits=8))
    assert s8.bytes == weights + biases * 4 + 4 * len(layers)
    pc = q.modelled_bytes(m, q.QuantConfig(bits=4, per_channel=True, symmetric=False))
    assert pc.bytes == weights / 2 + biases * 4 + 8 * sum(lyr.weight.shape[0] for lyr in layers.values())
    assert q.modelled_bytes(m, q.QuantConfig(ternary=True)).value_bits == 2
    assert s8.label == "modelled"


def test_quantization_modules_never_import_streamlit():
    code = "import sys, slimcore.quantization, slimcore.int8; print('streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
