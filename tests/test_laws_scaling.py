"""Scaling-law laws: fit-recovery in quick mode, and its coverage check judged against its Monte Carlo error."""

import numpy as np
import pytest

import lmech
from lmech.laws.fit_recovery import coverage_check

pytestmark = pytest.mark.slow


def test_fit_recovery_quick_holds():
    v = lmech.check("fit-recovery")
    assert v.holds, (v.regime, [c.describe() for c in v.checks])
    coverage, extrapolation = v.checks
    assert 0.75 < coverage.measured["coverage"] < 0.9  # measured 0.83 (40 repetitions); 0.864 over 100
    assert extrapolation.measured < 0.02  # measured 1.5% (90th percentile); median 0.65%


def test_coverage_check_fails_when_intervals_are_miscalibrated():
    rng = np.random.default_rng(0)
    calibrated = (rng.random((200, 5)) < 0.8).astype(float)
    assert coverage_check(calibrated, 0.8).holds
    too_narrow = (rng.random((200, 5)) < 0.5).astype(float)  # 50% coverage: clearly outside [0.7, 0.9]
    assert not coverage_check(too_narrow, 0.8).holds
    always = np.ones((200, 5))  # intervals so wide they always cover: outside the window, no spread
    assert not coverage_check(always, 0.8).holds
    few = np.array([[1.0] * 5, [0.6] * 5])  # 2 repetitions: an interval far wider than the window decides nothing
    check = coverage_check(few, 0.8)
    assert check.measured["interval_95"][1] - check.measured["interval_95"][0] > 0.2 and not check.holds
