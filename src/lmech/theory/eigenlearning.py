"""Eigenlearning: the test error of kernel ridge regression from the kernel's eigenstructure.

Setting (Simon, Dickens, Karkada & DeWeese 2023, TMLR, "The eigenlearning framework", eqs. 5-11;
Canatar, Bordelon & Pehlevan 2021, Nat. Commun. 12, 2914; Jacot et al. 2020 for the ridge term):
a kernel K(x, x') = sum_i lam_i phi_i(x) phi_i(x') with E[phi_i phi_j] = delta_ij over the data
distribution, a target f*(x) = sum_i v_i phi_i(x), labels y = f*(x) + noise of variance eps^2, and
the predictor f(x) = k(x)^T (K + ridge I)^(-1) y fitted on n iid samples. Then

    kappa:        n = sum_i lam_i / (lam_i + kappa) + ridge / kappa        (effective regularisation)
    learnability: L_i = lam_i / (lam_i + kappa)                            (sum_i L_i = n when ridgeless)
    overfitting:  E0 = n / (n - sum_i L_i^2)
    test MSE:     E = E0 (sum_i (1 - L_i)^2 v_i^2 + eps^2)                 (against noisy test labels)
    train MSE:    E_train = (ridge / (n kappa))^2 E

Assumes: n large with the spectrum held fixed (Gaussian-universality of the features); the error
of the prediction is O(1/n) relative for generic spectra.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import brentq

from lmech.core import LmechInputError


@dataclass(frozen=True)
class EigenlearningResult:
    """The eigenlearning prediction at one sample size n."""

    kappa: float
    learnabilities: np.ndarray
    e0: float
    test_mse: float
    train_mse: float


def effective_regularization(eigenvalues, n: float, ridge: float = 0.0) -> float:
    """kappa > 0 solving n = sum_i lam_i / (lam_i + kappa) + ridge / kappa; 0 when ridgeless and n reaches
    the number of positive eigenvalues (every mode is then interpolated)."""
    lam = _eigenvalues(eigenvalues)
    _positive("n", n)
    _non_negative("ridge", ridge)
    positive = lam[lam > 0]
    if ridge == 0 and n >= len(positive):
        return 0.0

    def excess(log_kappa: float) -> float:  # decreasing in kappa
        kappa = math.exp(log_kappa)
        return float(np.sum(positive / (positive + kappa)) + ridge / kappa - n)

    high = math.log((positive.sum() + ridge) / n)  # there every term <= lam/kappa, so excess <= 0
    low = high - 2.0
    while excess(low) <= 0:
        low -= 2.0 * max(1.0, high - low)
        if low < -1400:
            raise LmechInputError(f"no effective regularisation found for n={n}, ridge={ridge}: spectrum too flat at 0")
    return math.exp(brentq(excess, low, high, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500))


def eigenlearning(
    eigenvalues, coefficients, n: float, *, ridge: float = 0.0, noise: float = 0.0
) -> EigenlearningResult:
    """Predicted kernel (ridge) regression errors at n samples; formula in the module docstring.

    ``coefficients``: v_i, shape (M,) or (M, C) for C outputs (errors then sum over outputs, and
    ``noise`` is the total label-noise variance over outputs).
    """
    lam = _eigenvalues(eigenvalues)
    power = _power(coefficients, len(lam))
    _non_negative("noise", noise)
    kappa = effective_regularization(lam, n, ridge)
    if kappa == 0.0:
        learn = (lam > 0).astype(float)
    else:
        learn = lam / (lam + kappa)
    spent = float(np.sum(learn**2))
    e0 = math.inf if n <= spent else n / (n - spent)
    bias = float(np.sum((1 - learn) ** 2 * power))
    test = 0.0 if bias + noise == 0 else e0 * (bias + noise)
    train = 0.0 if ridge == 0 else (ridge / (n * kappa)) ** 2 * test
    return EigenlearningResult(kappa=kappa, learnabilities=learn, e0=e0, test_mse=test, train_mse=train)


def kernel_eigensystem(kernel_matrix, targets) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues and target coefficients of a kernel with respect to the uniform distribution on a pool.

    With N pool points, K/N = sum_i lam_i u_i u_i^T (u_i unit vectors), phi_i(x_a) = sqrt(N) u_i[a] and
    v_i = u_i^T y / sqrt(N), so that y = sum_i v_i phi_i on the pool (Simon et al. 2023, sec. 6: the
    pool is the population). Returns (lam descending, v) in float64; tiny negative round-off -> 0.
    """
    k = torch.as_tensor(kernel_matrix, dtype=torch.float64)
    y = torch.as_tensor(targets, dtype=torch.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1]:
        raise LmechInputError(f"kernel_matrix must be square; got shape {tuple(k.shape)}")
    if y.shape[0] != k.shape[0] or y.ndim > 2:
        raise LmechInputError(f"targets must have {k.shape[0]} rows (one per pool point); got shape {tuple(y.shape)}")
    if not (torch.isfinite(k).all() and torch.isfinite(y).all()):
        raise LmechInputError("kernel_matrix and targets must be finite")
    size = k.shape[0]
    lam, vectors = torch.linalg.eigh(k / size)
    lam, vectors = lam.flip(0).clamp_min(0.0), vectors.flip(1)
    return lam.numpy(), (vectors.T @ y / math.sqrt(size)).numpy()


# --------------------------------------------------------------------------------------------
# Input checks


def _eigenvalues(eigenvalues) -> np.ndarray:
    lam = np.asarray(eigenvalues, dtype=np.float64)
    if lam.ndim != 1 or lam.size == 0:
        raise LmechInputError(f"eigenvalues must be a non-empty 1-D array; got shape {lam.shape}")
    if not np.all(np.isfinite(lam)):
        raise LmechInputError("eigenvalues must be finite (no NaN or inf)")
    if np.any(lam < 0):
        raise LmechInputError(f"eigenvalues must be >= 0; got a minimum of {lam.min():.3g}")
    return lam


def _power(coefficients, modes: int) -> np.ndarray:
    """v_i^2 per mode, summed over outputs."""
    v = np.asarray(coefficients, dtype=np.float64)
    if v.ndim not in (1, 2) or v.shape[0] != modes:
        raise LmechInputError(f"coefficients must have shape ({modes},) or ({modes}, C); got {v.shape}")
    if not np.all(np.isfinite(v)):
        raise LmechInputError("coefficients must be finite (no NaN or inf)")
    return (v**2).reshape(modes, -1).sum(1)


def _positive(name: str, value: float) -> None:
    if not (_is_real(value) and math.isfinite(value) and value > 0):
        raise LmechInputError(f"{name} must be a finite number > 0; got {value!r}")


def _non_negative(name: str, value: float) -> None:
    if not (_is_real(value) and math.isfinite(value) and value >= 0):
        raise LmechInputError(f"{name} must be a finite number >= 0; got {value!r}")


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
