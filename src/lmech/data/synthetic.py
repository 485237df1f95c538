"""Seeded synthetic datasets: whitened Gaussian inputs with a linear teacher, and Gaussian inputs
with a random MLP teacher."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lmech.core import LmechInputError, random_orthogonal
from lmech.data.base import Dataset


def whiten(x: torch.Tensor) -> torch.Tensor:
    """Rotate-free whitening: x @ Sigma^{-1/2} so that x.T @ x / n = I exactly (needs n >= d)."""
    n, d = x.shape
    if n < d:
        raise LmechInputError(f"whitening needs at least as many samples as dimensions; got n={n} < d={d}")
    evals, evecs = torch.linalg.eigh(x.T @ x / n)
    return x @ (evecs * evals.rsqrt()) @ evecs.T


def linear_teacher(
    dim_in: int,
    dim_out: int,
    singular_values: Sequence[float],
    n: int,
    *,
    gen: torch.Generator,
    n_test: int = 0,
    noise_std: float = 0.0,
    whitened: bool = True,
    dtype: torch.dtype = torch.float32,
) -> Dataset:
    """Inputs x ~ N(0, I_d) (exactly whitened on the training set when ``whitened``) and targets
    y = M x + noise with M = U diag(singular_values) V^T for Haar-random U (dim_out, r) and
    V (dim_in, r), r = len(singular_values). ``info`` holds U, V and the singular values.

    Reference: the setting of Saxe, McClelland & Ganguli (2014), sec. 2.
    """
    r = len(singular_values)
    if r > min(dim_in, dim_out):
        raise LmechInputError(
            f"singular_values has {r} entries but the teacher is {dim_out}x{dim_in}; "
            f"give at most {min(dim_in, dim_out)}"
        )
    u, v = random_orthogonal(dim_out, r, gen), random_orthogonal(dim_in, r, gen)
    lam = torch.as_tensor(singular_values, dtype=torch.float64)
    teacher = u @ torch.diag(lam) @ v.T  # (dim_out, dim_in)
    x = torch.randn(n + n_test, dim_in, generator=gen, dtype=torch.float64)
    x_train = whiten(x[:n]) if whitened else x[:n]
    y = torch.cat([x_train, x[n:]]) @ teacher.T
    y = y + noise_std * torch.randn(y.shape, generator=gen, dtype=torch.float64)
    info = {"U": u, "V": v, "singular_values": lam, "teacher": teacher}
    return Dataset(
        "linear-teacher",
        x_train.to(dtype),
        y[:n].to(dtype),
        x[n:].to(dtype) if n_test else None,
        y[n:].to(dtype) if n_test else None,
        info,
    )


def mlp_teacher(
    dim_in: int,
    n: int,
    *,
    gen: torch.Generator,
    width: int = 64,
    depth: int = 1,
    dim_out: int = 1,
    n_test: int = 0,
    noise_std: float = 0.0,
    dtype: torch.dtype = torch.float32,
) -> Dataset:
    """Inputs x ~ N(0, I_d); targets from a random ReLU MLP with He-normal weights (``depth`` hidden
    layers of ``width``), rescaled so the training targets have unit variance per output."""
    x = torch.randn(n + n_test, dim_in, generator=gen, dtype=torch.float64)
    h, fan_in, weights = x, dim_in, []
    for _ in range(depth):
        w = torch.randn(fan_in, width, generator=gen, dtype=torch.float64) * (2.0 / fan_in) ** 0.5
        weights.append(w)
        h, fan_in = torch.relu(h @ w), width
    w_out = torch.randn(fan_in, dim_out, generator=gen, dtype=torch.float64) / fan_in**0.5
    y = h @ w_out
    y = (y - y[:n].mean(0)) / y[:n].std(0)
    y = y + noise_std * torch.randn(y.shape, generator=gen, dtype=torch.float64)
    info = {"teacher_width": width, "teacher_depth": depth}
    return Dataset(
        "mlp-teacher",
        x[:n].to(dtype),
        y[:n].to(dtype),
        x[n:].to(dtype) if n_test else None,
        y[n:].to(dtype) if n_test else None,
        info,
    )
