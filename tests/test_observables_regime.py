"""Lazy/rich diagnostics: limits (a linear model's NTK never moves; nothing has moved at init), properties of the
alignment, the output multiplier, and clear errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lmech.core import LmechInputError
from lmech.nets import MLP, functional
from lmech.observables import kernel_alignment, kernel_distance, parameter_movement, regime
from lmech.train import gd, mse, train


def _data(n=12, d=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    return x, torch.sin(x[:, :1]) + 0.1 * torch.randn(n, 1, generator=gen, dtype=torch.float64)


def _rows(result):
    return {(r.step, r.name): r.value for r in result.members[0].rows}


def test_linear_model_ntk_does_not_move_while_its_weights_do():
    x, y = _data()
    fn, params = functional(nn.Linear(3, 1, dtype=torch.float64))
    result = train(
        fn, params, x, y, loss=mse, optimizer=gd(0.1), steps=50, observables=[regime(x, targets=y)], record=[0, 50]
    )
    rows = _rows(result)
    assert rows[(0, "movement")] == 0.0 and rows[(0, "ntk_movement")] == 0.0
    assert rows[(50, "movement")] > 0.05
    assert rows[(50, "ntk_movement")] < 1e-14  # J = [x, 1] does not depend on the parameters


def test_mlp_features_and_kernel_move_and_alignment_is_recorded():
    x, y = _data()
    net = MLP(3, 8, 1, 1, gen=torch.Generator().manual_seed(1), dtype=torch.float64)
    fn, params = functional(net)

    def hidden(p, xb):
        return torch.relu(xb @ p["layers.0.weight"].T + p["layers.0.bias"])

    obs = regime(x, targets=y, features=hidden)
    rows = _rows(train(fn, params, x, y, loss=mse, optimizer=gd(0.2), steps=100, observables=[obs], record=[0, 100]))
    assert rows[(0, "feature_change")] == 0.0 and rows[(100, "feature_change")] > 0.01
    assert rows[(100, "ntk_movement")] > 0.01
    assert -1 <= rows[(100, "alignment")] <= 1
    assert {"movement/layers.0.weight", "movement/layers.1.bias"} <= {name for _, name in rows}


def test_parameter_movement_per_tensor_and_total():
    p0 = {"a": torch.ones(4), "b": torch.zeros(2)}
    p1 = {"a": torch.ones(4) * 1.5, "b": torch.ones(2)}
    move = parameter_movement(p0, p1)
    assert move["a"] == pytest.approx(0.5)
    assert move["b"] == pytest.approx(2**0.5)  # starts at zero: absolute movement
    assert move["total"] == pytest.approx((1.0 + 2.0) ** 0.5 / 2.0)  # sqrt(4 * 0.25 + 2) / sqrt(4)
    with pytest.raises(LmechInputError, match="same names"):
        parameter_movement(p0, {"a": torch.ones(4)})


def test_alignment_is_one_for_the_target_kernel_and_scale_invariant():
    y = torch.randn(10, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert kernel_alignment(y @ y.T, y) == pytest.approx(1.0)
    k = torch.randn(10, 10, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    k = k @ k.T
    assert kernel_alignment(7.0 * k, y) == pytest.approx(kernel_alignment(k, y))
    assert kernel_alignment(k + 5.0, y) == pytest.approx(kernel_alignment(k, y))  # centring removes constants
    assert kernel_alignment(k + 5.0, y, centered=False) != pytest.approx(kernel_alignment(k, y, centered=False))


def test_bad_inputs_name_the_problem():
    k = torch.eye(4, dtype=torch.float64)
    with pytest.raises(LmechInputError, match="kernel must be"):
        kernel_alignment(k, torch.ones(5))
    with pytest.raises(LmechInputError, match="zero"):
        kernel_alignment(k, torch.ones(4))  # centred constant targets vanish
    with pytest.raises(LmechInputError, match="same shape"):
        kernel_distance(k, torch.eye(3))
    with pytest.raises(LmechInputError, match="output_multiplier"):
        MLP(2, 4, 1, 1, gen=torch.Generator(), output_multiplier=0.0)


def test_output_multiplier_scales_the_function():
    x, _ = _data()
    a = MLP(3, 8, 1, 1, gen=torch.Generator().manual_seed(2), dtype=torch.float64)
    b = MLP(3, 8, 1, 1, gen=torch.Generator().manual_seed(2), dtype=torch.float64, output_multiplier=30.0)
    assert torch.allclose(30.0 * a(x), b(x), rtol=1e-14, atol=0)
