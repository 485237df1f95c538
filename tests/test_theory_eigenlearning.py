"""Eigenlearning and kernel regression: identities, limits, Monte Carlo of kernel regression on explicit features."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from lmech.theory.eigenlearning import effective_regularization, eigenlearning, kernel_eigensystem
from lmech.theory.kernel_regression import kernel_ridge, linearized_dynamics


def _power_law(modes=300, a=1.5, b=2.0):
    i = np.arange(1, modes + 1, dtype=float)
    return i**-a, i ** (-b / 2)


@pytest.mark.parametrize("n", [0.5, 3, 50, 299.5])
def test_learnabilities_sum_to_n_when_ridgeless(n):
    lam, v = _power_law()
    result = eigenlearning(lam, v, n)
    assert result.learnabilities.sum() == pytest.approx(n, rel=1e-10)
    assert result.train_mse == 0.0


def test_kappa_decreases_with_n_and_diverges_as_n_vanishes():
    lam, _ = _power_law()
    kappas = [effective_regularization(lam, n, ridge=1e-3) for n in (1e-8, 1e-4, 1, 10, 100, 1000)]
    assert all(a > b for a, b in itertools.pairwise(kappas))
    assert kappas[0] > 1e6


def test_ridgeless_beyond_the_number_of_modes_interpolates_every_mode():
    lam, v = _power_law(modes=40)
    result = eigenlearning(lam, v, 50, noise=0.1)
    assert result.kappa == 0.0
    assert result.e0 == pytest.approx(50 / 10)
    assert result.test_mse == pytest.approx(5 * 0.1)
    assert math.isinf(eigenlearning(lam, v, 40, noise=0.1).e0)


def test_flat_spectrum_overfitting_coefficient():
    """M equal eigenvalues, ridgeless, n < M: L = n/M for every mode, E0 = M / (M - n) (DeCal ch. 3)."""
    result = eigenlearning(np.ones(200), np.zeros(200), 50, noise=1.0)
    assert result.learnabilities == pytest.approx(np.full(200, 0.25))
    assert result.e0 == pytest.approx(200 / 150)


def _monte_carlo(lam, v, n, ridge, noise, draws, seed):
    """Kernel regression with explicit Gaussian features z ~ N(0, I_M), K = Z diag(lam) Z^T. The learned function is
    sum_i beta_i z_i with beta = diag(lam) Z^T alpha, so its population error against noisy labels is exactly
    ||beta - v||^2 + noise (no test sampling)."""
    gen = torch.Generator().manual_seed(seed)
    lam_t, v_t = torch.as_tensor(lam), torch.as_tensor(v)
    tests, trains = [], []
    for _ in range(draws):
        z = torch.randn(n, len(lam), generator=gen, dtype=torch.float64)
        y = z @ v_t + math.sqrt(noise) * torch.randn(n, generator=gen, dtype=torch.float64)
        k = (z * lam_t) @ z.T
        alpha = kernel_ridge(k, y, ridge)
        beta = lam_t * (z.T @ alpha)
        tests.append(((beta - v_t) ** 2).sum().item() + noise)
        trains.append(((k @ alpha - y) ** 2).mean().item())
    return np.array(tests), np.array(trains)


@pytest.mark.parametrize("ridge", [0.0, 1e-2])
@pytest.mark.parametrize("n", [30, 120])
def test_prediction_matches_monte_carlo_kernel_regression(n, ridge):
    """Tolerance: 3 standard errors of the 40-draw mean plus 4% (eigenlearning's O(1/n) finite-size bias;
    Simon et al. 2023 report a few percent at n ~ 100)."""
    lam, v = _power_law(modes=400)
    theory = eigenlearning(lam, v, n, ridge=ridge, noise=0.05)
    tests, trains = _monte_carlo(lam, v, n, ridge, 0.05, draws=40, seed=n)
    for measured, predicted in [(tests, theory.test_mse), (trains, theory.train_mse)]:
        if predicted == 0:
            assert measured.mean() < 1e-12
            continue
        error = measured.std() / math.sqrt(len(measured))
        assert abs(measured.mean() - predicted) <= 3 * error + 0.04 * predicted, (measured.mean(), predicted)


def test_kernel_eigensystem_reconstructs_the_pool():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(50, 3, generator=gen, dtype=torch.float64)
    k = torch.exp(-(torch.cdist(x, x) ** 2))
    y = torch.sin(x[:, :2])
    lam, v = kernel_eigensystem(k, y)
    assert np.all(np.diff(lam) <= 0) and lam.min() >= 0
    assert (v**2).sum() == pytest.approx((y**2).sum().item() / 50, rel=1e-12)  # Parseval on the pool
    assert lam.sum() == pytest.approx(k.trace().item() / 50, rel=1e-12)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: eigenlearning([1.0, -0.1], [1.0, 1.0], 5), "eigenvalues"),
        (lambda: eigenlearning([1.0, math.nan], [1.0, 1.0], 5), "eigenvalues"),
        (lambda: eigenlearning([1.0, 0.5], [1.0, 1.0, 1.0], 5), "coefficients"),
        (lambda: eigenlearning([1.0, 0.5], [1.0, 1.0], 0), "n"),
        (lambda: eigenlearning([1.0, 0.5], [1.0, 1.0], 5, ridge=-1.0), "ridge"),
        (lambda: eigenlearning([1.0, 0.5], [1.0, 1.0], 5, noise=math.inf), "noise"),
        (lambda: kernel_eigensystem(np.eye(3), np.ones(4)), "targets"),
    ],
)
def test_bad_input_names_the_argument(call, field):
    with pytest.raises(ValueError, match=field):
        call()


def test_ridgeless_solve_on_duplicate_points_suggests_a_ridge():
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match="ridge"):
        kernel_ridge(x @ x.T, torch.ones(3))


def test_linearized_dynamics_match_gradient_descent_on_a_linear_model():
    """A model linear in its parameters, f = Phi theta, has NTK Phi Phi^T: its GD trajectory is the exact
    linearised prediction; gradient flow agrees at small steps; t -> infinity is kernel regression."""
    gen = torch.Generator().manual_seed(1)
    phi_train = torch.randn(20, 60, generator=gen, dtype=torch.float64)
    phi_test = torch.randn(7, 60, generator=gen, dtype=torch.float64)
    theta0 = torch.randn(60, generator=gen, dtype=torch.float64) * 0.3
    y = torch.randn(20, generator=gen, dtype=torch.float64)
    dynamics = linearized_dynamics(
        phi_train @ phi_train.T, y, phi_train @ theta0, phi_test @ phi_train.T, phi_test @ theta0
    )
    lr, steps, theta = 0.1, 300, theta0.clone()
    for _ in range(steps):
        theta -= lr / 20 * phi_train.T @ (phi_train @ theta - y)
    train, test = dynamics.after_steps(lr, steps)
    torch.testing.assert_close(train, phi_train @ theta, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(test, phi_test @ theta, rtol=1e-10, atol=1e-10)
    flow_train, _ = dynamics.at_time(lr * steps)
    assert (flow_train - train).abs().max() < 0.05 * (y - phi_train @ theta0).abs().max()  # O(lr) apart
    _start_train, start_test = dynamics.at_time(0.0)
    torch.testing.assert_close(start_test, phi_test @ theta0)
    _, late_test = dynamics.at_time(1e9)
    kernel = phi_test @ theta0 + phi_test @ phi_train.T @ kernel_ridge(phi_train @ phi_train.T, y - phi_train @ theta0)
    torch.testing.assert_close(late_test, kernel, rtol=1e-8, atol=1e-8)


def test_two_mode_kappa_matches_the_quadratic_root():
    """Ridgeless, two modes: clearing denominators in n = l1/(l1 + k) + l2/(l2 + k) gives the quadratic
    n k^2 + (n - 1)(l1 + l2) k + (n - 2) l1 l2 = 0, whose positive root is an independent closed form."""
    l1, l2, n = 3.0, 0.25, 1.3
    a, b, c = n, (n - 1) * (l1 + l2), (n - 2) * l1 * l2
    root = (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
    assert effective_regularization([l1, l2], n) == pytest.approx(root, rel=1e-12)
    result = eigenlearning([l1, l2], [1.0, 2.0], n, noise=0.1)
    learn = np.array([l1 / (l1 + root), l2 / (l2 + root)])
    e0 = n / (n - (learn**2).sum())
    assert result.test_mse == pytest.approx(e0 * (((1 - learn) ** 2 * [1.0, 4.0]).sum() + 0.1), rel=1e-12)


@pytest.mark.parametrize("n", [199.0, 199.999, 200.5])
def test_solver_near_the_number_of_modes(n):
    """n just below, at the edge of, and above M = 200 modes (ridgeless): finite, consistent, no solver failure."""
    lam, v = _power_law(modes=200, a=2.0)
    result = eigenlearning(lam, v, n, noise=0.01)
    if n < 200:
        assert result.kappa > 0 and result.learnabilities.sum() == pytest.approx(n, rel=1e-9)
    else:
        assert result.kappa == 0.0 and result.e0 == pytest.approx(n / (n - 200))
