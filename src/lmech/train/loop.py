"""Training loops: full-batch GD, minibatch SGD and Adam, for one model or a vmap ensemble.

An ensemble stacks its members' parameters along a leading axis
(``torch.func.stack_module_state``) and maps the functional model over it with
``torch.func.vmap``, so E models train in one set of batched kernels. Gradients come from one
reverse pass through the summed member losses: members share no parameters, so
d(sum_e L_e)/d theta_e = dL_e/d theta_e exactly. On small models this costs 40% less Python
overhead per step than ``vmap(grad(loss))`` (measured: 337 vs 556 us for 3 tiny deep linear
nets). A member whose loss becomes NaN/inf is recorded as diverged at that step (a result, not
an exception); training stops when all members have diverged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch.func import vmap

from lmech.core import Fn, Observable, Params, Row, Snapshot
from lmech.nets.functional import member
from lmech.train.optim import Optimizer
from lmech.train.recorder import Recorder

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Half squared error summed over outputs, averaged over samples: (1/2n) sum_i ||f(x_i) - y_i||^2.

    Written by hand: torch 2.13's jvp-of-grad fails on ``F.mse_loss`` (pytorch issue 123996)."""
    diff = pred - target.reshape(pred.shape)
    return 0.5 * (diff * diff).sum() / pred.shape[0]


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean softmax cross-entropy over samples; ``labels`` are class indices."""
    return torch.nn.functional.cross_entropy(logits, labels)


LOSSES: dict[str, Loss] = {"mse": mse, "cross_entropy": cross_entropy}


@dataclass
class MemberOutcome:
    """One model's record: tidy rows, "done" or "diverged", and the step it diverged at."""

    rows: list[Row]
    status: str = "done"
    diverged_step: int | None = None


@dataclass
class TrainResult:
    params: Params
    members: list[MemberOutcome]
    steps: int
    seconds: float


def train(
    fn: Fn,
    params: Params,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    loss: Loss,
    optimizer: Optimizer,
    steps: int,
    observables: Sequence[Observable] = (),
    record: Sequence[int] = (),
    batch_size: int | None = None,
    gen: torch.Generator | None = None,
    ensemble: bool = False,
    grad_fn: Callable | None = None,
) -> TrainResult:
    """Train ``steps`` steps; observables are measured before the update at each step in ``record``.

    With ``ensemble=True``, every tensor in ``params`` has a leading member axis E and all
    members see the same data. ``batch_size=None`` means full batch; otherwise each epoch is a
    fresh permutation drawn from ``gen``. ``grad_fn(params, x, y) -> (grads, losses)`` replaces
    the autograd gradient (e.g. :func:`lmech.train.fused.mlp_gradients` for MLP ensembles).
    """
    n_members = next(iter(params.values())).shape[0] if ensemble else 1
    step_fn = grad_fn or gradients(fn, loss, ensemble)
    loss_only = losses_of(fn, loss, ensemble)  # the last step needs the loss, not a gradient
    recorders = [Recorder(observables, record) for _ in range(n_members)]
    outcomes = [MemberOutcome([]) for _ in range(n_members)]
    alive = n_members
    batches = _batches(x.shape[0], batch_size, gen)
    state = optimizer.init(params)
    start = time.perf_counter()
    step = 0
    for step in range(steps + 1):
        idx = next(batches)
        xb, yb = (x, y) if idx is None else (x[idx], y[idx])
        grads, losses = (None, loss_only(params, xb, yb)) if step == steps else step_fn(params, xb, yb)
        losses = losses.reshape(n_members)
        finite = torch.isfinite(losses).tolist()
        for i, ok in enumerate(finite):
            if not ok and outcomes[i].status == "done":
                outcomes[i].status, outcomes[i].diverged_step = "diverged", step
                alive -= 1
        if recorders[0].due(step):
            for i in range(n_members):
                if outcomes[i].status == "done":
                    p = member(params, i) if ensemble else params
                    snap = Snapshot(step, step * optimizer.lr, p, fn, x, y, float(losses[i]))
                    outcomes[i].rows.extend(recorders[i].after_step(snap))
        if alive == 0 or step == steps:
            break
        with torch.no_grad():
            params, state = optimizer.update(grads, state, params)
    return TrainResult(params, outcomes, step, time.perf_counter() - start)


def losses_of(fn: Fn, loss: Loss, ensemble: bool = False):
    """``(params, x, y) -> losses`` (one per ensemble member), forward only."""
    forward = vmap(fn, in_dims=(0, None)) if ensemble else fn
    per_member = vmap(loss, in_dims=(0, None)) if ensemble else loss

    def evaluate(params: Params, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return per_member(forward(params, xb), yb)

    return evaluate


def gradients(fn: Fn, loss: Loss, ensemble: bool = False):
    """``(params, x, y) -> (grads, losses)``; ``losses`` has one entry per ensemble member."""
    forward = vmap(fn, in_dims=(0, None)) if ensemble else fn
    per_member = vmap(loss, in_dims=(0, None)) if ensemble else loss

    def step(params: Params, xb: torch.Tensor, yb: torch.Tensor) -> tuple[Params, torch.Tensor]:
        leaves = {k: v.detach().requires_grad_() for k, v in params.items()}
        with torch.enable_grad():
            losses = per_member(forward(leaves, xb), yb)
            grads = torch.autograd.grad(losses.sum(), list(leaves.values()))
        return dict(zip(leaves, grads, strict=True)), losses.detach()

    return step


def _batches(n: int, batch_size: int | None, gen: torch.Generator | None):
    """Endless minibatch index tensors (None = full batch)."""
    if batch_size is None or batch_size >= n:
        while True:
            yield None
    while True:
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n - batch_size + 1, batch_size):
            yield perm[i : i + batch_size]
