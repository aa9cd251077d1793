"""Pruning: masks agree with torch.nn.utils.prune, sparsity is exact, inputs stay untouched, structured pruning
really removes channels, gradual pruning is deterministic, holds its zeros and can be cancelled."""
import copy

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.nn.utils import prune as tprune

import slimcore
from slimcore import pruning as P


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same_state(model, before):
    after = model.state_dict()
    return after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)


def _torch_mask(module, fn, **kw):
    """The weight mask torch.nn.utils.prune computes, on a copy of the module."""
    m = copy.deepcopy(module)
    fn(m, "weight", **kw)
    return m.weight_mask.bool()


@pytest.mark.parametrize("amount", [0.0, 0.1, 0.37, 0.5, 0.9, 0.99])
def test_l1_layer_masks_equal_torch_l1_unstructured(sample, amount):
    keep = P.masks(sample.model, P.PruneConfig(amount, "l1", "layer"))
    for name, module in slimcore.weight_layers(sample.model).items():
        assert torch.equal(keep[name], _torch_mask(module, tprune.l1_unstructured, amount=amount)), name


@pytest.mark.parametrize("amount", [0.2, 0.6, 0.95])
def test_l1_global_masks_equal_torch_global_unstructured(sample, amount):
    net = copy.deepcopy(sample.model)
    layers = slimcore.weight_layers(net)
    tprune.global_unstructured([(m, "weight") for m in layers.values()], tprune.L1Unstructured, amount=amount)
    keep = P.masks(sample.model, P.PruneConfig(amount, "l1", "global"))
    for name, module in layers.items():
        assert torch.equal(keep[name], module.weight_mask.bool()), name


@pytest.mark.parametrize("norm", [1, 2])
@pytest.mark.parametrize("amount", [0.25, 0.5, 0.8])
def test_structured_masks_equal_torch_ln_structured(sample, amount, norm):
    keep = P.masks(sample.model, P.PruneConfig(amount, "l1", "layer", structured=True, norm=norm))
    out = P.output_layer(sample.model)
    coupled = {n for group in P.coupled_layers(sample.model) for n in group}   # tested below
    for name, module in slimcore.weight_layers(sample.model).items():
        if name == out:
            assert keep[name].all(), "the output layer keeps every class"
            continue
        if name in coupled:
            continue
        assert torch.equal(keep[name], _torch_mask(module, tprune.ln_structured, amount=amount, n=norm, dim=0)), name


def test_coupled_layers_are_the_residual_sums():
    """In the residual sample, the stem and the last conv of every block of a stage (and the stage's projection)
    add into one tensor: torch-pruning's graph ties them, a chain has no ties."""
    resnet = slimcore.load_sample("digits-resnet").model
    groups = P.coupled_layers(resnet)
    assert groups and all(len(g) >= 2 for g in groups)
    layers = slimcore.weight_layers(resnet)
    for g in groups:   # tied layers have as many output channels
        assert len({layers[n].weight.shape[0] for n in g}) == 1
    assert P.coupled_layers(slimcore.load_sample("digits-cnn").model) == ()


@pytest.mark.parametrize("scope", ["layer", "global"])
@pytest.mark.parametrize("amount", [0.25, 0.5])
def test_coupled_channels_go_together_and_really_go(scope, amount):
    """Coupled layers keep the same channels, chosen by the sum of their mean L1 scores; removing them gives a
    smaller model of the same outputs shape whose output equals the masked dense model's (with effective masks)."""
    sample = slimcore.load_sample("digits-resnet")
    model = sample.model
    cfg = P.PruneConfig(amount, "l1", scope, structured=True)
    keep = P.masks(model, cfg)
    layers = slimcore.weight_layers(model)
    for g in P.coupled_layers(model):
        kept = [P.channel_keep(keep[n]) for n in g]
        assert all(torch.equal(kept[0], k) for k in kept), g
        if scope == "layer":
            total = sum(layers[n].weight.detach().abs().reshape(len(kept[0]), -1).sum(1) / layers[n].weight[0].numel()
                        for n in g)
            n = len(total)
            want = torch.zeros(n, dtype=torch.bool)
            want[torch.topk(total, n - round(amount * n)).indices] = True
            assert torch.equal(kept[0], want), g
    x = sample.data.test.x[:32]
    if any(not P.channel_keep(m).any() for m in keep.values()):   # global pruning may empty a layer: nothing to build
        with pytest.raises(ValueError, match="cannot remove every channel"):
            P.split_channels(model, keep, x)
        return
    small, effective = P.split_channels(model, keep, x)
    assert small(x).shape == model(x).shape
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in model.parameters())
    dense = P.apply_masks(model, effective, structured=True)   # zeroed channels, BatchNorm after them included
    with torch.no_grad():
        torch.testing.assert_close(small(x), dense(x), atol=1e-4, rtol=1e-4)
    for n, m in slimcore.weight_layers(small).items():   # every kept channel count is what the masks say
        assert m.weight.shape[0] == int(P.channel_keep(effective[n]).sum()), n


@pytest.mark.parametrize("method", list(P.METHODS))
@pytest.mark.parametrize("scope", list(P.SCOPES))
def test_sparsity_is_exact(digits_cnn, method, scope):
    amount = 0.73
    keep = P.masks(digits_cnn.model, P.PruneConfig(amount, method, scope), calibration=digits_cnn.data.train.head(64))
    removed = {n: int((~m).sum()) for n, m in keep.items()}
    if scope == "layer":
        assert removed == {n: round(amount * m.numel()) for n, m in keep.items()}
    else:
        assert sum(removed.values()) == round(amount * sum(m.numel() for m in keep.values()))


def test_taylor_scores_are_weight_times_gradient(digits_cnn):
    calib = digits_cnn.data.train.head(100)
    net = copy.deepcopy(digits_cnn.model).requires_grad_(True)
    torch.nn.functional.cross_entropy(net(calib.x), calib.y).backward()
    scores = P.weight_scores(digits_cnn.model, "taylor", calib)
    for name, module in slimcore.weight_layers(net).items():
        torch.testing.assert_close(scores[name], (module.weight * module.weight.grad).abs().detach())


def test_taylor_without_calibration_is_a_clear_error(digits_cnn):
    with pytest.raises(ValueError, match="calibration"):
        P.masks(digits_cnn.model, P.PruneConfig(0.5, "taylor"))


def test_random_is_seeded(digits_cnn):
    a, b, c = (P.masks(digits_cnn.model, P.PruneConfig(0.5, "random", seed=s)) for s in (1, 1, 2))
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert not all(torch.equal(a[n], c[n]) for n in a)


@pytest.mark.parametrize("structured", [False, True])
@pytest.mark.parametrize("method", list(P.METHODS))
def test_input_model_is_untouched(digits_cnn, method, structured):
    before = _state(digits_cnn.model)
    pruned = P.prune(digits_cnn.model, 0.6, method, structured=structured, calibration=digits_cnn.data.train.head(64),
                     example=digits_cnn.test.x[:1])
    assert pruned is not digits_cnn.model
    assert _same_state(digits_cnn.model, before)
    assert all(not p.requires_grad for p in digits_cnn.model.parameters())


def test_unstructured_prune_zeroes_exactly_the_masked_weights(digits_cnn):
    keep = P.masks(digits_cnn.model, P.PruneConfig(0.8))
    pruned = P.prune(digits_cnn.model, 0.8)
    for name, module in slimcore.weight_layers(pruned).items():
        original = slimcore.weight_layers(digits_cnn.model)[name].weight
        assert torch.equal(module.weight == 0, ~keep[name] | (original == 0))
        assert torch.equal(module.weight[keep[name]], original[keep[name]])


@pytest.mark.parametrize("amount", [0.3, 0.7])
def test_structured_model_is_smaller_and_computes_the_masked_model(sample, amount):
    x = sample.test.x
    small = P.prune(sample.model, amount, structured=True, example=x[:1])
    dense = P.apply_masks(sample.model, P.masks(sample.model, P.PruneConfig(amount, structured=True)), structured=True)
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in sample.model.parameters())
    assert slimcore.serialized_bytes(small) < slimcore.serialized_bytes(sample.model)
    with torch.no_grad():
        assert small(x).shape == sample.model(x).shape
        torch.testing.assert_close(small(x), dense(x), atol=1e-4, rtol=1e-4)
    for name, module in slimcore.weight_layers(small).items():
        if name != P.output_layer(small):
            full = slimcore.weight_layers(sample.model)[name].weight.shape[0]
            assert module.weight.shape[0] == full - round(amount * full), name


def test_skip_and_overrides(digits_cnn):
    keep = P.masks(digits_cnn.model, P.PruneConfig(0.5, skip=("conv1",), overrides=(("fc1", 0.9),)))
    assert keep["conv1"].all()
    assert int((~keep["fc1"]).sum()) == round(0.9 * keep["fc1"].numel())
    assert int((~keep["conv2"]).sum()) == round(0.5 * keep["conv2"].numel())
    glob = P.masks(digits_cnn.model, P.PruneConfig(0.5, scope="global", skip=("fc1",)))
    assert glob["fc1"].all()
    others = [m for n, m in glob.items() if n != "fc1"]
    assert sum(int((~m).sum()) for m in others) == round(0.5 * sum(m.numel() for m in others))


@pytest.mark.parametrize("bad", [dict(amount=1.0), dict(amount=-0.1), dict(method="l3"), dict(scope="net"),
                                 dict(norm=3), dict(overrides=(("fc1", 1.5),))])
def test_bad_config_is_a_clear_error(bad):
    with pytest.raises(ValueError):
        P.PruneConfig(**bad)


def test_quality_curve_matches_pruned_models(digits_cnn):
    cfg = P.PruneConfig(method="l1", scope="global")
    ratios = (0.0, 0.5, 0.9)
    curve = P.quality_curve(digits_cnn.model, digits_cnn.test, cfg, ratios)
    assert curve[0].value == slimcore.accuracy(digits_cnn.model, digits_cnn.test)
    assert all(q.metric.short == "accuracy" and q.examples == len(digits_cnn.test) for q in curve)
    for r, q in zip(ratios, curve):
        assert q.value == slimcore.accuracy(P.prune(digits_cnn.model, r, "l1", "global"), digits_cnn.test)
    # structured: the channel-pruned model where it exists, the channel-masked one where a layer would lose every one
    cfg = P.PruneConfig(method="l1", scope="global", structured=True)
    for r, q in zip((0.5, 0.99), P.quality_curve(digits_cnn.model, digits_cnn.test, cfg, (0.5, 0.99))):
        report, dense, _ = P.evaluate(digits_cnn.model, P.PruneConfig(r, "l1", "global", True), digits_cnn.test)
        assert q.value == report.score.value == slimcore.accuracy(dense, digits_cnn.test)


def test_report_is_the_family_figures_with_the_classifier_names(digits_cnn):
    report, dense, small = P.evaluate(digits_cnn.model, P.PruneConfig(0.5), digits_cnn.test)
    assert report.score.metric.short == "accuracy" and report.score.value == slimcore.accuracy(dense, digits_cnn.test)
    assert report.thin.params == sum(p.numel() for p in small.parameters())
    assert report.thin.score.value == slimcore.accuracy(small, digits_cnn.test)
    assert report.thin.units == {n: m.weight.shape[0] for n, m in list(slimcore.weight_layers(small).items())[:-1]}
    assert not report.unit_removed and not report.notes   # unstructured: the thin model is only for comparison
    assert report.thresholds == {n: P.threshold(digits_cnn.model, P.masks(digits_cnn.model, P.PruneConfig(0.5)), n)
                                 for n in slimcore.weight_layers(digits_cnn.model)}


def test_cubic_schedule():
    s = P.cubic_schedule(0.9, 4)
    assert s[-1] == pytest.approx(0.9)
    assert all(a < b for a, b in zip(s, s[1:]))
    assert s[0] == pytest.approx(0.9 * (1 - 0.75 ** 3))
    with pytest.raises(ValueError):
        P.cubic_schedule(0.5, 0)


def _gradual(sample, **kw):
    cfg = P.GradualConfig(P.PruneConfig(0.9, "l1", "global"), steps=3, epochs=1, seed=0)
    return P.gradual_prune(sample, cfg, **kw)


def test_gradual_pruning_recovers_accuracy_deterministically(digits_cnn):
    before = _state(digits_cnn.model)
    seen = []
    a = _gradual(digits_cnn, on_step=lambda step, frac: seen.append(frac))
    b = _gradual(digits_cnn)
    assert _same_state(digits_cnn.model, before)
    assert seen == pytest.approx([1 / 3, 2 / 3, 1.0]) and not a.cancelled
    assert all(torch.equal(v, b.model.state_dict()[k]) for k, v in a.model.state_dict().items())
    assert a.steps[-1].sparsity == pytest.approx(0.9, abs=1e-4)
    for name, module in slimcore.weight_layers(a.model).items():
        assert torch.all(module.weight[~a.masks[name]] == 0), name
    last = a.steps[-1]
    assert last.score > last.oneshot
    assert last.score == slimcore.accuracy(a.model, digits_cnn.test)
    assert last.val_score == slimcore.accuracy(a.model, digits_cnn.data.val)
    oneshot = slimcore.accuracy(P.prune(digits_cnn.model, 0.9, "l1", "global"), digits_cnn.test)
    assert last.score > oneshot


def test_gradual_pruning_can_be_cancelled(digits_cnn):
    calls = []
    res = _gradual(digits_cnn, should_stop=lambda: calls.append(1) or len(calls) > 20)
    assert res.cancelled and len(res.steps) == 1


def test_structured_gradual_pruning_removes_whole_channels_and_recovers(digits_cnn):
    cfg = P.GradualConfig(P.PruneConfig(0.5, "l1", "layer", structured=True), steps=3, epochs=1)
    res = P.gradual_prune(digits_cnn, cfg)
    for name, m in res.masks.items():
        rows = m.reshape(m.shape[0], -1)
        assert torch.equal(rows.all(1), rows.any(1)), f"{name}: channels are kept or removed whole"
    oneshot = slimcore.accuracy(P.prune(digits_cnn.model, 0.5, structured=True, example=digits_cnn.test.x[:1]),
                                digits_cnn.test)
    assert res.steps[-1].score > max(oneshot, 0.8)
    small = P.remove_channels(res.model, res.masks, digits_cnn.test.x[:1])
    with torch.no_grad():
        torch.testing.assert_close(small(digits_cnn.test.x), res.model(digits_cnn.test.x), atol=1e-4, rtol=1e-4)


@given(st.lists(st.integers(0, 5), min_size=1, max_size=200), st.floats(0, 0.999))
def test_cut_removes_exactly_the_lowest_even_with_ties(values, amount):
    scores = torch.tensor(values, dtype=torch.float32)
    keep = P.lowest(scores, amount)
    assert int((~keep).sum()) == round(amount * len(values))
    if keep.any() and (~keep).any():
        assert scores[~keep].max() <= scores[keep].min()


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_structured_figures_count_what_removing_channels_takes(sample, scope):
    cfg = P.PruneConfig(0.5, "l1", scope, structured=True)
    report, dense, small = P.evaluate(sample.model, cfg, sample.test)
    if report.emptied:   # global ranking may take every channel of a layer (digits-resnet's layer2.1.conv1 at 0.5)
        assert small is None and "cannot remove every channel" in report.thin_note
        return
    assert small is not None
    assert report.nonzeros == sum(int(torch.count_nonzero(p)) for p in small.parameters())
    for name, module in slimcore.weight_layers(small).items():
        full = slimcore.weight_layers(sample.model)[name].weight.numel()
        assert report.layer_sparsity[name] == pytest.approx(1 - module.weight.numel() / full), name
    with torch.no_grad():
        torch.testing.assert_close(dense(sample.test.x), small(sample.test.x), atol=1e-4, rtol=1e-4)


def test_unknown_layer_names_are_a_clear_error(digits_cnn):
    with pytest.raises(ValueError, match="fc_1"):
        P.masks(digits_cnn.model, P.PruneConfig(0.5, skip=("fc_1",)))
    with pytest.raises(ValueError, match="conv_2"):
        P.masks(digits_cnn.model, P.PruneConfig(0.5, overrides=(("conv_2", 0.9),)))


def test_curves_and_scores_never_touch_the_shared_model_while_others_use_it(digits_cnn):
    import threading

    expected = slimcore.accuracy(digits_cnn.model, digits_cnn.test)
    seen, done = [], threading.Event()

    def reader():
        while not done.is_set():
            seen.append(slimcore.accuracy(digits_cnn.model, digits_cnn.test))

    t = threading.Thread(target=reader)
    t.start()
    for method in ("l1", "taylor"):
        P.quality_curve(digits_cnn.model, digits_cnn.test, P.PruneConfig(0, method), (0.5, 0.9, 0.99),
                        calibration=digits_cnn.data.train.head(64))
    done.set()
    t.join()
    assert seen and set(seen) == {expected}


# Gradual pruning of the sentence encoder (minilm): the same loop over the family protocol ---------------------------

@pytest.fixture(scope="module")
def minilm():
    return slimcore.load_sample("minilm")


@pytest.fixture(scope="module")
def encoder_parts(minilm):
    """The encoder family's tuning and scorers, built once (embedding the original's references takes seconds)."""
    fam = slimcore.family_of(minilm)
    return dict(tuning=fam.tuning(minilm), scorers=(fam.scorer(minilm, "test"), fam.scorer(minilm, "validation")))


def _tiny(prune: P.PruneConfig, epochs: int = 1) -> P.GradualConfig:
    return P.GradualConfig(prune, steps=2, epochs=epochs, lr=3e-4, batch_size=32, seed=0)


@pytest.mark.slow
def test_encoder_gradual_pruning_holds_its_masks_and_beats_one_shot(minilm, encoder_parts):
    before = _state(minilm.model)
    fam = slimcore.family_of(minilm)
    cfg = _tiny(P.PruneConfig(0.5, "l1", "global"))
    seen = []
    a = P.gradual_prune(minilm, cfg, on_step=lambda step, frac: seen.append(frac), **encoder_parts)
    assert _same_state(minilm.model, before) and not a.cancelled and seen == [0.5, 1.0]
    layers = fam.layers(a.model)
    assert set(a.masks) == set(layers)
    assert a.steps[-1].sparsity == pytest.approx(0.5, abs=1e-6)
    assert P.sparsity(a.masks) == pytest.approx(0.5, abs=1e-6)
    for name, module in layers.items():   # fine-tuned with the pruned weights held at exactly zero
        assert torch.all(module.weight[~a.masks[name]] == 0), name
    embeddings = a.model.embeddings.word_embeddings.weight   # the family trains the transformer layers only
    assert torch.equal(embeddings, minilm.model.embeddings.word_embeddings.weight)
    test = encoder_parts["scorers"][0]
    last = a.steps[-1]
    assert last.score == test(a.model).value
    oneshot = test(P.prune_model(minilm.model, cfg.prune, fam)).value   # the same ratio at once, no fine-tuning
    assert last.score > last.oneshot and last.score > oneshot + 0.05
    b = P.gradual_prune(minilm, cfg, **encoder_parts)   # deterministic for a seed
    assert [t.score for t in b.steps] == [t.score for t in a.steps]
    assert all(torch.equal(v, b.model.state_dict()[k]) for k, v in a.model.state_dict().items())


@pytest.mark.slow
def test_encoder_structured_gradual_pruning_masks_whole_units(minilm, encoder_parts):
    fam = slimcore.family_of(minilm)
    res = P.gradual_prune(minilm, _tiny(P.PruneConfig(0.5, "l1", "layer", structured=True, unit="ffn", norm=2)),
                          **encoder_parts)
    neurons = minilm.model.shape()["ffn"]
    layers = fam.layers(res.model)
    for i, n in enumerate(neurons):
        rows = res.masks[f"encoder.layer.{i}.intermediate.dense"]
        assert torch.equal(rows.all(1), rows.any(1)) and int(rows.any(1).sum()) == n - round(0.5 * n)
        dense = layers[f"encoder.layer.{i}.intermediate.dense"]   # held: weights and biases of removed neurons zero
        assert torch.all(dense.weight[~rows.any(1)] == 0) and torch.all(dense.bias[~rows.any(1)] == 0)
    thin, _ = fam.remove_units(res.model, "ffn", res.masks, fam.example(minilm))   # the masked model, removed for real
    test = encoder_parts["scorers"][0]
    assert test(thin).value == pytest.approx(res.steps[-1].score, abs=1e-4)


@pytest.mark.slow
def test_encoder_gradual_pruning_can_be_cancelled(minilm, encoder_parts):
    calls = []
    res = P.gradual_prune(minilm, _tiny(P.PruneConfig(0.5, "l1", "global")),
                          should_stop=lambda: calls.append(1) or len(calls) > 9, **encoder_parts)   # 8 batches a step
    assert res.cancelled and len(res.steps) == 1 and res.steps[0].amount == P.cubic_schedule(0.5, 2)[0]
