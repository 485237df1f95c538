"""A dataset is a few tensors and a record of how they were made."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from lmech.core import generator

__all__ = ["Dataset", "generator", "one_hot"]


@dataclass(frozen=True)
class Dataset:
    """Train (and optionally test) tensors; ``info`` holds what made them (teacher, split, ...)."""

    name: str
    x: torch.Tensor  # (n, d_in)
    y: torch.Tensor  # (n, d_out) targets, or (n,) class indices
    x_test: torch.Tensor | None = None
    y_test: torch.Tensor | None = None
    info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return self.x.shape[0]


def one_hot(labels: torch.Tensor, classes: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(n,) class indices -> (n, classes) one-hot targets."""
    return torch.nn.functional.one_hot(labels.long(), classes).to(dtype)
