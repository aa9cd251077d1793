"""Pruning the text encoder with the one PruneConfig: masks as PyTorch's l1_unstructured makes them, real removal of
FFN neurons and attention heads equal to zeroing them in the dense model, parameter arithmetic, the one PruneReport and
quality curve, and a one-line error for what the encoder family does not support."""
import copy

import pytest
import torch
from torch.nn.utils import prune as tprune

import slimcore
from slimcore import pruning as P
from slimcore import text as T
from slimcore import text_prune as TP
from slimcore.families import get
from slimcore.families.encoder import cosine_scorer
from tests.conftest import load_text

ENC = get("encoder")

FEW = 40   # sentences embedded by the equivalence tests (the quick set's first ones)


@pytest.fixture(scope="module")
def s() -> T.TextSample:
    return load_text()


@pytest.fixture(scope="module")
def few(s) -> T.TextSplit:
    return s.data.quick_set.subset(FEW)


@pytest.fixture(scope="module")
def ref(s, few) -> torch.Tensor:
    """The original encoder's embeddings of `few` (read-only)."""
    return T.embed(s.model, few)


@pytest.fixture(scope="module")
def score(few, ref):
    return cosine_scorer(few, ref)


def heads(model: T.MiniLM) -> int:
    return model.shape()["heads"][0]


def neurons(model: T.MiniLM) -> int:
    return model.shape()["ffn"][0]


def _zeroed(model: T.MiniLM, kind: str, keep: list[torch.Tensor]) -> T.MiniLM:
    """The dense encoder with the plan's units switched off by hand: FFN neurons by zeroing their intermediate row
    and bias (GELU(0) = 0) and their output column; heads by zeroing their attention-output columns only (zeroing
    q/k would not remove a head: softmax of zeros is uniform attention)."""
    new = copy.deepcopy(model)
    with torch.no_grad():
        for _i, (layer, kept) in enumerate(zip(new.encoder.layer, keep)):
            assert isinstance(layer, T.Layer)
            if kind == "ffn":
                gone = torch.ones(layer.intermediate.dense.out_features, dtype=torch.bool)
                gone[kept] = False
                layer.intermediate.dense.weight[gone] = 0
                layer.intermediate.dense.bias[gone] = 0
                layer.output.dense.weight[:, gone] = 0
            else:
                for h in range(heads(model)):
                    if h not in kept.tolist():
                        layer.attention.output.dense.weight[:, h * T.HEAD_DIM:(h + 1) * T.HEAD_DIM] = 0
    return new


def _plan(model: T.MiniLM, cfg: P.PruneConfig) -> tuple[P.Masks, list[torch.Tensor]]:
    keep = ENC.prune_masks(model, cfg)
    return keep, TP.kept_units(model, cfg.unit, keep) if cfg.structured else []


@pytest.mark.parametrize("ratio, kind, message", [(-0.1, "ffn", "[0, 1)"), (1.0, "heads", "[0, 1)"),
                                                   (float("nan"), "ffn", "[0, 1)"), (0.3, "channels", "unknown"),
                                                   ("0.3", "ffn", "[0, 1)")])
def test_bad_settings_are_refused_with_a_clear_message(ratio, kind, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace(")", r"\)")):
        TP.config(ratio, kind)


@pytest.mark.parametrize("cfg, what", [(P.PruneConfig(0.3, structured=True, unit="channels", norm=2), "'channels'"),
                                        (P.PruneConfig(0.3, structured=True, unit="heads",
                                                       skip=("encoder.layer.0.attention.self.query",)), "skipped"),
                                        (P.PruneConfig(0.3, structured=True, unit="ffn",
                                                       overrides=(("encoder.layer.0.output.dense", 0.5),)),
                                         "overridden")])
def test_what_the_encoder_lacks_is_one_line_naming_what_it_has(s, score, cfg, what):
    with pytest.raises(ValueError, match="not available for sentence encoders; supported") as e:
        P.evaluate(s.model, cfg, score, family=ENC)
    assert what in str(e.value) and "\n" not in str(e.value)


def test_taylor_scores_are_weight_times_the_paraphrase_loss_gradient(s):
    calib = ENC.split(s, "calibration").head(48)
    ours = P.weight_scores(s.model, "taylor", calib, family=ENC)
    net = copy.deepcopy(s.model).requires_grad_(True)   # plain autograd on a copy, not our functional_call path
    T.paraphrase_loss(net, calib).backward()
    for n, m in T.linear_layers(net).items():
        assert torch.allclose(ours[n], (m.weight * m.weight.grad).abs(), rtol=1e-5, atol=1e-12), n
    assert all(float(v.sum()) > 0 for v in ours.values())     # the loss has a gradient at the original model
    assert not any(p.grad is not None for p in s.model.parameters())   # the shared model is untouched


def test_global_unstructured_masks_are_torch_global_l1_masks(s):
    keep = ENC.prune_masks(s.model, P.PruneConfig(0.6, scope="global"))
    net = copy.deepcopy(s.model)
    layers = T.linear_layers(net)
    tprune.global_unstructured([(m, "weight") for m in layers.values()], tprune.L1Unstructured, amount=0.6)
    differ = sum(int((keep[n] != m.weight_mask.bool()).sum()) for n, m in layers.items())
    removed = sum(int((~k).sum()) for k in keep.values())
    assert removed == sum(int((~m.weight_mask.bool()).sum()) for m in layers.values())
    assert differ <= 2e-6 * removed   # only ties at the cut may be taken differently
    sparsity = [1 - float(k.float().mean()) for k in keep.values()]
    assert max(sparsity) - min(sparsity) > 0.1   # one ranking: layers lose different shares


@pytest.mark.parametrize("unit, norm", [("heads", 1), ("ffn", 1), ("heads", 2)])
def test_global_units_rank_every_layer_together_and_keep_one_per_layer(s, unit, norm):
    cfg = P.PruneConfig(0.9, scope="global", structured=True, unit=unit, norm=norm)
    keep, kept = _plan(s.model, cfg)
    scores = (TP.head_scores if unit == "heads" else TP.neuron_scores)(s.model, None, norm)
    total = sum(x.numel() for x in scores)
    assert all(len(k) >= 1 for k in kept)
    assert sum(len(k) for k in kept) == max(total - round(0.9 * total), len(kept))
    gone = torch.cat([sc[[i for i in range(sc.numel()) if i not in set(k.tolist())]] for sc, k in zip(scores, kept)])
    best = {i: int(sc.argmax()) for i, sc in enumerate(scores)}
    others = torch.cat([sc[[i for i in k.tolist() if i != best[j]]] for j, (sc, k) in enumerate(zip(scores, kept))])
    assert float(gone.max()) <= float(others.min()) if others.numel() else True
    assert len(set(len(k) for k in kept)) > 1   # layers keep different numbers of units


def test_structured_l1_head_scores_are_the_sum_of_their_weights_scores(s):
    l0 = s.model.encoder.layer[0].attention
    d = slice(3 * T.HEAD_DIM, 4 * T.HEAD_DIM)   # head 3
    by_hand = sum(float(m.weight[d].abs().sum()) for m in (l0.self.query, l0.self.key, l0.self.value)) + \
        float(l0.output.dense.weight[:, d].abs().sum())
    assert TP.head_scores(s.model, None, 1)[0][3].item() == pytest.approx(by_hand, rel=1e-5)


def test_random_and_taylor_units_differ_from_l1_and_random_is_seeded(s):
    cfgs = [P.PruneConfig(0.5, m, structured=True, unit="heads", norm=2, seed=sd)
            for m, sd in (("l1", 0), ("random", 0), ("random", 0), ("random", 1))]
    kept = [_plan(s.model, c)[1] for c in cfgs]
    assert all(torch.equal(a, b) for a, b in zip(kept[1], kept[2]))
    assert any(not torch.equal(a, b) for a, b in zip(kept[1], kept[3]))
    assert any(not torch.equal(a, b) for a, b in zip(kept[0], kept[1]))


@pytest.mark.parametrize("ratio", [0.3, 0.75])
def test_unstructured_masks_are_torch_l1_unstructured_masks(s, ratio):
    keep, _ = _plan(s.model, TP.config(ratio))
    net = copy.deepcopy(s.model)
    layers = T.linear_layers(net)
    assert len(layers) == len(keep) == len(ENC.layers(s.model))
    ties = 0
    for n, m in layers.items():
        tprune.l1_unstructured(m, "weight", amount=ratio)
        ours, theirs = keep[n], m.weight_mask.bool()
        assert int((~ours).sum()) == int((~theirs).sum()) == round(ratio * m.weight_orig.numel()), n
        # the same mask, except which of several weights of exactly equal |w| at the cut goes (torch.topk picks
        # any of them, we take them in index order)
        differ = ours != theirs
        assert (m.weight_orig.abs()[differ] == P.threshold(s.model, keep, n)).all(), n
        ties += int(differ.sum())
        assert torch.equal(keep[n], P.masks(s.model, TP.config(ratio))[n]), n   # pruning.lowest's rule, per layer
    assert ties <= 8   # a handful of weights at most, of ~10.6 million


def test_unstructured_model_is_the_masked_weights_and_counts_them(s, score):
    cfg = TP.config(0.5)
    rep, model, thin = P.evaluate(s.model, cfg, score, family=ENC)
    keep, _ = _plan(s.model, cfg)
    orig = dict(s.model.named_parameters())
    zeros_before = sum(int((m.weight == 0).sum()) for m in T.linear_layers(s.model).values())
    for n, m in T.linear_layers(model).items():
        assert torch.equal(m.weight, orig[f"{n}.weight"] * keep[n])
        assert torch.equal(m.bias, orig[f"{n}.bias"])    # biases kept
        assert rep.layer_sparsity[n] == pytest.approx(round(0.5 * m.weight.numel()) / m.weight.numel())
        assert rep.thresholds[n] == pytest.approx(float(orig[f"{n}.weight"][~keep[n]].abs().max()))
    removed = sum(round(0.5 * m.weight.numel()) for m in T.linear_layers(model).values())
    all_nonzero = sum(int(torch.count_nonzero(t)) for t in s.model.parameters())
    assert rep.params == sum(t.numel() for t in s.model.parameters())
    assert rep.removed == removed and rep.nonzeros == all_nonzero - removed + zeros_before
    assert rep.sparse.bytes < 0.85 * rep.size_bytes                          # modelled: ~half the matrices
    assert abs(rep.size_bytes - slimcore.serialized_bytes(s.model)) < 4096   # measured: dense, zeros cost bytes
    assert model.shape() == s.model.shape() and thin is None and rep.thin is None
    assert rep.score.value == rep.score.detail.mean_cosine < 1.0 and rep.score.metric is ENC.metric


@pytest.mark.parametrize("ratio", [0.4])
def test_removing_ffn_neurons_equals_zeroing_them(s, few, score, ratio):
    n = neurons(s.model)
    rep, dense, thin = P.evaluate(s.model, TP.config(ratio, "ffn"), score, family=ENC)
    assert thin.shape()["ffn"] == [n - round(ratio * n)] * 6
    assert thin.encoder.layer[0].intermediate.dense.weight.shape == (n - round(ratio * n), 384)
    _, kept = _plan(s.model, TP.config(ratio, "ffn"))
    torch.testing.assert_close(T.embed(thin, few), T.embed(_zeroed(s.model, "ffn", kept), few), atol=1e-5, rtol=0)
    # the report: the thin model's quality and sizes, what each layer lost
    assert rep.thin.params == sum(p.numel() for p in thin.parameters()) < rep.params
    assert rep.thin.size_bytes == slimcore.serialized_bytes(thin) and rep.score is rep.thin.score
    assert list(rep.unit_removed.values()) == pytest.approx([round(ratio * n) / n] * 6)
    assert list(rep.thin.units.values()) == [n - round(ratio * n)] * 6 and not rep.notes


@pytest.mark.parametrize("ratio", [0.5])
def test_removing_heads_equals_zeroing_their_output_columns(s, few, ref, ratio):
    h = heads(s.model)
    thin = TP.prune_text(s.model, TP.config(ratio, "heads"))
    assert thin.shape()["heads"] == [h - round(ratio * h)] * 6
    assert thin.encoder.layer[3].attention.output.dense.weight.shape == (384, T.HEAD_DIM * (h - round(ratio * h)))
    _, kept = _plan(s.model, TP.config(ratio, "heads"))
    torch.testing.assert_close(T.embed(thin, few), T.embed(_zeroed(s.model, "heads", kept), few), atol=1e-5, rtol=0)
    # and the dense model with those heads zeroed really differs from the original (the test can fail)
    assert (ref - T.embed(thin, few)).abs().max() > 1e-3


def test_the_lowest_scored_units_go_and_masks_show_whole_rows_and_columns(s):
    for kind, scores in (("ffn", TP.neuron_scores(s.model)), ("heads", TP.head_scores(s.model))):
        keep, kept_units = _plan(s.model, TP.config(0.5, kind))
        for _i, (kept, sc) in enumerate(zip(kept_units, scores)):
            gone = torch.ones(sc.numel(), dtype=torch.bool)
            gone[kept] = False
            assert int(gone.sum()) == round(0.5 * sc.numel())
            assert sc[gone].max() <= sc[kept].min()
        m = keep["encoder.layer.2.intermediate.dense" if kind == "ffn" else "encoder.layer.2.attention.self.key"]
        rows = m.all(1) | ~m.any(1)
        assert rows.all() and (~m.any(1)).float().mean() == pytest.approx(0.5)
    # the head score is the norm of the head's q/k/v rows and attention-output columns, computed here directly
    a = s.model.encoder.layer[1].attention
    rows = slice(5 * T.HEAD_DIM, 6 * T.HEAD_DIM)
    direct = torch.cat([a.self.query.weight[rows].flatten(), a.self.key.weight[rows].flatten(),
                        a.self.value.weight[rows].flatten(), a.output.dense.weight[:, rows].flatten()]).norm()
    assert TP.head_scores(s.model)[1][5] == pytest.approx(float(direct), rel=1e-5)


@pytest.mark.parametrize("kind", list(TP.KINDS))
def test_ratio_zero_gives_the_original_embeddings_and_the_shared_model_is_unchanged(s, few, ref, kind):
    before = {k: v.clone() for k, v in s.model.state_dict().items()}
    shape = s.model.shape()
    assert torch.equal(T.embed(TP.prune_text(s.model, TP.config(0.0, kind)), few), ref)
    model = TP.prune_text(s.model, TP.config(0.6, kind))
    assert model is not s.model
    with torch.no_grad():  # the returned model owns its tensors: changing it leaves the original alone
        for p in model.parameters():
            p.add_(1.0)
    after = s.model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert s.model.shape() == shape == {"heads": [12] * 6, "ffn": [1536] * 6}   # all-MiniLM-L6-v2's own


def test_thin_parameter_counts_match_the_arithmetic(s):
    full = sum(p.numel() for p in s.model.parameters())
    assert TP.thin_parameters(s.model.shape()) == full == 22_565_376
    per_neuron = 384 + 1 + 384        # its intermediate row and bias, its output column
    per_head = 4 * 32 * 384 + 3 * 32  # 32 rows of q, k, v (+ their biases) and 32 attention-output columns
    for kind, ratio, expect in [("ffn", 0.5, full - 6 * 768 * per_neuron), ("ffn", 0.3, full - 6 * 461 * per_neuron),
                                ("heads", 0.5, full - 6 * 6 * per_head), ("heads", 0.95, full - 6 * 11 * per_head)]:
        model = TP.prune_text(s.model, TP.config(ratio, kind))
        assert sum(p.numel() for p in model.parameters()) == expect == TP.thin_parameters(model.shape())
        assert slimcore.serialized_bytes(model) < slimcore.serialized_bytes(s.model) - 3.9 * (full - expect)


@pytest.mark.slow
def test_every_head_removed_leaves_the_output_bias_and_says_so(s, few, score):
    rep, _, thin = P.evaluate(s.model, TP.config(0.99, "heads"), score, family=ENC)
    assert thin.shape()["heads"] == [0] * 6 and list(rep.unit_removed.values()) == [1.0] * 6
    assert rep.notes and "attention heads" in rep.notes[0] and "only their output bias" in rep.notes[0]
    _, kept = _plan(s.model, TP.config(0.99, "heads"))
    assert all(k.numel() == 0 for k in kept)
    torch.testing.assert_close(T.embed(thin, few), T.embed(_zeroed(s.model, "heads", kept), few), atol=1e-5, rtol=0)
    assert not P.evaluate(s.model, TP.config(0.95, "heads"), score, family=ENC)[0].notes   # 11 of 12 gone: one left


@pytest.mark.slow
def test_quality_falls_as_more_is_removed(s):
    quick = s.data.quick_set.subset(64)
    score = cosine_scorer(quick, T.embed(s.model, quick))
    for kind in TP.KINDS:
        qs = [q.detail for q in P.quality_curve(s.model, score, TP.config(0.0, kind), (0.0, 0.3, 0.9), family=ENC)]
        assert qs[0].mean_cosine == pytest.approx(1.0) and qs[0].top1_agreement == 1.0
        assert 1.0 > qs[1].mean_cosine > qs[2].mean_cosine, kind
        assert qs[1].worst_cosine > qs[2].worst_cosine, kind
        assert qs[1].spearman > qs[2].spearman, kind
        assert qs[2].paraphrase_top1 > 0.5, kind   # still an encoder, not noise, at 90 %
        assert P.quality_curve(s.model, score, TP.config(0.0, kind), (0.3,), family=ENC)[0].detail == qs[1]


def test_api_prune_is_the_labs_pruning(s, few):
    from slimcore import api
    for kind in ("unstructured", "ffn"):
        a, b = api.prune(s, TP.config(0.3, kind)), TP.prune_text(s.model, TP.config(0.3, kind))
        assert torch.equal(T.embed(a, few), T.embed(b, few))


def test_evaluating_in_parts_equals_evaluating_at_once(s, few, ref):
    model = TP.prune_text(s.model, TP.config(0.5, "ffn"))
    seen = []
    a = TP.evaluate_in_parts(model, few, ref, parts=3, on_part=lambda i, n: seen.append((i, n)))
    b = T.evaluate(model, few, ref)
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert a.mean_cosine == pytest.approx(b.mean_cosine, abs=1e-5)
    assert a.top1_agreement == b.top1_agreement and a.paraphrase_top1 == b.paraphrase_top1
