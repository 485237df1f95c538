"""Curvature of the loss: Hessian-vector products, top eigenvalues (sharpness), trace, Adam's preconditioned sharpness.

- Products: reverse-over-reverse (the gradient's graph is built once, each product is one more backward pass through
  it, as PyHessian does; measured 2x cheaper than forward-over-reverse on an 85k-parameter tanh MLP) or
  forward-over-reverse (``torch.func.jvp`` of ``torch.func.grad``; no retained graph). Losses must be written by hand,
  not with ``F.mse_loss`` (torch 2.13's jvp-of-grad bug, pytorch issue 123996).
- Top eigenvalues: implicitly restarted Lanczos (scipy's ARPACK ``eigsh``, which="LA") on the product, warm-started
  from the previous top eigenvector when tracking during training; the number of products and each Ritz pair's
  residual ||H u - lambda u|| (one more product each) are reported. Sharpness = the largest eigenvalue (Cohen et al.
  2021).
- Trace: Hutchinson's estimator E[z^T H z] with Rademacher z, with its standard error (Hutchinson 1990; Avron &
  Toledo 2011).
- Adam's preconditioned sharpness: lambda_max(P^-1/2 H P^-1/2), P = diag(sqrt(v_hat) + eps) from Adam's
  bias-corrected second moment (Cohen et al. 2022, "Adaptive gradient methods at the edge of stability", sec. 3).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh
from threadpoolctl import threadpool_limits

from lmech.core import LmechInputError, Observable, Params, Snapshot

LossOf = Callable[[Params], torch.Tensor]
"""loss(params) -> scalar tensor (the batch is fixed inside)."""
METHODS = ("reverse", "forward")


def flatten(params: Params) -> torch.Tensor:
    return torch.cat([p.reshape(-1) for p in params.values()])


def unflatten(vector: torch.Tensor, like: Params) -> Params:
    out, start = {}, 0
    for k, p in like.items():
        out[k] = vector[start : start + p.numel()].reshape(p.shape)
        start += p.numel()
    return out


class HessianOperator:
    """v -> H v for the Hessian of ``loss`` at ``params`` on flat vectors (the parameters' dtype); ``products``
    counts the products made. The model's own parameters and gradients are never touched (detached copies)."""

    def __init__(self, loss: LossOf, params: Params, method: str = "reverse"):
        if method not in METHODS:
            raise LmechInputError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
        if not params:
            raise LmechInputError("params is empty: there is no Hessian to take")
        self.like = {k: v.detach() for k, v in params.items()}
        self.dim = sum(p.numel() for p in self.like.values())
        self.dtype = next(iter(self.like.values())).dtype
        self.products = 0
        self.method = method
        if method == "reverse":
            leaves = {k: v.clone().requires_grad_() for k, v in self.like.items()}
            with torch.enable_grad():
                value = loss(leaves)
                _check_scalar(value)
                if not value.requires_grad:
                    raise LmechInputError("the loss does not depend differentiably on the parameters (no graph)")
                grads = torch.autograd.grad(value, list(leaves.values()), create_graph=True, allow_unused=True)
            if any(g is None or not g.requires_grad for g in grads):
                raise LmechInputError(
                    "the loss is not twice differentiable in every parameter: a gradient has no graph (a parameter "
                    "is unused, or the loss is linear in it, or an op has no second derivative); use a loss with "
                    "curvature in every parameter"
                )
            self._leaves, self._grad = list(leaves.values()), torch.cat([g.reshape(-1) for g in grads])
        else:
            grad_fn = torch.func.grad(loss)

            def product(v: torch.Tensor) -> torch.Tensor:
                _, out = torch.func.jvp(grad_fn, (self.like,), (unflatten(v, self.like),))
                return flatten(out)

            self._forward = product

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        if v.shape != (self.dim,):
            raise LmechInputError(f"vector must have shape ({self.dim},); got {tuple(v.shape)}")
        self.products += 1
        v = v.to(self.dtype)
        if self.method == "forward":
            return self._forward(v).detach()
        with torch.enable_grad():
            out = torch.autograd.grad(self._grad, self._leaves, grad_outputs=v, retain_graph=True)
        return torch.cat([o.reshape(-1) for o in out]).detach()


def _check_scalar(value: torch.Tensor) -> None:
    if value.ndim != 0:
        raise LmechInputError(f"loss must return a scalar; got shape {tuple(value.shape)}")


def hvp(loss: LossOf, params: Params, vector: Params, method: str = "reverse") -> Params:
    """One Hessian-vector product H v, v given like ``params``."""
    op = HessianOperator(loss, params, method)
    return unflatten(op(flatten({k: vector[k] for k in params})), op.like)


@dataclass(frozen=True)
class Eigen:
    """Top eigenpairs: ``values`` (k,) descending, ``vectors`` (dim, k), the products used, and each pair's
    residual ||H u - lambda u|| (an eigenvalue error bound; a tighter estimate is residual^2 / gap)."""

    values: np.ndarray
    vectors: torch.Tensor
    products: int
    residuals: np.ndarray

    @property
    def relative_error_bound(self) -> float:
        return float(self.residuals[0] / abs(self.values[0])) if self.values[0] else math.inf


def top_eigenvalues(
    op: HessianOperator,
    k: int = 1,
    *,
    tol: float = 1e-4,
    v0: torch.Tensor | None = None,
    max_restarts: int = 2000,
    ncv: int | None = None,
) -> Eigen:
    """The k largest (algebraic) eigenvalues of the operator by ARPACK's Lanczos, starting from ``v0`` (warm start)
    when given. ``tol``: ARPACK's relative residual tolerance; ``ncv``: Lanczos vectors kept (fewer suit a good
    warm start). BLAS runs on one thread (torch and scipy threads
    fought on 2 cores: 2.2x slower, ../shared/peers/NOTES.md)."""
    if not isinstance(k, int) or k < 1 or k >= op.dim:
        raise LmechInputError(f"k must be an integer in [1, {op.dim - 1}]; got {k!r}")
    if not tol > 0:
        raise LmechInputError(f"tol must be positive; got {tol!r}")
    before = op.products

    def matvec(x: np.ndarray) -> np.ndarray:
        return op(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64).reshape(-1))).double().numpy()

    linear = LinearOperator((op.dim, op.dim), matvec=matvec, dtype=np.float64)
    start = None if v0 is None else v0.detach().double().reshape(-1).numpy()
    ncv = min(op.dim, ncv or max(2 * k + 1, 8 + k))  # Lanczos vectors per restart (ARPACK needs > k + 1)
    with threadpool_limits(limits=1, user_api="blas"):
        try:
            values, vectors = eigsh(linear, k=k, which="LA", tol=tol, v0=start, ncv=ncv, maxiter=max_restarts)
        except ArpackNoConvergence as exc:  # keep what converged; residuals below say how good it is
            if len(exc.eigenvalues) == 0:
                raise LmechInputError(f"Lanczos did not converge within {max_restarts} restarts") from None
            values, vectors = exc.eigenvalues, exc.eigenvectors
    used = op.products - before
    order = np.argsort(values)[::-1]
    values, vectors = values[order], torch.from_numpy(vectors[:, order].copy())
    residuals = np.array(
        [float((op(vectors[:, i]).double() - values[i] * vectors[:, i]).norm()) for i in range(len(values))]
    )
    return Eigen(values, vectors, used, residuals)


def hutchinson_trace(op: HessianOperator, samples: int, gen: torch.Generator) -> tuple[float, float]:
    """(estimate, standard error) of tr H from ``samples`` Rademacher probes z: mean of z^T H z."""
    if samples < 2:
        raise LmechInputError(f"samples must be >= 2 for a standard error; got {samples}")
    values = []
    for _ in range(samples):
        z = torch.randint(0, 2, (op.dim,), generator=gen).to(op.dtype) * 2 - 1
        values.append(float(z @ op(z)))
    v = np.array(values)
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(samples))


class PreconditionedOperator:
    """v -> P^-1/2 H P^-1/2 v with P = diag(sqrt(v_hat) + eps) (Adam's effective preconditioner)."""

    def __init__(self, op: HessianOperator, second_moment: Params, step: int, b2: float = 0.999, eps: float = 1e-8):
        if step < 1:
            raise LmechInputError(f"step must be >= 1 (Adam's bias correction); got {step}")
        v_hat = flatten({k: second_moment[k] for k in op.like}) / (1 - b2**step)
        self.scale = (v_hat.sqrt() + eps).rsqrt().to(op.dtype)  # P^-1/2
        self.op, self.dim, self.dtype = op, op.dim, op.dtype

    @property
    def products(self) -> int:
        return self.op.products

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        return self.scale * self.op(self.scale * v.to(self.dtype))


def sharpness(
    loss_on: Callable[[Callable, Params], LossOf],
    *,
    k: int = 1,
    tol: float = 1e-4,
    method: str = "reverse",
    name: str = "sharpness",
) -> Observable:
    """Observable: the top-k Hessian eigenvalues at each recorded step ("sharpness" is the largest; "sharpness_2"
    ... the next), warm-started from the previous step's top eigenvector, with "sharpness_products" and
    "sharpness_residual". ``loss_on(fn, params)`` must return ``loss(params)`` on the batch to measure."""

    def measure(s: Snapshot, previous: torch.Tensor | None):
        op = HessianOperator(loss_on(s.fn, s.params), dict(s.params), method)
        eig = top_eigenvalues(op, k, tol=tol, v0=previous)
        values = {name: float(eig.values[0]), f"{name}_products": float(eig.products)}
        values[f"{name}_residual"] = float(eig.residuals[0])
        values.update({f"{name}_{i + 1}": float(v) for i, v in enumerate(eig.values[1:], start=1)})
        return values, eig.vectors[:, 0]

    return Observable(name, lambda _s: None, measure)
