"""random-labels in quick mode (seed 0), its config validation, and oracles for its ensemble training."""

import math
from itertools import pairwise

import numpy as np
import pytest
import torch

import lmech
from lmech.core import INIT, LmechInputError, generator
from lmech.data.corruption import corrupt_labels
from lmech.data.digits import digits
from lmech.laws import random_labels as rl
from lmech.nets import MLP, ensemble
from lmech.train import cross_entropy, mlp_gradients

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def verdict():
    return lmech.check("random-labels", seed=0)


def _checks(v):
    return {c.name: c for c in v.checks}


def test_quick_fits_every_labelling_and_falls_to_chance(verdict):
    checks = _checks(verdict)
    assert checks["nets not at 100% training accuracy within the budget (all fractions)"].holds
    chance = checks["|mean test accuracy - 1/C| at p = 1"]
    assert chance.holds and chance.measured < 0.008  # measured 0.0019 (mean 0.102 over 24 nets; tolerance 0.0095)
    clean = checks["test accuracy at p = 0 (true labels)"]
    assert clean.holds and clean.measured > 0.95  # measured 0.963
    assert "slowdown T(1) / T(0) = " in verdict.regime


def test_steps_to_fit_grow_at_every_step(verdict):
    """Seed 0: T = 32, 122, 196, 349, 391; the last increase, 43 +- 15 steps, is resolved (t = 2.84)."""
    checks = _checks(verdict)
    name = "steps to fit increase from p = {} to p = {} (paired t)"
    assert checks[name.format(0, 0.2)].measured > 20  # t = 42
    assert checks[name.format(0.2, 0.5)].measured > 8  # t = 15.7
    assert checks[name.format(0.5, 0.8)].measured > 8  # t = 16.5
    last = checks[name.format(0.8, 1)]
    assert last.holds and 2 < last.measured < 4  # t = 2.84
    assert verdict.holds


def test_the_capacity_mechanism_is_reported(verdict):
    """With scarce capacity each corrupted label costs more as p grows (mean memorisation step 58, 65, 79, 86 at
    p = 0.2 ... 1), while the label-noise energy is flat at p = 1."""
    assert "label-noise energy N(p) = (1 - 1/C) p (2 - p): 0.000, 0.324, 0.675, 0.864, 0.900" in verdict.regime
    steps_panel = verdict.figure.panels[1]
    memorised = next(s for s in steps_panel.series if s.label == "mean step a corrupted label is memorised")
    assert memorised.x == [0.2, 0.5, 0.8, 1.0]  # no corrupted label at p = 0
    assert all(b > a for a, b in pairwise(memorised.y))  # 58, 65, 79, 86


def test_spare_capacity_saturates_the_last_step():
    """Width 64 (4810 parameters), 16 nets: T(0.8) 120 -> T(1) 124, t = 1.14: the regime where the law stops."""
    v = lmech.check("random-labels", overrides={"width": 64, "nets": 16, "fractions": [0.8, 1.0]})
    last = _checks(v)["steps to fit increase from p = 0.8 to p = 1 (paired t)"]
    assert not last.holds and last.measured < 2  # measured 1.14
    assert not v.holds


def test_figure_shows_zhang_fig1_panels(verdict):
    titles = [p.title for p in verdict.figure.panels]
    assert titles == ["training loss (net 0)", "steps to fit vs corruption", "test error vs corruption"]
    assert len(verdict.figure.panels[0].series) == 5  # one loss curve per fraction
    assert len(verdict.figure.panels[1].series) == 3  # steps to fit (band, dots), memorisation time of corrupted labels


def test_nets_that_do_not_fit_within_the_budget_fail_the_claim():
    v = lmech.check("random-labels", overrides={"fractions": [0.0, 1.0], "nets": 2, "epochs": 2})
    checks = _checks(v)
    assert not v.holds
    assert checks["nets not at 100% training accuracy within the budget (all fractions)"].measured == 4
    assert not checks["|mean test accuracy - 1/C| at p = 1"].holds  # no fit, no test accuracy at fit
    assert "not fitted" in v.regime


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"fractions": [0.5, 0.2]}, "fractions"),
        ({"fractions": [0.0, 1.2]}, "fractions"),
        ({"width": 0}, "width"),
        ({"nets": 1}, "nets"),
        ({"lr": 0}, "lr"),
        ({"depth": 0}, "depth"),
    ],
)
def test_bad_config_is_a_clear_input_error(overrides, field):
    with pytest.raises(LmechInputError, match=field):
        lmech.check("random-labels", overrides=overrides)


@pytest.mark.parametrize("depth", [1, 2])
def test_stacked_forward_and_gradients_match_each_member_alone(depth):
    data = digits()
    x, y = data.x[:32], torch.randint(0, 10, (3, 32), generator=generator(0))
    nets = [MLP(64, 16, depth, 10, gen=generator(0, INIT, k), bias_scale=0.1) for k in range(3)]
    _fn, params = ensemble(nets)
    out = rl.forward(params, x)  # (3, 32, 10)
    grads, _ = mlp_gradients(depth, "relu", "cross_entropy")(params, x, y)  # the law's training step
    for k, net in enumerate(nets):
        torch.testing.assert_close(out[k], net(x), rtol=1e-5, atol=1e-5)
        net.zero_grad()
        cross_entropy(net(x), y[k]).backward()
        for name, p in net.named_parameters():
            torch.testing.assert_close(grads[name][k], p.grad, rtol=1e-4, atol=1e-6)


def test_a_non_finite_member_is_recorded_as_diverged():
    data = digits()
    nets = [MLP(64, 8, 2, 10, gen=generator(0, INIT, k)) for k in range(2)]
    _fn, params = ensemble(nets)
    params["layers.2.weight"][1] = math.nan
    labels = torch.stack([data.y, data.y])
    rows = [[], []]
    done = rl._record(params, data, labels, 5, rows)
    assert done == {1: "diverged"} and rows[1] == [] and len(rows[0]) == 3


def test_memorisation_times_restart_when_an_image_is_lost():
    data = digits()
    nets = [MLP(64, 8, 2, 10, gen=generator(0, INIT, k)) for k in range(2)]
    _fn, params = ensemble(nets)
    predicted = rl.forward(params, data.x).argmax(-1)  # (2, n): labels the nets already fit
    labels = predicted.clone()
    labels[1, :5] = (predicted[1, :5] + 1) % 10  # member 1 misses its first five images
    corrupted = torch.zeros_like(labels, dtype=torch.bool)
    corrupted[:, :10] = True
    settled = torch.full(labels.shape, math.inf, dtype=torch.float64)
    rows = [[], []]
    assert rl._record(params, data, labels, 11, rows, settled, corrupted) == {0: "fitted"}
    assert bool((settled[0] == 11).all()) and bool(settled[1, :5].isinf().all()) and bool((settled[1, 5:] == 11).all())
    fitted = {r.name: r.value for r in rows[0]}
    assert fitted["settle_mean"] == 11 and fitted["settle_corrupted"] == 11
    assert "settle_mean" not in {r.name for r in rows[1]}
    rl._record(params, data, predicted, 22, rows, settled, corrupted)  # now right everywhere: settles at 22
    assert bool((settled[1, :5] == 22).all()) and bool((settled[1, 5:] == 11).all())
    assert {r.name: r.value for r in rows[1]}["settle_corrupted"] == pytest.approx((5 * 22 + 5 * 11) / 10)
    rl._record(params, data, labels, 33, [[], []], settled, corrupted)  # lost again: not settled
    assert bool(settled[1, :5].isinf().all())


def test_label_noise_energy_is_the_unpredictable_label_variance_and_is_flat_at_full_corruption():
    for p in [0.0, 0.2, 0.5, 0.8, 1.0]:
        a = 1 - p + p / 10  # P(label = true class); each other class has (1 - a) / 9
        direct = 1 - a**2 - 9 * ((1 - a) / 9) ** 2  # 1 - ||E[y | class]||^2 for one-hot y
        assert rl.label_noise_energy(p) == pytest.approx(direct)
    assert rl.label_noise_energy(0.8) == pytest.approx(0.864) and rl.label_noise_energy(1.0) == pytest.approx(0.9)
    h = 1e-6
    assert (rl.label_noise_energy(1.0) - rl.label_noise_energy(1.0 - h)) / h == pytest.approx(0.0, abs=1e-5)
    # Monte Carlo with the law's own corruption: mean squared deviation of one-hot labels from their class means
    y = torch.arange(10).repeat(5000)
    onehot = torch.nn.functional.one_hot(corrupt_labels(y, 0.8, 10, generator(0)).labels, 10).double()
    means = torch.stack([onehot[y == c].mean(0) for c in range(10)])
    assert ((onehot - means[y]) ** 2).sum(1).mean().item() == pytest.approx(0.864, abs=0.01)


def test_paired_increase_and_chance_standard_error():
    mean, se, t = rl.paired_increase(np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0]))
    assert (mean, se) == pytest.approx((2.0, 1 / math.sqrt(3)))
    assert t == pytest.approx(2 * math.sqrt(3))
    assert rl.paired_increase(np.array([1.0, 2.0]), np.array([2.0, 3.0]))[2] == math.inf  # no spread, increase
    assert rl.paired_increase(np.array([1.0, 2.0]), np.array([2.0, math.inf]))[2] == -math.inf  # not fitted
    assert rl.binomial_se(450, 4) == pytest.approx(math.sqrt(0.09 / 1800))


def test_label_copy_reference_limits():
    assert rl.label_copy_accuracy(0.97, 0.0) == pytest.approx(0.97)  # true labels: the clean accuracy
    assert rl.label_copy_accuracy(0.97, 1.0) == pytest.approx(0.1)  # random labels: chance, whatever the net
    assert rl.label_copy_accuracy(1.0, 0.5) == pytest.approx(0.55)  # = the label agreement 1 - p + p/C
    assert rl.n_params(64, 2) == 8970 and rl.n_params(40, 1) == 3010
