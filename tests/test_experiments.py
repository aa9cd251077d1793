"""The distillation experiments (slimcore.experiments) on tiny settings: the data each student sees (stratified labels,
a transfer set without the held-out class), the loss (soft targets on inputs without labels), the same budget for
both arms, the thinned teacher, determinism, the spread, and the plot builders and the CLI table that show them."""
import math
import statistics
import types
from dataclasses import replace

import pytest
import torch
from torch.nn import functional as F

import slimcore
from slimcore import distillation as D
from slimcore import experiment_plots as EP
from slimcore import experiments as E
from slimcore import store

TINY = replace(E.TRAINING, epochs=1)   # 17 steps a student on digits


def test_the_labelled_subset_is_stratified_seeded_and_covers_every_class():
    y = torch.tensor([0] * 100 + [1] * 50 + [2] * 3)
    idx = E.labelled_subset(y, 0.1, seed=4)
    assert torch.bincount(y[idx]).tolist() == [10, 5, 1]          # round(0.1 x count), at least one per class
    assert torch.equal(idx, E.labelled_subset(y, 0.1, seed=4)) and not torch.equal(idx, E.labelled_subset(y, 0.1, 5))
    assert torch.equal(idx, idx.sort().values) and len(set(idx.tolist())) == len(idx)
    assert torch.equal(E.labelled_subset(y, 1.0, 0), torch.arange(len(y)))
    with pytest.raises(ValueError, match="share"):
        E.labelled_subset(y, 0.0, 0)


def test_batches_cycle_through_the_examples_equally_often():
    b = E.batch_stream(10, 4, 7, seed=1)
    assert b.shape == (7, 4)
    counts = torch.bincount(b.flatten(), minlength=10)
    assert counts.max() - counts.min() <= 1                       # 28 draws over 10 examples: 2 or 3 each
    assert E.batch_stream(3, 64, 5, seed=1).shape == (5, 3)      # fewer examples than a batch: all of them
    assert torch.equal(b, E.batch_stream(10, 4, 7, seed=1))


def test_the_loss_is_soft_on_the_transfer_batch_and_hard_on_the_labelled_one():
    gen = torch.Generator().manual_seed(0)
    s_lab, s_tr, t_tr = (torch.randn(6, 10, generator=gen, requires_grad=True) for _ in range(3))
    y = torch.randint(0, 10, (6,), generator=gen)
    cfg = D.DistillConfig(temperature=3.0, alpha=0.3)
    parts = E.distill_loss(s_lab, y, s_tr, t_tr, cfg)
    with torch.no_grad():
        assert float(parts.hard) == pytest.approx(float(F.cross_entropy(s_lab, y)))
        assert float(parts.soft) == pytest.approx(float(D.soft_kl(s_tr, t_tr, 3.0)))
        same = D.classifier_loss(s_lab, t_tr, y, cfg)              # one batch for both terms: the lab's loss
        assert float(E.distill_loss(s_lab, y, s_lab, t_tr, cfg).total) == pytest.approx(float(same.total))
    parts.total.backward()                                       # the transfer inputs (no labels) get a gradient
    assert s_tr.grad.abs().sum() > 0 and s_lab.grad.abs().sum() > 0


def test_soft_targets_on_inputs_without_labels_teach_their_class(digits_cnn):
    """No 9 carries a label, but every 9 is in the transfer set: the distilled student learns 9s from the teacher's
    soft targets; the same student on the same labelled batches without them never predicts one."""
    s, train, test = digits_cnn, digits_cnn.data.train, digits_cnn.test
    labelled = E.without_class(train, 9)
    cfg = replace(TINY, student=0.5)
    student = D.make_student(s.model, 0.5, 0)
    distilled = E.train_student(student, labelled, E.transfer_set(s.model, train.x), cfg, 120)
    scratch = E.train_student(student, labelled, None, cfg, 120)
    assert E.recall(slimcore.predict(distilled, test.x), test.y, 9) > 0.5
    assert E.recall(slimcore.predict(scratch, test.x), test.y, 9) == 0.0
    assert torch.equal(student.fc1.weight, D.make_student(s.model, 0.5, 0).fc1.weight)   # the given one untouched


def test_dark_knowledge_never_shows_the_held_out_class_and_both_arms_get_one_budget(digits_cnn, monkeypatch):
    seen = []
    real = E.train_student

    def spy(student, labelled, transfer, cfg, steps):
        seen.append((labelled, transfer, cfg.seed, steps, D.parameters(student)))
        return real(student, labelled, transfer, cfg, steps)

    monkeypatch.setattr(E, "train_student", spy)
    r = E.dark_knowledge(digits_cnn, E.DarkConfig(held_out=7, seeds=2, train=TINY))
    assert len(seen) == 4 and sum(t is None for _, t, *_ in seen) == 2   # per seed: distilled, then scratch
    for labelled, transfer, *_ in seen:
        assert 7 not in labelled.y.tolist() and len(labelled) == r.examples
        if transfer is not None:                                   # the transfer set: those same inputs
            assert torch.equal(transfer.x, labelled.x)
    assert {(seed, steps, params) for *_, seed, steps, params in seen} == {(0, r.steps, r.parameters),
                                                                           (1, r.steps, r.parameters)}
    train = digits_cnn.data.train
    assert r.steps == E.budget(len(train), TINY) and r.removed == int((train.y == 7).sum())
    assert r.recall_scratch.values == (0.0, 0.0)                  # never trained to say 7
    assert r.class_examples == int((digits_cnn.test.y == 7).sum())


def test_scarce_labels_is_deterministic_and_pairs_the_arms(digits_cnn):
    cfg = E.ScarceConfig(fraction=0.05, seeds=2, train=TINY)
    a, b = E.scarce_labels(digits_cnn, cfg), E.scarce_labels(digits_cnn, cfg)
    assert replace(a, seconds=0) == replace(b, seconds=0)         # every per-seed value identical
    assert a.labelled == len(E.labelled_subset(digits_cnn.data.train.y, 0.05, 0)) and a.examples == 1079
    assert a.gain.values == pytest.approx([d - s for d, s in zip(a.distilled.values, a.scratch.values)])
    other = E.scarce_labels(digits_cnn, replace(cfg, train=replace(TINY, seed=1)))
    assert other.distilled.values[0] == a.distilled.values[1]      # seeds run from train.seed: seed 1 is seed 1


def test_a_result_survives_the_result_cache(digits_cnn, tmp_path):
    r = E.scarce_labels(digits_cnn, E.ScarceConfig(fraction=0.2, seeds=2, train=TINY))
    kept = store.Store(tmp_path)
    assert kept.put("exp_scarce", "m", r.config, r, r.seconds)
    assert kept.get("exp_scarce", "m", r.config)[0] == r


def test_the_thinned_teacher_has_the_students_shape(sample):
    student = D.student_architecture(sample.model, 0.5)
    before = store.model_hash(sample.model)
    thin = E.thinned_teacher(sample.model, student, slimcore.families.family_of(sample).example(sample))
    assert [p.shape for p in thin.parameters()] == [p.shape for p in student.parameters()]
    assert store.model_hash(sample.model) == before                # the teacher is not changed


def test_the_thinned_teacher_keeps_the_teachers_channels_of_highest_l1_norm(digits_cnn):
    teacher = digits_cnn.model
    thin = E.thinned_teacher(teacher, D.student_architecture(teacher, 0.25), digits_cnn.test.x[:1])
    full = teacher.conv1.weight
    chosen = full.flatten(1).abs().sum(1).topk(thin.conv1.weight.shape[0]).indices.sort().values
    assert torch.equal(thin.conv1.weight, full[chosen]) and torch.equal(thin.conv1.bias, teacher.conv1.bias[chosen])
    assert thin.fc2.weight.shape == (10, 125)                       # the output layer keeps its 10 classes


def test_weak_vs_strong_starts_from_the_teacher_and_reports_every_arm(digits_cnn):
    r = E.weak_strong(digits_cnn, E.WeakStrongConfig(share=0.05, seeds=2, train=TINY))
    assert r.arms == tuple(E.ARMS.values()) and len(r.accuracy) == 4
    assert r.parameters_weak == r.parameters_strong
    assert r.examples == len(E.labelled_subset(digits_cnn.data.train.y, 0.05, 0))
    assert r.strong.mean > r.weak.mean                              # one epoch from the teacher's weights goes further
    scarce = E.scarce_labels(digits_cnn, E.ScarceConfig(fraction=0.05, seeds=2, train=TINY))
    assert r.of("random init, labels alone") == scarce.scratch     # the same labels, init and batches: the same run


def test_spread_is_the_sample_sd_and_needs_two_seeds():
    s = E.spread([0.8, 0.9, 1.0])
    assert s.mean == pytest.approx(0.9) and s.sd == pytest.approx(statistics.stdev([0.8, 0.9, 1.0]))
    assert s.seeds == 3 and s.percent() == "90.0 % ± 10.0"
    with pytest.raises(ValueError, match="two seeds"):
        E.spread([0.5])


@pytest.mark.parametrize("make, message", [
    (lambda: E.ScarceConfig(fraction=0.0), "share of labels"),
    (lambda: E.ScarceConfig(fraction=1.5), "share of labels"),
    (lambda: E.ScarceConfig(seeds=1), "seeds must be"),
    (lambda: E.DarkConfig(held_out=-1), "held-out class"),
    (lambda: E.WeakStrongConfig(share=0), "share of training examples"),
])
def test_bad_settings_say_what_is_wrong(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_a_class_the_model_does_not_have_is_refused(digits_cnn):
    with pytest.raises(ValueError, match="one of 0..9"):
        E.dark_knowledge(digits_cnn, E.DarkConfig(held_out=10, seeds=2, train=TINY))


def test_the_bias_correction_raises_one_class_and_is_chosen_on_labelled_data():
    logits = torch.tensor([[2.0, 1.0], [2.0, 1.5], [0.0, 3.0]])
    labels = torch.tensor([1, 1, 1])
    assert E.best_shift(logits, labels, 1) == 1.25                 # the smallest shift that gets all three right
    moved = E.shifted(logits, 1, 1.25)
    assert moved[:, 1].tolist() == [2.25, 2.75, 4.25] and logits[0, 1] == 1.0
    assert E.recall(logits, labels, 1) == pytest.approx(1 / 3) and math.isnan(E.recall(logits, labels, 0))


def test_the_table_and_the_charts_show_the_same_figures(digits_cnn):
    cfg = E.ScarceConfig(fraction=0.05, seeds=2, train=TINY)
    r = E.scarce_labels(digits_cnn, cfg)
    rows = E.rows(r)
    assert [row["student"] for row in rows] == ["distilled", "scratch (labels alone)", "distilled - scratch (paired)"]
    assert rows[0]["mean, %"] == round(r.distilled.mean * 100, 2) and rows[0]["seeds"] == 2
    text = E.text_table(rows)
    assert text.splitlines()[0].split()[:2] == ["experiment", "setting"] and len(text.splitlines()) == 4
    refs = E.PUBLISHED["scarce"]
    fig = EP.scarce_labels_chart([5.0], [r.distilled], [r.scratch], 0.97, [(3.0, refs[1])], marker=5.0)
    assert list(fig.data[0].y) == [pytest.approx(r.distilled.mean * 100)]
    assert list(fig.data[0].error_y.array) == [pytest.approx(r.distilled.sd * 100)]
    assert list(fig.data[1].y) == pytest.approx([v * 100 for v in r.distilled.values])   # each seed a dot
    assert fig.data[-1].name.startswith("published reference") and fig.data[-1].y[0] == pytest.approx(44.5)
    dark = EP.dark_knowledge_chart(3, [r.distilled] * 4, [r.scratch] * 4, [refs[0], None, None, None])
    assert [t.name for t in dark.data][:2] == ["distilled", "scratch (labels alone)"]
    assert "published reference" in dark.data[2].name and "their setting" in dark.data[2].name
    ws = EP.weak_strong_chart(["weak: random init, distilled", "strong: teacher's thinned weights, distilled"],
                              [r.scratch, r.distilled], 0.5, 0.97)
    assert list(ws.data[0].y) == pytest.approx([r.scratch.mean * 100, r.distilled.mean * 100])
    assert len(ws.layout.shapes) == 2                                # the teacher and the thinned teacher


def test_published_figures_are_hintons_and_labelled_as_theirs():
    dark = {r.label: r.value for r in E.PUBLISHED["dark"]}
    assert dark["distilled: recall of the unseen class (3)"] == pytest.approx(1 - 133 / 1010)
    assert dark["distilled, bias of 3 raised by 3.5: recall of 3"] == pytest.approx(0.986, abs=5e-4)
    assert all("Hinton" in r.source and r.setting for refs in E.PUBLISHED.values() for r in refs)


def test_encoders_are_refused_in_one_line():
    from slimcore.text import TextData

    encoder = types.SimpleNamespace(name="an encoder", data=TextData(None, None, ""))   # what the encoder family owns
    with pytest.raises(ValueError, match="classifiers only, not sentence encoders"):
        E.scarce_labels(encoder, E.ScarceConfig(seeds=2, train=TINY))
