"""Empirical NTK: every method against the explicit Jacobian product (float64), on MLPs with biases, vector
outputs and a CNN; chunking; no mutation of the model; clear errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lmech.nets import MLP, NTKMLP, functional
from lmech.observables.ntk import empirical_ntk, module_ntk


def _explicit(module: nn.Module, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    """(n1, n2, C, C) from the dense Jacobian of the flattened outputs w.r.t. all parameters."""
    names = [k for k, _ in module.named_parameters()]
    values = tuple(v.detach() for _, v in module.named_parameters())

    def flat(x):
        def out(*p):
            return torch.func.functional_call(module, dict(zip(names, p, strict=True)), (x,)).reshape(len(x), -1)

        jac = torch.autograd.functional.jacobian(out, values)
        return torch.cat([j.reshape(j.shape[0], j.shape[1], -1) for j in jac], dim=2)  # (n, C, P)

    return torch.einsum("icp,jdp->ijcd", flat(x1), flat(x2))


def _data(n=6, d=4, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        gen = torch.Generator().manual_seed(3)
        self.conv = nn.Conv1d(1, 3, 3, dtype=torch.float64)
        self.head = nn.Linear(3 * 2, 2, dtype=torch.float64)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))

    def forward(self, x):
        return self.head(torch.tanh(self.conv(x[:, None, :])).flatten(1))


MODELS = {
    "ntk-mlp": lambda: NTKMLP(4, 7, 2, 3, gen=torch.Generator().manual_seed(1), dtype=torch.float64),
    "mlp": lambda: MLP(4, 5, 2, 1, bias_scale=0.3, gen=torch.Generator().manual_seed(2), dtype=torch.float64),
    "cnn": SmallCNN,
}


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("method", ["jacobian", "ntvp", "structured", "auto"])
def test_methods_match_the_explicit_jacobian_product(model, method):
    module = MODELS[model]()
    x1, x2 = _data(5), _data(3, seed=1)
    want = _explicit(module, x1, x2)
    full = module_ntk(module, x1, x2, method=method, outputs="full")
    trace = module_ntk(module, x1, x2, method=method)
    torch.testing.assert_close(trace, want.diagonal(dim1=2, dim2=3).mean(-1), rtol=1e-10, atol=1e-12)
    if want.shape[-1] > 1:
        torch.testing.assert_close(full, want, rtol=1e-10, atol=1e-12)
    sym = module_ntk(module, x1, method=method, chunk=2)
    torch.testing.assert_close(sym, _explicit(module, x1, x1).diagonal(dim1=2, dim2=3).mean(-1), rtol=1e-10, atol=1e-12)
    assert torch.equal(sym, sym.T)


@pytest.mark.parametrize("method", ["jacobian", "ntvp"])
def test_functional_form_and_chunks(method):
    module = MODELS["ntk-mlp"]()
    fn, params = functional(module)
    x = _data(7)
    whole = empirical_ntk(fn, params, x, method=method, outputs="full")
    pieces = empirical_ntk(fn, params, x, x, method=method, outputs="full", chunk=3)
    torch.testing.assert_close(pieces, whole, rtol=1e-12, atol=1e-12)


def test_a_linear_model_has_the_input_gram_as_its_ntk():
    layer = nn.Linear(4, 1, dtype=torch.float64)
    x = _data()
    torch.testing.assert_close(module_ntk(layer, x), x @ x.T + 1, rtol=1e-12, atol=1e-12)


def test_the_module_and_its_gradients_are_untouched():
    module = MODELS["ntk-mlp"]()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    for method in ("jacobian", "ntvp", "structured"):
        module_ntk(module, _data(), method=method)
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())
    assert all(p.grad is None for p in module.parameters())


def test_bad_input_is_refused_with_the_field_named():
    module = MODELS["ntk-mlp"]()
    with pytest.raises(ValueError, match="buffers"):
        module_ntk(nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3)), _data())
    with pytest.raises(ValueError, match="chunk"):
        module_ntk(module, _data(), chunk=0)
    with pytest.raises(ValueError, match="x2"):
        module_ntk(module, _data(), _data(3, d=5))
    with pytest.raises(ValueError, match="method"):
        module_ntk(module, _data(), method="fast")
    fn, params = functional(module)
    with pytest.raises(ValueError, match="module_ntk"):
        empirical_ntk(fn, params, _data(), method="structured")


def test_wide_ntk_parametrized_network_is_near_the_analytic_kernel():
    from lmech.theory import ntk

    x = _data(8, 5)
    net = NTKMLP(
        5, 2048, 2, 1, weight_std=math.sqrt(2), bias_std=0.1, gen=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    empirical = module_ntk(net, x)
    analytic = ntk(x, depth=2, weight_std=math.sqrt(2), bias_std=0.1)
    assert (torch.linalg.norm(empirical - analytic) / torch.linalg.norm(analytic)).item() < 0.1  # O(1/sqrt(width))
