"""Per-mode learnability: exact values on hand-built functions, linearity, limits, eigenspaces, and clear errors."""

import math

import pytest
import torch

from lmech.core import LmechInputError, Snapshot
from lmech.observables.learnability import (
    fourier_basis,
    kernel_eigenspaces,
    learnability,
    learnability_observable,
    target_modes,
)

N = 32


def _task():
    """f* = 2 cos(theta + 0.3) - 0.5 sin(3 theta), f_0 = 0.4 cos(5 theta) + 1 (a mode the target lacks)."""
    theta = 2 * math.pi * torch.arange(N, dtype=torch.float64) / N
    parts = torch.stack([2 * torch.cos(theta + 0.3), -0.5 * torch.sin(3 * theta)], 1)  # (n, 2) target per mode
    f0 = 0.4 * torch.cos(5 * theta) + 1.0
    modes = target_modes(parts.sum(1), [fourier_basis(N, 1), fourier_basis(N, 3)])
    return theta, parts, f0, modes


def test_fourier_basis_is_orthonormal_with_single_columns_at_0_and_nyquist():
    for k in (0, 1, 5, N // 2):
        b = fourier_basis(N, k)
        assert b.shape == (N, 1 if k in (0, N // 2) else 2)
        assert torch.allclose(b.T @ b, torch.eye(b.shape[1], dtype=torch.float64), atol=1e-12)
    assert torch.allclose(
        fourier_basis(N, 1).T @ fourier_basis(N, 2), torch.zeros(2, 2, dtype=torch.float64), atol=1e-12
    )
    with pytest.raises(LmechInputError, match="frequency"):
        fourier_basis(N, N // 2 + 1)


def test_exact_values_for_hand_built_functions():
    _, parts, f0, modes = _task()
    y = parts.sum(1)
    # the model has fitted half of mode 1 and a quarter of mode 3 (plus the init it started from)
    f = f0 + 0.5 * parts[:, 0] + 0.25 * parts[:, 1]
    assert torch.allclose(learnability(f, f0, y + f0, modes), torch.tensor([0.5, 0.25], dtype=torch.float64))
    # f_0 = 0 convention: the same numbers when the init is subtracted beforehand
    assert torch.allclose(learnability(f - f0, torch.zeros(N), y, modes), torch.tensor([0.5, 0.25]).double())
    # overshoot and sign: -1 times mode 3 gives L = -1
    assert learnability(f0 - parts[:, 1], f0, y + f0, modes)[1].item() == pytest.approx(-1.0)


def test_limits_zero_at_init_one_at_target_and_batched_over_time():
    _, parts, f0, modes = _task()
    y = parts.sum(1) + f0
    path = torch.stack([f0, f0 + 0.3 * (y - f0), y])  # (T, n)
    values = learnability(path, f0, y, modes)
    assert values.shape == (3, 2)
    assert torch.allclose(values, torch.tensor([[0.0] * 2, [0.3] * 2, [1.0] * 2], dtype=torch.float64), atol=1e-12)


def test_linear_in_the_change_and_blind_to_other_modes():
    theta, parts, f0, modes = _task()
    y = parts.sum(1) + f0
    gen = torch.Generator().manual_seed(0)
    u, v = torch.randn(N, generator=gen, dtype=torch.float64), torch.randn(N, generator=gen, dtype=torch.float64)
    a, b = 0.7, -2.3
    combined = learnability(f0 + a * u + b * v, f0, y, modes)
    assert torch.allclose(combined, a * learnability(f0 + u, f0, y, modes) + b * learnability(f0 + v, f0, y, modes))
    other = torch.sin(7 * theta)  # a frequency outside both spaces
    assert torch.allclose(learnability(y + other, f0, y, modes), torch.ones(2, dtype=torch.float64), atol=1e-12)


def test_zero_amplitude_modes_are_clear_errors():
    _, parts, _, modes = _task()
    y = parts.sum(1)
    with pytest.raises(LmechInputError, match="zero amplitude in spaces\\[1\\]"):
        target_modes(y, [fourier_basis(N, 1), fourier_basis(N, 2)])  # the target has no frequency 2
    missing = torch.cat([modes, fourier_basis(N, 2)[:, :1]], 1)  # orthonormal, but the target misses column 2
    with pytest.raises(LmechInputError, match=r"mode\(s\) \[2\]"):
        learnability(y, torch.zeros(N), y, missing)
    with pytest.raises(LmechInputError, match="orthonormal"):
        learnability(y, torch.zeros(N), y, 2 * modes)
    with pytest.raises(LmechInputError, match="modes must be"):
        learnability(y[:-1], torch.zeros(N - 1), y[:-1], modes)


def test_circulant_gram_eigenspaces_are_fourier_pairs():
    """A dot-product kernel on a uniform grid of the circle: each frequency k in (0, n/2) is a 2-d eigenspace."""
    theta = 2 * math.pi * torch.arange(N, dtype=torch.float64) / N
    gram = torch.exp(torch.cos(theta[:, None] - theta[None, :]))  # exp(x . x'), strictly decreasing spectrum in k
    spaces = kernel_eigenspaces(gram)
    assert [b.shape[1] for _, b in spaces[:5]] == [1, 2, 2, 2, 2]
    for k, (value, basis) in enumerate(spaces[:5]):
        fb = fourier_basis(N, k)
        assert torch.allclose(basis @ basis.T, fb @ fb.T, atol=1e-8)  # same projector
        # eigenvalue = sum_j K_0j cos(k theta_j) = n I_k(1) for exp(cos): Bessel modified, first kind
        assert value == pytest.approx(float((gram[0] * torch.cos(k * theta)).sum()), rel=1e-10)
    with pytest.raises(LmechInputError, match="symmetric"):
        kernel_eigenspaces(gram + torch.triu(torch.ones(N, N, dtype=torch.float64), 1))


def test_observable_takes_f0_at_the_first_snapshot():
    _, parts, f0, modes = _task()
    y = parts.sum(1)
    x = torch.eye(N, dtype=torch.float64)

    def fn(params, inputs):
        return inputs @ params["w"]

    def snap(w):
        return Snapshot(0, 0.0, {"w": w}, fn, x, y, 0.0)

    obs = learnability_observable(y + f0, modes)
    state = obs.init(snap(f0))
    values, state = obs.measure(snap(f0 + 0.5 * parts[:, 0]), state)
    assert values == pytest.approx({"learnability/0": 0.5, "learnability/1": 0.0})
    values, _ = obs.measure(snap(y + f0), state)
    assert values == pytest.approx({"learnability/0": 1.0, "learnability/1": 1.0})
