"""Retrain every sample model deterministically and write its weights (.pt state dict) and card (.json).

Usage: python sample_models/train.py [NAME ...]      (all samples when no name is given)
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from slimcore import zoo  # noqa: E402
from slimcore.data import SPLIT_SEED, load_dataset  # noqa: E402
from slimcore.metrics import accuracy  # noqa: E402

THREADS = 1  # one thread: float sums happen in one order, so reruns give identical weights


def train(spec: zoo.SampleSpec) -> tuple[nn.Module, dict]:
    """Train one sample with Adam and cross-entropy; keep the weights of the epoch with the best validation accuracy."""
    data = load_dataset(spec.dataset)
    torch.manual_seed(spec.seed)
    model = spec.build()
    opt = torch.optim.Adam(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    gen = torch.Generator().manual_seed(spec.seed)
    best, best_epoch = -1.0, 0
    best_state: dict[str, torch.Tensor] | None = None
    t0 = time.perf_counter()
    for epoch in range(spec.epochs):
        model.train()
        order = torch.randperm(len(data.train), generator=gen)
        for i in range(0, len(order), spec.batch_size):
            idx = order[i:i + spec.batch_size]
            loss = nn.functional.cross_entropy(model(data.train.x[idx]), data.train.y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        val = accuracy(model, data.val)
        if val > best:
            best, best_epoch = val, epoch + 1
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
    assert best_state is not None, "no epoch was trained"   # the first epoch beats -1
    model.load_state_dict(best_state)
    model.eval()
    card = {
        "name": spec.name,
        "architecture": spec.summary,
        "module": repr(model),
        "dataset": data.description,
        "splits": {"train": len(data.train), "val": len(data.val), "test": len(data.test), "split_seed": SPLIT_SEED},
        "parameters": sum(p.numel() for p in model.parameters()),
        "test_accuracy": accuracy(model, data.test),
        "val_accuracy": best,
        "training": {"optimizer": "Adam", "lr": spec.lr, "weight_decay": spec.weight_decay,
                     "batch_size": spec.batch_size, "epochs": spec.epochs, "kept_epoch": best_epoch, "seed": spec.seed,
                     "threads": THREADS, "seconds": round(time.perf_counter() - t0, 1), "torch": torch.__version__},
        "command": f"python sample_models/train.py {spec.name}",
        "reference": spec.reference,
    }
    return model, card


def main(names: list[str]) -> None:
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)
    for name in names or zoo.list_samples("classifier"):
        spec = zoo.spec(name)
        model, card = train(spec)
        torch.save(model.state_dict(), zoo.weights_path(name))
        zoo.card_path(name).write_text(json.dumps(card, indent=2) + "\n")
        print(f"{name}: test accuracy {card['test_accuracy']:.4f} (val {card['val_accuracy']:.4f}, "
              f"epoch {card['training']['kept_epoch']}/{spec.epochs}) in {card['training']['seconds']} s")


if __name__ == "__main__":
    main(sys.argv[1:])
