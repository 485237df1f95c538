"""adam-edge-of-stability: full-batch Adam's preconditioned sharpness rises to (2 + 2 beta1) / ((1 - beta1) lr), then
hovers there.

Claim (Cohen, Ghorbani, Krishnan, Agarwal, Medapati, Badura, Suo, Cardoze, Nado, Dahl & Gilmer 2022, "Adaptive
gradient methods at the edge of stability", sec. 3 and Fig. 1): Adam with a frozen preconditioner P is momentum GD on
the preconditioned loss, stable iff lambda_max(P^-1/2 H P^-1/2) < (2 + 2 beta1) / ((1 - beta1) lr) (38/lr at
beta1 = 0.9); during full-batch training the preconditioned sharpness rises to that threshold and hovers at it (the
"adaptive edge of stability"), with P = diag(sqrt(v_hat) + eps) from Adam's bias-corrected second moment.
Measurement: tanh MLPs trained by full-batch Adam (lmech.train.adam, float32) on the tasks of edge-of-stability;
every ``measure_every`` steps, lambda_max(P^-1/2 H P^-1/2) by warm-started Lanczos on
lmech.observables.PreconditionedOperator (residual tolerance 1e-2), with the preconditioner of the update about to be
taken, P_t = (1 - beta1^(t+1)) diag(sqrt(v_hat_(t+1)) + eps) (v from this step's gradient; the first-moment bias
correction folded in, since the step is lr m_hat / (sqrt(v_hat) + eps)).
Verdict, per task and lr: lambda_max lr (1 - beta1) / (2 + 2 beta1) within [0.9, 1.1] (the issue's window) at every
measurement of the last third (the median is reported), and the preconditioned sharpness at the end at least 1.3 x
its value at the first measurement (it rose to the edge rather than starting there).
Measured (quick, seed 0; edge 19000 / 9500 / 4750 at lr 2e-3 / 4e-3 / 8e-3): teacher, last-third range 0.955-1.021,
median 0.991-0.997, rise x3.7-5.5; digits, range 0.968-1.020, median 0.999-1.002, rise x4.1-10.3 (seeds 1-2 hold
too). Measuring with the previous update's preconditioner instead changes the first measurement by ~4%. The beta1
dependence holds too: at beta1 = 0.5 the edge is 6/lr and the teacher runs hover at 1.01-1.03 of it, but they reach it
within the first 10 steps, so the rise check fails there (sharpening is not needed to meet that edge).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from pydantic import Field, field_validator, model_validator

from lmech.config import LawConfig
from lmech.core import (
    Check,
    Evaluation,
    Figure,
    Law,
    Panel,
    Prediction,
    Row,
    RunRecord,
    RunResult,
    RunSpec,
    Series,
    Threshold,
)
from lmech.laws.edge_of_stability import TASKS, known_tasks, task_model
from lmech.observables import HessianOperator, PreconditionedOperator, top_eigenvalues
from lmech.train import adam, torch_threads

ID = "adam-edge-of-stability"
WINDOW = (0.9, 1.1)


class Config(LawConfig):
    tasks: list[str] = Field(list(TASKS), min_length=1, description=f"any of {', '.join(TASKS)}")
    lrs: list[float] = Field([2e-3, 4e-3, 8e-3], min_length=1, description="Adam step sizes")
    beta1: float = Field(0.9, ge=0, lt=1, description="Adam beta1")
    beta2: float = Field(0.999, gt=0, lt=1, description="Adam beta2")
    eps: float = Field(1e-8, gt=0, description="Adam epsilon")
    steps: int = Field(2000, ge=100, le=200000, description="full-batch Adam steps")
    measure_every: int = Field(10, ge=1, le=1000, description="steps between measurements")
    n: int = Field(500, ge=20, le=1797, description="training points")
    width: int = Field(64, ge=4, le=2048, description="hidden width")
    depth: int = Field(2, ge=1, le=6, description="hidden layers")
    init_scale: float = Field(0.5, gt=0, le=4, description="weight std x sqrt(fan_in) of the hidden layers")

    @model_validator(mode="after")
    def _measured(self) -> Config:
        if self.measure_every * 3 > self.steps:
            raise ValueError(
                f"measure_every ({self.measure_every}) must leave measurements in the last third of "
                f"{self.steps} steps: at most steps / 3"
            )
        return self

    @field_validator("tasks")
    @classmethod
    def _known(cls, tasks: list[str]) -> list[str]:
        return known_tasks(tasks)


def threshold(lr: float, beta1: float) -> float:
    """(2 + 2 beta1) / ((1 - beta1) lr): the stability limit of EMA-momentum GD on a quadratic."""
    return (2 + 2 * beta1) / ((1 - beta1) * lr)


def plan(cfg: Config) -> list[tuple[RunSpec, ...]]:
    shared = cfg.model_dump(exclude={"tasks", "lrs"})
    return [(RunSpec(ID, LAW.version, {**shared, "task": t, "lr": lr}),) for t in cfg.tasks for lr in cfg.lrs]


def execute(configs: Sequence[Mapping[str, Any]]) -> list[RunResult]:
    return [_run(c) for c in configs]


def _run(c: Mapping[str, Any]) -> RunResult:
    start = time.perf_counter()
    optimizer = adam(c["lr"], b1=c["beta1"], b2=c["beta2"], eps=c["eps"])
    rows, vector, diverged = [], None, None
    with torch_threads(1):
        params, loss_of = task_model(c)
        state = optimizer.init(params)
        for step in range(c["steps"] + 1):
            leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
            loss = loss_of(leaves)
            if not torch.isfinite(loss):
                diverged = step
                break
            grads = dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values())), strict=True))
            if step > 0 and step % c["measure_every"] == 0:
                # the preconditioner of the update about to leave this iterate: v_(t+1) from this gradient, bias
                # corrections at t + 1, and Adam's first-moment correction folded in (Cohen et al. 2022, sec. 3)
                t = state.step + 1
                v_next = {k: c["beta2"] * state.v[k] + (1 - c["beta2"]) * g * g for k, g in grads.items()}
                op = PreconditionedOperator(HessianOperator(loss_of, params), v_next, t, c["beta2"], c["eps"])
                eig = top_eigenvalues(op, tol=1e-2, v0=vector, ncv=4 if vector is not None else None)
                vector = eig.vectors[:, 0]
                value = float(eig.values[0]) / (1 - c["beta1"] ** t)
                rows += [Row(step, "loss", loss.item()), Row(step, "preconditioned_sharpness", value)]
            if step == c["steps"]:
                break
            params, state = optimizer.update(grads, state, {k: v.detach() for k, v in leaves.items()})
    status = "diverged" if diverged is not None else "done"
    return RunResult(status, rows, time.perf_counter() - start, diverged)


def evaluate(cfg: Config, records: Sequence[RunRecord]) -> Evaluation:
    checks, notes, panels = [], [], []
    for task in cfg.tasks:
        recs = sorted((r for r in records if r.config["task"] == task), key=lambda r: r.config["lr"])
        series = [
            Series("window", [0, cfg.steps], [1, 1], "band", 7, [WINDOW[0]] * 2, [WINDOW[1]] * 2),
            Series(f"edge: {threshold(1.0, cfg.beta1):g}/lr", [0], [1.0], "hline", 7),
        ]
        losses = []
        for i, r in enumerate(recs):
            label = f"{task}, lr = {r.config['lr']:g}"
            if r.status != "done":
                checks.append(
                    Check(
                        f"{label}: run finished",
                        False,
                        "done",
                        r.status,
                        math.inf,
                        "done",
                        "status",
                        "a diverged run is an outcome, not the adaptive edge",
                    )
                )
                continue
            steps, s = r.series("preconditioned_sharpness")
            scaled = s / threshold(r.config["lr"], cfg.beta1)
            third = scaled[steps >= steps.max() * 2 / 3]
            median = float(np.median(third))
            inside = bool(np.all((third >= WINDOW[0]) & (third <= WINDOW[1])))
            checks.append(
                Check(
                    f"{label}: preconditioned sharpness / edge over the last third",
                    inside,
                    1.0,
                    [float(third.min()), float(third.max())],
                    float(third[np.argmax(np.abs(third - 1))]),
                    list(WINDOW),
                    "every measurement in the window (the one furthest from 1 shown)",
                    "the issue's +-10% window; the warm-started Lanczos value is within 1% of an eigenvalue (residual)",
                )
            )
            rise = float(s[-1] / s[0])
            checks.append(RISE(rise))
            notes.append(
                f"{label}: edge {threshold(r.config['lr'], cfg.beta1):.4g}, median/edge {median:.3f} "
                f"(range {third.min():.3f}-{third.max():.3f}), rise x{rise:.1f}, "
                f"loss {r.series('loss')[1][-1]:.3g}"
            )
            series.append(Series(f"lr = {r.config['lr']:g}", steps.tolist(), scaled.tolist(), "dots", i))
            losses.append(Series(f"lr = {r.config['lr']:g}", steps.tolist(), r.series("loss")[1].tolist(), "line", i))
        panels += [
            Panel(
                f"{task}: preconditioned sharpness in units of the edge",
                "Adam step",
                f"lambda_max(P^-1/2 H P^-1/2) / ({threshold(1.0, cfg.beta1):g}/lr)",
                series,
            ),
            Panel(f"{task}: training loss", "Adam step", "loss", losses, "linear", "log"),
        ]
    prediction = Prediction(
        "the preconditioned sharpness along full-batch Adam",
        f"rises to (2 + 2 beta1) / ((1 - beta1) lr) = {threshold(1.0, cfg.beta1):g}/lr and hovers there",
        "momentum GD (EMA, beta1) on a quadratic is stable iff lr lambda < (2 + 2 beta1) / (1 - beta1)",
        "MSE, full batch, the preconditioner changing slowly compared with the sharpness",
        "Cohen et al. 2022 'Adaptive gradient methods at the edge of stability', sec. 3",
    )
    regime = (
        f"tanh MLP {cfg.depth} x {cfg.width}, n = {cfg.n}, {cfg.steps} full-batch Adam steps (beta1 "
        f"{cfg.beta1:g}, beta2 {cfg.beta2:g}); " + "; ".join(notes)
    )
    return Evaluation(
        checks,
        regime,
        Figure("adam-edge-of-stability: the adaptive edge", panels),
        prediction,
        "top eigenvalue of P^-1/2 H P^-1/2 with Adam's current second moment (Lanczos)",
    )


RISE = Threshold(
    "preconditioned sharpness at the end / at the first measurement",
    1.3,
    "it must rise to the edge, not start there (as progressive sharpening in edge-of-stability)",
    below=False,
)

LAW = Law(
    id=ID,
    pillar=3,
    claim="Full-batch Adam's preconditioned sharpness lambda_max(P^-1/2 H P^-1/2) rises to (2 + 2 beta1)/((1 - beta1) "
    "lr) = 38/lr at beta1 = 0.9 and hovers there (every last-third measurement within [0.9, 1.1]).",
    reference="Cohen et al. 2022 'Adaptive gradient methods at the edge of stability' (arXiv 2207.14484)",
    config=Config,
    plan=plan,
    execute=execute,
    evaluate=evaluate,
    comparisons=[RISE],
    scales={"quick": {}, "full": {"steps": 5000, "lrs": [1e-3, 2e-3, 4e-3, 8e-3]}},
    quick_seconds=22.0,
)
