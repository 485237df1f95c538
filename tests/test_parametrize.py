"""Parametrization tables: muP equals SP at the base width, the exponents of TP-V Table 3, idempotence, clear
errors; the coord-check law in quick mode."""

from __future__ import annotations

import pytest
import torch

import lmech
from lmech.core import LmechInputError
from lmech.nets import MLP, functional
from lmech.parametrize import MUP, SP, initialise, learning_rates, mlp_roles, parametrization, width_multiplier


def _params(width=64):
    return functional(MLP(64, width, 3, 10, gen=torch.Generator().manual_seed(0)))[1]


def test_mup_at_base_width_is_sp_exactly():
    params = _params()
    roles = mlp_roles(params)
    a = initialise(params, roles, MUP, 1.0, torch.Generator().manual_seed(1))
    b = initialise(params, roles, SP, 1.0, torch.Generator().manual_seed(1))
    assert all(torch.equal(a[k], b[k]) for k in params)
    for opt in ("sgd", "adam"):
        assert learning_rates(roles, MUP, 1.0, 0.1, opt) == learning_rates(roles, SP, 1.0, 0.1, opt)


def test_mup_exponents_follow_table_3():
    params = _params(256)
    roles = mlp_roles(params)
    assert roles == {
        "layers.0.weight": "input",
        "layers.1.weight": "hidden",
        "layers.2.weight": "hidden",
        "layers.3.weight": "output",
        **{f"layers.{i}.bias": "bias" for i in range(3)},
        "layers.3.bias": "output_bias",  # fan_out 10: TP-V scales no lr of it
    }
    m = width_multiplier(256, 64)
    adam = learning_rates(roles, MUP, m, 1.0, "adam")
    sgd = learning_rates(roles, MUP, m, 1.0, "sgd")
    assert adam["layers.0.weight"] == 1.0 and adam["layers.1.weight"] == 0.25 and adam["layers.3.weight"] == 0.25
    assert sgd["layers.0.weight"] == 4.0 and sgd["layers.1.weight"] == 1.0 and sgd["layers.3.weight"] == 0.25
    assert sgd["layers.0.bias"] == 4.0 and sgd["layers.3.bias"] == 1.0
    init = initialise(params, roles, MUP, m, torch.Generator().manual_seed(0))
    std = init["layers.3.weight"].std().item()  # 1/sqrt(256) * m^-1/2 = 1/32
    assert std == pytest.approx(1 / 32, rel=0.05)
    again = initialise(init, roles, MUP, m, torch.Generator().manual_seed(0))
    assert all(torch.equal(init[k], again[k]) for k in init)  # applying twice is applying once


def test_bad_inputs_name_the_problem():
    with pytest.raises(LmechInputError, match="base_width"):
        width_multiplier(32, 64)
    with pytest.raises(LmechInputError, match="parametrization must be one of"):
        parametrization("ntk-ish")
    with pytest.raises(LmechInputError, match="role"):
        learning_rates({"w": "embedding"}, MUP, 2.0, 0.1, "adam")
    with pytest.raises(LmechInputError, match="lmech MLP"):
        mlp_roles({"weight": torch.zeros(2, 2)})  # a model without role annotations
    with pytest.raises(LmechInputError, match="base_width"):
        lmech.check("coord-check", overrides={"base_width": 4096})


@pytest.mark.slow
def test_coord_check_quick_holds():
    v = lmech.check("coord-check")
    assert v.holds, (v.regime, [c.describe() for c in v.checks])
    mup = [c for c in v.checks if c.name.startswith("mup")]
    assert len(mup) == 8 and all(abs(c.measured) < 0.08 for c in mup)  # measured -0.06 ... +0.04
    (sp,) = [c for c in v.checks if c.name.startswith("sp")]
    assert sp.error > 0.6  # measured 0.91 (the larger of the output's and its change's slopes)


def _train(table, optimizer: str, m: float, steps: int = 5, lr: float = 0.05):
    """Outputs of a tanh MLP (width 64 m) after ``steps`` full-batch steps under ``table``, float64; the trained
    parameters go through the table's forward multipliers."""
    from torch.func import functional_call, grad

    from lmech.parametrize import multipliers, with_multipliers
    from lmech.train import adam, mse

    width = int(64 * m)
    net = MLP(16, width, 2, 3, activation_name="tanh", gen=torch.Generator().manual_seed(0), dtype=torch.float64)
    _, shapes = functional(net)
    roles = mlp_roles(shapes)
    params = initialise(shapes, roles, table, m, torch.Generator().manual_seed(1))
    fn = with_multipliers(lambda p, x: functional_call(net, p, (x,)), multipliers(roles, table, m))
    gen = torch.Generator().manual_seed(2)
    x, y = (
        torch.randn(32, 16, generator=gen, dtype=torch.float64),
        torch.randn(32, 3, generator=gen, dtype=torch.float64),
    )
    rates = learning_rates(roles, table, m, lr, optimizer)
    opt = adam(rates, eps=0.0)
    state = opt.init(params)
    for _ in range(steps):
        g = grad(lambda p: mse(fn(p, x), y))(params)
        if optimizer == "sgd":
            params = {k: v - rates[k] * g[k] for k, v in params.items()}
        else:
            params, state = opt.update(g, state, params)
    return fn(params, x)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_mean_field_is_mup_by_the_abc_symmetry(optimizer):
    """TP-IV's symmetry (A - t, B + t, C + 2t [SGD] or C + t [Adam]) leaves training unchanged: mean-field and muP
    give the same outputs after 5 steps at m = 4 (float64; Adam with eps = 0, which the symmetry needs)."""
    from lmech.parametrize import MEAN_FIELD

    a, b = _train(MUP, optimizer, 4.0), _train(MEAN_FIELD, optimizer, 4.0)
    assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)
    assert not torch.allclose(a, _train(SP, optimizer, 4.0), rtol=1e-3)  # and the comparison can fail


def test_ntk_is_sp_with_lr_over_width_for_sgd():
    """NTK parametrization = SP whose hidden and output SGD learning rates are scaled by 1/m (t = 1/2 shift)."""
    from lmech.parametrize import NTK, Parametrization, Scaling

    sp_lr = Parametrization(
        "sp-lr/m",
        {
            "input": Scaling(),
            "hidden": Scaling(lr_sgd=-1.0),
            "output": Scaling(lr_sgd=-1.0),
            "bias": Scaling(),
            "output_bias": Scaling(),
        },
        "test",
    )
    assert torch.allclose(_train(NTK, "sgd", 4.0), _train(sp_lr, "sgd", 4.0), rtol=1e-9, atol=1e-12)


def test_every_table_is_sp_at_base_width_and_multipliers_apply_once():
    from lmech.parametrize import PARAMETRIZATIONS, Multiplied, multipliers, with_multipliers

    params = _params()
    roles = mlp_roles(params)
    for table in PARAMETRIZATIONS.values():
        assert set(multipliers(roles, table, 1.0).values()) == {1.0}
        for opt in ("sgd", "adam"):
            assert learning_rates(roles, table, 1.0, 0.1, opt) == learning_rates(roles, SP, 1.0, 0.1, opt)
    factors = {"layers.3.weight": 0.5}
    once = with_multipliers(lambda p, x: p["layers.3.weight"] * x, factors)
    twice = with_multipliers(once, factors)
    assert isinstance(twice, Multiplied) and twice == once  # applying twice is applying once
    assert twice({"layers.3.weight": torch.tensor(2.0)}, 3.0) == 3.0
    with pytest.raises(LmechInputError, match="positive and finite"):
        with_multipliers(once, {"layers.3.weight": 0.0})


def test_depth_mup_scales_branches_only():
    from lmech.parametrize import DEPTH_MUP, depth_multiplier, multipliers

    params = _params()
    roles = mlp_roles(params)
    branches = {"layers.1.weight": "in", "layers.2.weight": "out", "layers.2.bias": "out"}
    r = depth_multiplier(16, 4)
    c = multipliers(roles, DEPTH_MUP, 1.0, branches, r)
    assert c["layers.2.weight"] == c["layers.2.bias"] == 0.5 and c["layers.1.weight"] == c["layers.0.weight"] == 1.0
    adam_lr = learning_rates(roles, DEPTH_MUP, 1.0, 1.0, "adam", branches, r)
    sgd_lr = learning_rates(roles, DEPTH_MUP, 1.0, 1.0, "sgd", branches, r)
    assert adam_lr["layers.1.weight"] == 0.5 and adam_lr["layers.0.weight"] == 1.0 and sgd_lr["layers.1.weight"] == 1.0
    with pytest.raises(LmechInputError, match="branch part"):
        multipliers(roles, DEPTH_MUP, 1.0, {"layers.1.weight": "middle"}, r)
    with pytest.raises(LmechInputError, match="base_depth"):
        depth_multiplier(2, 4)


def test_param_groups_feed_torch_optim():
    from lmech.parametrize import param_groups

    net = MLP(8, 32, 2, 2, gen=torch.Generator().manual_seed(0))
    named = dict(net.named_parameters())
    roles = mlp_roles(named)
    groups = param_groups(named, learning_rates(roles, MUP, 2.0, 0.01, "adam"))
    assert sorted(g["lr"] for g in groups) == [0.005, 0.01]
    torch.optim.Adam(groups).step()  # accepted by torch.optim
    with pytest.raises(LmechInputError, match="no learning rate"):
        param_groups(named, {})
