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
        **{f"layers.{i}.bias": "bias" for i in range(4)},
    }
    m = width_multiplier(256, 64)
    adam = learning_rates(roles, MUP, m, 1.0, "adam")
    sgd = learning_rates(roles, MUP, m, 1.0, "sgd")
    assert adam["layers.0.weight"] == 1.0 and adam["layers.1.weight"] == 0.25 and adam["layers.3.weight"] == 0.25
    assert sgd["layers.0.weight"] == 4.0 and sgd["layers.1.weight"] == 1.0 and sgd["layers.3.weight"] == 0.25
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
