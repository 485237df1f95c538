"""random-labels in quick mode (seed 0), its config validation, and oracles for its ensemble training."""

import math
import sys

import numpy as np
import pytest
import torch

import lmech
from lmech.core import INIT, LmechInputError, Registry, generator
from lmech.data.corruption import corrupt_labels
from lmech.data.digits import digits
from lmech.laws import random_labels as rl
from lmech.nets import MLP, ensemble
from lmech.train import cross_entropy, mlp_gradients

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def registered():
    """Make the law checkable whether or not lmech.laws registers it yet."""
    check = sys.modules["lmech.sweep.check"]
    before = check.REGISTRY
    if "random-labels" not in before.ids():
        check.REGISTRY = Registry([*before, rl.LAW])
    yield
    check.REGISTRY = before


@pytest.fixture(scope="module")
def verdict(registered):
    return lmech.check("random-labels", seed=0)


def _checks(v):
    return {c.name: c for c in v.checks}


def test_quick_fits_every_labelling_and_falls_to_chance(verdict):
    checks = _checks(verdict)
    assert checks["nets not at 100% training accuracy within the budget (all fractions)"].holds
    chance = checks["|mean test accuracy - 1/C| at p = 1"]
    assert chance.holds and chance.measured < 0.01  # measured 0.001 (mean 0.101 over 8 nets; tolerance 0.015)
    clean = checks["test accuracy at p = 0 (true labels)"]
    assert clean.holds and clean.measured > 0.95  # measured 0.967
    assert "slowdown T(1) / T(0) = " in verdict.regime


def test_steps_to_fit_grow_up_to_08_then_plateau(verdict):
    """The growth is resolved from p = 0 to 0.8; from 0.8 to 1 it is not (the documented failure of the law)."""
    checks = _checks(verdict)
    name = "steps to fit increase from p = {} to p = {} (paired t)"
    assert checks[name.format(0, 0.2)].measured > 10  # t = 23
    assert checks[name.format(0.2, 0.5)].measured > 5  # t = 10.3
    assert checks[name.format(0.5, 0.8)].holds  # t = 3.3
    plateau = checks[name.format(0.8, 1)]
    assert not plateau.holds and plateau.measured < 1.5  # t = 0.9: T(1) - T(0.8) = 52 +- 58 steps of ~1400
    assert not verdict.holds
    assert [c.name for c in verdict.checks if not c.holds] == [plateau.name]


def test_the_plateau_mechanism_is_reported(verdict):
    """Why the last step stalls: the label-noise energy saturates (an extrapolated increase of ~2% of T) and each
    corrupted label is memorised sooner as the class signal 1 - p that opposes it vanishes."""
    assert "label-noise energy N(p) = (1 - 1/C) p (2 - p): 0.000, 0.324, 0.675, 0.864, 0.900" in verdict.regime
    extrapolated = float(verdict.regime.split("slope dT/dN of the previous step: ")[1].split(";")[0])
    assert 0 < extrapolated < 100  # 21 steps, against T(0.8) = 1414
    steps_panel = verdict.figure.panels[1]
    memorised = next(s for s in steps_panel.series if s.label == "mean step a corrupted label is memorised")
    assert memorised.x == [0.2, 0.5, 0.8, 1.0]  # no corrupted label at p = 0
    y = memorised.y  # 460, 496, 450, 392 (standard errors 4-8)
    assert y[1] - y[2] > 20 and y[2] - y[3] > 20


def test_figure_shows_zhang_fig1_panels(verdict):
    titles = [p.title for p in verdict.figure.panels]
    assert titles == ["training loss (net 0)", "steps to fit vs corruption", "test error vs corruption"]
    assert len(verdict.figure.panels[0].series) == 5  # one loss curve per fraction
    assert len(verdict.figure.panels[1].series) == 3  # steps to fit (band, dots), memorisation time of corrupted labels


def test_nets_that_do_not_fit_within_the_budget_fail_the_claim(registered):
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
    ],
)
def test_bad_config_is_a_clear_input_error(overrides, field):
    with pytest.raises(LmechInputError, match=field):
        lmech.check("random-labels", overrides=overrides)


def test_stacked_forward_and_gradients_match_each_member_alone():
    data = digits()
    x, y = data.x[:32], torch.randint(0, 10, (3, 32), generator=generator(0))
    nets = [MLP(64, 16, 2, 10, gen=generator(0, INIT, k), bias_scale=0.1) for k in range(3)]
    _fn, params = ensemble(nets)
    out = rl.forward(params, x)  # (3, 32, 10)
    grads, _ = mlp_gradients(2, "relu", "cross_entropy")(params, x, y)  # the law's training step
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
    assert rl.n_params(64) == 8970
