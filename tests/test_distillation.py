"""Distillation (the one loop, slimcore.distillation.distill, on the classifier family): the loss equals a hand
computation, T^2 is switchable, a seed fixes the result, a short run beats an untrained student, each family brings its
own defaults, and bad settings are clear errors."""
import dataclasses
import math

import pytest
import torch

import slimcore
from slimcore import distillation as D
from slimcore import families

CFG = D.DistillConfig(temperature=4.0, alpha=0.5, epochs=3, student=0.25)   # a quarter-width student


def test_loss_equals_a_hand_computation():
    s = torch.tensor([[1.0, 2.0, 0.5]])
    t = torch.tensor([[2.0, 0.0, 1.0]])
    y = torch.tensor([1])
    T, alpha = 2.0, 0.3

    def softmax(z):
        e = [math.exp(v / T) for v in z]
        return [v / sum(e) for v in e]

    ps, pt = softmax([1.0, 2.0, 0.5]), softmax([2.0, 0.0, 1.0])
    kl = sum(q * math.log(q / p) for p, q in zip(ps, pt))
    ce = -math.log(math.exp(2.0) / sum(math.exp(v) for v in (1.0, 2.0, 0.5)))
    cfg = D.DistillConfig(temperature=T, alpha=alpha)
    parts = families.get("classifier").distill_loss(s, t, y, cfg)
    assert float(parts.soft) == pytest.approx(kl, rel=1e-5)
    assert float(parts.hard) == pytest.approx(ce, rel=1e-5)
    assert float(parts.total) == pytest.approx(alpha * T * T * kl + (1 - alpha) * ce, rel=1e-5)
    no_t2 = D.classifier_loss(s, t, y, dataclasses.replace(cfg, t_squared=False))
    assert float(no_t2.total) == pytest.approx(alpha * kl + (1 - alpha) * ce, rel=1e-5)


def test_soften_and_entropy():
    z = torch.tensor([3.0, 1.0, 0.0])
    assert torch.allclose(D.soften(z, 1.0), torch.softmax(z, 0))
    assert D.entropy_bits(D.soften(z, 20.0)) > D.entropy_bits(D.soften(z, 1.0))
    assert float(D.entropy_bits(torch.full((4,), 0.25))) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        D.soften(z, 0.0)


@pytest.fixture(scope="module")
def digits_mlp():
    return slimcore.load_sample("digits-mlp")


def _run(sample, seed=0, **kw):
    return slimcore.distill(sample, dataclasses.replace(CFG, seed=seed), **kw)


@pytest.mark.slow
def test_same_seed_same_weights_and_inputs_untouched(digits_mlp):
    teacher = {k: v.clone() for k, v in digits_mlp.model.state_dict().items()}
    student = D.make_student("digits-mlp", 0.25, 0)
    initial = {k: v.clone() for k, v in student.state_dict().items()}
    cfg = dataclasses.replace(CFG, epochs=2)
    a = D.distill(digits_mlp, cfg, student=student)   # the family's student for cfg is this one: same weights
    b = slimcore.distill(digits_mlp, cfg)
    c = slimcore.distill(digits_mlp, dataclasses.replace(cfg, seed=1))
    assert all(torch.equal(v, b.student.state_dict()[k]) for k, v in a.student.state_dict().items())
    assert not all(torch.equal(v, c.student.state_dict()[k]) for k, v in a.student.state_dict().items())
    assert all(torch.equal(v, student.state_dict()[k]) for k, v in initial.items())
    assert all(torch.equal(v, digits_mlp.model.state_dict()[k]) for k, v in teacher.items())
    assert a.config == cfg and not any(p.requires_grad for p in a.student.parameters()) and not a.student.training


def test_short_distillation_beats_an_untrained_student(digits_mlp):
    seen = []
    res = _run(digits_mlp, on_epoch=seen.append)
    untrained = slimcore.accuracy(D.make_student("digits-mlp", 0.25, 0), digits_mlp.test)
    trained = slimcore.accuracy(res.student, digits_mlp.test)
    assert trained > 0.8 > untrained + 0.3
    assert [e.epoch for e in seen] == [1, 2, 3] and seen == list(res.history)
    assert seen[-1].loss < seen[0].loss and not res.cancelled
    # the family's headline per epoch: validation accuracy (choosing settings never peeks at test), and on train
    val = digits_mlp.data.val
    assert seen[-1].score.value == slimcore.accuracy(res.student, val) and seen[-1].score.examples == len(val)
    assert seen[-1].train_score.value == slimcore.accuracy(res.student, digits_mlp.data.train)
    assert res.before.value == slimcore.accuracy(D.make_student("digits-mlp", 0.25, 0), val) < 0.5
    assert res.examples == len(digits_mlp.data.train)


def test_each_family_brings_its_own_defaults(digits_mlp):
    clf, enc = families.get("classifier").distill_defaults, families.get("encoder").distill_defaults
    assert (clf.epochs, clf.temperature, clf.lr) == (10, 4.0, 1e-2)
    assert (enc.epochs, enc.temperature, enc.lr) == (3, 0.2, 1e-4)
    assert len(slimcore.distill(digits_mlp, dataclasses.replace(clf, epochs=1)).history) == 1


def test_distillation_can_be_cancelled(digits_mlp):
    calls = []
    res = _run(digits_mlp, should_stop=lambda: calls.append(1) or len(calls) > 20)
    assert res.cancelled and len(res.history) == 1


def test_students_are_smaller_versions_of_the_teacher(sample):
    x = sample.test.x[:3]
    teacher = sum(p.numel() for p in sample.model.parameters())
    sizes = [sum(p.numel() for p in D.student_architecture(sample.name, w).parameters()) for w in D.WIDTHS.values()]
    assert teacher > sizes[0] > sizes[1] > sizes[2] > sizes[3]
    assert D.student_architecture(sample.name, 0.5)(x).shape == sample.model(x).shape


@pytest.mark.parametrize("bad", [dict(temperature=0), dict(temperature=-1), dict(temperature=float("nan")),
                                 dict(alpha=1.5), dict(alpha=-0.1), dict(epochs=0), dict(epochs=2.5), dict(lr=0.0),
                                 dict(lr=float("inf")), dict(batch_size=0), dict(seed=-1), dict(student=0.0),
                                 dict(student=1.5)])
def test_bad_settings_are_clear_errors(bad):
    with pytest.raises(ValueError):
        dataclasses.replace(CFG, **bad)


def test_a_student_that_does_not_fit_the_data_is_a_clear_error(digits_mlp):
    wrong = D.make_student("mnist1d-mlp", 0.5, 0)  # takes 40 features, digits have 64
    with pytest.raises(ValueError, match="does not fit"):
        slimcore.distill(digits_mlp, dataclasses.replace(CFG, epochs=1), student=wrong)


def test_students_are_reproducible_while_other_threads_draw_random_numbers():
    import threading

    reference = {seed: D.make_student("digits-cnn", 0.5, seed).state_dict() for seed in (0, 1)}
    stop, wrong = threading.Event(), []

    def noise():
        while not stop.is_set():
            torch.rand(1000)
            torch.nn.Linear(50, 50)

    def build(seed):
        for _ in range(40):
            got = D.make_student("digits-cnn", 0.5, seed).state_dict()
            wrong.extend(k for k, v in got.items() if not torch.equal(v, reference[seed][k]))

    noisy = threading.Thread(target=noise)
    noisy.start()
    workers = [threading.Thread(target=build, args=(s,)) for s in (0, 1)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    stop.set()
    noisy.join()
    assert wrong == []


def test_progress_is_reported_after_every_batch(digits_mlp):
    fractions = []
    slimcore.distill(digits_mlp, dataclasses.replace(CFG, epochs=2, batch_size=256), on_batch=fractions.append)
    per_epoch = -(-len(digits_mlp.data.train) // 256)
    assert len(fractions) == 2 * per_epoch
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert fractions[per_epoch - 1] == pytest.approx(0.5)
