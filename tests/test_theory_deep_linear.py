"""Theory of deep linear networks against exact references and limits."""

import math

import numpy as np
import pytest
import torch

from lmech.data import generator, random_orthogonal
from lmech.theory.deep_linear import (
    effective_initial_strength,
    half_time,
    mode_trajectory,
    reduced_flow_blowup,
    staircase_loss,
    time_to_reach,
)


@pytest.mark.parametrize("lam,s0", [(5.0, 1e-6), (1.0, 1e-3), (0.3, 0.1), (2.0, 3.0)])
def test_depth2_closed_form_matches_numerical_ode(lam, s0):
    t = np.linspace(0, 12 / lam, 200)
    closed = mode_trajectory(lam, s0, t, depth=2, method="closed")
    ode = mode_trajectory(lam, s0, t, depth=2, method="ode")
    np.testing.assert_allclose(ode, closed, rtol=1e-8)  # DOP853 at rtol 1e-11 in log space


@pytest.mark.parametrize("depth", [2, 3, 4, 6])
def test_half_time_is_where_the_trajectory_crosses_half(depth):
    lam, s0 = 2.0, 1e-4
    t_half = half_time(lam, s0, depth)
    s = mode_trajectory(lam, s0, [t_half], depth, method="ode")[0]
    assert s == pytest.approx(lam / 2, rel=1e-7)


def test_depth2_half_time_formula():
    # Saxe et al. 2014: t_1/2 = ln(lam/s0 - 1) / (2 lam)
    assert half_time(3.0, 1e-5) == pytest.approx(math.log(3.0 / 1e-5 - 1) / 6.0, rel=1e-12)


@pytest.mark.parametrize("depth", [2, 3, 5])
def test_limits_start_and_end(depth):
    lam, s0 = 1.5, 1e-3
    s = mode_trajectory(lam, s0, [0.0, 1e4], depth)
    assert s[0] == pytest.approx(s0, rel=1e-9)
    assert s[1] == pytest.approx(lam, rel=1e-9)


def test_deeper_networks_have_sharper_transitions_from_small_init():
    # for L > 2, t_1/2 ~ s0^{-(L-2)/L} / ((L-2) lam): a power law in s0, not a log
    lam = 1.0
    ratios = [time_to_reach(lam, s0, 0.5, 4) * s0**0.5 for s0 in (1e-4, 1e-6, 1e-8)]
    # next order is the log term of the integral near lam/2, relative size ~ s0^{1/2} ln(...) <= 1.3% at 1e-4
    np.testing.assert_allclose(ratios, 1 / (2 * lam), rtol=0.02)


def test_staircase_loss():
    lams = [2.0, 1.0]
    s = np.array([[2.0, 0.0], [1.0, 1.0]])
    np.testing.assert_allclose(staircase_loss(lams, s), [0.0, 2.0])  # (modes, times)


def test_effective_strength_of_aligned_weights_is_the_product_of_gains():
    gen = generator(0)
    u, v, r1 = random_orthogonal(6, 3, gen), random_orthogonal(6, 3, gen), random_orthogonal(9, 3, gen)
    a = 0.01
    w1, w2 = a * r1 @ v.T, a * u @ r1.T
    np.testing.assert_allclose(
        effective_initial_strength([w1.numpy(), w2.numpy()], u.numpy(), v.numpy()), a**2, rtol=1e-10
    )


def test_effective_strength_expectation():
    # E ||(p + q)/2||^2 = h sigma^2 / 2 for the strongest mode (no projection)
    gen = generator(1)
    h, d, sigma = 16, 6, 1e-2
    u, v = random_orthogonal(d, 2, gen), random_orthogonal(d, 2, gen)
    draws = [
        effective_initial_strength(
            [
                (sigma * torch.randn(h, d, generator=gen, dtype=torch.float64)).numpy(),
                (sigma * torch.randn(d, h, generator=gen, dtype=torch.float64)).numpy(),
            ],
            u.numpy(),
            v.numpy(),
        )[0]
        for _ in range(2000)
    ]
    # chi-square with h dof: relative standard error sqrt(2/h)/sqrt(2000) ~ 0.8%
    assert np.mean(draws) == pytest.approx(h * sigma**2 / 2, rel=0.04)


def test_bad_inputs():
    with pytest.raises(ValueError):
        mode_trajectory(-1.0, 0.1, [0.0])
    with pytest.raises(ValueError):
        time_to_reach(1.0, 0.8, 0.5)


@pytest.mark.parametrize("depth", [3, 4, 5])
def test_reduced_flow_of_an_aligned_mode_blows_up_at_the_aligned_time(depth):
    # aligned, balanced gain a: da/dt = a^{L-1} blows up at 1 / ((L-2) a^{L-2})
    gen = generator(depth)
    a, h = 0.05, 6
    basis = random_orthogonal(h, 1, gen).numpy()[:, 0]
    inner = [a * np.outer(basis, basis) for _ in range(depth - 2)]
    tau, hidden = reduced_flow_blowup(a * basis, a * basis, inner)
    assert tau == pytest.approx(1 / ((depth - 2) * a ** (depth - 2)), rel=1e-6)
    assert abs(hidden[0] @ basis) / np.linalg.norm(hidden[0]) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("depth", [3, 4])
def test_effective_strength_of_aligned_deep_weights(depth):
    gen = generator(0)
    u, v = random_orthogonal(5, 3, gen), random_orthogonal(5, 3, gen)
    rs = [random_orthogonal(7, 3, gen) for _ in range(depth - 1)]
    bases = [v, *rs, u]
    a = 0.1
    weights = [(a * left @ right.T).numpy() for left, right in zip(bases[1:], bases[:-1], strict=True)]
    # the blow-up time comes from an ODE solve at rtol 1e-8 plus the analytic tail: 1e-5 leaves 1000x margin
    np.testing.assert_allclose(effective_initial_strength(weights, u.numpy(), v.numpy()), a**depth, rtol=1e-5)


def test_random_deep_effective_strength_scales_like_the_init():
    # homogeneity: scaling every layer by c scales s0 by c^L
    gen = generator(3)
    u, v = random_orthogonal(4, 2, gen), random_orthogonal(4, 2, gen)
    ws = [torch.randn(s, generator=gen, dtype=torch.float64).numpy() * 0.01 for s in ((12, 4), (12, 12), (4, 12))]
    s1 = effective_initial_strength(ws, u.numpy(), v.numpy())
    s2 = effective_initial_strength([2 * w for w in ws], u.numpy(), v.numpy())
    # exact homogeneity; two independent ODE solves at rtol 1e-8 each, raised to the power L/(L-2) = 3
    np.testing.assert_allclose(s2 / s1, 2.0**3, rtol=1e-4)
