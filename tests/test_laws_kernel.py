"""The kernel-lab laws in quick mode with fixed seeds: they hold in their stated regime, and the eigenlearning
data route fails where the stated regime ends (n comparable to the pool)."""

import pytest

import lmech

pytestmark = pytest.mark.slow


def test_eigenlearning_quick_holds():
    v = lmech.check("eigenlearning")
    assert v.holds, (v.regime, [c.describe() for c in v.checks])
    synthetic0, synthetic1, digits = v.checks
    assert synthetic0.error < 0.05 and synthetic1.error < 0.05  # measured 2.9% and 1.3% (seed 0)
    assert digits.error < 0.10  # measured 5.6% (n = 150)
    assert v.figure is not None and len(v.figure.panels) == 2


def test_eigenlearning_on_digits_fails_when_n_approaches_the_pool():
    v = lmech.check(
        "eigenlearning",
        overrides={"sources": ["digits"], "digits_ns": [30, 100, 1000], "judged_fraction": 1.0, "draws": 10},
    )
    assert not v.holds and v.error > 0.3  # measured +80% at n = 1000 of 1797


def test_kernel_scaling_quick_holds():
    v = lmech.check("kernel-scaling")
    assert v.holds, (v.regime, [c.describe() for c in v.checks])
    slopes = [c for c in v.checks if c.name.startswith("slope")]
    assert len(slopes) == 3
    assert "pre-asymptotic" in v.regime  # (1.2, 3.5) is judged against eigenlearning only


def test_double_descent_quick_holds():
    v = lmech.check("double-descent")
    assert v.holds, (v.regime, [c.describe() for c in v.checks])
    location, height, curve = v.checks
    assert location.measured == 0.0 and height.measured > 10 and curve.error < 0.15


def test_ntk_regression_quick_holds_and_the_distance_shrinks_with_width():
    v = lmech.check("ntk-regression")
    assert v.holds, (v.regime, [c.describe() for c in v.checks])
    widest, slope = v.checks
    assert widest.measured < 0.05  # measured 3.9% at width 8192
    assert -1.0 <= slope.measured["slope"] <= -0.3  # measured -0.47
