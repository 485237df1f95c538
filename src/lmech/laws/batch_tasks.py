"""Tasks of the critical-batch law: noisy linear regression trained by vectorised minibatch SGD, the S(B) hyperbola
fitter, and learning-rate tuning over seeds.

SGD here is plain (no momentum), as in McCandlish et al. 2018's derivation; minibatches are drawn with replacement
from the finite training set, so the per-step gradient noise covariance is exactly Sigma / B with Sigma the
per-example gradient covariance over the training set (the population the noise scale is measured on).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import least_squares

from lmech.core import DATA, INIT, LmechInputError, generator


@dataclass(frozen=True)
class LinearTask:
    """Noisy linear regression: x ~ N(0, diag(lambda)), lambda_i = i^-a, y = x . w* + noise z, w* ~ N(0, I)."""

    x: torch.Tensor  # (n, d)
    y: torch.Tensor  # (n,)
    hessian: torch.Tensor  # (d, d) X^T X / n
    optimum: torch.Tensor  # (d,) least-squares solution on the training set
    initial_excess: float


def linear_task(d: int, n: int, noise: float, seed: int, condition: float = 100.0) -> LinearTask:
    """The population covariance has eigenvalues lambda_i = i^-a with a = log(condition) / log(d), so its condition
    number is ``condition`` (100 at d = 100: lambda_i = 1/i); the training set's Hessian X^T X / n is wider by
    sampling: at most ~(1 + sqrt(d/n))^2 / (1 - sqrt(d/n))^2 (1.9 at d = 100, n = 4096; the identity covariance's
    Marchenko-Pastur spread), less for a spread spectrum (measured: 1.36x at condition 2, 1.16x at 100)."""
    if condition < 1:
        raise LmechInputError(
            f"condition must be >= 1 (the covariance's largest / smallest eigenvalue); got {condition}"
        )
    gen = generator(seed, DATA)
    lam = torch.arange(1, d + 1, dtype=torch.float64) ** -(math.log(condition) / math.log(d))
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


@dataclass(frozen=True)
class DigitsTask:
    """An MLP 64 -> width (x depth) -> 10 on the standardised digits training set (1347 images), cross-entropy."""

    x: torch.Tensor  # (n, 64)
    y: torch.Tensor  # (n,) class indices
    width: int
    depth: int
    activation: str


ACTIVATIONS = {"tanh": (torch.tanh, lambda h: 1 - h * h), "relu": (torch.relu, lambda h: (h > 0).to(h.dtype))}


def digits_task(width: int, depth: int, activation: str) -> DigitsTask:
    from lmech.data.digits import digits

    if activation not in ACTIVATIONS:
        raise LmechInputError(f"activation must be one of {', '.join(ACTIVATIONS)}; got {activation!r}")
    data = digits()
    return DigitsTask(data.x, data.y.long(), width, depth, activation)


def mlp_init(task: DigitsTask, seeds: int, gen: torch.Generator) -> list[torch.Tensor]:
    """[W_0, b_0, ..., W_depth, b_depth], each stacked over seeds (seeds, ...), initialised as lmech.nets.MLP
    (W ~ N(0, gain^2 / fan_in), readout gain 1, biases 0)."""
    from lmech.nets import MLP, ensemble

    nets = [
        MLP(task.x.shape[1], task.width, task.depth, 10, activation_name=task.activation, gen=gen) for _ in range(seeds)
    ]
    _, stacked = ensemble(nets)
    return [stacked[f"layers.{i}.{k}"] for i in range(task.depth + 1) for k in ("weight", "bias")]


def _forward(task: DigitsTask, params: Sequence[torch.Tensor], x: torch.Tensor) -> list[torch.Tensor]:
    """[x, h_1, ..., h_depth, logits] for stacked params (..., out, in) and x (m, d) or (..., 1, m, d)."""
    act = ACTIVATIONS[task.activation][0]
    out = [x]
    for i in range(0, len(params), 2):
        z = out[-1] @ params[i].transpose(-1, -2) + params[i + 1].unsqueeze(-2)  # (..., m, out)
        out.append(z if i == len(params) - 2 else act(z))
    return out


def mlp_loss(task: DigitsTask, params: Sequence[torch.Tensor]) -> torch.Tensor:
    """Full training cross-entropy (nats) of every member: params (E, ...) -> (E,)."""
    z = _forward(task, params, task.x)[-1]  # (E, n, 10)
    return (torch.logsumexp(z, -1) - z.gather(-1, task.y.expand(z.shape[0], -1)[..., None])[..., 0]).mean(-1)


def _sgd_step(task: DigitsTask, params: list[torch.Tensor], lrs: torch.Tensor, xb, yb) -> list[torch.Tensor]:
    """One plain SGD step of every (seed, lr) member: params (S, K, ...), minibatch xb (S, 1, B, d), yb (S, B).
    Backward pass by hand: dlogits = (softmax - onehot) / B, dW = dz^T h, db = sum dz, dh = dz W."""
    hs = _forward(task, params, xb)
    dz = torch.softmax(hs[-1], -1)  # (S, K, B, 10)
    dz.scatter_add_(
        -1, yb[:, None, :, None].expand(*dz.shape[:3], 1), torch.full((*dz.shape[:3], 1), -1.0, dtype=dz.dtype)
    )
    dz /= xb.shape[-2]
    deriv = ACTIVATIONS[task.activation][1]
    new = list(params)
    for i in range(len(params) // 2 - 1, -1, -1):
        lr = lrs[:, None]
        new[2 * i] = params[2 * i] - lr[..., None] * (dz.transpose(-1, -2) @ hs[i])
        new[2 * i + 1] = params[2 * i + 1] - lr * dz.sum(-2)
        if i > 0:
            dz = (dz @ params[2 * i]) * deriv(hs[i])
    return new


def mlp_sgd_steps_to_target(
    task: DigitsTask, batch: int, lrs: torch.Tensor, seeds: int, target: float, budget: int, seed: int, ratio: float
) -> torch.Tensor:
    """Plain SGD of the MLP for every (seed, lr); seed s has the same initialisation and minibatches (drawn with
    replacement) at every lr. The full training loss is evaluated at steps t_{j+1} = max(t_j + 1, ceil(ratio t_j))
    on the members still running; the step at which it crosses ``target`` is interpolated linearly in log loss
    between checks. Returns (seeds, K) steps (inf: not reached within ``budget``, or diverged). Stops early once no
    unfinished lr can beat the best finished one's mean over seeds."""
    k = len(lrs)
    params = [p[:, None].repeat(1, k, *([1] * (p.dim() - 1))) for p in mlp_init(task, seeds, generator(seed, INIT))]
    gen = generator(seed, DATA, 1, batch)
    first = mlp_loss(task, [p[:, 0] for p in params])[:, None].expand(seeds, k)  # (S, K)
    hit = torch.full((seeds, k), math.inf, dtype=torch.float64)
    alive = torch.ones(seeds, k, dtype=torch.bool)
    last_t, last = torch.zeros(seeds, k), first.clone()
    check = 1
    for t in range(1, budget + 1):
        idx = torch.randint(len(task.y), (seeds, batch), generator=gen)
        params = _sgd_step(task, params, lrs, task.x[idx][:, None], task.y[idx])
        if t < check:
            continue
        check = max(t + 1, math.ceil(ratio * t))
        run = alive & torch.isinf(hit)  # (S, K)
        loss = torch.full((seeds, k), math.inf)
        loss[run] = mlp_loss(task, [p[run] for p in params])
        alive &= torch.isfinite(loss) & (loss < 10 * first) | ~run
        new = run & alive & (loss <= target)
        frac = ((last.log() - math.log(target)) / (last.log() - loss.log())).clamp(0, 1)
        hit = torch.where(new, (last_t + (t - last_t) * frac).double(), hit)
        last_t, last = torch.where(run, float(t), last_t), torch.where(run, loss, last)
        params = [torch.where(alive.reshape(seeds, k, *([1] * (p.dim() - 2))), p, 0.0) for p in params]
        if not bool((alive & torch.isinf(hit)).any()):
            break  # every member has hit the target or diverged
        done = torch.isfinite(hit).all(0)
        if done.any():
            best = hit.mean(0)[done].min()
            bound = torch.where(torch.isfinite(hit), hit, float(t + 1)).mean(0)
            if bool((bound[~done & alive.all(0)] >= best).all()):
                break
    return hit


def mlp_sgd_path(
    task: DigitsTask,
    batch: int,
    lr: float,
    seeds: int,
    seed: int,
    steps: int,
    target: float | None = None,
    at: Sequence[int] = (),
) -> tuple[int, dict[int, list[torch.Tensor]]]:
    """Replays seed 0 of :func:`mlp_sgd_steps_to_target` at one lr (same initialisation and minibatches) for up to
    ``steps`` steps. With ``target``, checks the full loss at every step and stops at the first step with loss <=
    target. Returns that step (or the last step run: 0 if the target was given and missed) and the (unstacked)
    parameters at the steps in ``at`` and at the last step."""
    params = [p[:1, None] for p in mlp_init(task, seeds, generator(seed, INIT))]  # (1, 1, ...)
    gen = generator(seed, DATA, 1, batch)
    lrs = torch.tensor([lr], dtype=params[0].dtype)
    snaps = {0: [p[0, 0].clone() for p in params]} if 0 in at else {}
    for t in range(1, steps + 1):
        idx = torch.randint(len(task.y), (seeds, batch), generator=gen)[:1]
        params = _sgd_step(task, params, lrs, task.x[idx][:, None], task.y[idx])
        if t in at:
            snaps[t] = [p[0, 0].clone() for p in params]
        if target is not None and float(mlp_loss(task, [p[:, 0] for p in params])[0]) <= target:
            snaps[t] = [p[0, 0].clone() for p in params]
            return t, snaps
    snaps[steps] = [p[0, 0].clone() for p in params]
    return (0 if target is not None else steps), snaps


def mlp_per_example_gradients(task: DigitsTask, params: Sequence[torch.Tensor]) -> torch.Tensor:
    """(n, P) float64 gradients of each training example's cross-entropy wrt [W_0, b_0, ..., b_depth] (flattened in
    that order), by the hand backward pass: dW_i = dz_i (x) h_i per example."""
    p = [q.double() for q in params]
    hs = _forward(task, p, task.x.double())
    dz = torch.softmax(hs[-1], -1) - torch.nn.functional.one_hot(task.y, hs[-1].shape[-1]).double()  # (n, 10)
    deriv = ACTIVATIONS[task.activation][1]
    out: list[torch.Tensor] = []
    for i in range(len(p) // 2 - 1, -1, -1):
        out = [(dz[:, :, None] * hs[i][:, None, :]).flatten(1), dz, *out]  # (n, out * in), (n, out)
        if i > 0:
            dz = (dz @ p[2 * i]) * deriv(hs[i])
    return torch.cat(out, 1)


def mlp_mean_loss(task: DigitsTask, names: Sequence[str]):
    """params dict (unstacked, float64) -> mean training cross-entropy, for a Hessian operator."""
    x = task.x.double()

    def loss_of(p: dict) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(_forward(task, [p[k] for k in names], x)[-1], task.y)

    return loss_of
