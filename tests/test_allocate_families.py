"""Allocation under a quality budget on the sentence encoder (minilm), the family scored by mean cosine: a small scan
(two cells of layer 0, the quick split) is allocated under a cosine budget; the allocated model, rebuilt with the
scan's own variant builder, scores what the allocation says and meets the budget; it removes at least as many
weights as the best single scanned setting that fits the budget alone; and a budget nothing meets changes nothing."""
import importlib

import pytest

import slimcore
from slimcore import sensitivity as SE
from slimcore.quantization import copy_with

S = importlib.import_module("slimcore.sweep")  # the module: `slimcore.sweep` may be the exported function

pytestmark = pytest.mark.slow
CELLS = ("layer 0 · attention q/k/v", "layer 0 · FFN in")
SETTINGS = {"prune": (0.3, 0.6), "quantize": (4, 3)}
BUDGET = 0.01   # a drop of mean cosine


@pytest.fixture(scope="module")
def minilm():
    s = slimcore.load_sample("minilm")
    fam = slimcore.family_of(s)
    return s, fam, fam.scorer(s, "quick")


_SCANS: dict = {}


def small_scan(minilm, kind):
    """Two cells of layer 0 compressed alone at two settings, on the quick split (computed once per kind)."""
    if kind not in _SCANS:
        s, fam, quick = minilm
        groups = [g for g in fam.layer_groups(s.model) if g.name in CELLS]
        _SCANS[kind] = SE.scan(s.model, groups, quick, SE.ScanConfig(kind, SETTINGS[kind]))
    return _SCANS[kind]


def rebuilt_score(minilm, kind, settings):
    """The allocated model rebuilt group by group with sensitivity.weights (what the scan measured), scored."""
    s, fam, quick = minilm
    groups = {g.name: g for g in fam.layer_groups(s.model)}
    full = 0.0 if kind == "prune" else 32
    new = {}
    for name, v in settings.items():
        if v != full:
            new |= SE.weights(s.model, groups[name].layers, SE.ScanConfig(kind), v)
    return quick(copy_with(s.model, new)).value


@pytest.mark.parametrize("kind", ["prune", "quantize"])
def test_minilm_allocation_meets_a_cosine_budget_and_beats_the_best_single_cell(minilm, kind):
    s, fam, quick = minilm
    sens = small_scan(minilm, kind)
    a = S.allocate(s.model, sens, quick, BUDGET, family=fam)
    assert a.metric is fam.metric and not a.metric.percent
    assert a.base_accuracy == pytest.approx(1.0, abs=1e-6)   # the original's cosine to itself
    assert a.drop == pytest.approx(a.base_accuracy - a.result.accuracy) and a.drop <= BUDGET + 1e-9
    assert a.result.accuracy == pytest.approx(rebuilt_score(minilm, kind, a.result.settings), abs=1e-6)
    assert set(a.result.settings) == {g.name for g in fam.layer_groups(s.model)}   # every cell, unscanned ones kept
    layers = fam.layers(s.model)
    size = {g: sum(layers[n].weight.numel() for n in grp.layers) for g, grp in
            ((g.name, g) for g in fam.layer_groups(s.model))}
    fits = sens[sens.score_drop <= BUDGET]
    assert len(fits) > 0   # the budget admits some single setting: the comparison below is not empty
    if kind == "prune":   # weights removed: at least the best single cell alone (the trivial plan)
        removed = sum(layers[n].weight.numel() for n in layers) - a.result.weights_kept
        assert removed >= max(round(r.setting * size[r.group]) for r in fits.itertuples())
        assert removed > 0
    else:                 # weight bits saved
        saved = sum(layers[n].weight.numel() for n in layers) * 32 - a.result.weight_bits
        assert saved >= max(size[r.group] * (32 - int(r.setting)) for r in fits.itertuples())
        assert a.result.size_bytes < a.base_bytes
    # the plan's prediction is the scan's drops added up, in mean cosine
    assert a.predicted_drop == pytest.approx(sum(float(sens[(sens.group == g) & (sens.setting == v)].score_drop.iloc[0])
                                                 for g, v in a.result.settings.items() if g in CELLS
                                                 and v not in (0.0, 32)), abs=2e-4)
    assert len(a.uniform) >= 1 and all(0 < u.size_bytes <= a.base_bytes for u in a.uniform)


def test_minilm_budget_nothing_meets_leaves_every_cell(minilm):
    s, fam, quick = minilm
    sens = small_scan(minilm, "prune")
    assert (sens.score_drop > 0).all()   # every scanned setting costs something: a zero budget admits none
    a = S.allocate(s.model, sens, quick, 0.0, family=fam)
    assert set(a.result.settings.values()) == {0.0} and a.drop == 0 and a.tries == 1
    assert a.result.weights_kept == sum(m.weight.numel() for m in fam.layers(s.model).values())
    assert "No layer can be pruned" in a.message and "of mean cosine" in a.message
