"""depth-transfer: config validation, oracles for its stacked training, and (slow) the quick law at seed 0."""

from __future__ import annotations

import pytest

import lmech
from lmech.core import LmechInputError
from lmech.laws import depth_transfer as dt

TINY = {"depths": [1, 2], "base_blocks": 1, "width": 16, "base_width": 16, "steps": 3, "batch": 16, "seeds": 1}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"depths": [8, 4]}, "depths"),
        ({"depths": [4]}, "depths"),
        ({"optimizers": ["lion"]}, "optimizers"),
        ({"adam_lrs": [-6.0, -4.0, -3.0]}, "adam_lrs"),
        ({"base_blocks": 4}, "base_blocks"),
        ({"width": 32}, "base_width"),
        ({"batch": 0}, "batch"),
    ],
)
def test_bad_config_is_a_clear_input_error(overrides, field):
    with pytest.raises(LmechInputError, match=field):
        lmech.check(dt.ID, overrides=overrides)


def _job(cfg, parametrization, blocks, optimizer="adam"):
    (job,) = [
        j
        for j in dt.plan(cfg)
        if j[0].config["parametrization"] == parametrization
        and j[0].config["blocks"] == blocks
        and j[0].config["optimizer"] == optimizer
    ]
    return [s.config for s in job]


def _losses(configs):
    return [r.rows[0].value for r in dt.execute(configs)]


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_depth_mup_at_the_base_depth_is_the_unscaled_model(optimizer):
    """r = 1: multipliers and learning rates agree, the init draw and batches are shared: the same losses exactly."""
    cfg = dt.Config(**TINY, optimizers=[optimizer], sgd_lrs=[-3.0, -2.0, -1.0], adam_lrs=[-7.0, -6.0, -5.0])
    assert _losses(_job(cfg, "depth-mup", 1, optimizer)) == _losses(_job(cfg, "mup", 1, optimizer))
    assert _losses(_job(cfg, "depth-mup", 2, optimizer)) != _losses(_job(cfg, "mup", 2, optimizer))


def test_stacking_learning_rates_changes_nothing():
    """Oracle: training the learning rates as one stacked ensemble equals training each alone (autograd of the
    summed losses gives each member its own gradient), up to float32 rounding of bmm vs mm."""
    cfg = dt.Config(**TINY, adam_lrs=[-7.0, -6.0, -5.0])
    job = _job(cfg, "depth-mup", 2)
    together = _losses(job)
    alone = [_losses([c])[0] for c in job]
    assert together == pytest.approx(alone, rel=1e-4)


def test_a_diverged_learning_rate_is_a_measurement_not_the_verdict():
    overrides = {**TINY, "optimizers": ["sgd"], "sgd_lrs": [0.0, 40.0, 80.0]}
    v = lmech.check(dt.ID, overrides=overrides)
    assert v.diverged and not v.holds
    names = [c.name for c in v.checks]
    assert "no divergence" not in names and "sgd depth-muP: drift of the optimal log2 lr across depths" in names


@pytest.mark.slow
def test_quick_check_holds_at_seed_0():
    """Measured at seed 0 (members 0, 1): depth-muP drift 0.46 octave; unscaled drift 1.84, slope -0.61 octave per
    doubling. Bounds: the law's own (drift <= 1, gap >= 0.75, |slope + 0.5| <= 0.25) plus the measured values to
    within 0.2 octave, so a change of behaviour that still passes the law is noticed."""
    v = lmech.check(dt.ID, seed=0)
    checks = {c.name: c for c in v.checks}
    assert v.holds, [c.describe() for c in v.checks]
    drift = checks["adam depth-muP: drift of the optimal log2 lr across depths"].measured
    plain = checks["adam: without branch scaling the optimum drifts more (drift difference)"].measured
    slope = checks["adam, no branch scaling: optimum's slope against log2 depth"].measured
    assert drift == pytest.approx(0.46, abs=0.2)
    assert plain == pytest.approx(1.84, abs=0.2)
    assert slope == pytest.approx(-0.61, abs=0.2)
    assert v.figure is not None and len(v.figure.panels) == 3
