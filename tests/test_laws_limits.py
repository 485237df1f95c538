"""Tractable-limit laws in quick mode with fixed seeds."""

import pytest

import lmech

pytestmark = pytest.mark.slow


def test_ntk_convergence_quick_holds_with_the_predicted_magnitude():
    v = lmech.check("ntk-convergence")
    assert v.holds, (v.regime, [c.describe() for c in v.checks])
    slope, magnitude = v.checks
    assert -0.6 < slope.measured["slope"] < -0.4  # measured -0.49
    assert magnitude.error < 0.10  # measured 3.4% (the mean error tracks C / sqrt(width) at every width)


def test_ntk_convergence_at_depth_two_judges_the_slope_only():
    v = lmech.check("ntk-convergence", overrides={"depth": 2, "widths": [128, 512, 2048], "seeds": 2})
    assert [c.name for c in v.checks] == ["error vs width, log-log slope"]
    assert "no prediction at this depth" in v.regime


def test_finite_width_quick_holds():
    v = lmech.check("finite-width")
    assert v.holds, (v.regime, [c.describe() for c in v.checks])
    assert [c.name for c in v.checks] == [
        "linear in L/n, R^2 (linear)",
        "variance vs L v(n) in every cell (linear)",
        "linear in L/n, R^2 (relu)",
        "variance vs L v(n) in every cell (relu)",
    ]


def test_finite_width_exact_variance_per_layer():
    from lmech.laws.finite_width import log_norm_variance

    # large-n limits: 2/n (linear: psi_1(n/2) ~ 2/n + 2/n^2) and 5/n (ReLU)
    assert 2.0 < 1024 * log_norm_variance("linear", 1024) < 2.01
    assert 5.0 < 1024 * log_norm_variance("relu", 1024) < 5.05
