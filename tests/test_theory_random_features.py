"""Random-feature eigenframework: Monte Carlo oracle with Gaussian random features, the kernel limit,
the interpolation threshold, solver robustness and input validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import brentq

from lmech.theory.random_features import RandomFeatureResult, random_feature_regression

M_POW = 300
_I = np.arange(1, M_POW + 1)
LAM_POW = _I**-1.5 / np.sum(_I**-1.5)  # power-law spectrum, trace 1
V_POW = _I**-0.75 / np.linalg.norm(_I**-0.75)  # ||v||^2 = 1
NOISE = 0.1
_FLAT200, _FLAT50 = np.full(200, 1 / 200), np.full(50, 1 / 50)


def power_law(m: int, alpha: float) -> np.ndarray:
    i = np.arange(1, m + 1, dtype=np.float64)
    return i**-alpha / np.sum(i**-alpha)


def ramp(m: int) -> np.ndarray:
    """Unit-norm target coefficients decreasing linearly from 1 to 0.2."""
    r = np.linspace(1.0, 0.2, m)
    return r / np.linalg.norm(r)


def monte_carlo(lam, v, n, p, ridge, noise, reps, seed, chunk=50):
    """Mean and standard error of the exact population test MSE and of the train MSE of ridge(less) regression
    on P Gaussian random features g_w(x) = sum_i w_i sqrt(lam_i) z_i / sqrt(P), z ~ N(0, I_M)."""
    gen = torch.Generator().manual_seed(seed)
    dt = torch.float64
    lam_t, v_t = torch.as_tensor(lam, dtype=dt), torch.as_tensor(v, dtype=dt)
    tests, trains = [], []
    for start in range(0, reps, chunk):
        b = min(chunk, reps - start)
        s = torch.randn(b, p, lam.size, generator=gen, dtype=dt) * lam_t.sqrt() / math.sqrt(p)  # (b, P, M)
        z = torch.randn(b, n, lam.size, generator=gen, dtype=dt)  # (b, n, M)
        y = z @ v_t + math.sqrt(noise) * torch.randn(b, n, generator=gen, dtype=dt)  # (b, n)
        f = z @ s.transpose(1, 2)  # (b, n, P) training features
        if ridge == 0:
            a = torch.linalg.lstsq(f, y[..., None], driver="gelsd").solution[..., 0]  # minimum norm
        elif p <= n:
            gram = f.transpose(1, 2) @ f + ridge * torch.eye(p, dtype=dt)
            a = torch.linalg.solve(gram, f.transpose(1, 2) @ y[..., None])[..., 0]
        else:
            gram = f @ f.transpose(1, 2) + ridge * torch.eye(n, dtype=dt)
            a = (f.transpose(1, 2) @ torch.linalg.solve(gram, y[..., None]))[..., 0]
        beta = (s.transpose(1, 2) @ a[..., None])[..., 0]  # (b, M): learned f = sum_i beta_i z_i
        tests.append(((beta - v_t) ** 2).sum(1) + noise)
        trains.append(((f @ a[..., None])[..., 0] - y).pow(2).mean(1))
    te, tr = torch.cat(tests), torch.cat(trains)
    return te.mean().item(), te.std().item() / math.sqrt(reps), tr.mean().item(), tr.std().item() / math.sqrt(reps)


# (spectrum, n, P, ridge, reps): reps chosen for a ~1% standard error of the test MSE
MC_CASES = [
    *[("pow", 100, p, r, reps) for r in (0.0, 1e-3) for (p, reps) in [(30, 400), (70, 900), (150, 600)]],
    ("pow", 100, 400, 0.0, 250),
    ("pow", 100, 400, 1e-3, 250),
    ("flat200", 100, 300, 0.0, 300),  # flat spectrum, overparameterised
    ("flat50", 100, 80, 0.0, 300),  # n, P > M+ = 50: gamma = 0, least squares on the kernel's span
    ("flat50", 100, 100, 0.0, 300),  # n = P > M+: not an interpolation threshold
]


@pytest.mark.parametrize("spectrum,n,p,ridge,reps", MC_CASES)
def test_matches_gaussian_random_feature_monte_carlo(spectrum, n, p, ridge, reps):
    lam = {"pow": LAM_POW, "flat200": _FLAT200, "flat50": _FLAT50}[spectrum]
    v = V_POW if spectrum == "pow" else ramp(lam.size)
    theory = random_feature_regression(lam, v, n, p, ridge=ridge, noise=NOISE)
    te, te_se, tr, tr_se = monte_carlo(lam, v, n, p, ridge, NOISE, reps, seed=1000 * p + n + int(ridge > 0))
    # The framework is asymptotic: at n = 100 its finite-size bias was measured at up to +4% (test) and +7.5% (train,
    # P = 150, ridge 1e-3), shrinking ~1/n at 2n and 4n; plus 3 Monte Carlo standard errors.
    assert abs(te / theory.test_mse - 1) < 0.05 + 3 * te_se / theory.test_mse
    if theory.train_mse == 0:
        assert tr < 1e-12  # ridgeless interpolation: zero training error
    else:
        assert abs(tr / theory.train_mse - 1) < 0.08 + 3 * tr_se / theory.train_mse


def kernel_reference(lam, v2, n, ridge, noise):
    """Eigenlearning for KRR: n = sum lam/(lam + k) + ridge/k, E0 = n/(n - sum L^2), E0 (sum (1-L)^2 v^2 + eps^2)."""
    k = math.exp(brentq(lambda t: np.sum(lam / (lam + math.exp(t))) + ridge / math.exp(t) - n, -690, 690, xtol=1e-14))
    big_l = lam / (lam + k)
    e0 = n / (n - np.sum(big_l**2))
    return k, e0 * (np.sum((1 - big_l) ** 2 * v2) + noise)


@pytest.mark.parametrize(
    "lam,n,ridge",
    [(power_law(2000, 2.0), 50, 0.0), (power_law(2000, 2.0), 50, 1e-4), (LAM_POW, 100, 1e-2), (_FLAT200, 40, 0.0)],
)
def test_infinite_features_reduce_to_kernel_eigenlearning(lam, n, ridge):
    v = np.stack([np.sqrt(lam), np.cos(np.arange(lam.size))], axis=1)  # two outputs: error sums over them
    kappa, test = kernel_reference(lam, np.sum(v**2, axis=1), n, ridge, NOISE)
    res = random_feature_regression(lam, v, n, 1e9, ridge=ridge, noise=NOISE)
    # RF corrections are O(n / P) = 1e-7 at P = 1e9
    assert res.kappa == pytest.approx(kappa, rel=1e-6)
    assert res.gamma == pytest.approx(kappa, rel=1e-6)
    assert res.test_mse == pytest.approx(test, rel=1e-6)


@pytest.mark.parametrize("lam", [LAM_POW, _FLAT200])
def test_ridgeless_threshold_is_infinite_and_a_peak(lam):
    n = 100
    v = V_POW[: lam.size]
    at = random_feature_regression(lam, v, n, n, noise=NOISE)
    assert at.test_mse == math.inf and at.train_mse == 0.0
    below = [random_feature_regression(lam, v, n, p, noise=NOISE).test_mse for p in (80, 95, 99, 99.9)]
    above = [random_feature_regression(lam, v, n, p, noise=NOISE).test_mse for p in (130, 105, 101, 100.1)]
    assert np.all(np.diff(below) > 0) and np.all(np.diff(above) > 0)
    assert math.isfinite(random_feature_regression(lam, v, n, n, ridge=1e-3, noise=NOISE).test_mse)


def test_threshold_is_at_n_equal_min_of_features_and_rank():
    lam = np.concatenate([_FLAT50, np.zeros(10)])  # M+ = 50 positive eigenvalues
    v = np.ones(60)
    assert random_feature_regression(lam, v, 50, 80, noise=NOISE).test_mse == math.inf  # n = M+ < P
    res = random_feature_regression(lam, v, 100, 100, noise=NOISE)  # n = P > M+: least squares on 50 directions
    assert res.test_mse == pytest.approx(100 / 50 * (10 + NOISE), rel=1e-12)  # E0 = n/(n - M+), residual 10 + eps^2
    assert random_feature_regression(lam, np.zeros(60), 60, 60).test_mse == 0.0  # nothing to learn, no noise


def test_ridgeless_gamma_is_symmetric_in_samples_and_features():
    # ridgeless gamma solves sum lam/(lam + gamma) = min(n, P)
    a = random_feature_regression(LAM_POW, V_POW, 60, 150)
    b = random_feature_regression(LAM_POW, V_POW, 150, 60)
    assert a.gamma == pytest.approx(b.gamma, rel=1e-12)
    assert b.kappa == 0.0 and a.kappa == pytest.approx(a.gamma * (1 - 60 / 150), rel=1e-12)


@pytest.mark.parametrize("n,p,ridge", [(100, 30, 1e-3), (100, 150, 1e-3), (100, 100, 1e-2), (5, 3000, 1.0)])
def test_solution_satisfies_the_paper_equations_and_formula(n, p, ridge):
    """Direct transcription of the RF eigenframework (Simon et al. 2024, sec. 4) at the returned kappa, gamma."""
    res = random_feature_regression(LAM_POW, V_POW, n, p, ridge=ridge, noise=NOISE)
    big_l = LAM_POW / (LAM_POW + res.gamma)
    z, q = big_l.sum(), (big_l**2).sum()
    assert z + ridge / res.kappa == pytest.approx(n, rel=1e-9)  # solver tolerance ~1e-14 in log(gamma)
    assert z + p * res.kappa / res.gamma == pytest.approx(p, rel=1e-9)
    e0 = 1 / (1 - (q * (p - 2 * z) + z**2) / (n * (p - q)))
    bias = (1 - big_l) - res.kappa * big_l / (LAM_POW + res.gamma) * p / (p - q)
    test = e0 * (bias @ V_POW**2 + NOISE)
    assert res.test_mse == pytest.approx(test, rel=1e-8)
    assert res.train_mse == pytest.approx((ridge / (n * res.kappa)) ** 2 * test, rel=1e-8)


def test_limits_in_the_ridge():
    for p in (30, 150):  # a vanishing ridge is continuous with the ridgeless formulas on both sides of n
        tiny = random_feature_regression(LAM_POW, V_POW, 100, p, ridge=1e-14, noise=NOISE)
        zero = random_feature_regression(LAM_POW, V_POW, 100, p, noise=NOISE)
        assert tiny.test_mse == pytest.approx(zero.test_mse, rel=1e-6)
        assert tiny.train_mse == pytest.approx(zero.train_mse, rel=1e-6, abs=1e-12)
    huge = random_feature_regression(LAM_POW, V_POW, 100, 150, ridge=1e9, noise=NOISE)  # predictor -> 0
    assert huge.test_mse == pytest.approx(1 + NOISE, rel=1e-6)
    assert huge.train_mse == pytest.approx(1 + NOISE, rel=1e-6)


@pytest.mark.parametrize(
    "lam",
    [power_law(100_000, 2.0), power_law(300, 1.1), np.ones(40), np.concatenate([np.ones(5), np.zeros(5)])],
    ids=["pow-1e5", "pow-slow", "flat", "low-rank"],
)
def test_solver_is_robust_across_regimes(lam):
    v = np.sqrt(lam) + 0.01
    for n in (0.5, 1, 3, 37, 200):
        for p in (1, 36.999, 37 * (1 + 1e-9), 199, 1e4):
            for ridge in (0.0, 1e-12, 1e-3, 10.0):
                res = random_feature_regression(lam, v, n, p, ridge=ridge, noise=NOISE)
                assert isinstance(res, RandomFeatureResult)
                assert res.kappa >= 0 and res.gamma >= 0 and 0 <= res.train_mse
                assert res.test_mse > 0 and (math.isfinite(res.test_mse) or (ridge == 0 and n == p))


def test_outputs_add_up():
    v = np.stack([V_POW, np.sqrt(LAM_POW)], axis=1)
    both = random_feature_regression(LAM_POW, v, 100, 150, ridge=1e-3, noise=0.3)
    parts = [random_feature_regression(LAM_POW, v[:, c], 100, 150, ridge=1e-3, noise=0.15) for c in (0, 1)]
    assert both.test_mse == pytest.approx(sum(r.test_mse for r in parts), rel=1e-12)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"eigenvalues": [1.0, -0.5]}, r"eigenvalues .* got -0.5"),
        ({"eigenvalues": [1.0, float("nan")]}, r"eigenvalues .* got nan"),
        ({"eigenvalues": [1.0, float("inf")]}, r"eigenvalues .* got inf"),
        ({"eigenvalues": [[1.0, 0.5]]}, r"eigenvalues .* shape \(1, 2\)"),
        ({"eigenvalues": [0.0, 0.0]}, r"eigenvalues must contain at least one positive"),
        ({"coefficients": [1.0, 2.0, 3.0]}, r"coefficients .* shape \(3,\)"),
        ({"coefficients": [1.0, float("nan")]}, r"coefficients must be finite"),
        ({"n": 0}, r"n must be .* got 0"),
        ({"n": float("nan")}, r"n must be .* got nan"),
        ({"features": -3}, r"features must be .* got -3"),
        ({"features": "many"}, r"features must be a real number; got 'many'"),
        ({"ridge": -1e-3}, r"ridge must be .* got -0.001"),
        ({"noise": float("inf")}, r"noise must be .* got inf"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(kwargs, match):
    args = {"eigenvalues": [1.0, 0.5], "coefficients": [1.0, 0.0], "n": 10, "features": 20} | kwargs
    eig, coef, n, p = args.pop("eigenvalues"), args.pop("coefficients"), args.pop("n"), args.pop("features")
    with pytest.raises(ValueError, match=match):
        random_feature_regression(eig, coef, n, p, **args)
