"""Modular addition (Power et al. 2022, "Grokking: generalization beyond overfitting on small algorithmic datasets"):
every pair (a, b) in Z_p x Z_p labelled c = (a + b) mod p, split at random into a training and a test set.

The modulus p must be an integer >= 2: a + b mod p is a well-defined classification task with p classes for every
such p. Grokking papers use a prime p (97, 113) so that Z_p is a field and every nonzero Fourier frequency k generates
the whole group (gcd(k, p) = 1), which gives each frequency the same standing in the Fourier-feature solution
(Nanda et al. 2023, Gromov 2023). We do not require a prime (a composite p is a valid, if different, task) but
report it in ``ModularTask.prime``, and the grokking law asks for one.

Inputs come in two encodings: ``pairs`` (n, 2) int64 token indices, for models with an embedding table, and
``one_hot_pairs(pairs, p)`` (n, 2p) float, the concatenation [e_a, e_b] used by Gromov 2023.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lmech.core import LmechInputError

__all__ = ["ModularTask", "is_prime", "modular_addition", "one_hot_pairs"]


def is_prime(n: int) -> bool:
    """Trial division; n < 2 is not prime."""
    if n < 2:
        return False
    return all(n % k for k in range(2, int(n**0.5) + 1))


@dataclass(frozen=True)
class ModularTask:
    """All p^2 pairs split into train and test: ``train`` (n_train, 2) and ``test`` (p^2 - n_train, 2) int64 token
    pairs (a, b), with labels ``y_train`` / ``y_test`` = (a + b) mod p."""

    p: int
    train: torch.Tensor  # (n_train, 2) int64
    y_train: torch.Tensor  # (n_train,) int64
    test: torch.Tensor  # (n_test, 2) int64
    y_test: torch.Tensor  # (n_test,) int64

    @property
    def prime(self) -> bool:
        return is_prime(self.p)

    @property
    def fraction(self) -> float:
        return len(self.train) / self.p**2


def one_hot_pairs(pairs: torch.Tensor, p: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(n, 2) token pairs -> (n, 2p) concatenated one-hot vectors [e_a, e_b] (Gromov 2023, eq. 1)."""
    return torch.nn.functional.one_hot(pairs.long(), p).reshape(len(pairs), 2 * p).to(dtype)


def modular_addition(p: int, fraction: float, *, gen: torch.Generator) -> ModularTask:
    """All p^2 pairs (a, b), a, b in 0..p-1, labelled (a + b) mod p, shuffled by ``gen`` (one ``randperm``) and
    split: the first round(fraction * p^2) are the training set, the rest the test set. Both sets are non-empty,
    so the rounded count must lie in [1, p^2 - 1]."""
    if isinstance(p, bool) or not isinstance(p, int) or p < 2:
        raise LmechInputError(
            f"p must be an integer >= 2 (the modulus; grokking papers use a prime such as 97); got {p!r}"
        )
    if not 0 < fraction < 1:
        raise LmechInputError(
            f"fraction must lie strictly between 0 and 1 (the share of pairs to train on); got {fraction!r}"
        )
    n_train = round(fraction * p * p)
    if not 1 <= n_train <= p * p - 1:
        raise LmechInputError(
            f"fraction must leave at least one training and one test pair of the {p * p}; got {fraction!r} "
            f"({n_train} training pairs): choose a fraction further from 0 and 1, or a larger p"
        )
    grid = torch.arange(p)
    pairs = torch.cartesian_prod(grid, grid)  # (p^2, 2)
    pairs = pairs[torch.randperm(p * p, generator=gen)]
    labels = pairs.sum(1) % p
    return ModularTask(p, pairs[:n_train], labels[:n_train], pairs[n_train:], labels[n_train:])
