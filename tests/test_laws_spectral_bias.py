"""spectral-bias in quick mode (seed 0), its theory conventions against exact references, and its config validation."""

import math

import numpy as np
import pytest
import torch

import lmech
from lmech.core import LmechInputError
from lmech.laws import spectral_bias
from lmech.laws.common import first_crossing
from lmech.observables.learnability import fourier_basis, kernel_eigenspaces, learnability
from lmech.theory import kernels, mode_learning

pytestmark = pytest.mark.slow
ID = "spectral-bias"
FREQS = [1, 2, 4, 8]


@pytest.fixture(scope="module")
def verdict():
    return lmech.check(ID, seed=0)


def _checks(v):
    return {c.name: c for c in v.checks}


def test_quick_holds_lazy_quantitatively_and_every_run_in_order(verdict):
    assert verdict.holds, (verdict.regime, [c.describe() for c in verdict.checks])
    checks = _checks(verdict)
    lazy = "width 4096, alpha 100"
    assert checks[f"max |L_meas - L_pred| over modes and steps, worst net ({lazy})"].measured < 0.05  # 0.017
    half = checks[f"half-learning step per mode, every net ({lazy})"]
    assert half.error < 0.1 and np.asarray(half.measured).shape == (2, 4)
    orders = [c for c in verdict.checks if c.name.startswith("modes reach L = 1/2")]
    assert len(orders) == 4 and all(c.holds for c in orders)  # lazy or not, low frequencies first
    assert len(verdict.checks) == 6  # the two quantitative checks apply to the one lazy (width, alpha) only


def test_quantitative_prediction_breaks_outside_the_lazy_regime(verdict):
    """At alpha = 1 (plain NTK parametrization) the k = 8 mode is learnt ~3-4x slower than the NTK predicts."""
    panel = next(p for p in verdict.figure.panels if p.title.startswith("max |L_meas - L_pred|"))
    deviation = {s.label: dict(zip(s.x, s.y, strict=True)) for s in panel.series if s.style == "dots"}
    assert deviation["alpha = 100"][4096] < 0.1
    assert deviation["alpha = 1"][4096] > 0.2  # measured 0.3
    assert deviation["alpha = 1"][256] > 0.3  # measured 0.45


def test_figure_shows_curves_deviation_and_eigenvalues(verdict):
    titles = [p.title for p in verdict.figure.panels]
    assert titles == [
        "learnability, width 4096, alpha 100 (lazy)",
        "learnability, width 256, alpha 1 (not lazy)",
        "max |L_meas - L_pred| over modes, steps, nets",
        "NTK eigenvalue of K/n per frequency",
    ]
    assert all(p.xscale == "log" for p in verdict.figure.panels)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"frequencies": [1, 32]}, "frequencies"),
        ({"frequencies": [2, 2]}, "frequencies"),
        ({"widths": [0]}, "widths"),
        ({"alphas": [-1.0]}, "alphas"),
        ({"lr": 0}, "lr"),
        ({"nets": 0}, "nets"),
    ],
)
def test_bad_config_is_a_clear_input_error(overrides, field):
    with pytest.raises(LmechInputError, match=field):
        lmech.check(ID, overrides=overrides)


def test_a_diverging_run_is_recorded_not_raised():
    """lr = 8 (past the validated lr < 1 / lambda_1 = 1.96 and the stability edge 2 / lambda_0 = 3.2) blows up."""
    cfg = {**spectral_bias.Config().model_dump(), "width": 64, "alpha": 100.0, "net": 0, "lr": 8.0, "steps": 200}
    (result,) = spectral_bias.execute([cfg])
    assert result.status == "diverged" and 0 < result.diverged_step < 200


def test_horizon_and_step_size_are_validated_against_the_prediction():
    with pytest.raises(LmechInputError, match=r"steps must be >= 555"):
        lmech.check(ID, overrides={"steps": 500})  # the k = 8 mode's predicted half step is 277
    with pytest.raises(LmechInputError, match=r"lr must be below 1 / lambda_max = 1.96"):
        lmech.check(ID, overrides={"lr": 2.5})


def test_circulant_eigenvalues_are_the_fourier_eigenvalues_of_the_ntk_gram():
    """Oracle: the closed-form per-frequency eigenvalues against a dense eigendecomposition of Theta / n."""
    n = 32
    _, x = spectral_bias.grid(n)
    gram = kernels(x, depth=1, weight_std=math.sqrt(2), bias_std=0.1).ntk
    lam = mode_learning.circulant_eigenvalues(gram, range(n // 2 + 1))
    assert torch.allclose(
        torch.sort(lam).values,
        torch.sort(torch.unique(torch.linalg.eigvalsh(gram / n).round(decimals=12))).values,
        rtol=1e-8,
    )
    for k in FREQS:  # the Fourier pair of frequency k is an eigenspace with that eigenvalue
        basis = fourier_basis(n, k)
        assert torch.allclose(gram @ basis / n, lam[k] * basis, atol=1e-12)
    spaces = kernel_eigenspaces(gram)
    assert spaces[0][0] / n == pytest.approx(float(lam[0]))  # the constant mode is the top one here
    assert bool((lam[FREQS][:-1] > lam[FREQS][1:]).all())  # falls with frequency


def test_linear_model_follows_the_prediction_exactly():
    """Limit: a fixed kernel trained by GD on (1/2n) sum r^2, r <- (I - lr K/n) r, gives 1 - (1 - lr lambda)^t
    (the K/n convention), and the interpolated half steps agree with first_crossing on the exact curve."""
    n, lr = 64, 1.0
    _, x = spectral_bias.grid(n)
    gram = kernels(x, depth=1, weight_std=math.sqrt(2), bias_std=0.1).ntk
    y, modes = spectral_bias.target(3, n, FREQS)
    lam = mode_learning.circulant_eigenvalues(gram, FREQS)
    f, path = torch.zeros(n, dtype=torch.float64), []
    for _ in range(400):
        path.append(f)
        f = f - lr * gram @ (f - y) / n
    steps = np.arange(400)
    measured = learnability(torch.stack(path), torch.zeros(n), y, modes).numpy()
    assert np.allclose(measured, mode_learning.gd_learnability(lam, lr, steps), atol=1e-10)
    exact = [first_crossing(steps.astype(float), measured[:, i], 0.5) for i in range(len(FREQS))]
    assert np.allclose(mode_learning.half_steps(lam, lr), exact, rtol=1e-9)
    assert mode_learning.gd_learnability(lam, lr, np.array([0]))[0] == pytest.approx([0.0] * 4)


def test_target_has_unit_amplitude_modes_and_seeded_phases():
    y0, m0 = spectral_bias.target(0, 64, FREQS)
    y1, _ = spectral_bias.target(1, 64, FREQS)
    assert torch.allclose(m0.T @ m0, torch.eye(4, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(m0.T @ y0, torch.full((4,), math.sqrt(64 / 2), dtype=torch.float64))  # |cos| = sqrt(n/2)
    assert not torch.allclose(y0, y1)
