"""Tasks of the critical-batch law: noisy linear regression trained by vectorised minibatch SGD, the S(B) hyperbola
fitter, and learning-rate tuning over seeds.

SGD here is plain (no momentum), as in McCandlish et al. 2018's derivation; minibatches are drawn with replacement
from the finite training set, so the per-step gradient noise covariance is exactly Sigma / B with Sigma the
per-example gradient covariance over the training set (the population the noise scale is measured on).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import least_squares

from lmech.core import DATA, LmechInputError, generator


@dataclass(frozen=True)
class LinearTask:
    """Noisy linear regression: x ~ N(0, diag(lambda)), lambda_i = 1/i, y = x . w* + noise z, w* ~ N(0, I)."""

    x: torch.Tensor  # (n, d)
    y: torch.Tensor  # (n,)
    hessian: torch.Tensor  # (d, d) X^T X / n
    optimum: torch.Tensor  # (d,) least-squares solution on the training set
    initial_excess: float


def linear_task(d: int, n: int, noise: float, seed: int) -> LinearTask:
    gen = generator(seed, DATA)
    lam = 1.0 / torch.arange(1, d + 1, dtype=torch.float64)
    x = torch.randn(n, d, generator=gen, dtype=torch.float64) * lam.sqrt()  # (n, d)
    w_star = torch.randn(d, generator=gen, dtype=torch.float64)
    y = x @ w_star + noise * torch.randn(n, generator=gen, dtype=torch.float64)
    h = x.T @ x / n
    optimum = torch.linalg.solve(h, x.T @ y / n)
    return LinearTask(x, y, h, optimum, 0.5 * float(optimum @ h @ optimum))


def excess(task: LinearTask, w: torch.Tensor) -> torch.Tensor:
    """Training loss minus its minimum, 0.5 e^T H e with e = w - w_hat, for w of shape (..., d, K) -> (..., K)."""
    e = w - task.optimum[:, None]
    return 0.5 * (e * (task.hessian @ e)).sum(-2)


def sgd_steps_to_target(
    task: LinearTask, batch: int, lrs: torch.Tensor, seeds: int, target: float, budget: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain SGD from w = 0 for every (seed, lr) at once; seed s draws the same minibatches at every lr (common random
    numbers). Returns (seeds, K) first steps with excess loss <= target (inf: not reached within ``budget`` or
    diverged) and the (d, K) weights of seed 0 at its hitting step (zeros where not reached). Stops early once no
    unfinished lr can beat the best finished one's mean over seeds."""
    n, d = task.x.shape
    k = len(lrs)
    w = torch.zeros(seeds, d, k, dtype=torch.float64)
    hit = torch.full((seeds, k), math.inf, dtype=torch.float64)
    alive = torch.ones(seeds, k, dtype=torch.bool)
    at_hit = torch.zeros(d, k, dtype=torch.float64)
    for t in range(1, budget + 1):
        idx = torch.randint(n, (seeds, batch), generator=gen)
        xb = task.x[idx]  # (seeds, B, d)
        residual = xb @ w - task.y[idx][:, :, None]  # (seeds, B, K)
        w = w - lrs * (xb.transpose(1, 2) @ residual) / batch
        loss = excess(task, w)  # (seeds, K)
        alive &= torch.isfinite(loss) & (loss < 1e3 * task.initial_excess)
        w = torch.where(alive[:, None, :], w, 0.0)
        new = alive & (loss <= target) & torch.isinf(hit)
        at_hit = torch.where(new[0], w[0], at_hit)
        hit = torch.where(new, float(t), hit)
        done = torch.isfinite(hit).all(0)
        if done.any():
            best = hit.mean(0)[done].min()
            bound = torch.where(torch.isfinite(hit), hit, float(t + 1)).mean(0)
            if bool((bound[~done & alive.any(0)] >= best).all()):
                break
    return hit, at_hit


def tuned(hits: np.ndarray) -> tuple[int, float]:
    """(K, seeds) steps-to-target (nan/inf: not reached) -> (best lr index, its mean steps over seeds). An lr that
    fails on any seed scores inf: a diverged or too-slow run never reaches the target."""
    steps = np.where(np.isfinite(hits), hits, np.inf).mean(1)
    k = int(np.argmin(steps))
    return k, float(steps[k])


def fit_hyperbola(batch: np.ndarray, steps: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Least squares in log S of S(B) = S_min (1 + B_crit / B) (McCandlish et al. 2018, eq. 2.11).
    Returns S_min, B_crit, the log residuals log S - log S_fit and the 2x2 covariance of (log S_min, log B_crit)."""
    b, s = np.asarray(batch, float), np.asarray(steps, float)
    if len(b) < 3 or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise LmechInputError(f"need >= 3 finite positive step counts to fit S(B); got {s.tolist()}")

    def residual(p: np.ndarray) -> np.ndarray:
        return np.log(s) - p[0] - np.log1p(np.exp(p[1]) / b)

    start = [math.log(s.min()), math.log(float(np.median(b)))]
    fit = least_squares(residual, start)
    dof = max(len(b) - 2, 1)
    jac = fit.jac
    cov = np.linalg.pinv(jac.T @ jac) * float(fit.fun @ fit.fun) / dof
    return math.exp(fit.x[0]), math.exp(fit.x[1]), fit.fun, cov
