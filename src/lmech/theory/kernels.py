"""Infinite-width NNGP and NTK kernels of fully connected networks.

Network (neural-tangents' ``stax.serial(Dense(W_std, b_std), act, ..., Dense(W_std, b_std))`` with
``depth`` hidden layers and a linear readout). Inputs are normalised by their dimension d, so the
input kernel is x.x'/d. Each ``Dense`` maps the layer-input kernel K_in to

    NNGP:  K = W_std^2 K_in + b_std^2                       (Neal 1996; Lee et al. 2018, eq. 4)
    NTK parametrization:       Theta = K + W_std^2 Theta_in  (Jacot et al. 2018, Thm 1;
                                                              Arora et al. 2019, eq. 9)
    standard parametrization:  Theta = n_in K_in + 1 + W_std^2 Theta_in

where n_in is the layer's fan-in (d for the first layer, ``width`` after) and the activation maps
(K, Theta) to (E[phi(u) phi(v)], Theta * E[phi'(u) phi'(v)]) with (u, v) ~ N(0, [[K11, K12], [K12, K22]]).
The NNGP does not depend on the parametrization; the standard-parametrization NTK grows with width.

Activations: "relu" (arc-cosine kernel, Cho & Saul 2009), "erf" (arcsine kernel, Williams 1997),
"identity" in closed form; "tanh", "gelu", "sigmoid" or any elementwise torch callable by
Gauss-Hermite quadrature over the 2x2 Gaussian. Memory O(n1 n2): all layers run on blocks of rows.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from typing import NamedTuple

import torch

from lmech.core import LmechInputError

Activation = str | Callable[[torch.Tensor], torch.Tensor]
PARAMETRIZATIONS = ("ntk", "standard")
CLOSED_FORM = ("relu", "erf", "identity")
_SQRT_2PI = math.sqrt(2 * math.pi)
BY_QUADRATURE = {  # name: (phi, phi')
    "tanh": (torch.tanh, lambda u: 1 - torch.tanh(u) ** 2),
    "gelu": (torch.nn.functional.gelu, lambda u: torch.special.ndtr(u) + u * torch.exp(-u * u / 2) / _SQRT_2PI),
    "sigmoid": (torch.sigmoid, lambda u: torch.sigmoid(u) * (1 - torch.sigmoid(u))),
}
_BLOCK_ELEMENTS = 1 << 17  # entries per block of rows: 1 MiB of float64 stays in cache across layers


class Kernels(NamedTuple):
    """The two infinite-width kernels of one network, each (n1, n2)."""

    nngp: torch.Tensor
    ntk: torch.Tensor


def nngp(x1, x2=None, **network) -> torch.Tensor:
    """NNGP kernel (output covariance at initialisation); arguments as :func:`kernels`."""
    return kernels(x1, x2, **network).nngp


def ntk(x1, x2=None, **network) -> torch.Tensor:
    """Neural tangent kernel; arguments as :func:`kernels`."""
    return kernels(x1, x2, **network).ntk


def kernels(
    x1,
    x2=None,
    *,
    depth: int,
    activation: Activation = "relu",
    weight_std: float = 1.0,
    bias_std: float | None = 0.0,
    parametrization: str = "ntk",
    width: int | None = None,
    dtype: torch.dtype = torch.float64,
    quadrature_points: int | None = None,
) -> Kernels:
    """NNGP and NTK of ``depth`` hidden layers + linear readout between rows of x1 (n1, d) and x2 (n2, d).

    ``x2=None`` means x1 with itself: the result is exactly symmetric and only the upper block
    triangle is computed. ``bias_std=None``: layers without biases (differs from 0.0 only in the
    standard-parametrization NTK, where a bias adds d f/d b = 1). ``width`` (the hidden fan-in) is
    needed for the standard-parametrization NTK only. ``quadrature_points``: nodes per dimension for
    activations without a closed form (None: refined automatically, see ``_Quadrature``).
    Assumes: infinite width, Gaussian init W ~ N(0, W_std^2 / fan_in), b ~ N(0, b_std^2).
    """
    a, b = _inputs(x1, x2, dtype)
    _check_network(depth, weight_std, bias_std, parametrization, width)
    dual = _dual(activation, quadrature_points)
    w2, b2 = float(weight_std) ** 2, float(bias_std or 0.0) ** 2
    bias_gradient = 0.0 if bias_std is None else 1.0  # standard NTK: d f / d b = 1 for a layer that has biases
    fan_ins = [a.shape[1]] + [width or 0] * depth
    diag_a, diag_b = _diagonal(a, dual, depth, w2, b2), _diagonal(b if b is not None else a, dual, depth, w2, b2)
    rows = a.shape[0]
    cols = rows if b is None else b.shape[0]
    out_nngp = torch.empty(rows, cols, dtype=dtype)
    out_ntk = torch.empty(rows, cols, dtype=dtype)
    step = max(1, _BLOCK_ELEMENTS // max(cols, 1))
    ids_a, ids_b = _row_ids(a, b)
    for start in range(0, rows, step):
        stop = min(rows, start + step)
        first = start if b is None else 0  # symmetric: only columns >= start
        other = a[first:] if b is None else b
        k = a[start:stop] @ other.T / a.shape[1]
        k_nngp, k_ntk = _recursion(
            k,
            [d[start:stop] for d in diag_a],
            [d[first:] for d in diag_b],
            dual,
            (w2, b2, bias_gradient),
            parametrization,
            fan_ins,
            ties=ids_a[start:stop, None] == ids_b[None, first:],
        )
        if b is None:  # the block's leading square: mirror its upper triangle so the output is exactly symmetric
            for square in (k_nngp[:, : stop - start], k_ntk[:, : stop - start]):
                square.copy_(torch.triu(square) + torch.triu(square, 1).T)
        out_nngp[start:stop, first:] = k_nngp
        out_ntk[start:stop, first:] = k_ntk
        if b is None:
            out_nngp[stop:, start:stop] = k_nngp[:, stop - start :].T
            out_ntk[stop:, start:stop] = k_ntk[:, stop - start :].T
    return Kernels(out_nngp, out_ntk)


def _recursion(k, diag1, diag2, dual, scales, parametrization, fan_ins, ties):
    """All layers on one block: k is the input kernel x.x'/d of the block; diag* the per-layer variances.
    ``ties`` marks pairs of identical points, whose correlation is set to exactly 1."""
    w2, b2, bias_gradient = scales
    theta = torch.zeros_like(k)
    for layer, fan_in in enumerate(fan_ins):
        if layer > 0:
            expect, expect_prime = dual.pair(k, diag1[layer - 1], diag2[layer - 1], ties)
            theta.mul_(expect_prime)
            k = expect
        if parametrization == "ntk":
            k.mul_(w2).add_(b2)
            theta.mul_(w2).add_(k)
        else:
            theta.mul_(w2).add_(k, alpha=fan_in).add_(bias_gradient)
            k.mul_(w2).add_(b2)
    return k, theta


def _diagonal(x: torch.Tensor, dual, depth: int, w2: float, b2: float) -> list[torch.Tensor]:
    """Pre-activation variances q^l(x) of hidden layers 1..depth (the diagonal of the NNGP recursion)."""
    q = (x * x).sum(1) / x.shape[1] * w2 + b2
    out = [q]
    for _ in range(depth):
        q = dual.variance(q) * w2 + b2
        out.append(q)
    return out


# --------------------------------------------------------------------------------------------
# Duals: (K12, K11, K22) -> (E[phi(u) phi(v)], E[phi'(u) phi'(v)])


class _ReLU:
    """Arc-cosine kernel of degree 1 and 0 (Cho & Saul 2009, eq. 6; Arora et al. 2019, eq. 11)."""

    @staticmethod
    def pair(k, q1, q2, ties=None):
        norm = torch.sqrt(q1)[:, None] * torch.sqrt(q2)[None, :]
        rho = _correlation(k.div_(norm), ties)
        theta_ = torch.arccos(rho)
        sine = torch.sqrt(1.0 - rho * rho)
        prime = theta_.neg_().add_(math.pi)  # pi - theta
        expect = rho.mul_(prime).add_(sine).mul_(norm).div_(2 * math.pi)
        return expect, prime.div_(2 * math.pi)

    @staticmethod
    def variance(q):
        return q / 2


class _Erf:
    """Arcsine kernel of erf (Williams 1997, eq. 11): (2/pi) asin(2 K12 / sqrt((1 + 2 K11)(1 + 2 K22)))."""

    @staticmethod
    def pair(k, q1, q2, ties=None):  # arcsin's argument stays below 1 for ties: nothing to fix
        s1, s2 = 1 + 2 * q1, 1 + 2 * q2
        denominator = s1[:, None] * s2[None, :]
        prime = (4 / math.pi) / torch.sqrt(denominator - 4 * k * k)
        expect = torch.asin((2 * k).div_(torch.sqrt_(denominator)).clamp_(-1.0, 1.0)).mul_(2 / math.pi)
        return expect, prime

    @staticmethod
    def variance(q):
        return (2 / math.pi) * torch.asin(2 * q / (1 + 2 * q))


class _Identity:
    @staticmethod
    def pair(k, q1, q2, ties=None):
        return k, torch.ones_like(k)

    @staticmethod
    def variance(q):
        return q


class _Quadrature:
    """E over (u, v) ~ N(0, [[q1, c], [c, q2]]) on a tensor-product grid: u = sqrt(q1) z_a,
    v = sqrt(q2) (rho z_a + sqrt(1 - rho^2) z_b), with z on the trapezoidal rule of spacing h over
    [-10, 10]. For an integrand analytic in a strip, the trapezoidal rule converges geometrically in 1/h
    (Trefethen & Weideman 2014, SIAM Review 56, Thm 5.1); unlike a fixed Gauss-Hermite rule it keeps
    its nodes where the Gaussian weight lives.

    A saturating activation at large variance (tanh(sqrt(q) z), q >> 1) is nearly a step and needs
    finer spacing (for erf, error ~ exp(-pi^2 / (h^2 q))). With ``points=None`` the spacing is halved
    down the ladder until E[phi(u)^2] at the largest variance changes by < 1e-10 relative; a warning
    reports the estimated error if the finest spacing is not enough. ``points`` fixes the node count.
    """

    LADDER = (51, 71, 101, 141, 201, 281, 401, 561)
    HALF_WIDTH = 10.0

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], points: int | None, derivative=None):
        self.fn = fn
        self.grad = derivative or torch.func.vmap(torch.func.grad(lambda s: fn(s)))
        self.points = points

    @classmethod
    @functools.cache
    def _rule(cls, points: int) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.linspace(-cls.HALF_WIDTH, cls.HALF_WIDTH, points, dtype=torch.float64)
        w = torch.exp(-z * z / 2)
        return z, w / w.sum()

    def _second_moment(self, q: torch.Tensor, points: int) -> torch.Tensor:
        z, w = (t.to(q.dtype) for t in self._rule(points))
        phi, _ = self._values(torch.sqrt(q)[:, None] * z)
        return (phi * phi) @ w

    def rule(self, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Nodes and weights (for a standard normal) adequate for variances up to max(q)."""
        if self.points is not None:
            return self._rule(self.points)
        top = q.max().reshape(1).to(torch.float64)
        previous = self._second_moment(top, self.LADDER[0])
        for points in self.LADDER[1:]:
            current = self._second_moment(top, points)
            change = ((current - previous).abs() / current.abs().clamp_min(1e-300)).item()
            if change < 1e-10:
                return self._rule(points)
            previous = current
        warnings.warn(
            f"quadrature with {points} nodes may be off by ~{change:.1e} relative at "
            f"variance {top.item():.3g}; pass quadrature_points to refine",
            stacklevel=4,
        )
        return self._rule(points)

    def _values(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flat = u.reshape(-1)
        return self.fn(flat).reshape(u.shape), self.grad(flat).reshape(u.shape)

    def pair(self, k, q1, q2, ties=None):
        z, w = (t.to(k.dtype) for t in self.rule(torch.cat([q1, q2])))
        rho = _correlation(k / (torch.sqrt(q1)[:, None] * torch.sqrt(q2)[None, :]), ties)
        phi_u, dphi_u = self._values(torch.sqrt(q1)[:, None] * z)  # (n1, m)
        expect, expect_prime = torch.zeros_like(k), torch.zeros_like(k)
        perp = torch.sqrt(1.0 - rho * rho)
        rows = max(1, (1 << 21) // (k.shape[1] * len(z)))  # bounds the (rows, n2, m) node tensor to 16 MiB
        for r in range(0, k.shape[0], rows):
            part = slice(r, r + rows)
            for a in range(len(z)):  # v at nodes (a, b) for all b: (rows, n2, m)
                v = torch.sqrt(q2)[None, :, None] * (rho[part, :, None] * z[a] + perp[part, :, None] * z)
                phi_v, dphi_v = self._values(v)
                expect[part] += w[a] * phi_u[part, a, None] * (phi_v @ w)
                expect_prime[part] += w[a] * dphi_u[part, a, None] * (dphi_v @ w)
        return expect, expect_prime

    def variance(self, q):
        z, w = (t.to(q.dtype) for t in self.rule(q))
        phi, _ = self._values(torch.sqrt(q)[:, None] * z)
        return (phi * phi) @ w


def _correlation(rho: torch.Tensor, ties: torch.Tensor | None) -> torch.Tensor:
    """Clamp to [-1, 1] in place; identical points get exactly 1. A matrix product and separately summed norms
    put their correlation a few ulp below 1, and arccos turns that into an error of sqrt(2 eps): 2e-8 in float64,
    3e-4 in float32 (neural-tangents shows the same error on the diagonal)."""
    rho.clamp_(-1.0, 1.0)
    if ties is not None:
        rho.masked_fill_(ties, 1.0)
    return rho


def _row_ids(a: torch.Tensor, b: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer ids such that two rows (of x1 or x2) share an id exactly when they are identical."""
    rows = a if b is None else torch.cat([a, b])
    ids = torch.unique(rows, dim=0, return_inverse=True)[1]
    return ids[: len(a)], ids if b is None else ids[len(a) :]


def _dual(activation: Activation, points: int | None):
    if callable(activation):
        return _Quadrature(activation, points)
    if activation == "relu":
        return _ReLU
    if activation == "erf":
        return _Erf
    if activation == "identity":
        return _Identity
    if activation in BY_QUADRATURE:
        return _Quadrature(*BY_QUADRATURE[activation][:1], points, BY_QUADRATURE[activation][1])
    allowed = ", ".join(CLOSED_FORM + tuple(BY_QUADRATURE))
    raise LmechInputError(f"activation must be one of {allowed} or an elementwise torch callable; got {activation!r}")


# --------------------------------------------------------------------------------------------
# Input checks


def _as_matrix(x, name: str, dtype: torch.dtype) -> torch.Tensor:
    tensor = torch.as_tensor(x).to(dtype)
    if tensor.ndim != 2 or tensor.shape[0] == 0 or tensor.shape[1] == 0:
        raise LmechInputError(f"{name} must be a non-empty (n, d) matrix; got shape {tuple(tensor.shape)}")
    if not torch.isfinite(tensor).all():
        raise LmechInputError(f"{name} contains NaN or inf")
    return tensor


def _inputs(x1, x2, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor | None]:
    if dtype not in (torch.float32, torch.float64):
        raise LmechInputError(f"dtype must be torch.float32 or torch.float64; got {dtype}")
    a = _as_matrix(x1, "x1", dtype)
    if x2 is None:
        return a, None
    b = _as_matrix(x2, "x2", dtype)
    if b.shape[1] != a.shape[1]:
        raise LmechInputError(f"x1 and x2 must have the same number of columns; got {a.shape[1]} and {b.shape[1]}")
    return a, b


def _check_network(depth, weight_std, bias_std, parametrization, width) -> None:
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise LmechInputError(f"depth must be an integer >= 0 (hidden layers); got {depth!r}")
    if not (math.isfinite(weight_std) and weight_std > 0):
        raise LmechInputError(f"weight_std must be a finite number > 0; got {weight_std!r}")
    if bias_std is not None and not (math.isfinite(bias_std) and bias_std >= 0):
        raise LmechInputError(f"bias_std must be a finite number >= 0 or None (no biases); got {bias_std!r}")
    if parametrization not in PARAMETRIZATIONS:
        raise LmechInputError(f"parametrization must be one of {', '.join(PARAMETRIZATIONS)}; got {parametrization!r}")
    if parametrization == "standard" and depth > 0 and not (isinstance(width, int) and width > 0):
        raise LmechInputError(f"width (hidden fan-in) must be a positive integer for the standard NTK; got {width!r}")
