"""The public API works on every model family through one protocol, and says plainly what a family cannot do."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import nn

import slimcore
from slimcore import families as F
from slimcore import pruning as P
from slimcore import quantization as Q
from slimcore import text_prune as TP
from slimcore.data import Split


@pytest.fixture(scope="module")
def minilm():
    return slimcore.load_sample("minilm")


def test_every_classifier_sample_is_in_the_classifier_family(sample):
    fam = slimcore.family_of(sample)
    assert fam.name == "classifier" and fam.metric.percent
    assert list(fam.layers(sample.model)) == list(slimcore.weight_layers(sample.model))


def test_the_text_sample_is_a_sentence_encoder_whose_sizes_come_from_the_model(minilm):
    fam = slimcore.family_of(minilm)
    assert fam.name == "encoder" and not fam.metric.percent
    assert len(fam.layers(minilm.model)) == 36
    heads = fam.units(minilm.model, "heads")
    assert [u.count for u in heads] == minilm.model.shape()["heads"] == [12] * 6
    thin = TP.prune_text(minilm.model, TP.config(0.5, "ffn"))
    assert [u.count for u in fam.units(thin, "ffn")] == [768] * 6
    with pytest.raises(ValueError, match="supported: heads, ffn"):
        fam.units(minilm.model, "channels")


def test_measure_scores_an_encoder_against_its_own_embeddings(minilm):
    m = slimcore.measure(minilm, split="quick", timing=False)
    assert m.score.value == pytest.approx(1.0, abs=1e-6) and m.score.metric.short == "mean cosine"
    assert m.score.detail.top1_agreement == 1.0 and m.score.examples == len(minilm.data.quick_set)
    assert m.params == sum(p.numel() for p in minilm.model.parameters())
    assert len(m.layers) == 36 and m.macs == sum(r.macs for r in m.layers)
    # one real sentence of n tokens: every Linear costs n x in x out multiply-accumulates
    n = F.get("encoder").example(minilm).shape[1]
    assert m.layers[0].macs == n * 384 * 384
    assert m.latencies is None


def test_timing_uses_the_family_batches(minilm, digits_cnn):
    assert set(slimcore.time_models(digits_cnn, {"m": digits_cnn.model}, repeats=5, max_seconds=0.05)["m"]) == {1, 256}
    lat = slimcore.time_models(minilm, {"m": minilm.model}, repeats=5, max_seconds=0.05)["m"]
    assert {b: t.batch for b, t in lat.items()} == {1: 1, 32: 32}


def test_prune_is_the_family_code_on_both(digits_cnn, minilm):
    ours = slimcore.prune(digits_cnn, slimcore.PruneConfig(0.6))
    ref = P.prune(digits_cnn.model, 0.6)
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), ref.state_dict().values()))
    thin = slimcore.prune(digits_cnn, slimcore.PruneConfig(0.5, structured=True))
    assert thin.conv1.out_channels == 10
    heads = slimcore.prune(minilm, slimcore.PruneConfig(0.25, structured=True, norm=2, unit="heads"))
    assert heads.shape()["heads"] == [9] * 6
    masked = slimcore.prune(minilm, slimcore.PruneConfig(0.3))
    w = masked.encoder.layer[0].output.dense.weight
    assert int((w == 0).sum()) == round(0.3 * w.numel())
    assert torch.equal(masked.embeddings.word_embeddings.weight, minilm.model.embeddings.word_embeddings.weight)


@pytest.mark.parametrize("cfg,match", [
    (slimcore.PruneConfig(0.3, structured=True, unit="channels"), "supported: heads, ffn"),
    (slimcore.PruneConfig(0.3, structured=True, unit="heads", overrides=(("encoder.layer.0.output.dense", 0.1),)),
     "not available for sentence encoders"),
])
def test_what_an_encoder_cannot_do_is_one_line(minilm, cfg, match):
    with pytest.raises(ValueError, match=match) as e:
        slimcore.prune(minilm, cfg)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("cfg", [slimcore.PruneConfig(0.4, method="taylor"), slimcore.PruneConfig(0.4, scope="global"),
                                 slimcore.PruneConfig(0.4, "random", structured=True, unit="ffn", norm=1)])
def test_an_encoder_takes_every_method_and_scope(minilm, cfg):
    """The same configs as a classifier's: Taylor (on the paraphrase loss), global ranking, random unit scores."""
    net = slimcore.prune(minilm, cfg)
    if cfg.structured:
        assert net.shape()["ffn"] == [1536 - round(0.4 * 1536)] * 6
    else:
        w = torch.cat([m.weight.flatten() for m in slimcore.families.get("encoder").layers(net).values()])
        assert int((w == 0).sum()) == round(0.4 * w.numel()) if cfg.scope == "global" else int((w == 0).sum()) > 0
    assert 0.0 < slimcore.measure(minilm, net, timing=False).score.value < 1.0


def test_a_classifier_has_no_heads(digits_cnn):
    with pytest.raises(ValueError, match="supported: channels"):
        slimcore.prune(digits_cnn, slimcore.PruneConfig(0.3, structured=True, unit="heads"))


def test_quantize_acts_on_the_family_layers_only(minilm, digits_cnn):
    cfg = slimcore.QuantConfig(4, per_channel=True)
    q = slimcore.quantize(minilm, cfg)
    lin = "encoder.layer.2.attention.self.key"
    w = q.get_submodule(lin).weight
    assert torch.equal(w, Q.fake_quantize(minilm.model.get_submodule(lin).weight, 4, True, 0))
    assert torch.equal(q.embeddings.word_embeddings.weight, minilm.model.embeddings.word_embeddings.weight)
    c = slimcore.quantize(digits_cnn, cfg)
    assert torch.equal(c.fc1.weight, Q.quantize(digits_cnn.model, 4, per_channel=True).fc1.weight)
    with pytest.raises(ValueError, match="activation quantization is not available"):
        slimcore.quantize(minilm, slimcore.QuantConfig(8, activations=Q.ActivationConfig(8)))


def test_distill_takes_one_config_and_the_family_sizes_the_student(digits_cnn, minilm):
    encoder = F.get("encoder").distill_defaults
    with pytest.raises(ValueError, match="1 to 5 of the teacher's 6 layers"):   # the whole encoder is no student
        slimcore.distill(minilm, slimcore.DistillConfig(**{**vars(encoder), "student": 1.0}))
    assert encoder.epochs < F.get("classifier").distill_defaults.epochs   # each family's own defaults
    r = slimcore.distill(digits_cnn, slimcore.DistillConfig(epochs=1, student=0.125))
    assert isinstance(r, slimcore.DistillResult) and len(r.history) == 1 and r.student.fc2.out_features == 10
    assert r.student.fc1.out_features == round(digits_cnn.model.fc1.out_features * 0.125)
    assert r.history[0].score.metric == F.ACCURACY


# ---------------------------------------------------------------------------------------- a third family, in a test

@dataclass(frozen=True)
class _Regression:
    """A toy sample of another kind: inputs and real-valued targets."""

    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor


class _RegressionFamily:
    """What a new family writes: about thirty lines, no change to any technique."""

    name, label = "regression", "regressors"
    metric = F.Metric("negative mean squared error", "-MSE", percent=False)
    unit_kinds = {"channels": "output neurons"}
    timing_batches = (1, 8)

    def owns(self, sample):
        return isinstance(sample, _Regression)

    def split(self, sample, which):
        return Split(sample.x, sample.y)

    def scorer(self, sample, which="test"):
        return lambda m: F.Score(-float(((m(sample.x) - sample.y) ** 2).mean().detach()), self.metric, len(sample.x))

    def timing_inputs(self, sample):
        return {1: sample.x[:1], 8: sample.x[:8]}

    def example(self, sample):
        return sample.x[:1]

    def layers(self, model):
        return slimcore.weight_layers(model)

    def units(self, model, kind):
        return []

    def prune_masks(self, model, cfg, scores=None, calibration=None):   # single weights, by any method
        if cfg.structured:
            raise F.unsupported("structured pruning", self, ["single weights"])
        scores = scores if scores is not None else P.weight_scores(model, cfg.method, calibration, cfg.seed, self)
        return P.masks(model, cfg, calibration, scores)

    remove_units = prune_masks

    def importance_loss(self, calibration):
        return lambda net: ((net(calibration.x) - calibration.y) ** 2).mean()

    def tuning(self, sample):
        return F.Tuning(len(sample.x), lambda net, idx: ((net(sample.x[idx]) - sample.y[idx]) ** 2).mean(),
                        lambda net: list(net.parameters()))

    def layer_groups(self, model, whole=False):
        return []

    distill_defaults = None   # no distillation for this family: slimcore.distill says it is not available

    def student(self, teacher, cfg):
        raise F.unsupported("distillation", self, [])

    distill_loss = distill_lesson = student


def test_a_new_family_is_one_class_and_one_registration(monkeypatch):
    monkeypatch.setattr(F.base, "REGISTRY", dict(F.REGISTRY))   # the registration ends with the test
    F.register(_RegressionFamily())
    torch.manual_seed(0)
    s = _Regression(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1)).eval(), torch.randn(16, 3),
                    torch.randn(16, 1))
    m = slimcore.measure(s, repeats=5, max_seconds=0.05)
    assert m.score.metric.short == "-MSE" and set(m.latencies) == {1, 8} and m.macs == 3 * 4 + 4 * 1
    q = slimcore.quantize(s, slimcore.QuantConfig(2))
    assert len(torch.unique(q[0].weight)) <= 3
    for method in ("l1", "taylor"):   # Taylor differentiates the family's own loss
        pruned = slimcore.prune(s, slimcore.PruneConfig(0.5, method, "global"))
        assert sum(int((m.weight == 0).sum()) for m in slimcore.weight_layers(pruned).values()) == round(0.5 * 16)
    with pytest.raises(ValueError, match="structured pruning is not available for regressors"):
        slimcore.prune(s, slimcore.PruneConfig(0.5, structured=True))
    run = slimcore.api.prune_gradually(s, P.GradualConfig(P.PruneConfig(0.5), steps=2, epochs=2, batch_size=4))
    assert [round(t.amount, 3) for t in run.steps] == [0.438, 0.5]   # the cubic schedule, fine-tuned on its loss
    assert sum(int((m.weight == 0).sum()) for m in slimcore.weight_layers(run.model).values()) == 8
    assert run.steps[-1].score >= run.steps[-1].oneshot   # fine-tuning on the family's MSE does not make it worse
