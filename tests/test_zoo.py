"""Sample models: trained weights load safely, their cards tell the truth, bad names and files give clear errors."""
import shutil

import pytest
import torch

import slimcore
from slimcore import zoo


def test_sample_loads_in_eval_mode_with_card(sample):
    assert not sample.model.training
    assert sample.card["name"] == sample.name
    assert sample.card["parameters"] == sum(p.numel() for p in sample.model.parameters())
    for key in ("architecture", "dataset", "test_accuracy", "command", "training"):
        assert key in sample.card


def test_card_accuracy_is_the_measured_accuracy(sample):
    assert slimcore.accuracy(sample.model, sample.test) == pytest.approx(sample.card["test_accuracy"], abs=1e-9)


def test_trained_models_reach_expected_accuracy(sample):
    floor = {"digits-mlp": 0.95, "digits-cnn": 0.96, "digits-resnet": 0.96, "mnist1d-mlp": 0.60,
             "mnist1d-cnn": 0.88}[sample.name]
    assert slimcore.accuracy(sample.model, sample.test) >= floor


def test_weights_load_with_weights_only(sample):
    state = torch.load(zoo.weights_path(sample.name), weights_only=True)
    assert set(state) == set(sample.model.state_dict())


def test_unknown_name_lists_known_models():
    with pytest.raises(KeyError) as e:
        slimcore.load_sample("resnet-9000")
    for name in slimcore.list_samples("classifier"):
        assert name in str(e.value)


@pytest.fixture
def tmp_samples(tmp_path, monkeypatch):
    for f in zoo.SAMPLE_DIR.glob("digits-mlp.*"):
        shutil.copy(f, tmp_path)
    monkeypatch.setattr(zoo, "SAMPLE_DIR", tmp_path)
    return tmp_path


def test_missing_weights_name_the_file_and_the_fix(tmp_samples):
    (tmp_samples / "digits-mlp.pt").unlink()
    with pytest.raises(slimcore.SampleError, match=r"digits-mlp\.pt.*missing.*python sample_models/train\.py"):
        slimcore.load_sample("digits-mlp")


@pytest.mark.parametrize("damage", [lambda b: b[: len(b) // 2], lambda b: b"", lambda b: b"\x00" * 64])
def test_corrupt_weights_name_the_file_and_the_fix(tmp_samples, damage):
    path = tmp_samples / "digits-mlp.pt"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(slimcore.SampleError, match=r"digits-mlp\.pt.*python sample_models/train\.py"):
        slimcore.load_sample("digits-mlp")


def test_weights_of_another_architecture_are_refused(tmp_samples):
    torch.save(zoo.DigitsCNN().state_dict(), tmp_samples / "digits-mlp.pt")
    with pytest.raises(slimcore.SampleError, match="digits-mlp.pt"):
        slimcore.load_sample("digits-mlp")


def test_pickled_code_in_weights_is_not_executed(tmp_samples, tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"fc1.weight": Payload()}, tmp_samples / "digits-mlp.pt")
    with pytest.raises(slimcore.SampleError):
        slimcore.load_sample("digits-mlp")
    assert not marker.exists()
