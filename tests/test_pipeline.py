"""Deep Compression pipeline: every stream decodes to the model it claims, Huffman codes are valid and never longer
than fixed widths, and the pipeline on digits-mlp shrinks stage by stage with consistent sizes; on the sentence
encoder (slow) every stage's size is its stream's bytes and its score that of the model decoded from them."""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import slimcore
from slimcore import pipeline as PL


@given(st.integers(1, 12), st.lists(st.integers(0, 4095), max_size=300))
def test_fixed_width_packing_round_trips(bits, values):
    symbols = np.array([v % (1 << bits) for v in values], dtype=np.int64)
    assert PL.unpack_bits(PL.pack_bits(symbols, bits), bits, len(symbols)).tolist() == symbols.tolist()


@given(st.lists(st.integers(0, 15), min_size=1, max_size=400))
def test_huffman_round_trips_and_beats_fixed_width(values):
    symbols = np.array(values, dtype=np.int64)
    lengths = PL.huffman_lengths(symbols, 16)
    used = lengths[lengths > 0]
    if len(used) > 1:
        assert sum(2.0 ** -used) == pytest.approx(1.0)  # a complete prefix code (Kraft equality)
    data = PL.huffman_encode(symbols, lengths)
    assert PL.huffman_decode(data, lengths, len(symbols)).tolist() == values
    assert int((lengths[symbols]).sum()) <= 4 * len(symbols) or len(used) == 1


@given(st.lists(st.booleans(), min_size=1, max_size=500), st.integers(2, 6))
def test_gap_coding_of_positions_round_trips(mask, bits):
    mask = np.array(mask)
    mask[::97] = False  # long runs of zeros exercise the skip symbol
    symbols = PL.encode_positions(mask, bits)
    assert symbols.max(initial=0) < 1 << bits
    assert PL.decode_positions(symbols, bits, len(mask)).tolist() == mask.tolist()


def test_kmeans_assigns_to_the_nearest_centroid():
    values = np.concatenate([np.full(10, -1.0), np.full(10, 0.5), np.full(5, 2.0)])
    centroids, assign = PL.kmeans_1d(values, 4)
    assert np.abs(values - centroids[assign]).max() < 1e-9


@pytest.fixture(scope="module")
def result():
    s = slimcore.load_sample("digits-mlp")
    before = {k: v.clone() for k, v in s.model.state_dict().items()}
    seen = []
    res = PL.deep_compression(s, on_stage=seen.append)
    assert all(torch.equal(v, s.model.state_dict()[k]) for k, v in before.items())
    return s, res, seen


def test_pipeline_stages_shrink_and_sizes_are_the_streams(result):
    s, res, seen = result
    assert list(res.stages) == seen
    assert [st.name for st in res.stages] == ["original (fp32)", "pruned + fine-tuned", "weight sharing",
                                              "Huffman coded"]
    sizes = [st.bytes for st in res.stages]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 4
    assert sizes[0] == slimcore.serialized_bytes(s.model)
    for stage in res.stages[1:]:
        assert stage.bytes == len(res.streams[stage.name]) and stage.label == "measured"
        assert stage.ratio == pytest.approx(sizes[0] / stage.bytes)
        assert stage.score == slimcore.accuracy(PL.decode(res.streams[stage.name], s.model), s.test)


def test_pipeline_meets_the_targets_on_digits_mlp(result):
    s, res, _ = result
    final = res.stages[-1]
    assert final.ratio >= 30
    assert final.score >= res.stages[0].score - 0.01
    assert final.score == slimcore.accuracy(res.model, s.test)


def test_weight_sharing_leaves_at_most_2_to_the_k_values_per_layer(result):
    s, res, _ = result
    shared = PL.decode(res.streams["weight sharing"], s.model)
    for name, m in slimcore.weight_layers(shared).items():
        assert len(torch.unique(m.weight[m.weight != 0])) <= 16, name  # 4-bit indices


def test_damaged_streams_are_clear_errors(result):
    s, res, _ = result
    stream = res.streams["Huffman coded"]
    for bad in (b"", stream[:len(stream) // 2], b"XXXXX" + stream[5:], stream + b"\0"):
        with pytest.raises(ValueError):
            PL.decode(bad, s.model)
    with pytest.raises(ValueError):
        PL.decode(stream, slimcore.load_sample("digits-cnn").model)  # another architecture


def test_single_byte_damage_is_always_found(result):
    s, res, _ = result
    stream = bytearray(res.streams["Huffman coded"])
    rng = np.random.default_rng(0)
    for i in rng.integers(len(PL.MAGIC), len(stream), size=40):
        bad = bytearray(stream)
        bad[i] ^= 0xFF
        with pytest.raises(ValueError):
            PL.decode(bytes(bad), s.model)


def test_a_stopped_pipeline_reports_only_what_it_finished():
    s = slimcore.load_sample("digits-mlp")
    calls = []
    res = PL.deep_compression(s, should_stop=lambda: calls.append(1) or len(calls) > 5)
    assert res.cancelled
    assert [st.name for st in res.stages] == ["original (fp32)"]


@pytest.mark.slow
def test_deep_compression_on_the_encoder_measures_its_streams():
    """Tiny settings (1 pruning step without fine-tuning, 1 epoch of centroid tuning): what is checked is that every
    stage is its own stream, decoded through the encoder family's layers, embedding tables and all."""
    s = slimcore.load_sample("minilm")
    fam = slimcore.family_of(s)
    before = {k: v.clone() for k, v in s.model.state_dict().items()}
    res = PL.deep_compression(s, prune_amount=0.9, bits=3, steps=1, finetune_epochs=0, cluster_epochs=1, lr=1e-4,
                              batch_size=32)
    assert all(torch.equal(v, s.model.state_dict()[k]) for k, v in before.items())
    assert not res.cancelled and [st.name for st in res.stages] == ["original (fp32)", "pruned + fine-tuned",
                                                                    "weight sharing", "Huffman coded"]
    sizes = [st.bytes for st in res.stages]
    assert sizes[0] == slimcore.serialized_bytes(s.model) and sizes == sorted(sizes, reverse=True)
    tables = sum(v.numel() * 4 for k, v in s.model.state_dict().items() if k.startswith("embeddings.")
                 and v.dim() == 2)
    test = fam.scorer(s, "test")
    assert res.stages[0].score == 1.0
    decoded = {}
    for stage in res.stages[1:]:
        assert stage.bytes == len(res.streams[stage.name]) and stage.label == "measured" > "" and tables < stage.bytes
        decoded[stage.name] = PL.decode(res.streams[stage.name], s.model, fam)
        assert stage.score == test(decoded[stage.name]).value
        assert "embeddings.word_embeddings.weight" in stage.detail and "stay fp32" in stage.detail
    for k, v in s.model.state_dict().items():   # the embedding tables come back exactly (fp32)
        if k.startswith("embeddings."):
            assert torch.equal(decoded["Huffman coded"].state_dict()[k], v), k
    layers = fam.layers(decoded["weight sharing"])
    kept = sum(int(torch.count_nonzero(m.weight)) for m in layers.values())
    assert kept == pytest.approx(0.1 * sum(m.weight.numel() for m in layers.values()), rel=1e-3)
    for name, m in layers.items():
        assert len(torch.unique(m.weight[m.weight != 0])) <= 8, name   # 3-bit indices
    huff = decoded["Huffman coded"].state_dict()
    assert all(torch.equal(huff[k], v) for k, v in decoded["weight sharing"].state_dict().items())
    assert res.stages[-1].score == test(res.model).value
