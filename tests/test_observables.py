"""Observables against exact algebra: conserved quantities, end-to-end maps, mode strengths."""

import math

import pytest
import torch

from lmech.core import Snapshot
from lmech.data import generator, linear_teacher, mlp_teacher
from lmech.nets import MLP, align_to_teacher, deep_linear, functional
from lmech.observables import (
    accuracy,
    end_to_end_map,
    held_out_loss,
    invariant_drift,
    linear_invariants,
    mode_strengths,
    neuron_invariants,
)
from lmech.train import cross_entropy, gd, gradients, mse, train


def test_end_to_end_map_is_the_product_of_the_weights():
    net = deep_linear(5, 7, 4, 3, init_scale=0.3, gen=generator(0), dtype=torch.float64)
    fn, params = functional(net)
    product = params["2.weight"] @ params["1.weight"] @ params["0.weight"]
    torch.testing.assert_close(end_to_end_map(fn, params, 5), product)


def test_mode_strengths_of_aligned_init():
    data = linear_teacher(6, 6, [3.0, 2.0, 1.0], 32, gen=generator(0), dtype=torch.float64)
    net = align_to_teacher(
        deep_linear(6, 8, 6, 3, init_scale=0.1, gen=generator(1), dtype=torch.float64),
        data.info["U"],
        data.info["V"],
        0.2,
        generator(2),
    )
    fn, params = functional(net)
    values, _ = mode_strengths(data.info["U"], data.info["V"]).measure(
        Snapshot(0, 0.0, params, fn, None, None, 0.0), None
    )
    assert list(values.values()) == pytest.approx([0.2**3] * 3, rel=1e-10)


def test_one_gd_step_changes_the_linear_invariant_by_exactly_lr_squared_terms():
    data = linear_teacher(4, 4, [2.0, 1.0], 16, gen=generator(0), dtype=torch.float64)
    fn, params = functional(deep_linear(4, 6, 4, 3, init_scale=0.4, gen=generator(1), dtype=torch.float64))
    names, lr = ["0.weight", "1.weight", "2.weight"], 0.05
    grads, _ = gradients(fn, mse)(params, data.x, data.y)
    after = {k: v - lr * grads[k] for k, v in params.items()}
    before_c, after_c = linear_invariants(params, names), linear_invariants(after, names)
    g = [grads[n] for n in names]
    for i in range(2):
        expected = lr**2 * (g[i + 1].T @ g[i + 1] - g[i] @ g[i].T)
        torch.testing.assert_close(after_c[i] - before_c[i], expected, rtol=1e-9, atol=1e-13)


def test_one_gd_step_changes_neuron_invariants_by_lr_squared_terms():
    data = mlp_teacher(3, 16, gen=generator(0), dtype=torch.float64)
    fn, params = functional(MLP(3, 10, 1, 1, gen=generator(1), dtype=torch.float64))
    layer, lr = [("layers.0.weight", "layers.0.bias", "layers.1.weight")], 0.05
    grads, _ = gradients(fn, mse)(params, data.x, data.y)
    after = {k: v - lr * grads[k] for k, v in params.items()}
    delta = neuron_invariants(after, layer)[0] - neuron_invariants(params, layer)[0]
    expected = lr**2 * (
        (grads["layers.0.weight"] ** 2).sum(1) + grads["layers.0.bias"] ** 2 - (grads["layers.1.weight"] ** 2).sum(0)
    )
    torch.testing.assert_close(delta, expected, rtol=1e-9, atol=1e-13)


def test_drift_observable_starts_at_zero_and_doubles_with_lr_at_fixed_time():
    data = mlp_teacher(3, 32, gen=generator(0), dtype=torch.float64)
    obs = invariant_drift(
        "neuron",
        [
            ("layers.0.weight", "layers.0.bias", "layers.1.weight"),
            ("layers.1.weight", "layers.1.bias", "layers.2.weight"),
        ],
    )
    final = []
    for lr, steps in ((1e-3, 1000), (2e-3, 500)):
        fn, params = functional(MLP(3, 16, 2, 1, gen=generator(1), dtype=torch.float64))
        out = train(
            fn, params, data.x, data.y, loss=mse, optimizer=gd(lr), steps=steps, observables=[obs], record=[0, steps]
        )
        drift = [r.value for r in out.members[0].rows if r.name == "drift"]
        assert drift[0] == 0.0
        final.append(drift[1])
    assert 0 < final[0] < 1e-3 and 1.8 < final[1] / final[0] < 2.2  # O(lr) at fixed time lr * steps


def _battery():
    """Every observable, on a model it applies to: (observable, fn, params, x, y)."""
    lin = linear_teacher(4, 4, [2.0, 1.0], 16, gen=generator(0))
    fn_l, p_l = functional(deep_linear(4, 6, 4, 2, init_scale=0.3, gen=generator(1)))
    digits_like = mlp_teacher(5, 30, gen=generator(2))
    labels = (digits_like.y[:, 0] > 0).long()
    fn_m, p_m = functional(MLP(5, 8, 1, 2, gen=generator(3)))
    neuron = [("layers.0.weight", "layers.0.bias", "layers.1.weight")]
    return [
        (mode_strengths(lin.info["U"], lin.info["V"]), fn_l, p_l, lin.x, lin.y),
        (invariant_drift("linear", ["0.weight", "1.weight"]), fn_l, p_l, lin.x, lin.y),
        (invariant_drift("neuron", neuron), fn_m, p_m, digits_like.x, labels),
        (accuracy(digits_like.x, labels), fn_m, p_m, digits_like.x, labels),
        (held_out_loss(digits_like.x, labels, cross_entropy), fn_m, p_m, digits_like.x, labels),
    ]


@pytest.mark.parametrize("case", range(5))
def test_battery_deterministic_pure_and_finite(case):
    obs, fn, params, x, y = _battery()[case]
    before = {k: v.clone() for k, v in params.items()}
    snap = Snapshot(0, 0.0, params, fn, x, y, 0.0)
    first, _ = obs.measure(snap, obs.init(snap))
    second, _ = obs.measure(snap, obs.init(snap))
    assert first == second and first and all(math.isfinite(v) for v in first.values())
    assert all(torch.equal(params[k], before[k]) for k in params)  # measuring never mutates the model


def test_accuracy_and_held_out_loss_values():
    x = torch.eye(3)
    fn = lambda p, inputs: inputs @ p["w"]  # noqa: E731
    params = {"w": torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.0, 3.0]])}
    snap = Snapshot(0, 0.0, params, fn, x, None, 0.0)
    labels = torch.tensor([0, 1, 0])  # predictions are 0, 1, 1
    assert accuracy(x, labels).measure(snap, None)[0]["accuracy"] == pytest.approx(2 / 3)
    expected = float(cross_entropy(fn(params, x), labels))
    assert held_out_loss(x, labels, cross_entropy).measure(snap, None)[0]["test_loss"] == pytest.approx(expected)


def test_observables_do_not_mutate_parameters():
    data = linear_teacher(4, 4, [2.0, 1.0], 16, gen=generator(0))
    fn, params = functional(deep_linear(4, 6, 4, 2, init_scale=0.3, gen=generator(1)))
    before = {k: v.clone() for k, v in params.items()}
    snap = Snapshot(0, 0.0, params, fn, data.x, data.y, 0.0)
    for obs in (mode_strengths(data.info["U"], data.info["V"]), invariant_drift("linear", ["0.weight", "1.weight"])):
        obs.measure(snap, obs.init(snap))
    for k in params:
        assert torch.equal(params[k], before[k])
