"""Functional optimizers over parameter dicts (optax-style ``init``/``update`` pairs).

They are elementwise, so they work unchanged on ensembles whose parameters are stacked
along a leading axis.
"""

from __future__ import annotations

from collections.abc import Callable
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


def adam(lr: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0) -> Optimizer:
    """Adam (Kingma & Ba 2015, Alg. 1) with bias correction; decoupled weight decay (AdamW)."""
    _check_lr(lr)

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
            k: p * (1 - lr * weight_decay) - lr * (m[k] / c1) / ((v[k] / c2).sqrt() + eps) for k, p in params.items()
        }
        return new, AdamState(t, m, v)

    return Optimizer("adam", init, update, lr)


OPTIMIZERS = {"gd": gd, "sgd": sgd, "adam": adam}
