"""Basic observables: loss and accuracy on held-out data."""

from __future__ import annotations

from collections.abc import Callable

import torch

from lmech.core import Observable, Snapshot, stateless


def held_out_loss(x: torch.Tensor, y: torch.Tensor, loss: Callable, name: str = "test_loss") -> Observable:
    """The loss of the current model on (x, y)."""
    return stateless(name, lambda s: {name: float(loss(s.fn(s.params, x), y))})


def accuracy(x: torch.Tensor, labels: torch.Tensor, name: str = "accuracy") -> Observable:
    """Fraction of argmax predictions equal to ``labels``."""

    def measure(s: Snapshot) -> dict[str, float]:
        pred = s.fn(s.params, x).argmax(-1)
        return {name: float((pred == labels).double().mean())}

    return stateless(name, measure)
