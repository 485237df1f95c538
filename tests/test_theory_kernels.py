"""Analytic infinite-width kernels: closed forms against quadrature, Monte Carlo over finite networks,
properties, and (where the fixture exists) independent values from neural-tangents."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest
import torch
from scipy import integrate

from lmech.theory.kernels import _Quadrature, kernels, nngp, ntk

FIXTURE = Path(__file__).parent / "data" / "nt_kernels.json"


def _points(n=6, d=5, seed=0):
    x = torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    x[1] = 2.5 * x[0]  # angle 0 at different norms
    x[2] = -x[3]  # angle pi
    return x


def _gaussian_expectation(f, q1, q2, c):
    """E f(u, v) for (u, v) ~ N(0, [[q1, c], [c, q2]]) by nested adaptive quadrature (scipy, independent of
    lmech), with break points where u = 0 or v = 0 so that ReLU's kinks do not spoil the accuracy."""
    rho = c / math.sqrt(q1 * q2)
    perp = math.sqrt(max(0.0, 1 - rho * rho))
    density = 1 / math.sqrt(2 * math.pi)

    def inner(z1):
        u = math.sqrt(q1) * z1
        kinks = [-rho * z1 / perp] if perp > 1e-9 else None

        def integrand(z2):
            return f(u, math.sqrt(q2) * (rho * z1 + perp * z2)) * density * math.exp(-z2 * z2 / 2)

        return integrate.quad(integrand, -12, 12, points=kinks, epsabs=1e-14, epsrel=1e-12, limit=200)[0]

    def outer(z1):
        return inner(z1) * density * math.exp(-z1 * z1 / 2)

    return integrate.quad(outer, -12, 12, points=[0.0], epsabs=1e-14, epsrel=1e-12, limit=200)[0]


@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_depth_one_closed_forms_match_two_dimensional_quadrature(activation):
    x = _points(5, 4)[[0, 3, 4]]
    x[2] = x[0] + 0.3 * x[1]
    got = kernels(x, depth=1, activation=activation, weight_std=1.3, bias_std=0.2)
    pre = 1.3**2 * (x @ x.T / 4) + 0.2**2  # first-layer pre-activation covariance
    phi = {"relu": lambda s: max(s, 0.0), "erf": math.erf}[activation]
    dphi = {"relu": lambda s: float(s > 0), "erf": lambda s: 2 / math.sqrt(math.pi) * math.exp(-s * s)}[activation]
    for i, j in [(0, 1), (0, 2), (1, 2), (2, 2)]:
        q1, q2, c = pre[i, i].item(), pre[j, j].item(), pre[i, j].item()
        e = _gaussian_expectation(lambda u, v: phi(u) * phi(v), q1, q2, c)
        e_prime = _gaussian_expectation(lambda u, v: dphi(u) * dphi(v), q1, q2, c)
        want_nngp = 1.3**2 * e + 0.2**2
        want_ntk = want_nngp + 1.3**2 * pre[i, j].item() * e_prime
        assert got.nngp[i, j].item() == pytest.approx(want_nngp, rel=1e-7)  # dblquad reaches ~1e-9
        assert got.ntk[i, j].item() == pytest.approx(want_ntk, rel=1e-7)


@pytest.mark.parametrize("points", [None, 101])
def test_quadrature_reproduces_the_erf_closed_form(points):
    """At unit input scale (variances ~ 1-3) a fixed 101-node rule is enough; the automatic rule also
    copes with the 2.5x-scaled point, whose variance ~ 24 makes erf nearly a step."""
    x = _points()
    if points is not None:
        x[1] = x[4]
    closed = kernels(x, depth=3, activation="erf", weight_std=1.5, bias_std=0.5)
    by_quadrature = kernels(x, depth=3, activation=torch.erf, weight_std=1.5, bias_std=0.5, quadrature_points=points)
    torch.testing.assert_close(by_quadrature.nngp, closed.nngp, rtol=1e-8, atol=0)
    torch.testing.assert_close(by_quadrature.ntk, closed.ntk, rtol=1e-8, atol=0)


def test_fixed_quadrature_on_a_sharp_activation_is_refined_automatically():
    q = torch.tensor([20.0], dtype=torch.float64)
    exact = (2 / math.pi) * math.asin(2 * 20.0 / 41.0)
    assert abs(_Quadrature(torch.erf, 51).variance(q).item() / exact - 1) > 1e-3  # a coarse fixed rule fails
    assert _Quadrature(torch.erf, None).variance(q).item() == pytest.approx(exact, rel=1e-8)


def test_relu_depth_one_value_by_hand():
    """Arc-cosine kernel of unit vectors at 60 degrees, W_std = 1, b_std = 0, d = 2."""
    x = torch.tensor([[1.0, 0.0], [0.5, math.sqrt(3) / 2]], dtype=torch.float64) * math.sqrt(2)
    k = kernels(x, depth=1)
    theta = math.pi / 3
    e = (math.sin(theta) + (math.pi - theta) * math.cos(theta)) / (2 * math.pi)
    assert k.nngp[0, 1].item() == pytest.approx(e, rel=1e-12)
    assert k.ntk[0, 1].item() == pytest.approx(e + 0.5 * (math.pi - theta) / (2 * math.pi), rel=1e-12)
    assert k.nngp[0, 0].item() == pytest.approx(0.5, rel=1e-12)


def test_identity_activation_is_a_deep_linear_network():
    x = _points()
    depth, w = 3, 1.2
    k = kernels(x, depth=depth, activation="identity", weight_std=w)
    linear = x @ x.T / x.shape[1]
    torch.testing.assert_close(k.nngp, w ** (2 * (depth + 1)) * linear, rtol=1e-12, atol=0)
    torch.testing.assert_close(k.ntk, (depth + 1) * w ** (2 * (depth + 1)) * linear, rtol=1e-12, atol=0)


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_relu_kernels_are_homogeneous_in_the_weight_variance(depth):
    """ReLU is 1-homogeneous, so with b_std = 0 doubling W_std^2 multiplies both kernels by 2^(depth + 1)."""
    x = _points()
    one = kernels(x, depth=depth, weight_std=1.0)
    two = kernels(x, depth=depth, weight_std=math.sqrt(2))
    # rtol: the parallel pair (x0, 2.5 x0) has rho = 1 - O(eps), where arccos loses sqrt(eps) ~ 1e-8
    torch.testing.assert_close(two.nngp, 2 ** (depth + 1) * one.nngp, rtol=1e-7, atol=0)
    torch.testing.assert_close(two.ntk, 2 ** (depth + 1) * one.ntk, rtol=1e-7, atol=0)


@pytest.mark.parametrize("activation", ["relu", "erf", "tanh", "gelu"])
def test_kernels_are_symmetric_and_positive_semidefinite(activation):
    x = torch.randn(30, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x = x / x.norm(dim=1, keepdim=True) * math.sqrt(3)  # unit variance per input coordinate
    k = kernels(x, depth=2, activation=activation, weight_std=1.4, bias_std=0.3)
    for matrix in k:
        assert torch.equal(matrix, matrix.T)
        assert torch.linalg.eigvalsh(matrix).min() > -1e-12 * matrix.diagonal().max()


def test_blocks_and_the_two_argument_form_agree_with_the_symmetric_form():
    x = torch.randn(300, 7, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    whole = kernels(x, depth=2, weight_std=1.4, bias_std=0.1)
    split = kernels(x[:120], x[100:], depth=2, weight_std=1.4, bias_std=0.1)
    # the 20 shared points are recognised as identical: no sqrt(eps) loss from arccos near 1
    torch.testing.assert_close(split.ntk, whole.ntk[:120, 100:], rtol=1e-13, atol=0)
    torch.testing.assert_close(split.nngp, whole.nngp[:120, 100:], rtol=1e-13, atol=0)


def test_float32_agrees_with_float64_including_the_diagonal():
    x = torch.randn(200, 16, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    k64 = kernels(x, depth=3, weight_std=math.sqrt(2), bias_std=0.1)
    k32 = kernels(x, depth=3, weight_std=math.sqrt(2), bias_std=0.1, dtype=torch.float32)
    assert k32.ntk.dtype == torch.float32
    torch.testing.assert_close(k32.ntk.double(), k64.ntk, rtol=5e-6, atol=0)  # float32 eps 6e-8, ~10 ops deep


def _finite_network_kernels(x, width, depth, weight_std, bias_std, nets, seed):
    """Empirical NNGP (output covariance across nets) and NTK (J J^T per net) of finite NTK-parametrised
    MLPs: h = W_std / sqrt(fan_in) W a + b_std b with W, b ~ N(0, 1)."""
    gen = torch.Generator().manual_seed(seed)
    dims = [x.shape[1]] + [width] * depth + [1]

    def forward(params, inputs):
        a = inputs
        for layer, (w, b) in enumerate(zip(params[::2], params[1::2], strict=True)):
            h = weight_std / math.sqrt(w.shape[1]) * a @ w.T + bias_std * b
            a = torch.relu(h) if layer < depth else h
        return a[:, 0]

    outputs, tangents = [], []
    for _ in range(nets):
        params = []
        for fan_in, fan_out in itertools.pairwise(dims):
            params += [torch.randn(fan_out, fan_in, generator=gen, dtype=x.dtype)]
            params += [torch.randn(fan_out, generator=gen, dtype=x.dtype)]
        jac = torch.func.jacrev(forward)(params, x)
        flat = torch.cat([j.reshape(len(x), -1) for j in jac], dim=1)
        outputs.append(forward(params, x))
        tangents.append(flat @ flat.T)
    f = torch.stack(outputs)  # (nets, n)
    return f[:, :, None] * f[:, None, :], torch.stack(tangents)


def test_finite_networks_converge_to_the_analytic_kernels():
    """Monte Carlo over 48 random ReLU nets of width 512: mean within 4 standard errors plus the O(1/width)
    finite-width bias (Hanin & Nica 2019: NTK corrections ~ depth / width)."""
    x = _points(5, 4)
    width, depth, w_std, b_std = 512, 2, math.sqrt(2), 0.3
    outer, tangent = _finite_network_kernels(x, width, depth, w_std, b_std, nets=48, seed=4)
    theory = kernels(x, depth=depth, weight_std=w_std, bias_std=b_std)
    for samples, want in [(outer, theory.nngp), (tangent, theory.ntk)]:
        mean, error = samples.mean(0), samples.std(0) / math.sqrt(len(samples))
        bound = 4 * error + 2 * depth / width * want.abs()
        assert ((mean - want).abs() <= bound).all(), ((mean - want).abs() / bound).max()
    # one net's NTK fluctuates by O(sqrt(depth / width)) of the kernel's scale (Hanin & Nica 2019)
    diagonal = theory.ntk.diagonal()
    spread = (tangent.std(0) / torch.sqrt(diagonal[:, None] * diagonal[None, :])).max().item()
    assert spread < 2 * math.sqrt(depth / width)


def test_standard_parametrization_shares_the_nngp_and_scales_the_ntk_with_width():
    x = _points()
    ntk_param = kernels(x, depth=2, weight_std=1.4, bias_std=0.1)
    small = kernels(x, depth=2, weight_std=1.4, bias_std=0.1, parametrization="standard", width=64)
    big = kernels(x, depth=2, weight_std=1.4, bias_std=0.1, parametrization="standard", width=4096)
    torch.testing.assert_close(small.nngp, ntk_param.nngp, rtol=0, atol=0)
    assert (big.ntk > small.ntk * 30).all()  # the hidden layers' contribution grows like width


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"depth": -1}, "depth"),
        ({"depth": 1.5}, "depth"),
        ({"depth": 1, "weight_std": 0.0}, "weight_std"),
        ({"depth": 1, "bias_std": -1.0}, "bias_std"),
        ({"depth": 1, "activation": "swish"}, "activation"),
        ({"depth": 1, "parametrization": "mup"}, "parametrization"),
        ({"depth": 1, "parametrization": "standard"}, "width"),
        ({"depth": 1, "dtype": torch.float16}, "dtype"),
    ],
)
def test_bad_network_arguments_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        kernels(_points(), **kwargs)


def test_bad_inputs_name_the_argument():
    x = _points()
    with pytest.raises(ValueError, match="x1"):
        nngp(x[0], depth=1)
    with pytest.raises(ValueError, match="x2"):
        ntk(x, torch.full((2, 5), math.nan), depth=1)
    with pytest.raises(ValueError, match="columns"):
        ntk(x, x[:, :3], depth=1)


def _sigmoid_like(u: torch.Tensor) -> torch.Tensor:
    """neural-tangents' Sigmoid_like = Erf(a=0.5, b=1/2.4020563531719796, c=0.5), through lmech's quadrature."""
    return 0.5 * torch.erf(u / 2.4020563531719796) + 0.5


ACTIVATIONS = {"relu": "relu", "erf": "erf", "gelu": "gelu", "sigmoid_like": _sigmoid_like}


@pytest.mark.skipif(not FIXTURE.exists(), reason="neural-tangents reference values not generated")
def test_values_match_neural_tangents():
    """Independent reference: neural-tangents 0.6.5 kernel_fn in float64 (bench/make_nt_reference.py), ReLU/erf/GELU
    in closed form there (GELU and Sigmoid_like by quadrature here), both parametrizations. Cases with NT's extra
    standard-parametrization scale s != (1, 1) are outside lmech's conventions and skipped."""
    reference = json.loads(FIXTURE.read_text())
    x1 = torch.tensor(reference["inputs"]["x1"], dtype=torch.float64)
    x2 = torch.tensor(reference["inputs"]["x2"], dtype=torch.float64)
    checked, worst = 0, 0.0
    for case in reference["cases"]:
        if list(case["s"]) != [1, 1]:
            continue
        network = {
            "depth": case["depth"],
            "activation": ACTIVATIONS[case["activation"]],
            "weight_std": case["weight_std"],
            "bias_std": case["bias_std"],
            "parametrization": case["parameterization"],
            "width": case["width"],
        }
        for pair, got in [("x1_x2", kernels(x1, x2, **network)), ("x1_x1", kernels(x1, **network))]:
            for name in ("nngp", "ntk"):
                want = torch.tensor(case[pair][name], dtype=torch.float64)
                # relative to the matrix scale: NTK entries can cross zero (x.x' < 0 in the first layer)
                error = ((got._asdict()[name] - want).abs().max() / want.abs().max()).item()
                assert error < 1e-6, (case["activation"], case["parameterization"], case["depth"], pair, name, error)
                if (case["activation"], pair, name) != ("relu", "x1_x2", "ntk"):
                    worst = max(worst, error)
        checked += 1
    # everything agrees to rounding (measured <= 2e-15; GELU and Sigmoid_like by quadrature here) except the ReLU
    # NTK at the parallel pair (x, 2.5 x), where both codes take arccos of a correlation within ulps of 1 (5.7e-10)
    assert worst < 1e-12
    assert checked >= 60


def test_one_network_ntk_fluctuates_at_the_inverse_square_root_width_rate():
    """Std over nets of the empirical NTK of one-hidden-layer ReLU nets: 16x the width, 4x less spread
    (ratio within [3, 5.3]: 32 nets estimate each std to ~13%)."""
    x = _points(5, 4)
    spreads = []
    for width in (64, 1024):
        _, tangent = _finite_network_kernels(x, width, 1, math.sqrt(2), 0.3, nets=32, seed=width)
        spreads.append(tangent.std(0).mean().item())
    assert 3.0 < spreads[0] / spreads[1] < 5.3, spreads
