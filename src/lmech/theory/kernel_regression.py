"""Kernel regression and the exact dynamics of a linearised model.

Ridge(less) regression: f(x) = k(x)^T (K + ridge I)^(-1) y, solved by Cholesky.

Linearised network trained on the loss (1 / 2n) sum_a (f(x_a) - y_a)^2 (Jacot et al. 2018; Lee et al. 2019,
eqs. 8-11): with the NTK K on the training set and k(x) between x and the training set,

    gradient flow, time t = lr * steps:   f_t(X) = y - exp(-K t / n) (y - f_0(X))
                                          f_t(x) = f_0(x) + k(x)^T K^(-1) (I - exp(-K t / n)) (y - f_0(X))
    gradient descent, s steps of size lr: exp(-K t / n) -> (I - lr K / n)^s

computed from one eigendecomposition K = Q diag(e) Q^T; K^(-1)(I - exp(-K t / n)) is evaluated as
Q diag((1 - exp(-e t / n)) / e) Q^T, whose e -> 0 limit t / n needs no inverse.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from lmech.core import LmechInputError


def kernel_ridge(kernel_train, targets, ridge: float = 0.0) -> torch.Tensor:
    """Dual coefficients alpha = (K + ridge I)^(-1) y by Cholesky, float64; predict with k(x)^T alpha.

    Raises a ValueError that suggests a ridge when K + ridge I is not numerically positive definite.
    """
    k = torch.as_tensor(kernel_train, dtype=torch.float64)
    y = torch.as_tensor(targets, dtype=torch.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1]:
        raise LmechInputError(f"kernel_train must be a square matrix; got shape {tuple(k.shape)}")
    if y.shape[0] != k.shape[0]:
        raise LmechInputError(f"targets must have {k.shape[0]} rows; got shape {tuple(y.shape)}")
    if not (ridge >= 0):
        raise LmechInputError(f"ridge must be >= 0; got {ridge!r}")
    factor, info = torch.linalg.cholesky_ex(k + ridge * torch.eye(len(k), dtype=k.dtype))
    if info.item() != 0:
        scale = k.diagonal().mean().item()
        raise LmechInputError(
            f"kernel_train + ridge I is not positive definite (Cholesky failed at column {info.item()}): "
            f"duplicate or nearly collinear points; pass ridge > 0, e.g. ridge={1e-10 * scale:.1e} (1e-10 of the "
            "mean diagonal) for an almost ridgeless fit"
        )
    return torch.cholesky_solve(y.reshape(len(k), -1), factor).reshape(y.shape)


@dataclass(frozen=True)
class LinearizedDynamics:
    """Predictions of the linearised model at any time; built once by :func:`linearized_dynamics`."""

    eigenvalues: torch.Tensor  # (n,) of K
    eigenvectors: torch.Tensor  # (n, n)
    rotated_residual: torch.Tensor  # Q^T (y - f_0(X)), (n, C)
    targets: torch.Tensor
    test_weights: torch.Tensor | None  # k(x)^T Q, (m, n)
    f0_test: torch.Tensor | None

    def _predict(self, decay: torch.Tensor, gain: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        residual = self.eigenvectors @ (decay[:, None] * self.rotated_residual)
        train = self.targets - residual.reshape(self.targets.shape)
        if self.test_weights is None:
            return train, None
        test = self.test_weights @ (gain[:, None] * self.rotated_residual)
        return train, self.f0_test + test.reshape(self.f0_test.shape)

    def at_time(self, t: float) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(f_t on the training inputs, f_t on the test inputs) under gradient flow for time t = lr * steps."""
        n = len(self.eigenvalues)
        rate = self.eigenvalues.clamp_min(0.0) / n
        decay = torch.exp(-rate * t)
        gain = _safe_ratio(-torch.expm1(-rate * t), rate, t) / n
        return self._predict(decay, gain)

    def after_steps(self, lr: float, steps: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The same after ``steps`` of full-batch GD with step size ``lr`` (exact for the linear model)."""
        n = len(self.eigenvalues)
        rate = self.eigenvalues.clamp_min(0.0) / n
        decay = (1 - lr * rate) ** steps
        gain = _safe_ratio(1 - decay, rate, lr * steps) / n
        return self._predict(decay, gain)


def linearized_dynamics(
    kernel_train, targets, f0_train=None, kernel_test_train=None, f0_test=None
) -> LinearizedDynamics:
    """Eigendecompose the training kernel once; returns the predictor for any time or step count.

    ``kernel_train`` (n, n) and ``kernel_test_train`` (m, n) are NTKs; f0_* the outputs at initialisation
    (zeros when omitted); ``targets`` (n,) or (n, C).
    """
    k = torch.as_tensor(kernel_train, dtype=torch.float64)
    y = torch.as_tensor(targets, dtype=torch.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1] or y.shape[0] != k.shape[0]:
        raise LmechInputError(
            f"kernel_train must be (n, n) and targets (n, ...); got {tuple(k.shape)}, {tuple(y.shape)}"
        )
    f0 = torch.zeros_like(y) if f0_train is None else torch.as_tensor(f0_train, dtype=torch.float64).reshape(y.shape)
    e, q = torch.linalg.eigh((k + k.T) / 2)
    rotated = q.T @ (y - f0).reshape(len(k), -1)
    weights, test0 = None, None
    if kernel_test_train is not None:
        kt = torch.as_tensor(kernel_test_train, dtype=torch.float64)
        if kt.ndim != 2 or kt.shape[1] != k.shape[0]:
            raise LmechInputError(f"kernel_test_train must be (m, {k.shape[0]}); got {tuple(kt.shape)}")
        weights = kt @ q
        shape = (kt.shape[0], *tuple(y.shape[1:]))
        test0 = (
            torch.zeros(shape, dtype=torch.float64)
            if f0_test is None
            else torch.as_tensor(f0_test, dtype=torch.float64).reshape(shape)
        )
    return LinearizedDynamics(e, q, rotated, y, weights, test0)


def _safe_ratio(numerator: torch.Tensor, rate: torch.Tensor, limit: float) -> torch.Tensor:
    """numerator / rate, with the rate -> 0 limit ``limit`` (e.g. (1 - exp(-r t)) / r -> t)."""
    tiny = rate <= 1e-300
    return torch.where(tiny, torch.full_like(rate, limit), numerator / torch.where(tiny, 1.0, rate))


Predictor = Callable[[torch.Tensor], torch.Tensor]
