"""Tasks shared by the kernel-lab laws: power-law spectra with explicit features, and the digits pool.

Explicit features: x has independent N(0, 1) coordinates z_1..z_M, the kernel is K(x, x') = sum_i lam_i z_i z'_i
and the target sum_i v_i z_i; a learned function sum_i beta_i z_i then has population test error
||beta - v||^2 + noise exactly (against noisy labels), so no test set is sampled.
Digits pool: all 1797 digits, each standardised image projected to the sphere of radius sqrt(64), one-hot
labels centred over the pool; the pool is the population (Simon et al. 2023, sec. 6).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from lmech.data import digits
from lmech.theory import kernel_ridge, kernels


def power_law(modes: int, capacity: float, source: float) -> tuple[np.ndarray, np.ndarray]:
    """lam_i = i^-capacity and v_i = i^(-source / 2) (so v_i^2 = i^-source), i = 1..modes."""
    i = np.arange(1, modes + 1, dtype=np.float64)
    return i**-capacity, i ** (-source / 2)


def explicit_feature_errors(
    lam: np.ndarray, v: np.ndarray, n: int, ridge: float, noise: float, draws: int, gen: torch.Generator
) -> list[float]:
    """Population test MSE of kernel (ridge) regression on n samples, one value per independent draw."""
    scale, target = torch.as_tensor(np.sqrt(lam)), torch.as_tensor(v)
    errors = []
    for _ in range(draws):
        z = torch.randn(n, len(lam), generator=gen, dtype=torch.float64)  # (n, M) features
        y = z @ target + math.sqrt(noise) * torch.randn(n, generator=gen, dtype=torch.float64)
        features = z * scale
        alpha = kernel_ridge(features @ features.T, y, ridge)
        beta = scale * (features.T @ alpha)  # learned coefficients on z
        errors.append(float(((beta - target) ** 2).sum()) + noise)
    return errors


@functools.cache
def digits_pool() -> tuple[torch.Tensor, torch.Tensor]:
    """(x on the sphere of radius sqrt(d), centred one-hot labels) for all 1797 digits, float64."""
    data = digits(dtype=torch.float64)
    x = torch.cat([data.x, data.x_test])
    x = x / x.norm(dim=1, keepdim=True) * math.sqrt(x.shape[1])
    y = torch.nn.functional.one_hot(torch.cat([data.y, data.y_test]), 10).to(torch.float64)
    return x, y - y.mean(0)


@functools.cache
def digits_ntk(depth: int, weight_std: float, bias_std: float) -> torch.Tensor:
    """The analytic ReLU NTK on the digits pool (N x N)."""
    return kernels(digits_pool()[0], depth=depth, weight_std=weight_std, bias_std=bias_std).ntk


def pool_errors(kernel: torch.Tensor, y: torch.Tensor, n: int, ridge: float, draws: int, gen: torch.Generator):
    """Test MSE over the whole pool (summed over outputs) of kernel regression on n points drawn iid (with
    replacement) from the pool; repeated points carry the same label, so the fit uses the distinct ones."""
    size, errors = len(kernel), []
    for _ in range(draws):
        idx = torch.randint(size, (n,), generator=gen).unique()
        alpha = kernel_ridge(kernel[idx][:, idx], y[idx], ridge)
        errors.append(float(((kernel[:, idx] @ alpha - y) ** 2).sum(1).mean()))
    return errors
