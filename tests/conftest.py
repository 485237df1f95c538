"""Shared fixtures: a fresh store per test. Tests use one intra-op thread: the models are tiny,
and on a 2-core machine a second thread only adds synchronisation (see lmech.train.threads)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lmech.store import RunStore

torch.set_num_threads(1)


@pytest.fixture
def store(tmp_path: Path):
    with RunStore(tmp_path / "lmech.db") as db:
        yield db
