"""mup-transfer: the optimum locator, config validation, and (slow) the quick law at seed 0."""

import math

import numpy as np
import pytest

import lmech
from lmech.core import LmechInputError
from lmech.laws import mup_transfer


def test_optimum_is_the_vertex_of_a_log_parabola():
    grid = [-4.0, -3.0, -2.0, -1.0, 0.0]
    true = -2.3
    losses = np.exp(0.5 * (np.array(grid) - true) ** 2)  # log loss exactly quadratic in log2 lr
    assert mup_transfer.optimum(grid, losses) == pytest.approx(true, abs=1e-12)


def test_optimum_on_the_edge_or_all_diverged_is_nan():
    grid = [0.0, 1.0, 2.0]
    assert math.isnan(mup_transfer.optimum(grid, [0.1, 0.2, 0.3]))
    assert math.isnan(mup_transfer.optimum(grid, [math.inf, math.nan, math.inf]))
    # a diverged neighbour counts as +inf: the grid point itself is returned
    assert mup_transfer.optimum(grid, [0.5, 0.1, math.nan]) == 1.0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"widths": [64, 32]}, "widths"),
        ({"optimizers": ["lion"]}, "optimizers"),
        ({"adam_lrs": [-3.0, -1.0, 0.0]}, "adam_lrs"),
        ({"base_width": 128}, "base_width"),
        ({"depth": 0}, "depth"),
        ({"batch": 0}, "batch"),
    ],
)
def test_bad_config_is_a_clear_input_error(overrides, field):
    with pytest.raises(LmechInputError, match=field):
        lmech.check("mup-transfer", overrides=overrides)


def test_mup_at_base_width_gives_the_sp_curve():
    """At m = 1 muP is SP: the same init draw and learning rates, so the same losses exactly."""
    cfg = mup_transfer.Config(
        widths=[32, 64, 128], base_width=32, steps=5, seeds=1, optimizers=["sgd"], sgd_lrs=[-1.0, 0.0, 1.0]
    )
    jobs = [j for j in mup_transfer.plan(cfg) if j[0].config["width"] == 32]
    mup, sp = ([s.config for s in job] for job in jobs)
    assert mup[0]["parametrization"] == "mup" and sp[0]["parametrization"] == "sp"
    losses = [[r.rows[0].value for r in mup_transfer.execute(job)] for job in (mup, sp)]
    assert losses[0] == losses[1]


def test_a_diverged_learning_rate_is_a_measurement_not_the_verdict():
    """divergence_expected: the top of an lr grid may blow up; the law still judges the sweep."""
    overrides = {
        "widths": [32, 64, 128],
        "base_width": 32,
        "steps": 5,
        "seeds": 1,
        "optimizers": ["sgd"],
        "sgd_lrs": [0.0, 60.0, 120.0],
    }
    v = lmech.check("mup-transfer", overrides=overrides)
    assert v.diverged
    names = [c.name for c in v.checks]
    assert "no divergence" not in names and "sgd muP: drift of the optimal log2 lr across widths" in names


def test_wider_is_better_is_a_trend_test_that_can_fail():
    widths = [64, 128, 256, 512]
    flat = np.array([[0.05, 0.051, 0.049], [0.049, 0.05, 0.052], [0.051, 0.05, 0.05], [0.05, 0.049, 0.05]])
    assert mup_transfer._wider_is_better("sgd", widths, flat).holds
    rising = flat + 0.004 * np.arange(4)[:, None]  # +0.004 per doubling: the loss gets worse with width
    check = mup_transfer._wider_is_better("sgd", widths, rising)
    assert not check.holds and check.measured["slope per doubling"] == pytest.approx(0.004, abs=1e-3)
    diverged = flat.copy()
    diverged[3, 0] = math.inf
    assert not mup_transfer._wider_is_better("sgd", widths, diverged).holds


@pytest.mark.slow
def test_mup_transfer_quick_holds():
    """Seeds 0-2 measured: muP drift Adam 0.48-0.59, SGD 0.27-0.39 octaves; SP drift Adam 3.7-4.1, SGD 2.7-3.0."""
    v = lmech.check("mup-transfer", seed=0)
    assert v.holds, [c.describe() for c in v.checks]
    drift = {c.name.split(":")[0]: c.measured for c in v.checks if "drift" in c.name}
    assert drift["adam muP"] < 0.8 and drift["sgd muP"] < 0.6
    assert drift["adam SP"] > 3.0 and drift["sgd SP"] > 2.4


def test_transformer_model_runs_through_the_law_and_refuses_sgd():
    """The full mode's transformer path end to end on a tiny budget (the full run takes tens of minutes)."""
    overrides = {
        "model": "transformer",
        "widths": [16, 32, 64],
        "base_width": 16,
        "optimizers": ["adam"],
        "adam_lrs": [-10.0, -8.0, -6.0],
        "steps": 5,
        "seeds": 1,
    }
    v = lmech.check("mup-transfer", overrides=overrides)
    assert "transformer" in v.regime and len(v.checks) == 3
    with pytest.raises(LmechInputError, match="optimizers"):
        lmech.check("mup-transfer", overrides={**overrides, "optimizers": ["sgd"]})
    with pytest.raises(LmechInputError, match="n_heads"):
        lmech.check("mup-transfer", overrides={**overrides, "n_heads": 3})
