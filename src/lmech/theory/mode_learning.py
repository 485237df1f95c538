"""Mode-by-mode learning under a fixed kernel: the prediction behind spectral bias.

Under full-batch GD on L = (1/2n) sum (f - y)^2 with a fixed (lazy) tangent kernel K, the residual obeys
r <- (I - lr K/n) r, so the target's component on an eigenvector of K/n with eigenvalue lambda is learnt as
L(s) = 1 - (1 - lr lambda)^s (Jacot et al. 2018; Basri et al. 2020; Canatar, Bordelon & Pehlevan 2021). On a uniform
grid of the circle a dot-product kernel is circulant and its eigenvectors are the Fourier modes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from lmech.theory.kernels import kernels


def circulant_eigenvalues(gram: torch.Tensor, frequencies: Sequence[int]) -> torch.Tensor:
    """lambda_k = (1/n) sum_j K_0j cos(2 pi k j / n): the eigenvalue of K/n on frequency k, exact for a circulant
    (n, n) Gram matrix (a dot-product kernel on a uniform grid of the circle), float64."""
    n = gram.shape[0]
    j = torch.arange(n, dtype=torch.float64)
    return torch.stack([(gram[0].double() * torch.cos(2 * math.pi * k * j / n)).sum() / n for k in frequencies])


def circle_ntk_eigenvalues(n: int, frequencies: Sequence[int], depth: int, weight_std: float, bias_std: float):
    """Eigenvalues of K/n per frequency for the analytic infinite-width NTK (NTK parametrization, ReLU) on the
    uniform grid x_j = (cos theta_j, sin theta_j), theta_j = 2 pi j / n."""
    theta = 2 * math.pi * torch.arange(n, dtype=torch.float64) / n
    gram = kernels(torch.stack([theta.cos(), theta.sin()], 1), depth=depth, weight_std=weight_std, bias_std=bias_std)
    return circulant_eigenvalues(gram.ntk, frequencies)


def gd_learnability(eigenvalues: torch.Tensor, lr: float, steps: np.ndarray) -> np.ndarray:
    """(T, K) L_k(s) = 1 - (1 - lr lambda_k)^s: discrete full-batch GD on a linear model with loss (1/2n) sum r^2
    (gradient flow: 1 - exp(-lambda_k lr s)). Assumes the kernel is fixed (lazy) and f_0 = 0."""
    lam = np.asarray(eigenvalues, dtype=np.float64)
    return 1 - (1 - lr * lam)[None, :] ** np.asarray(steps, dtype=np.float64)[:, None]


def half_steps(eigenvalues: torch.Tensor, lr: float) -> np.ndarray:
    """The step at which L_k = 1 - (1 - lr lambda_k)^s reaches 1/2, read off the integer-step curve by linear
    interpolation between consecutive steps, exactly as the measurement is (the continuous root
    ln 2 / -ln(1 - lr lambda) differs from it by up to 2% when a mode is learnt within one or two steps).
    Needs 0 < lr lambda_k < 1."""
    lam = np.asarray(eigenvalues, dtype=np.float64)
    after = np.ceil(math.log(2) / -np.log1p(-lr * lam))  # first integer step with L >= 1/2
    before, reached = 1 - (1 - lr * lam) ** (after - 1), 1 - (1 - lr * lam) ** after
    return after - 1 + (0.5 - before) / (reached - before)
