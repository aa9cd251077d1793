"""Sweeps: the Pareto frontier is exactly the non-dominated set; a sweep row equals the same configuration built alone
with slimcore.pruning / slimcore.quantization; sensitivity rows equal single-layer compressions; an allocation meets
its budget on the model actually built from it; bad input gives clear errors and keeps what was done."""
import copy
import importlib
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.nn.utils import prune as torch_prune

import slimcore
from slimcore import metrics
from slimcore import pruning as P
from slimcore import quantization as Q
from tests.conftest import ROOT

S = importlib.import_module("slimcore.sweep")  # the module: `slimcore.sweep` may be the exported function
SE = importlib.import_module("slimcore.sensitivity")

# Pareto ---------------------------------------------------------------------------------------------------------------


def dominates(a, b, minimize_x, maximize_y) -> bool:
    ax, ay = (a[0] if minimize_x else -a[0]), (-a[1] if maximize_y else a[1])
    bx, by = (b[0] if minimize_x else -b[0]), (-b[1] if maximize_y else b[1])
    return ax <= bx and ay <= by and (ax < bx or ay < by)


points = st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12)), min_size=0, max_size=40)  # small ranges: ties


@given(points, st.booleans(), st.booleans())
def test_pareto_is_exactly_the_non_dominated_set(pts, minimize_x, maximize_y):
    frame = pd.DataFrame(pts, columns=["x", "y"], dtype=float)
    front = S.pareto(frame, "x", "y", minimize_x, maximize_y)
    kept = set(front.index)
    for i in kept:   # no returned point is dominated by any point
        assert not any(dominates(p, pts[i], minimize_x, maximize_y) for p in pts), (i, pts)
    for i in set(range(len(pts))) - kept:   # every other point is dominated by a returned one
        assert any(dominates(pts[k], pts[i], minimize_x, maximize_y) for k in kept), (i, pts)
    xs = front["x"].tolist()
    assert xs == sorted(xs, reverse=not minimize_x)


@given(st.lists(st.tuples(st.floats(-1e6, 1e6), st.one_of(st.none(), st.floats(0, 1))), max_size=30))
def test_pareto_leaves_out_missing_values_and_keeps_the_rows(pts):
    frame = pd.DataFrame({"x": [p[0] for p in pts], "y": [np.nan if p[1] is None else p[1] for p in pts],
                          "name": [f"row {i}" for i in range(len(pts))]})
    front = S.pareto(frame, "x", "y")
    assert front["y"].notna().all()
    assert (front["name"] == [f"row {i}" for i in front.index]).all()  # whole rows, original index


def test_pareto_names_a_missing_column():
    with pytest.raises(S.SweepError, match="no column 'latency'"):
        S.pareto(pd.DataFrame({"x": [1.0], "y": [1.0]}), "latency", "y")


# The sweep ------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cnn():
    return slimcore.load_sample("digits-cnn")


@pytest.fixture(scope="module")
def grid(cnn):
    before = {k: v.clone() for k, v in cnn.model.state_dict().items()}
    frame = S.sweep(cnn.model, cnn.data, (0.0, 0.3, 0.8), (32, 8, 3), methods=("l1", "taylor"),
                    structured=(False, True))
    assert all(torch.equal(v, cnn.model.state_dict()[k]) for k, v in before.items()), "the sweep changed the model"
    return frame.set_index("config", drop=False)


def row(frame, method, structured, ratio, bits):
    same = (frame.method == method) & (frame.structured == structured) if ratio else True  # unpruned: one set of rows
    hit = frame[same & (frame.prune_ratio == ratio) & (frame.bits == bits)]
    assert len(hit) == 1
    return hit.iloc[0]


def test_the_grid_has_one_row_per_configuration(grid):
    assert len(grid) == 3 * (1 + 2 * 2 * 2) and list(grid.columns) == S.COLUMNS  # the unpruned model once
    assert grid.index.is_unique  # the configuration names tell rows apart
    assert set(grid.size_label) == {"measured", "modelled"}


@pytest.mark.parametrize("method", ["l1", "taylor"])
@pytest.mark.parametrize("ratio,bits", [(0.0, 32), (0.3, 32), (0.8, 32), (0.0, 8), (0.3, 8), (0.8, 3)])
def test_an_unstructured_row_equals_the_configuration_built_alone(cnn, grid, method, ratio, bits):
    r = row(grid, method, False, ratio, bits)
    alone = P.prune(cnn.model, ratio, method, "layer", calibration=cnn.data.train.head(256))
    if bits != 32:
        alone = Q.quantize(alone, bits)
    assert r.score == slimcore.accuracy(alone, cnn.test)
    weights = [m.weight for m in slimcore.weight_layers(alone).values()]
    assert r.nonzeros == sum(int(torch.count_nonzero(w)) for w in weights)
    assert r.macs == slimcore.measure(cnn, alone, timing=False).macs  # dense kernels: every MAC, zeros too
    if ratio == 0 and bits == 32:
        assert (r.size_label, r.size_bytes) == ("measured", slimcore.serialized_bytes(cnn.model))
    else:
        size = slimcore.modelled_size(alone, bits).bytes
        if bits != 32:
            size += 4 * len(weights)  # one fp32 scale per tensor (symmetric, per tensor)
        assert (r.size_label, r.size_bytes) == ("modelled", size)


@pytest.mark.parametrize("ratio,bits", [(0.3, 32), (0.8, 32), (0.3, 8), (0.8, 3)])
def test_a_structured_row_equals_the_channel_pruned_model_built_alone(cnn, grid, ratio, bits):
    r = row(grid, "l1", True, ratio, bits)
    thin = P.prune(cnn.model, ratio, "l1", "layer", structured=True, example=cnn.test.x[:1])
    q = Q.quantize(thin, bits) if bits != 32 else thin
    assert r.score == slimcore.accuracy(q, cnn.test)
    assert r.macs == slimcore.measure(cnn, thin, timing=False).macs < row(grid, "l1", True, 0.0, 32).macs
    assert r.params == sum(p.numel() for p in thin.parameters())
    if bits == 32:
        assert (r.size_label, r.size_bytes) == ("measured", slimcore.serialized_bytes(thin))
    else:
        assert r.size_label == "modelled"
        assert r.size_bytes == slimcore.modelled_size(q, bits).bytes + 4 * len(slimcore.weight_layers(q))


def test_per_channel_asymmetric_rows_equal_the_quantized_model_alone(cnn):
    cfg = slimcore.QuantConfig(symmetric=False, per_channel=True)
    frame = S.sweep(cnn.model, cnn.test, (0.5,), (4,), quant=cfg)
    alone = Q.quantize(P.prune(cnn.model, 0.5), 4, symmetric=False, per_channel=True)
    assert frame.score.iloc[0] == slimcore.accuracy(alone, cnn.test)
    grids = sum(m.weight.shape[0] for m in slimcore.weight_layers(alone).values())
    assert frame.size_bytes.iloc[0] == slimcore.modelled_size(alone, 4).bytes + 8 * grids  # scale + zero point each


def test_one_worker_and_several_give_the_same_rows(cnn):
    a = S.sweep(cnn.model, cnn.data, (0.0, 0.5, 0.9), (32, 4, 2), workers=1)
    b = S.sweep(cnn.model, cnn.data, (0.0, 0.5, 0.9), (32, 4, 2), workers=2)
    pd.testing.assert_frame_equal(a, b)
    assert torch.get_num_threads() >= 1 and not S._single[0]  # the thread count was handed back


def test_binary_rows_keep_pruned_weights_at_zero(cnn):
    r = S.sweep(cnn.model, cnn.test, (0.7,), (1,)).iloc[0]
    kept = sum(m.weight.numel() for m in slimcore.weight_layers(cnn.model).values()) * 0.3
    assert r.nonzeros == pytest.approx(kept, abs=4)  # sign(w) * mean|w| would make every pruned weight +-a


def test_latency_is_measured_only_for_real_fp32_models(cnn):
    frame = S.sweep(cnn.model, cnn.data, (0.0, 0.5), (32, 8), structured=(False, True), latency=True,
                    latency_batch=64, latency_repeats=5)
    fp32, kbit = frame[frame.bits == 32], frame[frame.bits != 32]
    assert (fp32.latency_ms > 0).all() and fp32.latency_label.str.startswith("measured").all()
    assert fp32.latency_label.str.contains(f"on {metrics.cpu_name()}", regex=False).all()   # where: this machine
    assert kbit.latency_ms.isna().all() and kbit.latency_label.str.contains("fake-quantized").all()
    again = S.time_rows(cnn.model, cnn.data, frame.assign(latency_ms=math.nan), batch=64, repeats=5)
    assert (again[again.bits == 32].latency_ms > 0).all()
    off = S.sweep(cnn.model, cnn.data, (0.5,), (32,))
    assert off.latency_ms.isna().all() and off.latency_label.iloc[0] == "not timed (latency off)"


def test_a_ratio_with_no_channel_pruned_model_is_a_row_with_a_reason(cnn):
    frame = S.sweep(cnn.model, cnn.data, (0.99,), (32, 4), structured=(True,))
    assert frame.score.isna().all() and frame.note.str.startswith("no channel-pruned model").all()
    assert S.pareto(frame, "size_bytes", "score").empty


@pytest.mark.parametrize("kwargs,match", [
    (dict(prune_ratios=()), "the grid is empty"), (dict(bits=[]), "the grid is empty"),
    (dict(methods=()), "the grid is empty"), (dict(prune_ratios=(1.0,)), "prune ratios must be in"),
    (dict(bits=(0,)), "bit widths must be"), (dict(methods=("magic",)), "unknown pruning method"),
    (dict(quant=slimcore.QuantConfig(ternary=True)), "leave skip, activations and ternary"),
])
def test_bad_grids_are_clear_errors(cnn, kwargs, match):
    with pytest.raises(S.SweepError, match=match):
        S.sweep(cnn.model, cnn.data, **kwargs)


def test_taylor_on_a_bare_split_asks_for_calibration(cnn):
    with pytest.raises(S.SweepError, match="calibration"):
        S.sweep(cnn.model, cnn.test, methods=("taylor",))


def test_a_cancelled_sweep_keeps_the_rows_already_computed(cnn):
    calls, seen = [], []
    stop = lambda: (calls.append(1), len(calls) > 3)[1]  # noqa: E731  (stop before the 4th prune setting)
    frame = S.sweep(cnn.model, cnn.data, S.PRUNE_RATIOS, (32, 4), should_stop=stop,
                    on_progress=lambda done, total: seen.append((done, total)))
    assert frame.attrs["cancelled"] and len(frame) == 3 * 2
    assert list(frame.prune_ratio.unique()) == list(S.PRUNE_RATIOS[:3]) and frame.score.notna().all()
    assert seen[-1] == (6, 40)


# Sensitivity and allocation -----------------------------------------------------------------------------------------

def scan(sample, kind, settings=(), **kw):
    return SE.scan_sample(sample, SE.ScanConfig(kind, tuple(settings), **kw))


def test_sensitivity_rows_equal_one_layer_compressed_alone(cnn):
    val = cnn.data.val
    prune = scan(cnn, "prune", (0.5, 0.9))
    assert list(prune.group.unique()) == list(slimcore.weight_layers(cnn.model))
    r = prune[(prune.group == "conv2") & (prune.setting == 0.9)].iloc[0]
    alone = P.prune(cnn.model, 0.0, overrides={"conv2": 0.9})
    assert r.score == slimcore.accuracy(alone, val)
    assert r.score_drop == pytest.approx(prune.attrs["base_score"] - r.score)
    assert prune.attrs["base_score"] == slimcore.accuracy(cnn.model, val) and prune.attrs["metric"].percent
    quant = scan(cnn, "quantize", (4, 2))
    r = quant[(quant.group == "fc1") & (quant.setting == 2)].iloc[0]
    others = [n for n in slimcore.weight_layers(cnn.model) if n != "fc1"]
    assert r.score == slimcore.accuracy(Q.quantize(cnn.model, 2, skip=others), val)
    assert r.weights == cnn.model.fc1.weight.numel() and r.layers == 1
    taylor = scan(cnn, "prune", (0.5,), method="taylor")   # scored by the family's calibration data
    scores = P.weight_scores(cnn.model, "taylor", cnn.data.train.head(P.CALIBRATION))
    r = taylor[taylor.group == "fc1"].iloc[0]
    assert r.score == slimcore.accuracy(P.prune(cnn.model, 0.0, "taylor", overrides={"fc1": 0.5},
                                                calibration=cnn.data.train.head(P.CALIBRATION)), val)
    assert scores["fc1"].shape == cnn.model.fc1.weight.shape


def test_sensitivity_on_the_encoder_scans_cells_and_whole_groups():
    s = slimcore.load_sample("minilm")
    fam = slimcore.family_of(s)
    cells = fam.layer_groups(s.model)
    assert len(cells) == len(s.model.encoder.layer) * 4
    assert cells[0].row == "layer 0" and cells[0].column == "attention q/k/v"
    assert sum(len(g.layers) for g in cells) == len(fam.layers(s.model))   # every Linear in exactly one cell
    whole = fam.layer_groups(s.model, whole=True)
    assert [g.column for g in whole] == [g.column for g in cells[:4]] and len(whole[0].layers) == 3 * len(
        s.model.encoder.layer)
    cfg = SE.ScanConfig("quantize", (3,))
    frame = SE.scan(s.model, [cells[5]], fam.scorer(s, "quick"), cfg)
    alone = Q.quantize(s.model, config=Q.QuantConfig(3), layers={n: fam.layers(s.model)[n] for n in cells[5].layers})
    assert frame.score.iloc[0] == slimcore.score(s, alone, "quick").value
    assert frame.detail.iloc[0].mean_cosine == frame.score.iloc[0] and frame.column.iloc[0] == cells[5].column
    assert SE.heat(frame).shape == (1, 1)


@pytest.mark.parametrize("ratio", [0.0, 0.3, 0.75])
def test_pruning_a_group_alone_equals_pytorchs_l1_unstructured(ratio):
    s = slimcore.load_sample("minilm")
    name = "encoder.layer.2.attention.output.dense"
    ours = SE.weights(s.model, [name], SE.ScanConfig("prune"), ratio)[f"{name}.weight"]
    lin = copy.deepcopy(slimcore.family_of(s).layers(s.model)[name])
    torch_prune.l1_unstructured(lin, "weight", amount=ratio)
    assert torch.equal(ours, lin.weight.detach())
    assert int((ours == 0).sum()) == round(ratio * ours.numel())


def test_a_scan_reports_progress_and_never_changes_the_model(cnn):
    before = {k: v.clone() for k, v in cnn.model.state_dict().items()}
    seen = []
    frame = SE.scan_sample(cnn, SE.ScanConfig("quantize", (3, 2)), on_progress=lambda d, n: seen.append((d, n)))
    per_group = len(frame) // frame.group.nunique()   # rows done so far, reported as each group is finished
    assert seen == [(i, len(frame)) for i in range(per_group, len(frame) + 1, per_group)]
    assert all(torch.equal(before[k], v) for k, v in cnn.model.state_dict().items())


def test_sensitivity_rejects_unknown_kinds_and_settings():
    with pytest.raises(ValueError, match="unknown sensitivity kind"):
        SE.ScanConfig("distil")
    with pytest.raises(ValueError, match="prune ratios"):
        SE.ScanConfig("prune", (1.0,))
    with pytest.raises(ValueError, match="bit widths"):
        SE.ScanConfig("quantize", (4.5,))
    assert SE.ScanConfig("quantize").values == SE.BITS and SE.ScanConfig().values == SE.RATIOS


def test_allocation_refuses_a_scan_of_another_models_groups_in_one_line(cnn):
    s = slimcore.load_sample("minilm")   # any family allocates; a classifier's scan names no group of the encoder
    with pytest.raises(ValueError, match="names layers this model does not have: conv1") as e:
        S.allocate(s.model, scan(cnn, "prune", (0.5,)), lambda m: pytest.fail("scored before checking"), 1.0,
                   family=slimcore.family_of(s))
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="empty"):
        S.allocate_sample(cnn, pd.DataFrame(), 1.0)


def build(model, alloc):
    """The allocated model, built with the public API alone."""
    if alloc.kind == "prune":
        return P.prune(model, 0.0, overrides={n: r for n, r in alloc.result.settings.items() if r})
    layers = list(slimcore.weight_layers(model))
    out = model
    for n, b in alloc.result.settings.items():
        if b != 32:
            out = Q.quantize(out, int(b), skip=[m for m in layers if m != n])
    return out


@pytest.mark.parametrize("name", slimcore.list_samples("classifier"))
@pytest.mark.parametrize("kind", ["prune", "quantize"])
def test_allocation_meets_its_budget_on_the_model_built_from_it(name, kind):
    s = slimcore.load_sample(name)
    sens = scan(s, kind)
    for budget in (0.0, 0.5, 2.0):
        a = S.allocate(s.model, sens, s.data.val, budget, s.test)
        built = build(s.model, a)
        assert a.result.accuracy == slimcore.accuracy(built, s.data.val)
        assert a.result.test_accuracy == slimcore.accuracy(built, s.test)
        assert a.drop <= budget + 1e-9 and a.history[-1][1] <= budget + 1e-9
        assert a.base_accuracy == slimcore.accuracy(s.model, s.data.val)
        weights = {n: m.weight.numel() for n, m in slimcore.weight_layers(s.model).items()}
        if kind == "prune":  # the uniform model keeps the same number of weights, to rounding in each layer
            assert abs(a.uniform[0].weights_kept - a.result.weights_kept) <= len(weights)
        else:   # uniform bit widths just below and above the allocation's mean
            mean = a.result.weight_bits / sum(weights.values())
            widths = [u.weight_bits / sum(weights.values()) for u in a.uniform]
            assert min(widths) <= mean + 1e-9 and max(widths) >= mean - 1e-9


def test_a_larger_budget_never_buys_less_compression(cnn):
    sens = scan(cnn, "prune")
    kept = [S.allocate(cnn.model, sens, cnn.data.val, b).result.weights_kept for b in (0.0, 1.0, 3.0)]
    assert kept[0] >= kept[1] >= kept[2] and kept[2] < kept[0]


def test_a_budget_nothing_meets_leaves_every_layer_and_says_so(cnn):
    harsh = scan(cnn, "prune", (0.99,))
    a = S.allocate(cnn.model, harsh, cnn.data.val, 0.0)
    assert set(a.result.settings.values()) == {0.0} and a.drop == 0
    assert "No layer can be pruned" in a.message
    with pytest.raises(S.SweepError, match="must be >= 0"):
        S.allocate(cnn.model, harsh, cnn.data.val, -1)
    with pytest.raises(S.SweepError, match="empty"):
        S.allocate(cnn.model, harsh.iloc[:0], cnn.data.val, 1.0)


def test_the_plan_is_the_best_one_under_the_capacity():
    options = {"a": [(0, 0, 0.0), (1, 2, 10.0), (2, 5, 30.0)], "b": [(0, 0, 0.0), (1, 1, 8.0), (2, 4, 9.0)]}
    assert S._plan(options, 6) == {"a": 2, "b": 1}   # 30 + 8 at cost 6
    assert S._plan(options, 3) == {"a": 1, "b": 1}   # 10 + 8 at cost 3
    assert S._plan(options, 0) == {"a": 0, "b": 0}


def test_everything_works_when_the_package_exports_the_function_sweep_under_the_modules_name():
    """`from .sweep import sweep` in slimcore/__init__.py makes `slimcore.sweep` the function, hiding the module:
    the pages' glue and the benchmark take their names from the module itself, so they do not care."""
    code = ("import sys, slimcore\nfrom slimcore.sweep import sweep\nslimcore.sweep = sweep\n"
            "import slimui.tradeoffs as ui\nsys.path.insert(0, 'benchmarks')\nimport bench_sweep\n"
            "assert callable(slimcore.sweep) and ui.FP32 == 32 and len(ui.RATIOS) == 20\n"
            "assert bench_sweep.sweep is sweep\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr
