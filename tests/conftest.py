"""Shared fixtures: the repository root and loaded sample models (read-only)."""
from __future__ import annotations

from pathlib import Path

import pytest

import slimcore

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", params=slimcore.list_samples("classifier"))
def sample(request) -> slimcore.Sample:
    """Each shipped sample model in turn (tests must not change it)."""
    return slimcore.load_sample(request.param)


@pytest.fixture(scope="session")
def digits_cnn() -> slimcore.Sample:
    return slimcore.load_sample("digits-cnn")
