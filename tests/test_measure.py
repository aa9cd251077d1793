"""Measurement functions agree with hand computations and with what torch itself reports."""
import math

import pytest
import torch
from torch import nn

import slimcore
from slimcore import metrics


def test_accuracy_matches_a_manual_count(digits_cnn):
    logits = digits_cnn.model(digits_cnn.test.x)
    manual = (logits.argmax(1) == digits_cnn.test.y).sum().item() / len(digits_cnn.test)
    assert slimcore.accuracy(digits_cnn.model, digits_cnn.test) == pytest.approx(manual)


def test_agreement_with_itself_and_with_a_different_model(digits_cnn):
    x = digits_cnn.test.x
    assert slimcore.agreement(digits_cnn.model, digits_cnn.model, x) == 1.0
    torch.manual_seed(0)
    other = type(digits_cnn.model)().eval()
    assert slimcore.agreement(other, digits_cnn.model, x) < 0.5


def test_layer_table_of_digits_cnn_by_hand(digits_cnn):
    rows = {r.name: r for r in slimcore.layer_table(digits_cnn.model, (1, 8, 8))}
    assert list(rows) == ["conv1", "conv2", "fc1", "fc2"]
    assert rows["conv1"].macs == 20 * 8 * 8 * (1 * 3 * 3)
    assert rows["conv2"].macs == 50 * 4 * 4 * (20 * 3 * 3)
    assert rows["fc1"].macs == 200 * 500
    assert rows["fc1"].params == 200 * 500 + 500
    assert sum(r.params for r in rows.values()) == sum(p.numel() for p in digits_cnn.model.parameters())


def test_layer_table_counts_zeros_and_conv1d():
    net = nn.Sequential(nn.Conv1d(2, 4, 3, stride=2), nn.Flatten(), nn.Linear(4 * 4, 3))
    with torch.no_grad():
        net[2].weight[:, :8] = 0
    rows = slimcore.layer_table(net, (2, 10))
    assert rows[0].macs == 4 * 4 * (2 * 3)
    assert rows[1].nonzeros == 3 * 8 + int(torch.count_nonzero(net[2].bias))
    assert rows[1].sparsity == pytest.approx(1 - rows[1].nonzeros / rows[1].params)


def test_serialized_bytes_are_the_torch_save_bytes(sample, tmp_path):
    path = tmp_path / "archive.pt"  # torch.save names the zip records after the file; a buffer gets "archive"
    torch.save(sample.model.state_dict(), path)
    assert slimcore.serialized_bytes(sample.model) == path.stat().st_size
    assert path.stat().st_size > 4 * sum(p.numel() for p in sample.model.parameters())


def test_modelled_size_dense_bitmask_csr():
    net = nn.Linear(100, 10)  # 1000 weights, 10 biases
    with torch.no_grad():
        net.weight.zero_()
        net.weight[:, :5] = 1.0  # 50 non-zeros
    dense = slimcore.modelled_size(net, bits=32, fmt="dense")
    assert dense.bytes == (1000 * 32 + 10 * 32) / 8 and dense.label == "modelled"
    assert slimcore.modelled_size(net, 8, "bitmask").bytes == (1000 + 50 * 8 + 320) / 8
    assert slimcore.modelled_size(net, 8, "csr").bytes == (50 * (8 + math.ceil(math.log2(100))) + 11 * 32 + 320) / 8
    best = slimcore.modelled_size(net, 8)
    assert best.bytes == min(slimcore.modelled_size(net, 8, f).bytes for f in metrics.SPARSE_FORMATS)
    with pytest.raises(ValueError):
        slimcore.modelled_size(net, 0)
    with pytest.raises(ValueError, match="format"):
        slimcore.modelled_size(net, 8, "zip")


def test_latency_record(digits_cnn):
    lat = slimcore.latency(digits_cnn.model, digits_cnn.test.x[:10], batch=32, threads=1, warmup=2, repeats=7)
    assert lat.batch == 32 and lat.threads == 1 and lat.repeats == 7
    assert 0 < lat.p10_ms <= lat.median_ms <= lat.p90_ms
    assert lat.iqr_ms >= 0 and "batch 32" in lat.describe()
    assert torch.get_num_threads() >= 1
    with pytest.raises(ValueError):
        slimcore.latency(digits_cnn.model, digits_cnn.test.x[:1], batch=0)


def test_latency_restores_thread_count(digits_cnn):
    before = torch.get_num_threads()
    slimcore.latency(digits_cnn.model, digits_cnn.test.x[:4], threads=1, repeats=5)
    assert torch.get_num_threads() == before


def test_measure_is_consistent(sample):
    m = slimcore.measure(sample, repeats=5)
    assert m.accuracy == m.score.value == slimcore.accuracy(sample.model, sample.test)
    assert m.score.metric.short == "accuracy" and m.score.examples == len(sample.test)
    layers = slimcore.weight_layers(sample.model)   # the rows; other parameters are BatchNorm's scales and shifts
    others = sum(p.numel() for n, p in sample.model.named_parameters() if n.rpartition(".")[0] not in layers)
    assert m.params == sum(r.params for r in m.layers) + others == m.nonzeros
    assert m.macs == sum(r.macs for r in m.layers) > 0
    assert m.latency_b1.batch == 1 and m.latency_b256.batch == 256


def test_measurement_does_not_change_the_model(digits_cnn):
    before = {k: v.clone() for k, v in digits_cnn.model.state_dict().items()}
    slimcore.measure(digits_cnn, repeats=5)
    assert all(torch.equal(before[k], v) for k, v in digits_cnn.model.state_dict().items())
    assert not digits_cnn.model.training


def test_measure_without_timing_leaves_latency_out(digits_cnn):
    m = slimcore.measure(digits_cnn, timing=False)
    assert m.latency_b1 is None and m.latency_b256 is None
    assert m.accuracy == slimcore.accuracy(digits_cnn.model, digits_cnn.test)


class _Recorder(torch.nn.Module):
    def __init__(self, name, log, pause=0.0):
        super().__init__()
        self.name, self.log, self.pause = name, log, pause

    def forward(self, x):
        import time
        self.log.append(self.name)
        time.sleep(self.pause)
        return x


@pytest.mark.serial  # asserts on measured times (3 ms apart): other tests on the same cores could blur them
def test_compare_latency_times_models_round_robin():
    log = []
    models = {"fast": _Recorder("fast", log), "slow": _Recorder("slow", log, pause=0.003)}
    out = slimcore.compare_latency(models, torch.zeros(4, 3), batch=8, warmup=2, repeats=6)
    assert log[4:] == ["fast", "slow"] * 6          # after 2 + 2 warm-up calls, alternating
    assert out["slow"].median_ms > 3 > out["fast"].median_ms
    assert out["fast"].repeats == out["slow"].repeats == 6 and out["fast"].batch == 8


def test_noisy_flags_a_wide_spread():
    steady = slimcore.Latency(1.0, 0.1, 0.9, 1.1, 1, 1, 5, 30)
    busy = slimcore.Latency(1.0, 0.6, 0.5, 3.0, 1, 1, 5, 30)
    assert not steady.noisy and busy.noisy


def test_noisy_at_its_boundaries():
    import os

    assert not slimcore.Latency(1.0, 0.25, 0.9, 1.1, 1, 1, 5, 30).noisy          # IQR exactly a quarter
    assert slimcore.Latency(1.0, 0.26, 0.9, 1.1, 1, 1, 5, 30).noisy
    cores = os.cpu_count() or 1
    assert not slimcore.Latency(1.0, 0.1, 0.9, 1.1, 1, 1, 5, 30, load=cores - 0.1).noisy
    assert slimcore.Latency(1.0, 0.1, 0.9, 1.1, 1, 1, 5, 30, load=cores + 0.5).noisy  # steady contention
    assert slimcore.latency(torch.nn.Identity(), torch.zeros(2, 3), repeats=5).load >= 0
