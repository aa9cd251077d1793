"""Pruning the text encoder: masks as PyTorch's l1_unstructured makes them, real removal of FFN neurons and attention
heads equal to zeroing them in the dense model, parameter arithmetic, and quality that falls with the ratio."""
import copy

import pytest
import torch
from torch.nn.utils import prune as tprune

import slimcore
from slimcore import text as T
from slimcore import text_prune as TP

FEW = 40   # sentences embedded by the equivalence tests (the quick set's first ones)


@pytest.fixture(scope="module")
def s() -> T.TextSample:
    return slimcore.load_sample("minilm")


@pytest.fixture(scope="module")
def few(s) -> T.TextSplit:
    return s.data.quick_set.subset(FEW)


@pytest.fixture(scope="module")
def ref(s, few) -> torch.Tensor:
    """The original encoder's embeddings of `few` (read-only)."""
    return T.embed(s.model, few)


@pytest.fixture(scope="module")
def order(s):
    return TP.sorted_magnitudes(s.model)


def _zeroed(model: T.MiniLM, p: TP.PrunePlan) -> T.MiniLM:
    """The dense encoder with the plan's units switched off by hand: FFN neurons by zeroing their intermediate row
    and bias (GELU(0) = 0) and their output column; heads by zeroing their attention-output columns only (zeroing
    q/k would not remove a head: softmax of zeros is uniform attention)."""
    new = copy.deepcopy(model)
    with torch.no_grad():
        for i, (layer, kept) in enumerate(zip(new.encoder.layer, p.keep)):
            if p.cfg.kind == "ffn":
                gone = torch.ones(layer.intermediate.dense.out_features, dtype=torch.bool)
                gone[kept] = False
                layer.intermediate.dense.weight[gone] = 0
                layer.intermediate.dense.bias[gone] = 0
                layer.output.dense.weight[:, gone] = 0
            else:
                for h in range(12):
                    if h not in kept.tolist():
                        layer.attention.output.dense.weight[:, h * 32:(h + 1) * 32] = 0
    return new


@pytest.mark.parametrize("ratio, kind, message", [(-0.1, "ffn", "[0, 1)"), (1.0, "heads", "[0, 1)"),
                                                   (float("nan"), "ffn", "[0, 1)"), (0.3, "channels", "unknown"),
                                                   ("0.3", "ffn", "[0, 1)")])
def test_bad_settings_are_refused_with_a_clear_message(ratio, kind, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace(")", r"\)")):
        TP.TextPruneConfig(ratio, kind)


@pytest.mark.parametrize("ratio", [0.3, 0.75])
def test_unstructured_masks_are_torch_l1_unstructured_masks(s, order, ratio):
    p = TP.plan(s.model, TP.TextPruneConfig(ratio, "unstructured"), order)
    slow = TP.plan(s.model, TP.TextPruneConfig(ratio, "unstructured")).masks   # without the sorted magnitudes
    net = copy.deepcopy(s.model)
    layers = T.linear_layers(net)
    assert len(layers) == len(p.masks) == 36
    ties = 0
    for n, m in layers.items():
        tprune.l1_unstructured(m, "weight", amount=ratio)
        ours, theirs = p.masks[n], m.weight_mask.bool()
        assert int((~ours).sum()) == int((~theirs).sum()) == round(ratio * m.weight_orig.numel()), n
        # the same mask, except which of several weights of exactly equal |w| at the cut goes (torch.topk picks
        # any of them, we take them in index order)
        differ = ours != theirs
        assert (m.weight_orig.abs()[differ] == p.thresholds[n]).all(), n
        ties += int(differ.sum())
        assert torch.equal(slow[n], ours), n
    assert ties <= 8   # a handful of weights at most, of ~10.6 million


def test_unstructured_model_is_the_masked_weights_and_counts_them(s, order, few, ref):
    cfg = TP.TextPruneConfig(0.5, "unstructured")
    rep, model, p = TP.evaluate(s.model, cfg, few, ref, order)
    orig = dict(s.model.named_parameters())
    zeros_before = sum(int((m.weight == 0).sum()) for m in T.linear_layers(s.model).values())
    for n, m in T.linear_layers(model).items():
        assert torch.equal(m.weight, orig[f"{n}.weight"] * p.masks[n])
        assert torch.equal(m.bias, orig[f"{n}.bias"])    # biases kept
        assert p.removed[n] == pytest.approx(round(0.5 * m.weight.numel()) / m.weight.numel())
        assert p.thresholds[n] == pytest.approx(float(orig[f"{n}.weight"][~p.masks[n]].abs().max()))
    removed = sum(round(0.5 * m.weight.numel()) for m in T.linear_layers(model).values())
    all_nonzero = sum(int(torch.count_nonzero(t)) for t in s.model.parameters())
    assert rep.params == sum(t.numel() for t in s.model.parameters())
    assert rep.nonzeros == all_nonzero - removed + zeros_before
    assert rep.sparse is not None and rep.sparse.bytes < 0.85 * rep.size_bytes   # modelled: ~half the matrices
    assert abs(rep.size_bytes - slimcore.serialized_bytes(s.model)) < 4096        # measured: dense, zeros cost bytes
    assert rep.shape == s.model.shape() and not rep.thin


@pytest.mark.parametrize("ratio", [0.4])
def test_removing_ffn_neurons_equals_zeroing_them(s, few, ratio):
    p = TP.plan(s.model, TP.TextPruneConfig(ratio, "ffn"))
    thin = TP.apply(s.model, p)
    assert thin.shape()["ffn"] == [1536 - round(ratio * 1536)] * 6
    assert thin.encoder.layer[0].intermediate.dense.weight.shape == (1536 - round(ratio * 1536), 384)
    torch.testing.assert_close(T.embed(thin, few), T.embed(_zeroed(s.model, p), few), atol=1e-5, rtol=0)


@pytest.mark.parametrize("ratio", [0.5])
def test_removing_heads_equals_zeroing_their_output_columns(s, few, ref, ratio):
    p = TP.plan(s.model, TP.TextPruneConfig(ratio, "heads"))
    thin = TP.apply(s.model, p)
    assert thin.shape()["heads"] == [12 - round(ratio * 12)] * 6
    assert thin.encoder.layer[3].attention.output.dense.weight.shape == (384, 32 * (12 - round(ratio * 12)))
    torch.testing.assert_close(T.embed(thin, few), T.embed(_zeroed(s.model, p), few), atol=1e-5, rtol=0)
    # and the dense model with those heads zeroed really differs from the original (the test can fail)
    assert (ref - T.embed(thin, few)).abs().max() > 1e-3


def test_the_lowest_scored_units_go_and_masks_show_whole_rows_and_columns(s):
    for kind, scores in (("ffn", TP.neuron_scores(s.model)), ("heads", TP.head_scores(s.model))):
        p = TP.plan(s.model, TP.TextPruneConfig(0.5, kind))
        for i, (kept, sc) in enumerate(zip(p.keep, scores)):
            gone = torch.ones(sc.numel(), dtype=torch.bool)
            gone[kept] = False
            assert int(gone.sum()) == round(0.5 * sc.numel())
            assert sc[gone].max() <= sc[kept].min()
            assert p.removed[f"layer {i}"] == pytest.approx(0.5)
        m = p.masks["encoder.layer.2.intermediate.dense" if kind == "ffn" else "encoder.layer.2.attention.self.key"]
        rows = m.all(1) | ~m.any(1)
        assert rows.all() and (~m.any(1)).float().mean() == pytest.approx(0.5)
    # the head score is the norm of the head's q/k/v rows and attention-output columns, computed here directly
    a = s.model.encoder.layer[1].attention
    rows = slice(5 * 32, 6 * 32)
    direct = torch.cat([a.self.query.weight[rows].flatten(), a.self.key.weight[rows].flatten(),
                        a.self.value.weight[rows].flatten(), a.output.dense.weight[:, rows].flatten()]).norm()
    assert TP.head_scores(s.model)[1][5] == pytest.approx(float(direct), rel=1e-5)


@pytest.mark.parametrize("kind", list(TP.KINDS))
def test_ratio_zero_gives_the_original_embeddings_and_the_shared_model_is_unchanged(s, few, ref, kind):
    before = {k: v.clone() for k, v in s.model.state_dict().items()}
    assert torch.equal(T.embed(TP.prune_text(s.model, TP.TextPruneConfig(0.0, kind)), few), ref)
    model = TP.prune_text(s.model, TP.TextPruneConfig(0.6, kind))
    assert model is not s.model
    with torch.no_grad():  # the returned model owns its tensors: changing it leaves the original alone
        for p in model.parameters():
            p.add_(1.0)
    after = s.model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert s.model.shape() == {"heads": [12] * 6, "ffn": [1536] * 6}


def test_thin_parameter_counts_match_the_arithmetic(s):
    full = sum(p.numel() for p in s.model.parameters())
    assert TP.thin_parameters(s.model.shape()) == full == 22_565_376
    per_neuron = 384 + 1 + 384        # its intermediate row and bias, its output column
    per_head = 4 * 32 * 384 + 3 * 32  # 32 rows of q, k, v (+ their biases) and 32 attention-output columns
    for kind, ratio, expect in [("ffn", 0.5, full - 6 * 768 * per_neuron), ("ffn", 0.3, full - 6 * 461 * per_neuron),
                                ("heads", 0.5, full - 6 * 6 * per_head), ("heads", 0.95, full - 6 * 11 * per_head)]:
        model = TP.prune_text(s.model, TP.TextPruneConfig(ratio, kind))
        assert sum(p.numel() for p in model.parameters()) == expect == TP.thin_parameters(model.shape())
        assert slimcore.serialized_bytes(model) < slimcore.serialized_bytes(s.model) - 3.9 * (full - expect)


def test_every_head_removed_leaves_the_output_bias_and_says_so(s, few):
    p = TP.plan(s.model, TP.TextPruneConfig(0.99, "heads"))
    assert all(k.numel() == 0 for k in p.keep) and p.notes and "only its output bias" in p.notes[0]
    thin = TP.apply(s.model, p)
    assert thin.shape()["heads"] == [0] * 6
    torch.testing.assert_close(T.embed(thin, few), T.embed(_zeroed(s.model, p), few), atol=1e-5, rtol=0)
    assert not TP.plan(s.model, TP.TextPruneConfig(0.95, "heads")).notes   # 11 of 12 gone: one head left


def test_quality_falls_as_more_is_removed(s, order):
    quick = s.data.quick_set.subset(64)
    ref = T.embed(s.model, quick)
    for kind in TP.KINDS:
        qs = TP.quality_curve(s.model, kind, quick, ref, (0.0, 0.3, 0.9), order if kind == "unstructured" else None)
        assert qs[0].mean_cosine == pytest.approx(1.0) and qs[0].top1_agreement == 1.0
        assert 1.0 > qs[1].mean_cosine > qs[2].mean_cosine, kind
        assert qs[1].worst_cosine > qs[2].worst_cosine, kind
        assert qs[1].spearman > qs[2].spearman, kind
        assert qs[2].paraphrase_top1 > 0.5, kind   # still an encoder, not noise, at 90 %


def test_evaluating_in_parts_equals_evaluating_at_once(s, few, ref):
    model = TP.prune_text(s.model, TP.TextPruneConfig(0.5, "ffn"))
    seen = []
    a = TP.evaluate_in_parts(model, few, ref, parts=3, on_part=lambda i, n: seen.append((i, n)))
    b = T.evaluate(model, few, ref)
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert a.mean_cosine == pytest.approx(b.mean_cosine, abs=1e-5)
    assert a.top1_agreement == b.top1_agreement and a.paraphrase_top1 == b.paraphrase_top1
