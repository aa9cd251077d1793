"""Distillation of the text encoder (the encoder family's part, slimcore.text_distill, run by the one loop): the
student's initialisation, the loss against PyTorch's own KL, the T² scaling, the training sentences, and a short
seeded run that must beat the untrained student."""
from __future__ import annotations

import dataclasses
import types

import pytest
import torch
import torch.nn.functional as F

import slimcore
from slimcore import distillation as D
from slimcore import families
from slimcore import text as T
from slimcore import text_distill as TD

ENCODER = families.get("encoder")


def loss(s: torch.Tensor, t: torch.Tensor, temperature: float, alpha: float, **kw) -> D.LossParts:
    """The encoder family's loss; alpha weighs the soft (similarity) term."""
    return ENCODER.distill_loss(s, t, None, dataclasses.replace(ENCODER.distill_defaults, temperature=temperature,
                                                                alpha=alpha, **kw))


@pytest.fixture(scope="module")
def sample():
    return slimcore.load_sample("minilm")


def unit(n: int, seed: int) -> torch.Tensor:
    return F.normalize(torch.randn(n, 384, generator=torch.Generator().manual_seed(seed)), dim=1)


# ------------------------------------------------------------------------------------------------------- students

def test_kept_layers_rule():
    assert [TD.kept_layers(6, n) for n in range(1, 6)] == [(5,), (0, 5), (0, 3, 5), (0, 2, 3, 5), (0, 1, 3, 4, 5)]
    for n in range(2, 12):
        for k in range(1, n):
            kept = TD.kept_layers(n, k)
            assert len(set(kept)) == k and kept[-1] == n - 1 and list(kept) == sorted(kept)
    for bad in (0, 6, -1):
        with pytest.raises(ValueError):
            TD.kept_layers(6, bad)


@pytest.mark.parametrize("layers", [1, 2, 3, 4, 5])
def test_student_copies_exactly_the_chosen_layers(sample, layers):
    teacher = sample.model
    student = TD.student_from_teacher(teacher, layers)
    kept = TD.kept_layers(6, layers)
    t, s = teacher.state_dict(), student.state_dict()
    assert len(student.encoder.layer) == layers
    expected = {k: v for k, v in t.items() if not k.startswith("encoder.")}
    for new, old in enumerate(kept):
        expected |= {k.replace(f"encoder.layer.{old}.", f"encoder.layer.{new}.", 1): v for k, v in t.items()
                     if k.startswith(f"encoder.layer.{old}.")}
    assert s.keys() == expected.keys()
    for k, v in s.items():
        assert torch.equal(v, expected[k]), k
        assert v.data_ptr() != expected[k].data_ptr(), f"{k} shares memory with the teacher"
    assert not student.training and not any(p.requires_grad for p in student.parameters())
    share = dataclasses.replace(ENCODER.distill_defaults, student=TD.share(teacher, layers))
    assert len(ENCODER.student(teacher, share).encoder.layer) == layers == TD.student_layers(teacher, share.student)


def test_student_runs_the_kept_layers(sample):
    """The student's forward is the teacher's forward with the other layers skipped."""
    teacher, student = sample.model, TD.student_from_teacher(sample.model, 2)
    ids = T.pad([list(i) for i in sample.data.test.ids[:8]])
    with torch.inference_mode():
        keep = ids != T.PAD_ID
        h = teacher.embeddings(ids)
        for i in TD.kept_layers(6, 2):
            h = teacher.encoder.layer[i](h, keep)
        w = keep.unsqueeze(-1).float()
        manual = F.normalize((h * w).sum(1) / w.sum(1), dim=1)
        assert torch.allclose(student(ids), manual, atol=1e-5)


# ----------------------------------------------------------------------------------------------------------- loss

@pytest.mark.parametrize("temperature", [0.05, 0.1, 1.0, 5.0])
@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_loss_is_zero_for_identical_embeddings(temperature, alpha):
    e = unit(16, 0)
    parts = loss(e.clone(), e, temperature, alpha)
    assert abs(float(parts.total)) < 1e-6 and abs(float(parts.soft)) < 1e-6 and abs(float(parts.hard)) < 1e-6


@pytest.mark.parametrize("temperature", [0.05, 0.3, 2.0])
def test_kl_part_matches_torch_kl_div(temperature):
    """Rows built by hand (each sentence against the others), then torch.nn.functional.kl_div with plain
    probabilities as its target, and the textbook sum p log(p / q)."""
    s, t = unit(10, 1), unit(10, 2)
    rows_s = torch.stack([torch.cat([s[i] @ s[:i].T, s[i] @ s[i + 1:].T]) for i in range(10)])
    rows_t = torch.stack([torch.cat([t[i] @ t[:i].T, t[i] @ t[i + 1:].T]) for i in range(10)])
    log_q = F.log_softmax(rows_s / temperature, dim=1)
    p = F.softmax(rows_t / temperature, dim=1)
    reference = F.kl_div(log_q, p, reduction="batchmean")
    textbook = (p * (p.log() - log_q)).sum(1).mean()
    kl = loss(s, t, temperature, 1.0).soft
    assert torch.allclose(kl, reference, rtol=1e-5, atol=1e-7)
    assert torch.allclose(kl, textbook, rtol=1e-4, atol=1e-7)
    # the hard part is torch's MSE to the teacher's embeddings, which for unit vectors is 2 (1 - cos) / d
    emb = loss(s, t, temperature, 0.0).total
    assert torch.allclose(emb, F.mse_loss(s, t)) and torch.allclose(emb, 2 * (1 - (s * t).sum(1)).mean() / s.shape[1])


def test_t_squared_scaling():
    s, t = unit(12, 3), unit(12, 4)
    for temperature in (0.1, 1.0, 4.0):
        for alpha in (1.0, 0.7):
            p = loss(s, t, temperature, alpha)
            assert torch.allclose(p.total, alpha * temperature ** 2 * p.soft + (1 - alpha) * p.hard, atol=1e-7)
            q = loss(s, t, temperature, alpha, t_squared=False)
            assert torch.allclose(q.total, alpha * q.soft + (1 - alpha) * q.hard, atol=1e-7)
    # at large T, T^2 * KL tends to half the variance of the similarity differences along each row
    diff = TD.similarity_logits(t) - TD.similarity_logits(s)
    limit = 0.5 * diff.var(dim=1, unbiased=False).mean()
    scaled = [float(T_ ** 2 * loss(s.double(), t.double(), T_, 1.0).soft) for T_ in (10.0, 100.0, 1000.0)]
    assert abs(scaled[-1] - float(limit)) < 1e-3 * float(limit)
    assert abs(scaled[0] - float(limit)) > abs(scaled[-1] - float(limit))   # and converges as T grows
    # without the T^2 factor the similarity term would vanish as 1 / T^2
    assert float(loss(s, t, 100.0, 1.0).soft) < 1e-3 * float(loss(s, t, 1.0, 1.0).soft)


def test_similarity_rows_leave_out_the_diagonal():
    e = unit(5, 5)
    rows = TD.similarity_logits(e)
    assert rows.shape == (5, 4)
    full = e @ e.T
    assert torch.allclose(rows[2], torch.cat([full[2, :2], full[2, 3:]]))
    p = TD.similarity_distribution(e, 0.1)
    assert torch.allclose(p.sum(1), torch.ones(5)) and p.shape == (5, 4)


@pytest.mark.parametrize("change", [dict(student=0.0), dict(temperature=0.0), dict(temperature=-1.0),
                                    dict(temperature=float("nan")), dict(alpha=-0.1), dict(alpha=1.5),
                                    dict(epochs=0), dict(lr=0.0), dict(lr=float("inf")), dict(seed=-1),
                                    dict(epochs=2.5)])
def test_bad_config_is_refused(change):
    with pytest.raises(ValueError):
        dataclasses.replace(ENCODER.distill_defaults, **change)


def test_what_the_encoder_cannot_do_is_refused(sample):
    whole = dataclasses.replace(ENCODER.distill_defaults, student=1.0)   # all 6 layers: not a smaller student
    with pytest.raises(ValueError, match="1 to 5 of the teacher's 6 layers"):
        ENCODER.student(sample.model, whole)
    with pytest.raises(ValueError, match="at least 4 sentences"):
        slimcore.distill(sample, dataclasses.replace(ENCODER.distill_defaults, batch_size=2))


def test_config_is_plain_hashable_data():
    cfg = ENCODER.distill_defaults
    assert hash(cfg) == hash(dataclasses.replace(cfg)) and dataclasses.replace(cfg, seed=1) != cfg


# ------------------------------------------------------------------------------------------------ training sentences

def test_training_pool_holds_train_sentences_and_their_variants_only(sample):
    train, test = sample.data.train, sample.data.test
    pool = TD.training_pool(train, seed=0)
    assert len(pool) == 3 * len(train) and set(pool.kind) == {"sentence", "word-dropped", "fragment"}
    assert not set(pool.texts) & set(test.texts)
    for text, src, kind in zip(pool.texts, pool.source, pool.kind):
        words, source = text.split(), train.texts[src].split()
        if kind == "sentence":
            assert text == train.texts[src]
        elif kind == "fragment":
            assert any(source[i:i + len(words)] == words for i in range(len(source)))
        else:  # word-dropped: an ordered subsequence, shorter, at least half
            it = iter(source)
            assert all(w in it for w in words) and len(source) // 2 <= len(words) < len(source)
    assert TD.training_pool(train, seed=0) == pool and TD.training_pool(train, seed=1).texts != pool.texts


def test_batches_cover_the_pool_once_with_groups_together(sample):
    pool = TD.training_pool(sample.data.train, seed=0)
    for epoch in (0, 1):
        bs = TD.batches(pool, 32, seed=0, epoch=epoch)
        flat = [i for b in bs for i in b]
        assert sorted(flat) == list(range(len(pool)))
        assert all(3 <= len(b) <= 32 + 2 for b in bs)
        groups = [pool.group[i] for i in flat]   # each group's sentences side by side
        assert sum(1 for a, b in zip(groups, groups[1:]) if a != b) == len(set(groups)) - 1
    assert TD.batches(pool, 32, 0, 0) == TD.batches(pool, 32, 0, 0) != TD.batches(pool, 32, 0, 1)


# ------------------------------------------------------------------------------------------------------ training

def small(s, train: int = 24, test: int = 32):
    """The sample with fewer sentences (a sample is anything with a model and data of its family)."""
    data = s.data
    return types.SimpleNamespace(model=s.model, data=T.TextData(data.train.subset(train), data.test.subset(test),
                                                                 data.about, quick=16))


def test_tiny_runs_are_deterministic_and_report_progress(sample):
    tiny = small(sample)
    cfg = dataclasses.replace(ENCODER.distill_defaults, student=TD.share(sample.model, 1), epochs=2, batch_size=16,
                              seed=3)
    fractions, epochs = [], []
    a = slimcore.distill(tiny, cfg, on_batch=fractions.append, on_epoch=epochs.append)
    b = slimcore.distill(tiny, cfg)
    c = slimcore.distill(tiny, dataclasses.replace(cfg, seed=4, epochs=1))
    sa, sb, sc = a.student.state_dict(), b.student.state_dict(), c.student.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa)
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) == sum(
        len(TD.batches(TD.training_pool(tiny.data.train, 3), 16, 3, e)) for e in (0, 1))
    assert [e.epoch for e in epochs] == [1, 2] and tuple(epochs) == a.history
    assert a.examples == 72 and len(a.student.encoder.layer) == 1
    assert a.before.examples == 16 and a.before.detail.sentences == 16 and epochs[-1].score.detail.sentences == 16
    assert epochs[-1].train_score is None


@pytest.fixture(scope="module")
def short_run(sample):
    before = {k: v.clone() for k, v in sample.model.state_dict().items()}
    cfg = dataclasses.replace(ENCODER.distill_defaults, student=TD.share(sample.model, 2), epochs=1, seed=0)
    return slimcore.distill(sample, cfg), before


@pytest.mark.slow
def test_short_run_beats_the_untrained_student_on_held_out_sentences(sample, short_run):
    r, _ = short_run
    assert r.history[-1].score.value > r.before.value + 0.05
    test = ENCODER.scorer(sample, "test")
    trained, untrained = test(r.student), test(ENCODER.student(sample.model, r.config))
    assert trained.value > untrained.value + 0.05
    assert trained.detail.spearman > untrained.detail.spearman
    # and the training loss fell: the first batches of the epoch, scored before and after
    pool = TD.training_pool(sample.data.train, r.config.seed)
    batches = TD.batches(pool, r.config.batch_size, r.config.seed, 0)[:6]
    untrained = ENCODER.student(sample.model, r.config)

    def total(model) -> float:
        with torch.inference_mode():
            return sum(float(ENCODER.distill_loss(model(ids), sample.model(ids), None, r.config).total)
                       for ids in (T.pad([list(pool.ids[i]) for i in b]) for b in batches))
    assert total(r.student) < 0.8 * total(untrained)


@pytest.mark.slow
def test_teacher_is_not_touched(sample, short_run):
    r, before = short_run
    after = sample.model.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)
    assert not any(p.requires_grad for p in sample.model.parameters()) and not sample.model.training
    assert not any(p.requires_grad for p in r.student.parameters())
    assert len(sample.model.encoder.layer) == 6
