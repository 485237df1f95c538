"""Fourier spectrum of a token embedding over Z_p: how many frequencies the embedding is built from.

For an embedding E (p, d) of the residues 0 .. p-1, F_k = sum_a E_a exp(-2 pi i k a / p) (DFT along the token axis);
the power of frequency k = 1 .. (p-1)/2 is P_k = sum over dims of |F_k|^2 + |F_{p-k}|^2 (real E: the two are
conjugate), normalised to sum 1. The DC term k = 0 is the mean embedding, the same for every token, and is left out.
A network that solves modular addition with the Fourier-feature algorithm puts its embedding's power on a few
"key frequencies" (Nanda et al. 2023, "Progress measures for grokking via mechanistic interpretability"; Gromov
2023, "Grokking modular arithmetic"); the power is invariant to token shifts a -> a + c and to rotations of the
embedding space.
"""

from __future__ import annotations

import numpy as np
import torch

from lmech.core import LmechInputError, generator


def fourier_power(embedding: torch.Tensor) -> torch.Tensor:
    """(..., p, d) embeddings -> (..., (p-1)/2) float64 power shares of k = 1 .. (p-1)/2 (p odd), each summing to 1."""
    p = embedding.shape[-2] if embedding.dim() >= 2 else 0
    if p < 3 or p % 2 == 0:
        raise LmechInputError(f"embedding must be (..., p, d) with p odd and >= 3; got shape {tuple(embedding.shape)}")
    power = torch.fft.fft(embedding.double(), dim=-2).abs().square().sum(-1)  # (..., p)
    half = (p - 1) // 2
    per_k = power[..., 1 : half + 1] + power[..., p - half :].flip(-1)  # k and p - k
    total = per_k.sum(-1, keepdim=True)
    if not bool((total > 1e-20 * power.sum(-1, keepdim=True)).all()):  # relative: rounding leaves ~1e-31
        raise LmechInputError("the embedding is constant over tokens: it has no power beyond the DC term")
    return per_k / total


def top_share(power: torch.Tensor | np.ndarray, top: int = 5) -> float:
    """Sum of the ``top`` largest entries of one normalised spectrum."""
    values = np.sort(np.asarray(power, dtype=np.float64))[::-1]
    return float(values[:top].sum())


def chance_share(p: int, d: int, top: int = 5, draws: int = 2000) -> float:
    """Mean top share of a Gaussian (p, d) embedding: Monte Carlo over ``draws`` (fixed seed), float64. Above
    top / ((p-1)/2), the share of equal powers: 2d real numbers per frequency scatter, and the top ones are chosen."""
    e = torch.randn(draws, p, d, generator=generator(12345), dtype=torch.float64)
    power = fourier_power(e)  # (draws, (p-1)/2)
    return float(power.sort(-1, descending=True).values[:, :top].sum(-1).mean())
