"""Compute-optimal allocation under C = 6 N D for the Chinchilla form (Hoffmann et al. 2022, eq. 4 and appendix D.2).

Minimising E + A N^-alpha + B D^-beta subject to 6 N D = C gives
    N*(C) = G (C/6)^(beta/(alpha+beta)),  D*(C) = G^-1 (C/6)^(alpha/(alpha+beta)),
    G = (alpha A / (beta B))^(1/(alpha+beta)).
Intervals come from applying the same closed form to every bootstrap sample of the fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lmech.core import LmechInputError
from lmech.fit.fitting import FitResult, _quantiles


@dataclass(frozen=True)
class Allocation:
    """N*, D* and the loss there, at each compute in ``compute``, each with (low, high) at ``level``."""

    compute: np.ndarray
    n: np.ndarray
    d: np.ndarray
    loss: np.ndarray
    n_interval: tuple[np.ndarray, np.ndarray]
    d_interval: tuple[np.ndarray, np.ndarray]
    loss_interval: tuple[np.ndarray, np.ndarray]
    level: float


def optimal_allocation(params: dict[str, float], compute) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N*, D*, L(N*, D*)) for Chinchilla parameters at compute C (FLOPs, C = 6 N D)."""
    c = np.asarray(compute, dtype=np.float64)
    e, a, b, alpha, beta = (params[k] for k in ("E", "A", "B", "alpha", "beta"))
    if not (alpha > 0 and beta > 0 and a > 0 and b > 0):
        raise LmechInputError(f"compute-optimal allocation needs positive A, B, alpha, beta; got {params}")
    g = (alpha * a / (beta * b)) ** (1 / (alpha + beta))
    n = g * (c / 6) ** (beta / (alpha + beta))
    d = (c / 6) ** (alpha / (alpha + beta)) / g
    return n, d, e + a / n**alpha + b / d**beta


def compute_optimal(result: FitResult, compute, level: float | None = None) -> Allocation:
    """The fitted law's compute-optimal frontier at ``compute`` (scalar or array), with bootstrap intervals."""
    if result.form.name != "chinchilla":
        raise LmechInputError(
            f"compute-optimal allocation needs the 'chinchilla' form; this fit is {result.form.name!r}"
        )
    c = np.atleast_1d(np.asarray(compute, dtype=np.float64))
    if not np.all(np.isfinite(c) & (c > 0)):
        raise LmechInputError("compute must be finite and positive")
    level = result.level if level is None else level
    n, d, loss = optimal_allocation(result.params, c)
    if len(result.samples) == 0:
        return Allocation(c, n, d, loss, (n, n), (d, d), (loss, loss), 0.0)
    draws = []
    for sample in result.samples:  # a refit whose exponent ended on its bound has no finite allocation: left out
        try:
            draws.append(optimal_allocation(result.form.public(list(sample)), c))
        except LmechInputError:
            continue
    if len(draws) < 0.9 * len(result.samples):
        raise LmechInputError(
            f"only {len(draws)} of {len(result.samples)} bootstrap refits have positive A, B, alpha and beta: the "
            "compute-optimal allocation's interval cannot be trusted"
        )
    stacked = [np.array([draw[i] for draw in draws]) for i in range(3)]  # 3 x (B, len(c))
    (n_lo, n_hi), (d_lo, d_hi), (l_lo, l_hi) = (_quantiles(s, level) for s in stacked)
    return Allocation(c, n, d, loss, (n_lo, n_hi), (d_lo, d_hi), (l_lo, l_hi), level)


def exponents(params: dict[str, float]) -> tuple[float, float]:
    """(a, b) with N* ~ C^a and D* ~ C^b: a = beta/(alpha+beta), b = alpha/(alpha+beta)."""
    s = params["alpha"] + params["beta"]
    if not s > 0 or math.isnan(s):
        raise LmechInputError("exponents need alpha + beta > 0")
    return params["beta"] / s, params["alpha"] / s
