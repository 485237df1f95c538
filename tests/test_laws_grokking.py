"""grokking in quick mode (seed 0), its Fourier observable, its AdamW ensemble, and its config validation."""

import math

import numpy as np
import pytest
import torch

import lmech
from lmech.core import LmechInputError
from lmech.laws import grokking
from lmech.train import adam


@pytest.fixture(scope="module")
def verdict():
    return lmech.check("grokking", seed=0)


def _checks(v):
    return {c.name.split(" (")[0]: c for c in v.checks}


@pytest.mark.slow
def test_quick_groks_with_a_delay_that_shrinks_with_weight_decay(verdict):
    assert verdict.holds, (verdict.regime, [c.describe() for c in verdict.checks])
    checks = _checks(verdict)
    ratio = checks["smallest delay ratio t_test / t_train over weight decays and nets"]
    order = checks["delay t_test - t_train decreases as weight decay grows"]
    share = checks["smallest top-5 Fourier share of the embedding at generalisation"]
    assert 5 <= ratio.measured < 1000 and math.isfinite(ratio.measured)
    delays = np.asarray(order.measured)[0]
    assert np.all(np.isfinite(delays)) and np.all(np.diff(delays) < 0)
    chance = grokking.chance_share(31, 32)
    assert share.measured > max(0.5, chance + 0.1)
    assert f"chance top-5 share {chance:.3f}" in verdict.regime


@pytest.mark.slow
def test_figure_shows_accuracy_delay_and_spectrum(verdict):
    titles = [p.title for p in verdict.figure.panels]
    assert titles == [
        "train and test accuracy (net 0)",
        "delay vs weight decay",
        "embedding Fourier power (net 0)",
    ]
    spectrum = verdict.figure.panels[2].series
    assert spectrum[0].label == "at init" and len(spectrum[0].x) == 15  # (p - 1) / 2 frequencies
    assert [s.label for s in spectrum[1:4]] == [f"at generalisation, wd {wd:g}" for wd in (0.25, 0.5, 1)]
    assert spectrum[-1].label.endswith(f"top-5 chance {grokking.chance_share(31, 32):.2f}")


@pytest.mark.slow
def test_past_the_optimal_weight_decay_the_delay_grows_again_and_the_ordering_fails():
    """Documented failure (module docstring): with 50% of the pairs, wd 2 groks later than wd 1 (seed 1: t_test
    2590 / 1230 / 1580 at wd 0.5 / 1 / 2 on one CPU, 2810 / 1170 / 1500 on an AMD EPYC), while fitting-before-
    generalising and the Fourier share still hold. Seed 2, tested here before, fails on one CPU and holds on the
    other (one net: a float path's worth of difference moves wd 2's t_test from 2040 to 1350)."""
    v = lmech.check("grokking", seed=1, overrides={"fraction": 0.5, "weight_decays": [0.5, 1.0, 2.0]})
    checks = _checks(v)
    order = checks["delay t_test - t_train decreases as weight decay grows"]
    assert not v.holds and not order.holds
    delays = np.asarray(order.measured)[0]
    assert np.all(np.isfinite(delays)) and delays[2] > delays[1]
    assert checks["smallest delay ratio t_test / t_train over weight decays and nets"].holds
    assert checks["smallest top-5 Fourier share of the embedding at generalisation"].holds


def test_a_budget_too_short_to_generalise_is_reported_not_a_crash():
    v = lmech.check("grokking", overrides={"steps": 100, "eval_every": 50, "width": 16, "embed": 8, "p": 11})
    checks = _checks(v)
    assert not v.holds and not v.diverged
    assert checks["delay t_test - t_train decreases as weight decay grows"].error == math.inf
    assert v.regime.count("t_test inf") == 3  # every weight decay reported as not reached


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"p": 33}, "p"),
        ({"p": 2}, "p"),
        ({"fraction": 1.0}, "fraction"),
        ({"fraction": 0.0001}, "fraction"),
        ({"weight_decays": [0.1, 1.0]}, "weight_decays"),
        ({"weight_decays": [0.1, 1.0, -1.0]}, "weight_decays"),
        ({"lr": 0}, "lr"),
    ],
)
def test_bad_config_is_a_clear_input_error(overrides, field):
    with pytest.raises(LmechInputError, match=field):
        lmech.check("grokking", overrides=overrides)


def test_fourier_power_of_a_pure_frequency_is_one_hot():
    p, d = 31, 4
    a = torch.arange(p, dtype=torch.float64)[:, None]
    phases = torch.tensor([0.3, 1.1, 2.0, 4.0], dtype=torch.float64)
    for k in (1, 7, 15):
        e = torch.cos(2 * math.pi * k * a / p + phases) + 5.0  # a constant offset is DC: excluded
        power = grokking.fourier_power(e)
        assert power.shape == (15,) and power.sum() == pytest.approx(1.0)
        assert power[k - 1] == pytest.approx(1.0, abs=1e-12)
        assert grokking.top_share(power, 1) == pytest.approx(1.0)
    assert grokking.fourier_power(torch.randn(p, d, dtype=torch.float64).flip(0)).shape == (15,)


def test_fourier_power_is_invariant_to_token_shifts_and_embedding_rotations():
    gen = torch.Generator().manual_seed(0)
    e = torch.randn(23, 6, generator=gen, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=gen, dtype=torch.float64))
    base = grokking.fourier_power(e)
    assert torch.allclose(grokking.fourier_power(e.roll(5, 0)), base)  # a shift only changes phases
    assert torch.allclose(grokking.fourier_power(e @ q), base)  # power summed over dims: rotation invariant


def test_chance_share_matches_a_fresh_monte_carlo_and_exceeds_equal_powers():
    gen = torch.Generator().manual_seed(7)
    fresh = np.mean(
        [grokking.top_share(grokking.fourier_power(torch.randn(31, 32, generator=gen))) for _ in range(400)]
    )
    chance = grokking.chance_share(31, 32)
    assert chance == pytest.approx(fresh, abs=0.01)  # Monte Carlo scatter ~0.03 / sqrt(400)
    assert 5 / 15 < chance < 0.45  # scatter of 64 real dof per frequency lifts the top 5 above equal shares


def test_members_share_init_and_decay_only_through_weight_decay():
    cfg = {"seed": 0, "net": 0, "init_scale": 1.0, "p": 7, "embed": 3, "width": 5}
    params = grokking.init_params(cfg, 3)
    assert all(torch.equal(v[0], v[2]) for v in params.values())
    zero = {k: torch.zeros_like(v) for k, v in params.items()}
    wd = torch.tensor([0.0, 1.0, 2.0])
    optimizer = adam(0.1, weight_decay={k: wd.view(-1, *[1] * (v.dim() - 1)) for k, v in params.items()})
    after, _ = optimizer.update(zero, optimizer.init(params), params)  # zero gradient: pure decoupled decay
    decay = 1 - 0.1 * wd
    for k, v in after.items():
        for i, factor in enumerate(decay.tolist()):
            assert torch.allclose(v[i], params[k][i] * factor)
