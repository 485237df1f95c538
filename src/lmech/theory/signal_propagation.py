"""Signal propagation through deep random networks: the mean-field recursions for one pair of inputs.

For h^l = W^l phi(h^(l-1)) + b^l with W ~ N(0, W_std^2 / n), b ~ N(0, b_std^2), at infinite width the pre-activation
variance q^l and the correlation c^l of two inputs follow (Poole et al. 2016, eqs. 3-5; Schoenholz et al. 2017,
eqs. 1-4; the diagonal and off-diagonal of the NNGP recursion, lmech.theory.kernels):

    q^l = W_std^2 E[phi(sqrt(q^(l-1)) z)^2] + b_std^2
    c^l = (W_std^2 E[phi(u) phi(v)] + b_std^2) / sqrt(q^l_1 q^l_2),   (u, v) with variances q^(l-1), correlation c^(l-1)

The fixed point (q*, c*) and chi_1 = W_std^2 E[phi'(sqrt(q*) z)^2], the slope of the c-map at c = 1: chi_1 < 1 is the
ordered phase (c* = 1: inputs become aligned), chi_1 > 1 the chaotic phase (c* < 1: inputs decorrelate)
(Poole et al. 2016, eq. 7; Schoenholz et al. 2017, eq. 5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from lmech.theory.kernels import Activation, _dual, _Quadrature


@dataclass(frozen=True)
class SignalTrajectory:
    """Per hidden layer l = 1..depth: pre-activation variances of the two inputs and their correlation."""

    q1: np.ndarray
    q2: np.ndarray
    c: np.ndarray


@dataclass(frozen=True)
class FixedPoint:
    q: float
    c: float
    chi1: float


def _dual_for(activation: Activation, weight_std: float, bias_std: float, *variances: float):
    """The activation's dual with its quadrature rule fixed once (refined at a bound on every variance the maps
    reach: a bounded activation keeps q <= W^2 sup phi^2 + b^2), so iterating the maps does not re-select it."""
    dual = _dual(activation, None)
    if isinstance(dual, _Quadrature):
        bound = 2 * max(*variances, weight_std**2 + bias_std**2)
        points = len(dual.rule(torch.tensor([bound], dtype=torch.float64))[0])
        dual = _Quadrature(dual.fn, points, dual.grad)
    return dual


def _step(dual, k: torch.Tensor, w2: float, b2: float) -> torch.Tensor:
    """One layer of the 2x2 NNGP map."""
    q = k.diagonal().clone()
    expect, _ = dual.pair(k.clone(), q, q, None)
    out = w2 * expect + b2
    out[0, 0], out[1, 1] = w2 * dual.variance(q[:1])[0] + b2, w2 * dual.variance(q[1:])[0] + b2
    return out


def signal_trajectory(
    q1: float,
    q2: float,
    c: float,
    depth: int,
    *,
    activation: Activation = "tanh",
    weight_std: float = 1.0,
    bias_std: float = 0.0,
) -> SignalTrajectory:
    """Iterate the recursions from the first layer's pre-activation statistics (q1, q2, c) for ``depth`` layers
    (the first entry of each output is the given first layer)."""
    dual = _dual_for(activation, weight_std, bias_std, q1, q2)
    w2, b2 = weight_std**2, bias_std**2
    k = torch.tensor([[q1, c * math.sqrt(q1 * q2)], [c * math.sqrt(q1 * q2), q2]], dtype=torch.float64)
    out = []
    for _ in range(depth):
        out.append((k[0, 0].item(), k[1, 1].item(), (k[0, 1] / torch.sqrt(k[0, 0] * k[1, 1])).item()))
        k = _step(dual, k, w2, b2)
    q1s, q2s, cs = (np.array(v) for v in zip(*out, strict=True))
    return SignalTrajectory(q1s, q2s, cs)


def fixed_point(
    *,
    activation: Activation = "tanh",
    weight_std: float = 1.0,
    bias_std: float = 0.0,
    start: float = 1.0,
    c_start: float = 0.5,
    iterations: int = 10000,
    tol: float = 1e-12,
) -> FixedPoint:
    """(q*, c*, chi_1) by iterating the maps from (start, c_start) until both change by less than ``tol``."""
    dual = _dual_for(activation, weight_std, bias_std, start)
    w2, b2 = weight_std**2, bias_std**2
    k = torch.tensor([[start, c_start * start], [c_start * start, start]], dtype=torch.float64)
    for _ in range(iterations):
        new = _step(dual, k, w2, b2)
        done = (new - k).abs().max().item() <= tol * max(1.0, new.abs().max().item())
        k = new
        if done:
            break
    q = k[0, 0].reshape(1)
    _, prime = dual.pair(q.reshape(1, 1).clone(), q, q, torch.ones(1, 1, dtype=torch.bool))  # E[phi'(u)^2]
    return FixedPoint(q=q.item(), c=(k[0, 1] / k[0, 0]).item(), chi1=w2 * prime.item())
