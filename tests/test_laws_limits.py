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


def test_signal_propagation_quick_holds_well_inside_the_bar():
    v = lmech.check("signal-propagation")
    assert v.holds, (v.regime, [c.describe() for c in v.checks])
    q_errors = [c.error for c in v.checks if c.name.startswith("per-layer q^l")]
    assert len(q_errors) == 3 and max(q_errors) < 0.02  # measured 0.6-1.2% (seeds 0-4): the bar is 3%
    slopes = [c.measured["slope"] for c in v.checks if "slope" in c.name]
    assert all(-0.56 < s < -0.44 for s in slopes)  # measured -0.49 to -0.53


def test_signal_propagation_fails_at_relu_criticality():
    # the q-map is linear there: fluctuations are not damped, and c^l approaches 1 only like 1/l^2
    v = lmech.check("signal-propagation", overrides={"settings": ["relu-critical"]})
    assert not v.holds
    assert v.checks[3].error > 0.03  # |c^20 - 1| = 0.05


def test_signal_propagation_samplers_draw_the_same_networks():
    """'rows' (the n neuron pairs from their 2 x 2 covariance) and 'weights' (n x n matrices) give the same law:
    mean and spread of q^3 and c^3 over 96 nets each agree within 4 standard errors."""
    import numpy as np
    import torch

    from lmech.core import generator
    from lmech.laws.signal_propagation import inputs, random_layers

    def stats(sampler):
        out = []
        for k in range(96):
            *_, h = random_layers(inputs(200, 0.3, 0), torch.tanh, 3.0, 0.05, 3, generator(7, k), sampler)
            out.append([(h[0] @ h[0]).item() / 200, (h[0] @ h[1] / (h[0].norm() * h[1].norm())).item()])
        return np.array(out)

    rows, weights = stats("rows"), stats("weights")
    se = np.sqrt(rows.var(0, ddof=1) / 96 + weights.var(0, ddof=1) / 96)
    assert np.all(np.abs(rows.mean(0) - weights.mean(0)) < 4 * se)
    ratio = rows.std(0) / weights.std(0)  # a std from 96 draws has ~7% relative error
    assert np.all((ratio > 0.7) & (ratio < 1.4)), ratio


def test_ntk_linearization_quick_holds():
    v = lmech.check("ntk-linearization")
    assert v.holds, (v.regime, [c.describe() for c in v.checks])
    bar, shrinking, movement = v.checks
    assert bar.error < 0.03  # measured 1.9-2.4% at width 1024 (seeds 0-3)
    assert -0.8 < shrinking.measured["slope"] < -0.6  # measured -0.67 to -0.75
    assert abs(movement.measured["slope"] - movement.predicted) < 0.05  # measured -0.485 against -0.500


def test_ntk_linearization_of_a_linear_model_is_exact():
    """Oracle for the flattened (n C) x (n C) kernel and its 1/n rate: without hidden layers the network is its
    own linearisation, so GD and the linear prediction agree to rounding at every recorded step."""
    from lmech.laws.ntk_linearization import Config, _run

    cfg = Config().model_dump() | {"depth": 0, "width": 8, "member": 0, "steps": 50, "records": 5}
    result = _run(cfg)
    deviations = [r.value for r in result.rows if r.name.startswith("deviation")]
    assert len(deviations) == 10 and max(deviations) < 1e-10
