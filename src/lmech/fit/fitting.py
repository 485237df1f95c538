"""Fit a scaling-law form robustly, with bootstrap uncertainty, and say when the fit cannot be trusted.

Objective (Hoffmann et al. 2022, appendix D.2, approach 3): sum_i Huber_delta(log L_hat(x_i) - log L_i), delta = 1e-3,
minimised by L-BFGS-B from the best few points of a grid of starts. Uncertainty: nonparametric bootstrap over runs
(resample the rows with replacement, refit from the full-data optimum), percentile intervals at ``level``.
A fit is refused with a :class:`FitError` that names the reason and carries what was found when there are too few
points, when an exponent ends on its bound, or when the data cannot tell the parameters apart (the Jacobian of the
log-predictions, columns normalised, has condition number above 1e8).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

from lmech.core import LmechInputError
from lmech.fit.forms import Form, columns
from lmech.fit.forms import form as form_named

CONDITION_LIMIT = 1e8


@dataclass(frozen=True)
class Band:
    """A prediction with its interval: ``point``, ``low`` and ``high`` arrays at ``level``."""

    point: np.ndarray
    low: np.ndarray
    high: np.ndarray
    level: float


@dataclass(frozen=True)
class FitResult:
    """The fitted parameters, their bootstrap intervals, and what the fit saw."""

    form: Form
    params: dict[str, float]
    theta: np.ndarray  # (k,) internal coordinates
    intervals: dict[str, tuple[float, float]]
    level: float
    samples: np.ndarray  # (B, k) bootstrap internal coordinates (B = 0 without bootstrap)
    objective: float
    residual_std: float  # std of log residuals
    data: dict[str, np.ndarray] = field(repr=False)
    delta: float = 1e-3

    def predict(self, level: float | None = None, **variables) -> Band:
        """Predicted loss at ``variables`` (arrays by the form's variable names), with a bootstrap interval."""
        cols = columns(self.form, variables)
        with torch.no_grad():
            point = torch.exp(self.form.log_loss(torch.as_tensor(self.theta), cols)).numpy()
            if len(self.samples) == 0:
                return Band(point, point.copy(), point.copy(), 0.0)
            draws = torch.exp(self.form.log_loss(torch.as_tensor(self.samples), cols)).numpy()  # (B, n)
        level = self.level if level is None else level
        lo, hi = _quantiles(draws, level)
        return Band(point, lo, hi, level)

    def summary(self) -> dict:
        return {
            "form": self.form.name,
            "formula": self.form.formula,
            "params": self.params,
            "intervals": {k: list(v) for k, v in self.intervals.items()},
            "level": self.level,
            "bootstrap": len(self.samples),
            "points": len(next(iter(self.data.values()))),
            "residual_std": self.residual_std,
        }


class FitError(LmechInputError):
    """A fit that cannot be trusted: ``reason`` says why, ``partial`` holds what was found (or None)."""

    def __init__(self, reason: str, partial: FitResult | None = None):
        super().__init__(reason)
        self.reason = reason
        self.partial = partial


def fit(
    spec: Form | str,
    data: Mapping[str, object],
    *,
    delta: float = 1e-3,
    bootstrap: int = 200,
    level: float = 0.8,
    seed: int = 0,
    starts: int = 8,
) -> FitResult:
    """Fit ``spec`` to ``data`` ({variable: values, "loss": values}); see the module docstring.

    BLAS runs on one thread here: the products are tiny, and OpenBLAS's spinning threads made a bootstrap 10x slower
    when another process shared the two cores (measured: 36 s against 3.4 s)."""
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit(spec, data, delta=delta, bootstrap=bootstrap, level=level, seed=seed, starts=starts)


def _fit(spec, data, *, delta, bootstrap, level, seed, starts) -> FitResult:
    spec = form_named(spec) if isinstance(spec, str) else spec
    if not delta > 0:
        raise LmechInputError(f"delta must be positive; got {delta!r}")
    if not 0 < level < 1:
        raise LmechInputError(f"level must be in (0, 1); got {level!r}")
    if bootstrap < 0 or starts < 1:
        raise LmechInputError(f"bootstrap must be >= 0 and starts >= 1; got {bootstrap} and {starts}")
    cols, loss = _data(spec, data)
    n, k = len(loss), len(spec.internal)
    if n < k + 2:
        raise FitError(f"too few points: form {spec.name!r} has {k} parameters and needs at least {k + 2}; got {n}")
    log_loss = torch.log(loss)
    theta = _best_fit(spec, cols, log_loss, delta, _grid_starts(spec, cols, log_loss, delta, starts))
    partial = _result(spec, theta, np.zeros((0, k)), cols, loss, delta, level)
    _check_trust(spec, theta, cols, partial)
    gen = np.random.default_rng(seed)
    samples = []
    for _ in range(bootstrap):
        idx = torch.as_tensor(gen.integers(0, n, n))
        sub = {v: c[idx] for v, c in cols.items()}
        samples.append(_best_fit(spec, sub, log_loss[idx], delta, [theta]))
    return _result(spec, theta, np.array(samples).reshape(-1, k), cols, loss, delta, level)


def _data(spec: Form, data: Mapping[str, object]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    if "loss" not in data:
        raise LmechInputError(f"data needs a 'loss' column and {', '.join(spec.variables)}; got {', '.join(data)}")
    cols = columns(spec, data)
    loss = torch.as_tensor(data["loss"], dtype=torch.float64).reshape(-1)
    if not bool(torch.all(torch.isfinite(loss) & (loss > 0))):
        raise LmechInputError("loss must be finite and positive everywhere")
    if any(len(c) != len(loss) for c in cols.values()):
        sizes = {**{v: len(c) for v, c in cols.items()}, "loss": len(loss)}
        raise LmechInputError(f"columns must have the same length; got {sizes}")
    return cols, loss


def _objective(spec, cols, log_loss, delta):
    scale = 1.0 / (delta * len(log_loss))  # O(1) gradients whatever delta and n

    def value(theta: torch.Tensor) -> torch.Tensor:
        resid = spec.log_loss(theta, cols) - log_loss
        return scale * torch.nn.functional.huber_loss(resid, torch.zeros_like(resid), reduction="sum", delta=delta)

    return value


def _value_and_grad(spec: Form, cols, log_loss, delta):
    """x -> (objective, gradient) in numpy. Forms whose log L is a log-sum-exp of terms linear in the internal
    coordinates (``spec.design``) get it in closed form (about 10x faster than autograd, which matters for the
    bootstrap); the others go through torch autograd."""
    scale = 1.0 / (delta * len(log_loss))
    y = log_loss.numpy()
    if spec.design is not None:
        design = spec.design({v: c.numpy() for v, c in cols.items()})  # (terms, n, k)

        def fun(x: np.ndarray):
            z = np.einsum("tnk,k->tn", design, x)
            top = z.max(0)
            weights = np.exp(z - top)
            total = weights.sum(0)
            r = top + np.log(total) - y
            inside = np.abs(r) <= delta
            value = np.where(inside, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta)).sum()
            dr = np.where(inside, r, delta * np.sign(r))  # d huber / d r
            grad = np.einsum("tn,tnk->k", weights / total * dr, design)
            return scale * value, scale * grad

        return fun
    value = _objective(spec, cols, log_loss, delta)

    def fun(x: np.ndarray):
        theta = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        out = value(theta)
        (grad,) = torch.autograd.grad(out, theta)
        return out.item(), grad.numpy()

    return fun


def _grid_starts(spec, cols, log_loss, delta, starts) -> list[np.ndarray]:
    mesh = torch.cartesian_prod(*(torch.tensor(g, dtype=torch.float64) for g in spec.grid))
    mesh = mesh.reshape(-1, len(spec.internal))
    resid = spec.log_loss(mesh, cols) - log_loss  # (G, n)
    huber = torch.where(resid.abs() <= delta, 0.5 * resid**2, delta * (resid.abs() - 0.5 * delta)).sum(-1)
    best = torch.argsort(huber)[:starts]
    return [mesh[i].numpy() for i in best]


def _best_fit(spec, cols, log_loss, delta, starts) -> np.ndarray:
    fun = _value_and_grad(spec, cols, log_loss, delta)

    bounds = [(None if math.isinf(lo) else lo, None if math.isinf(hi) else hi) for lo, hi in spec.bounds]
    best = None
    for x0 in starts:
        res = minimize(
            fun,
            np.asarray(x0, dtype=np.float64),
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": 3000, "ftol": 1e-15, "gtol": 1e-10},
        )
        if best is None or res.fun < best.fun:
            best = res
    return best.x


def _result(spec, theta, samples, cols, loss, delta, level) -> FitResult:
    t = torch.as_tensor(theta)
    with torch.no_grad():
        resid = (spec.log_loss(t, cols) - torch.log(loss)).numpy()
        obj = float(_objective(spec, cols, torch.log(loss), delta)(t))
    params = spec.public(list(theta))
    intervals = {}
    if len(samples):
        public = np.array([list(spec.public(list(s)).values()) for s in samples])  # (B, p)
        lo, hi = _quantiles(public, level)
        intervals = {name: (float(lo[i]), float(hi[i])) for i, name in enumerate(spec.parameters)}
    data = {**{v: c.numpy() for v, c in cols.items()}, "loss": loss.numpy()}
    return FitResult(spec, params, np.asarray(theta), intervals, level, samples, obj, float(resid.std()), data, delta)


def _quantiles(draws: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    return np.quantile(draws, (1 - level) / 2, axis=0), np.quantile(draws, (1 + level) / 2, axis=0)


def _check_trust(spec: Form, theta: np.ndarray, cols, partial: FitResult) -> None:
    for i, name in enumerate(spec.internal):
        lo, hi = spec.bounds[i]
        for bound in (lo, hi):
            if math.isfinite(bound) and abs(theta[i] - bound) < 1e-6:
                raise FitError(
                    f"{name} ended on its bound {bound:g}: the data do not determine it (more points, a wider range "
                    "of the variables, or a simpler form)",
                    partial,
                )
    jac = torch.func.jacrev(lambda t: spec.log_loss(t, cols))(torch.as_tensor(theta))  # (n, k)
    norms = jac.norm(dim=0)
    if bool(torch.any(norms == 0)):
        dead = [spec.internal[i] for i in torch.nonzero(norms == 0).flatten().tolist()]
        raise FitError(f"not identifiable: the predictions do not depend on {', '.join(dead)} at the optimum", partial)
    s = torch.linalg.svdvals(jac / norms)
    if s[-1] == 0 or s[0] / s[-1] > CONDITION_LIMIT:
        _, _, vh = torch.linalg.svd(jac / norms)
        weak = vh[-1].abs()
        names = [spec.internal[i] for i in torch.argsort(weak, descending=True)[:2].tolist()]
        raise FitError(
            f"not identifiable: {names[0]} and {names[1]} trade off against each other (Jacobian condition number "
            f"{(s[0] / s[-1]).item():.1e} > {CONDITION_LIMIT:.0e}); the variables' range is too narrow for this form",
            partial,
        )
