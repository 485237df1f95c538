"""Gradient noise: per-example gradients and the noise scales that predict the critical batch size.

McCandlish, Kaplan, Amodei & OpenAI Dota Team 2018, "An empirical model of large-batch training", eqs. 2.7-2.8 and
appendix A: with G the true gradient, Sigma the per-example gradient covariance and H the Hessian,

    B_simple = tr(Sigma) / |G|^2,          B_noise = tr(H Sigma) / (G^T H G).

Estimators from m per-example gradients g_i drawn from the data (appendix A's unbiased forms):
tr(Sigma)^ = sum_i |g_i - g_bar|^2 / (m - 1), |G|^2^ = |g_bar|^2 - tr(Sigma)^ / m and likewise
(G^T H G)^ = g_bar^T H g_bar - tr(H Sigma)^ / m; with ``population=True`` the
examples ARE the population (e.g. the whole training set that SGD samples from), and the plain averages are exact.
tr(H Sigma) from a subset of deviations g_i - g_bar (one Hessian-vector product each).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.func import grad, vmap

from lmech.core import Fn, LmechInputError, Params
from lmech.observables.curvature import HessianOperator

PointLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""loss(prediction (C,) or (), target) -> scalar for one example."""


def per_example_gradients(
    fn: Fn, params: Params, x: torch.Tensor, y: torch.Tensor, loss: PointLoss, chunk: int = 256
) -> torch.Tensor:
    """(m, P) flattened per-example gradients by ``vmap(grad)``, ``chunk`` examples at a time."""
    if len(x) == 0 or len(x) != len(y):
        raise LmechInputError(f"x and y must be non-empty batches of the same length; got {len(x)} and {len(y)}")
    detached = {k: v.detach() for k, v in params.items()}

    def single(p: Params, xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        return loss(fn(p, xi[None])[0], yi)

    per = vmap(grad(single), in_dims=(None, 0, 0))
    rows = []
    for start in range(0, len(x), chunk):
        g = per(detached, x[start : start + chunk], y[start : start + chunk])
        rows.append(torch.cat([g[k].reshape(g[k].shape[0], -1) for k in detached], dim=1))
    return torch.cat(rows)


@dataclass(frozen=True)
class NoiseScale:
    b_simple: float
    b_noise: float | None
    trace_sigma: float
    gradient_norm2: float
    examples: int


def noise_scale(
    gradients: torch.Tensor,
    *,
    population: bool = False,
    hessian: HessianOperator | None = None,
    hessian_examples: int = 32,
    gen: torch.Generator | None = None,
) -> NoiseScale:
    """B_simple (and B_noise when a Hessian operator of the mean loss is given) from (m, P) per-example gradients."""
    m = len(gradients)
    if m < 2:
        raise LmechInputError(f"need at least 2 per-example gradients; got {m}")
    g = gradients.double()
    mean = g.mean(0)
    dev = g - mean
    if population:
        trace, norm2 = float((dev * dev).sum() / m), float(mean @ mean)
    else:
        trace = float((dev * dev).sum() / (m - 1))
        norm2 = float(mean @ mean) - trace / m
    if norm2 <= 0:
        raise LmechInputError(
            f"the gradient's squared norm is not resolved by {m} examples (estimate {norm2:.3g}): use more examples"
        )
    b_noise = None
    if hessian is not None:
        pick = torch.randperm(m, generator=gen)[: min(hessian_examples, m)]
        quad = torch.stack([dev[i] @ hessian(dev[i].to(hessian.dtype)).double() for i in pick])
        scale = 1.0 / m if population else 1.0 / (m - 1)
        trace_h_sigma = float(quad.mean()) * m * scale
        curvature = float(mean @ hessian(mean.to(hessian.dtype)).double())
        if not population:  # E[g_bar^T H g_bar] = G^T H G + tr(H Sigma) / m
            curvature -= trace_h_sigma / m
        if curvature <= 0:
            raise LmechInputError(
                f"G^T H G is not resolved by {m} examples (estimate {curvature:.3g}): use more examples, or the "
                "gradient lies in directions of non-positive curvature"
            )
        b_noise = trace_h_sigma / curvature
    return NoiseScale(trace / norm2, b_noise, trace, norm2, m)
