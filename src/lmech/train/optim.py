"""Functional optimizers over parameter dicts (optax-style ``init``/``update`` pairs).

They are elementwise, so they work unchanged on ensembles whose parameters are stacked
along a leading axis.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import torch

from lmech.core import LmechInputError, Params


class Optimizer(NamedTuple):
    """``init(params) -> state``; ``update(grads, state, params) -> (params, state)``; ``lr`` is the
    base step size (gradient-flow time advances by ``lr`` per step)."""

    name: str
    init: Callable[[Params], Any]
    update: Callable[[Params, Any, Params], tuple[Params, Any]]
    lr: float


def _check_lr(lr: float) -> None:
    if not lr > 0:
        raise LmechInputError(f"lr must be a positive number; got {lr!r}")


def gd(lr: float) -> Optimizer:
    """theta <- theta - lr * grad (full-batch gradient descent when fed full batches)."""
    _check_lr(lr)

    def update(grads: Params, state: Any, params: Params) -> tuple[Params, Any]:
        return {k: p - lr * grads[k] for k, p in params.items()}, state

    return Optimizer("gd", lambda _p: (), update, lr)


def sgd(lr: float, momentum: float = 0.0, weight_decay: float = 0.0) -> Optimizer:
    """Heavy-ball SGD: v <- momentum * v + g + wd * theta; theta <- theta - lr * v."""
    _check_lr(lr)

    def init(params: Params) -> Params:
        return {k: torch.zeros_like(p) for k, p in params.items()}

    def update(grads: Params, vel: Params, params: Params) -> tuple[Params, Params]:
        vel = {k: momentum * vel[k] + grads[k] + weight_decay * params[k] for k in params}
        return {k: p - lr * vel[k] for k, p in params.items()}, vel

    return Optimizer("sgd", init, update, lr)


class AdamState(NamedTuple):
    step: int
    m: Params
    v: Params


Rate = float | Mapping[str, float | torch.Tensor]


def _per_parameter(value: Rate, name: str, strict: bool) -> Callable[[str], Any]:
    """``value`` as a function of the parameter name: one number for all, or one per name (a float, or a tensor
    that broadcasts against that parameter, e.g. (E, 1, 1) for per-member values of a stacked ensemble)."""
    values = value.values() if isinstance(value, Mapping) else [value]
    for v in values:
        smallest = float(v.min()) if isinstance(v, torch.Tensor) else v
        if not (smallest > 0 if strict else smallest >= 0):
            raise LmechInputError(f"{name} must be a {'positive' if strict else 'non-negative'} number; got {v!r}")
    if isinstance(value, Mapping):
        return lambda k: value[k]
    return lambda _k: value


def adam(lr: Rate, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, weight_decay: Rate = 0.0) -> Optimizer:
    """Adam (Kingma & Ba 2015, Alg. 1) with bias correction; decoupled weight decay (AdamW, Loshchilov & Hutter
    2019): theta <- theta (1 - lr wd) - lr m_hat / (sqrt(v_hat) + eps). ``lr`` and ``weight_decay`` are one number
    or one per parameter name (see :func:`_per_parameter`: per-layer rates of a parametrization, per-member rates
    of an ensemble); with per-parameter rates ``Optimizer.lr`` is NaN (no single gradient-flow time)."""
    lr_of = _per_parameter(lr, "lr", strict=True)
    wd_of = _per_parameter(weight_decay, "weight_decay", strict=False)

    def init(params: Params) -> AdamState:
        return AdamState(
            0, {k: torch.zeros_like(p) for k, p in params.items()}, {k: torch.zeros_like(p) for k, p in params.items()}
        )

    def update(grads: Params, state: AdamState, params: Params) -> tuple[Params, AdamState]:
        t = state.step + 1
        m = {k: b1 * state.m[k] + (1 - b1) * g for k, g in grads.items()}
        v = {k: b2 * state.v[k] + (1 - b2) * g * g for k, g in grads.items()}
        c1, c2 = 1 - b1**t, 1 - b2**t
        new = {
            k: p * (1 - lr_of(k) * wd_of(k)) - lr_of(k) * (m[k] / c1) / ((v[k] / c2).sqrt() + eps)
            for k, p in params.items()
        }
        return new, AdamState(t, m, v)

    return Optimizer("adam", init, update, float(lr) if not isinstance(lr, Mapping) else math.nan)


OPTIMIZERS = {"gd": gd, "sgd": sgd, "adam": adam}
