"""Curvature observables against dense references on tiny networks (float64): Hessian-vector products against
finite differences and the explicit Hessian, Lanczos against eigvalsh and a power-iteration oracle, Hutchinson
against the exact trace, Adam's preconditioned sharpness against its dense form; warm starts; clear errors."""

from __future__ import annotations

import math

import pytest
import torch

from lmech.core import LmechInputError
from lmech.nets import MLP, functional
from lmech.observables.curvature import (
    HessianOperator,
    PreconditionedOperator,
    flatten,
    hutchinson_trace,
    hvp,
    top_eigenvalues,
    unflatten,
)


def _problem(seed=0, width=6):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(20, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(20, 2, generator=gen, dtype=torch.float64)
    net = MLP(3, width, 1, 2, activation_name="tanh", gen=gen, dtype=torch.float64, bias_scale=0.1)
    fn, params = functional(net)

    def loss(p):
        diff = fn(p, x) - y
        return 0.5 * (diff * diff).sum() / len(x)

    return loss, params


def _dense(loss, params):
    flat = flatten(params)
    return torch.autograd.functional.hessian(lambda v: loss(unflatten(v, params)), flat)


@pytest.mark.parametrize("method", ["reverse", "forward"])
def test_products_match_the_dense_hessian_and_finite_differences(method):
    loss, params = _problem()
    dense = _dense(loss, params)
    v = torch.randn(dense.shape[0], generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    op = HessianOperator(loss, params, method)
    torch.testing.assert_close(op(v), dense @ v, rtol=1e-10, atol=1e-12)
    # central differences of the gradient: (g(theta + h v) - g(theta - h v)) / 2h, error O(h^2)
    flat, h = flatten(params), 1e-5

    def grad_at(theta):
        t = theta.clone().requires_grad_()
        return torch.autograd.grad(loss(unflatten(t, params)), t)[0]

    fd = (grad_at(flat + h * v) - grad_at(flat - h * v)) / (2 * h)
    torch.testing.assert_close(op(v), fd, rtol=1e-6, atol=1e-8)
    assert op.products == 2
    as_dict = hvp(loss, params, unflatten(v, params), method)
    torch.testing.assert_close(flatten(as_dict), dense @ v, rtol=1e-10, atol=1e-12)


def test_lanczos_top_eigenvalues_match_eigvalsh_and_power_iteration():
    loss, params = _problem(width=8)
    dense = _dense(loss, params)
    exact = torch.linalg.eigvalsh(dense).flip(0)
    eig = top_eigenvalues(HessianOperator(loss, params), k=3, tol=1e-10)
    torch.testing.assert_close(torch.as_tensor(eig.values.copy()), exact[:3], rtol=1e-6, atol=1e-9)
    assert eig.residuals.max() < 1e-6 and eig.products > 0
    # power iteration as the oracle (slow, exact in the limit when the top eigenvalue dominates in magnitude)
    v = torch.ones(dense.shape[0], dtype=torch.float64)
    for _ in range(3000):
        v = dense @ v
        v = v / v.norm()
    if exact[0] > abs(exact[-1]):
        assert float(v @ dense @ v) == pytest.approx(eig.values[0], rel=1e-6)


def test_warm_start_needs_fewer_products():
    loss, params = _problem(width=16)
    cold = top_eigenvalues(HessianOperator(loss, params), tol=1e-8)
    warm = top_eigenvalues(HessianOperator(loss, params), tol=1e-8, v0=cold.vectors[:, 0])
    assert warm.values[0] == pytest.approx(cold.values[0], rel=1e-7)
    assert warm.products < cold.products


def test_hutchinson_trace_is_unbiased_with_its_standard_error():
    loss, params = _problem()
    exact = float(torch.trace(_dense(loss, params)))
    estimate, stderr = hutchinson_trace(HessianOperator(loss, params), 400, torch.Generator().manual_seed(0))
    assert stderr > 0 and abs(estimate - exact) < 4 * stderr


def test_adam_preconditioned_sharpness_matches_its_dense_form():
    loss, params = _problem()
    dense = _dense(loss, params)
    gen = torch.Generator().manual_seed(2)
    second = {k: torch.rand(v.shape, generator=gen, dtype=torch.float64) * 1e-2 for k, v in params.items()}
    step, b2, eps = 7, 0.999, 1e-8
    scale = (flatten(second) / (1 - b2**step)).sqrt().add(eps).rsqrt()
    exact = torch.linalg.eigvalsh(scale[:, None] * dense * scale[None, :])[-1]
    op = PreconditionedOperator(HessianOperator(loss, params), second, step, b2, eps)
    eig = top_eigenvalues(op, tol=1e-10)
    assert eig.values[0] == pytest.approx(float(exact), rel=1e-7)


def test_bad_inputs_name_the_problem():
    loss, params = _problem()
    with pytest.raises(LmechInputError, match="method must be one of"):
        HessianOperator(loss, params, "backprop")
    with pytest.raises(LmechInputError, match="scalar"):
        HessianOperator(lambda p: flatten(p)[:3], params)
    with pytest.raises(LmechInputError, match="twice differentiable"):
        HessianOperator(lambda p: flatten(p).sum(), params)  # linear: the gradient has no graph
    with pytest.raises(LmechInputError, match="does not depend differentiably"):
        HessianOperator(lambda p: loss(p).detach(), params)
    with pytest.raises(LmechInputError, match="k must be"):
        top_eigenvalues(HessianOperator(loss, params), k=0)
    with pytest.raises(LmechInputError, match="samples"):
        hutchinson_trace(HessianOperator(loss, params), 1, torch.Generator())
    assert math.isfinite(top_eigenvalues(HessianOperator(loss, params)).values[0])


def test_per_example_gradients_average_to_the_batch_gradient_and_noise_scales():
    from lmech.observables.noise import noise_scale, per_example_gradients

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(64, 2, generator=gen, dtype=torch.float64)
    fn, params = functional(MLP(3, 5, 1, 2, activation_name="tanh", gen=gen, dtype=torch.float64))

    def point(pred, target):
        diff = pred - target
        return 0.5 * (diff * diff).sum()

    def mean_loss(p):
        diff = fn(p, x) - y
        return 0.5 * (diff * diff).sum() / len(x)

    per = per_example_gradients(fn, params, x, y, point, chunk=10)
    leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
    batch = torch.cat([g.reshape(-1) for g in torch.autograd.grad(mean_loss(leaves), list(leaves.values()))])
    torch.testing.assert_close(per.mean(0), batch, rtol=1e-12, atol=1e-14)
    pop = noise_scale(per, population=True, hessian=HessianOperator(mean_loss, params), hessian_examples=64)
    dev = per - per.mean(0)
    assert pop.b_simple == pytest.approx(float((dev * dev).sum() / 64 / (batch @ batch)), rel=1e-12)
    dense = _dense(mean_loss, params)
    exact_noise = float(torch.trace(dense @ (dev.T @ dev / 64)) / (batch @ dense @ batch))
    assert pop.b_noise == pytest.approx(exact_noise, rel=1e-10)
    # the unbiased small-sample estimator, averaged over disjoint halves, agrees with the population's tr(Sigma)
    halves = [noise_scale(per[i::2]).trace_sigma for i in range(2)]
    assert sum(halves) / 2 == pytest.approx(pop.trace_sigma * 64 / 63, rel=0.5)
