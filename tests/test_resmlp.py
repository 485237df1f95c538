"""ResMLP: functional form, ensemble broadcasting, roles and branches, and the residual stream's scale at init under
depth-muP branch multipliers (O(1) in depth) and without them (RMS ~ sqrt(L))."""

from __future__ import annotations

import functools
import math

import pytest
import torch

from lmech.core import LmechInputError
from lmech.nets import MLP, functional
from lmech.nets.resmlp import ResMLP, resmlp_branches, resmlp_forward, resmlp_roles
from lmech.parametrize import DEPTH_MUP, MUP, initialise, multipliers, with_multipliers


def _net(blocks=3, width=16, seed=0, **kw):
    return ResMLP(8, width, blocks, 5, gen=torch.Generator().manual_seed(seed), **kw)


@pytest.mark.parametrize("norm", [True, False])
def test_functional_form_equals_the_module(norm):
    net = _net(norm=norm)
    x = torch.randn(7, 8, generator=torch.Generator().manual_seed(1))
    fn, params = functional(net)
    assert torch.equal(fn(params, x), net(x))
    assert torch.equal(resmlp_forward(params, x, "relu", norm), net(x))


def test_stacked_parameters_evaluate_every_member():
    """Weights (E, o, i) and biases (E, o) broadcast: member e of the stacked output is the e-th net's output."""
    nets = [_net(seed=s) for s in range(3)]
    x = torch.randn(7, 8, generator=torch.Generator().manual_seed(1))
    params = [functional(n)[1] for n in nets]
    stacked = {k: torch.stack([p[k] for p in params]) for k in params[0]}
    out = resmlp_forward(stacked, x)  # (3, 7, 5)
    for e, net in enumerate(nets):
        torch.testing.assert_close(out[e], net(x), rtol=1e-5, atol=1e-6)  # bmm vs mm: float32 rounding only


def test_roles_and_branches_cover_the_parameters():
    params = functional(_net(blocks=2))[1]
    roles, branches = resmlp_roles(params), resmlp_branches(params)
    assert set(roles) == set(params)
    assert roles["input.weight"] == "input" and roles["output.weight"] == "output"
    assert roles["blocks.1.fc2.weight"] == "hidden" and roles["blocks.0.fc1.bias"] == "bias"
    assert roles["output.bias"] == "output_bias"
    assert {k for k, v in roles.items() if v == "bias"} == {k for k in params if k.endswith("bias")} - {"output.bias"}
    assert set(branches) == {k for k in params if k.startswith("blocks.")}
    assert branches == {f"blocks.{i}.{fc}.{t}": "in" if fc == "fc1" else "out"
                        for i in range(2) for fc in ("fc1", "fc2") for t in ("weight", "bias")}  # fmt: skip


def test_other_models_and_bad_sizes_are_input_errors():
    mlp = functional(MLP(8, 16, 2, 5, gen=torch.Generator().manual_seed(0)))[1]
    with pytest.raises(LmechInputError, match="ResMLP's parameters"):
        resmlp_roles(mlp)
    params = functional(_net(blocks=3))[1]
    del params["blocks.1.fc2.bias"]
    with pytest.raises(LmechInputError, match=r"missing \['blocks.1.fc2.bias'\]"):
        resmlp_branches(params)
    with pytest.raises(LmechInputError, match="blocks must be a positive integer; got 0"):
        _net(blocks=0)
    with pytest.raises(LmechInputError, match="activation must be one of"):
        _net(activation_name="swish")


def _stream_rms(table, blocks: int, base_blocks: int, x: torch.Tensor, seed: int) -> float:
    """RMS of the residual stream h_L at init (width 256, He gain), with the table's branch multipliers."""
    _, params = functional(ResMLP(x.shape[1], 256, blocks, 10, gen=torch.Generator().manual_seed(seed)))
    roles, branches = resmlp_roles(params), resmlp_branches(params)
    params = initialise(params, roles, table, 1.0, torch.Generator().manual_seed(seed), gain=math.sqrt(2.0))
    factors = multipliers(roles, table, 1.0, branches, blocks / base_blocks)
    h = with_multipliers(functools.partial(resmlp_forward, stream=True), factors)(params, x)
    return h.pow(2).mean().sqrt().item()


def test_depth_mup_keeps_the_stream_rms_order_one_and_plain_blocks_grow_it_like_sqrt_depth():
    """Mean-field at init: h_0 has mean square q0 = 2 mean(x^2) (He gain), each pre-LN branch adds 2 (W1: var 2 on
    the unit-variance LN output, relu halves it, W2 doubles it) times its multiplier squared (r^-1 under depth-muP).
    So q_L = q0 + 2 L / r = q0 + 2 base_blocks with depth-muP (no L), and q0 + 2 L without. Monte Carlo error of
    the RMS ratio at width 256, batch 128: ~ sqrt(2 / (256 L)) / 2 per RMS < 0.03; tolerance 0.1 (> 3 sigma)."""
    x = torch.randn(128, 64, generator=torch.Generator().manual_seed(7))
    q0 = 2 * x.pow(2).mean().item()
    with torch.no_grad():
        scaled = [_stream_rms(DEPTH_MUP, L, 4, x, seed=L) for L in (4, 64)]
        plain = [_stream_rms(MUP, L, 4, x, seed=L) for L in (4, 64)]
    assert scaled[0] == pytest.approx(math.sqrt(q0 + 8), rel=0.05)  # at the base depth the two tables agree
    assert plain[0] == pytest.approx(scaled[0], rel=1e-6)
    assert scaled[1] / scaled[0] == pytest.approx(1.0, abs=0.1)
    assert plain[1] / plain[0] == pytest.approx(math.sqrt((q0 + 128) / (q0 + 8)), rel=0.1)  # ~3.6 ~ sqrt(16) = 4
