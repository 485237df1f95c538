"""Test error of random-feature ridge(less) regression: the random-feature (RF) eigenframework.

Setting: a kernel K with Mercer eigenvalues lam_i (orthonormal eigenfunctions phi_i under the data
distribution); target y = sum_i v_i phi_i(x) + noise of variance eps^2; P random features g_w with
E_w[g_w(x) g_w(x')] = K(x, x'), scaled by 1/sqrt(P); n iid samples; the predictor f = sum_j a_j g_j / sqrt(P)
minimises sum_k (f(x_k) - y_k)^2 + delta ||a||^2 (delta = 0: minimum-norm least squares). As P -> inf this
is kernel ridge regression k(x)^T (K + delta I)^-1 y.

The two effective regularisations kappa (the paper's kappa: the kernel-level ridge) and gamma (the paper's
gamma: the ridge "seen" by the kernel spectrum once the random projection is accounted for) are the unique
non-negative solutions of the coupled equations of the RF eigenframework (Simon, Karkada, Ghosh & Belkin 2024, sec. 4)

    n = sum_i lam_i / (lam_i + gamma) + delta / kappa,          P = sum_i lam_i / (lam_i + gamma) + P kappa / gamma.

With L_i = lam_i / (lam_i + gamma), z = sum_i L_i, q = sum_i L_i^2, the predicted test MSE (against noisy labels)
is

    E_te = E0 * ( sum_i c_i v_i^2 + eps^2 ),   E0 = n / (n - df2),   df2 = (q (P - 2 z) + z^2) / (P - q),
    c_i = (1 - L_i) - kappa P L_i / ((lam_i + gamma)(P - q)) = (1 - L_i)(1 - rho L_i),   rho = (P - z)/(P - q),

and the training MSE is E_tr = (delta / (n kappa))^2 E_te = ((n - z) / n)^2 E_te. Derivation (checked here; it
matches the authors' code, github.com/dkarkada/more-is-better, theory.py: rf_krr_risk_theory): conditioned on the
features, eigenlearning for ridge regression on the P x P feature covariance S S^T applies with the unexplained target
as extra noise; then the sketch equivalent kappa (S^T S + kappa)^-1 ~ gamma (Lam + gamma)^-1 with
kappa = gamma (1 - z/P) (Bach 2024: degrees of freedom of random projections) and its kappa-derivative
(d gamma / d kappa = P / (P - q)) give df2 ~ tr[(S^T S)^2 (S^T S + kappa)^-2] and c_i ~ [kappa^2 (S^T S + kappa)^-2]_ii.
P -> inf gives kappa = gamma, c_i = (1 - L_i)^2, df2 = q: the kernel eigenlearning formula.

Ridgeless (delta = 0) solutions: gamma solves z(gamma) = min(n, P) (gamma = 0 if min(n, P) >= M+, the number of
positive eigenvalues), so gamma is symmetric in n and P; kappa = gamma (1 - n/P)_+. The interpolation threshold is
n = min(P, M+), where E0 = inf. P < n gives E0 = n / (n - P) and c_i = 1 - L_i (least squares on P features);
P > n gives E0 = n (P - q) / ((P - n)(n - q)).

Assumes: the Gaussian-universality ansatz of the framework; exact for Gaussian (linear) random features as
n, P, M -> inf at fixed ratios; at finite n, P the error is O(1/n + 1/P + 1/|P - n|) relative (a few percent for
n ~ 100 away from the threshold).

References: F. Bach, "High-dimensional analysis of double descent for linear regression with random projections",
SIAM J. Math. Data Sci. 2024 (arXiv 2303.01372). J. B. Simon, D. Karkada, N. Ghosh, M. Belkin, "More is better in
modern machine learning: when infinite overparameterization is optimal and overfitting is obligatory", ICLR 2024
(arXiv 2311.14646), sec. 4 "More data and features are better in RF regression" (the RF eigenframework).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import brentq

__all__ = ["RandomFeatureResult", "random_feature_regression"]

_XTOL, _RTOL = 1e-300, 4e-15  # brentq tolerances in log(gamma): near machine precision


@dataclass(frozen=True)
class RandomFeatureResult:
    """kappa: kernel-level effective ridge; gamma: spectrum-level effective ridge (Simon et al. 2024, sec. 4);
    test_mse / train_mse: expected errors (per sample, summed over outputs) against noisy labels."""

    kappa: float
    gamma: float
    test_mse: float
    train_mse: float


def _finite_number(name: str, value: float, *, positive: bool) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number; got {value!r}") from None
    if not math.isfinite(x) or (x <= 0 if positive else x < 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be a finite number {bound}; got {value!r}")
    return x


def _validate(eigenvalues: ArrayLike, coefficients: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Check shapes and values; return (lam, ||v_i||^2) as float64 1-D arrays."""
    lam = np.asarray(eigenvalues, dtype=np.float64)
    if lam.ndim != 1 or lam.size == 0:
        raise ValueError(f"eigenvalues must be a non-empty 1-D array; got shape {lam.shape}")
    bad = np.flatnonzero(~np.isfinite(lam) | (lam < 0))
    if bad.size:
        raise ValueError(f"eigenvalues must be finite and >= 0; got {float(lam[bad[0]])!r} at index {int(bad[0])}")
    if not np.any(lam > 0):
        raise ValueError("eigenvalues must contain at least one positive value (the kernel is zero)")
    v = np.asarray(coefficients, dtype=np.float64)
    if v.ndim not in (1, 2) or v.shape[0] != lam.shape[0]:
        raise ValueError(
            f"coefficients must have shape (M,) or (M, C) with M = {lam.shape[0]} (len(eigenvalues)); "
            f"got shape {v.shape}"
        )
    if not np.all(np.isfinite(v)):
        raise ValueError("coefficients must be finite; got NaN or inf")
    v2 = v**2 if v.ndim == 1 else np.sum(v**2, axis=1)
    return lam, v2


def _dof(lam: np.ndarray, gamma: float) -> float:
    """z(gamma) = sum_i lam_i / (lam_i + gamma); z(0) = M+."""
    return float(np.sum(lam / (lam + gamma))) if gamma > 0 else float(np.count_nonzero(lam))


def _gamma_ridgeless(lam: np.ndarray, m: float) -> float:
    """The gamma >= 0 with z(gamma) = m (0 if m >= M+), by brentq in log(gamma)."""
    pos = lam[lam > 0]
    if m >= pos.size:
        return 0.0
    lo = pos.min() * (pos.size - m) / (2.0 * pos.size)  # z(lo) >= M+ - (M+ - m)/2 > m
    hi = 2.0 * pos.sum() / m  # z(hi) < sum(lam)/hi = m/2 < m
    s = brentq(lambda t: _dof(pos, math.exp(t)) - m, math.log(lo), math.log(hi), xtol=_XTOL, rtol=_RTOL)
    return math.exp(s)


def _gamma_ridge(lam: np.ndarray, n: float, p: float, ridge: float) -> float:
    """The gamma > gamma(min(n, P)) with G(gamma) = (n - z) gamma (P - z) - delta P = 0; G is increasing there."""

    def g(t: float) -> float:
        z, gam = _dof(lam, math.exp(t)), math.exp(t)
        return (n - z) * gam * (p - z) - ridge * p

    floor = _gamma_ridgeless(lam, min(n, p))
    lo = floor if floor > 0 else ridge / n
    while floor == 0 and g(math.log(lo)) >= 0 and lo > 1e-300:
        lo *= 1e-3  # G(0+) = -delta P < 0 when min(n, P) >= M+
    if g(math.log(lo)) >= 0:
        return lo  # the ridge is below floating-point resolution: effectively ridgeless
    hi = max(lo, ridge / n, float(lam.max())) * 2.0
    while g(math.log(hi)) <= 0:
        hi *= 4.0  # G ~ n P gamma for large gamma
    return math.exp(brentq(g, math.log(lo), math.log(hi), xtol=_XTOL, rtol=_RTOL))


def random_feature_regression(
    eigenvalues: ArrayLike,
    coefficients: ArrayLike,
    n: float,
    features: float,
    *,
    ridge: float = 0.0,
    noise: float = 0.0,
) -> RandomFeatureResult:
    """Predicted test and train MSE of ridge(less) regression on ``features`` (P) random features, n samples.

    ``eigenvalues`` (M,) kernel eigenvalues; ``coefficients`` (M,) or (M, C) target eigencoefficients (the error is
    summed over the C outputs); ``ridge`` delta >= 0 (0: minimum-norm least squares); ``noise`` eps^2 >= 0, the
    label-noise variance summed over outputs. Formulas and assumptions: see the module docstring (Simon et al.
    2024, sec. 4; Bach 2024). Returns test_mse = inf at the ridgeless interpolation threshold n = min(P, M+).
    """
    lam, v2 = _validate(eigenvalues, coefficients)
    n = _finite_number("n", n, positive=True)
    p = _finite_number("features", features, positive=True)
    ridge = _finite_number("ridge", ridge, positive=False)
    noise = _finite_number("noise", noise, positive=False)
    m_pos = float(np.count_nonzero(lam))

    if ridge > 0:
        gamma = _gamma_ridge(lam, n, p, ridge)
        z = _dof(lam, gamma)
        slack_n, slack_p = n - z, p - z  # delta / kappa and P kappa / gamma; refine the smaller from G = 0
        if n == p:
            slack_n = slack_p = math.sqrt(ridge * p / gamma)
        elif p > n:
            slack_n = ridge * p / (gamma * slack_p)
        else:
            slack_p = ridge * p / (gamma * slack_n)
    else:
        gamma = _gamma_ridgeless(lam, min(n, p))
        z = min(n, p, m_pos)
        slack_n, slack_p = n - z, p - z
    kappa = gamma * slack_p / p
    big_l = lam / (lam + gamma) if gamma > 0 else (lam > 0).astype(np.float64)
    q = float(np.sum(big_l**2))
    rho = slack_p / (p - q) if p - q > 0 else 0.0  # z in [q, P], so rho in [0, 1]; P = q forces P = z
    # n - df2 = (n - z) + (P - z)(z - q)/(P - q): written as a sum of non-negative terms, no cancellation
    gap = slack_n + rho * max(z - q, 0.0)
    residual = float(np.sum((1.0 - big_l) * (1.0 - rho * big_l) * v2)) + noise
    if gap <= 0:  # ridgeless interpolation threshold n = min(P, M+)
        test = math.inf if residual > 0 else 0.0
        return RandomFeatureResult(kappa=kappa, gamma=gamma, test_mse=test, train_mse=0.0)
    test = n / gap * residual
    return RandomFeatureResult(kappa=kappa, gamma=gamma, test_mse=test, train_mse=(slack_n / n) ** 2 * test)
