"""balancedness: conservation laws of gradient flow, and their O(lr) breaking by gradient descent.

Claim: under gradient flow, deep linear networks conserve C_l = W_{l+1}^T W_{l+1} - W_l W_l^T
(Saxe et al. 2014; Arora et al. 2018; Du, Hu & Lee 2018, Thm 2.1), and ReLU networks conserve
||w_in,j||^2 + b_j^2 - ||w_out,j||^2 for every hidden neuron j (Du, Hu & Lee 2018, Thm 2.2;
Kunin et al. 2021). A GD step changes C_l by exactly lr^2 (G_{l+1}^T G_{l+1} - G_l G_l^T), so at
fixed gradient-flow time T = lr * steps the drift is lr * integral(...) dt + O(lr^2): linear in lr.
Measurement: relative drift at time T for a ladder of learning rates, both network kinds, from
the same initialisation. Verdict: drift < 1e-3 at the smallest lr and log-log slope of drift
against lr in [0.8, 1.2].
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from lmech.config import LawConfig
from lmech.core import (
    DATA,
    INIT,
    Evaluation,
    Figure,
    Law,
    Panel,
    Prediction,
    RunRecord,
    RunResult,
    RunSpec,
    Series,
    SlopeWindow,
    Threshold,
)
from lmech.data import generator, linear_teacher, mlp_teacher
from lmech.laws.common import thin
from lmech.nets import MLP, deep_linear, functional
from lmech.observables import invariant_drift
from lmech.train import gd, mse, record_steps, torch_threads, train

ID = "balancedness"
DRIFT_BOUND = 1e-3
MIN_STEPS = 20  # at least this many steps per run, so a huge lr shows what it does (e.g. diverge)
DTYPES = {"float64": torch.float64, "float32": torch.float32}


class Config(LawConfig):
    kinds: list[Literal["linear", "relu"]] = Field(
        ["linear", "relu"], min_length=1, description="network kinds: linear (deep linear) and/or relu (MLP)"
    )
    lr: float = Field(1e-3, gt=0, description="smallest learning rate; the ladder is lr * 2^k")
    n_lrs: int = Field(4, ge=2, le=10, description="number of learning rates in the ladder")
    time: float = Field(5.0, gt=0, description="gradient-flow time T = lr * steps, the same for every lr")
    dim: int = Field(8, ge=1, le=256, description="input dimension")
    width: int = Field(32, ge=1, le=1024, description="hidden width")
    depth: int = Field(2, ge=2, le=6, description="linear: weight matrices; relu: hidden layers")
    n_samples: int = Field(128, ge=1, description="training samples")
    dtype: Literal["float64", "float32"] = Field("float64", description="training precision")

    @model_validator(mode="after")
    def _budget(self) -> Config:
        if len(set(self.kinds)) != len(self.kinds):
            raise ValueError(f"kinds must not repeat; got {self.kinds}")
        if self.time / self.lr > 1_000_000:
            raise ValueError(f"time / lr = {self.time / self.lr:.3g} steps at the smallest lr; keep it <= 1e6")
        if "linear" in self.kinds and self.n_samples < self.dim:
            raise ValueError(f"n_samples must be >= dim ({self.dim}) for whitened inputs; got {self.n_samples}")
        return self

    @property
    def lrs(self) -> list[float]:
        return [self.lr * 2**k for k in range(self.n_lrs)]


def plan(cfg: Config) -> list[tuple[RunSpec, ...]]:
    shared = cfg.model_dump(exclude={"kinds", "lr", "n_lrs"})
    return [
        (RunSpec(ID, LAW.version, {**shared, "kind": kind, "lr": lr, "steps": max(round(cfg.time / lr), MIN_STEPS)}),)
        for kind in cfg.kinds
        for lr in cfg.lrs
    ]


def execute(configs: Sequence[Mapping[str, Any]]) -> list[RunResult]:
    return [_run(c) for c in configs]


def _run(c: Mapping[str, Any]) -> RunResult:
    dtype, gen = DTYPES[c["dtype"]], generator(c["seed"], INIT)
    with torch_threads(1):
        if c["kind"] == "linear":
            data = linear_teacher(
                c["dim"],
                c["dim"],
                [3.0, 2.0, 1.0, 0.5][: c["dim"]],
                c["n_samples"],
                gen=generator(c["seed"], DATA),
                dtype=dtype,
            )
            net = deep_linear(
                c["dim"], c["width"], c["dim"], c["depth"], init_scale=0.5 / c["width"] ** 0.5, gen=gen, dtype=dtype
            )
            observable = invariant_drift("linear", [f"{i}.weight" for i in range(c["depth"])])
        else:
            data = mlp_teacher(c["dim"], c["n_samples"], gen=generator(c["seed"], DATA), dtype=dtype)
            net = MLP(c["dim"], c["width"], c["depth"], 1, gen=gen, dtype=dtype)
            observable = invariant_drift(
                "neuron",
                [(f"layers.{i}.weight", f"layers.{i}.bias", f"layers.{i + 1}.weight") for i in range(c["depth"])],
            )
        fn, params = functional(net)
        out = train(
            fn,
            params,
            data.x,
            data.y,
            loss=mse,
            optimizer=gd(c["lr"]),
            steps=c["steps"],
            observables=[observable],
            record=record_steps(c["steps"], 50),
        )
    member = out.members[0]
    return RunResult(member.status, member.rows, out.seconds, member.diverged_step)


def evaluate(cfg: Config, records: Sequence[RunRecord]) -> Evaluation:
    checks, drifts = [], {}
    for kind in cfg.kinds:
        recs = sorted((r for r in records if r.config["kind"] == kind), key=lambda r: r.config["lr"])
        lrs = np.array([r.config["lr"] for r in recs])
        drifts[kind] = (lrs, np.array([r.last("drift") for r in recs]), recs)
    for kind, (lrs, drift, _) in drifts.items():
        checks.append(SLOPE[kind](lrs, drift))
    for kind, (_lrs, drift, _) in drifts.items():
        checks.append(SMALLEST[kind](drift[0]))
    losses = {k: (recs[0].series("loss")[1][0], recs[0].last("loss")) for k, (_, _, recs) in drifts.items()}
    regime = (
        f"full-batch GD in {cfg.dtype}, gradient-flow time T = {cfg.time:g}, lr from {cfg.lr:g} to "
        f"{cfg.lrs[-1]:g}; training loss "
        + ", ".join(f"{k}: {a:.3g} -> {b:.3g}" for k, (a, b) in losses.items())
        + "; the O(lr) law needs lr well below the stability limit 2/sharpness"
    )
    if any(cfg.time / lr < MIN_STEPS for lr in cfg.lrs):
        regime += f"; lr > time/{MIN_STEPS} ran {MIN_STEPS} steps, past time T, so the ladder is not at fixed time"
    if cfg.dtype == "float32":
        regime += "; in float32 rounding (~1e-7 per step) can dominate the O(lr^2)-per-step drift at small lr"
    prediction = Prediction(
        "relative drift of the conserved quantities at gradient-flow time T, as lr varies",
        "drift proportional to lr (log-log slope 1)",
        "one GD step: Delta C_l = lr^2 (G_{l+1}^T G_{l+1} - G_l G_l^T), "
        "so drift(T) = lr * integral_0^T (...) dt + O(lr^2)",
        "full-batch GD at fixed T = lr * steps, lr well below the stability limit, exact arithmetic (float64)",
        "Du, Hu & Lee 2018, Thms 2.1-2.2; Kunin et al. 2021",
    )
    measurement = (
        "||C(T) - C(0)||_F / mean(||W_{l+1}^T W_{l+1}||_F, ||W_l W_l^T||_F), max over layer pairs (linear), and the "
        "same for the vector of per-neuron ||w_in||^2 + b^2 - ||w_out||^2 (ReLU), for lr = "
        + ", ".join(f"{lr:g}" for lr in cfg.lrs)
    )
    return Evaluation(checks, regime, figure(cfg, drifts), prediction, measurement)


SLOPE = {
    kind: SlopeWindow(
        f"drift slope ({kind})",
        1.0,
        0.8,
        1.2,
        "one GD step drifts by exactly lr^2 (G'G' - GG'), so drift at fixed time is linear "
        "in lr up to O(lr^2) corrections; +-0.2 allows those over a 2^k ladder",
    )
    for kind in ("linear", "relu")
}
SMALLEST = {
    kind: Threshold(
        f"drift at smallest lr ({kind})",
        DRIFT_BOUND,
        "gradient flow conserves the quantity exactly; at lr = 1e-3 GD's drift is "
        "~lr * (loss decrease) relative to the weights' scale",
    )
    for kind in ("linear", "relu")
}


def figure(cfg: Config, drifts: Mapping[str, tuple]) -> Figure:
    ladder, panels = [], []
    for i, (kind, (lrs, drift, recs)) in enumerate(drifts.items()):
        theory = drift[0] * lrs / lrs[0]
        ladder += [
            Series(f"drift proportional to lr ({kind})", lrs.tolist(), theory.tolist(), "line", i),
            Series(
                f"slope 0.8-1.2 ({kind})",
                lrs.tolist(),
                theory.tolist(),
                "band",
                i,
                (drift[0] * (lrs / lrs[0]) ** 0.8).tolist(),
                (drift[0] * (lrs / lrs[0]) ** 1.2).tolist(),
            ),
            Series(f"measured ({kind})", lrs.tolist(), drift.tolist(), "dots", i),
        ]
        lines = [
            Series(
                f"lr={rec.config['lr']:g}",
                *thin(rec.series("time")[1][1:], rec.series("drift")[1][1:], 25),
                "dots",
                j + 2,
            )
            for j, rec in enumerate(recs)
        ]
        panels.append(
            Panel(
                f"{kind}: relative drift over training",
                "gradient-flow time t",
                "relative drift",
                lines,
                "linear",
                "log",
            )
        )
    ladder.append(
        Series(f"bound {DRIFT_BOUND:g} at smallest lr", [cfg.lrs[0], cfg.lrs[-1]], [DRIFT_BOUND] * 2, "hline", 9)
    )
    return Figure(
        "balancedness: conserved quantities drift linearly in lr under GD",
        [
            Panel("relative drift at time T vs learning rate", "learning rate", "relative drift", ladder, "log", "log"),
            *panels,
        ],
    )


LAW = Law(
    id=ID,
    pillar=1,
    claim="Gradient flow conserves W_{l+1}^T W_{l+1} - W_l W_l^T (linear nets) and ||w_in||^2 - ||w_out||^2 per "
    "ReLU neuron; GD breaks them at O(lr): drift < 1e-3 at lr = 1e-3, log-log slope in [0.8, 1.2].",
    reference="Saxe et al. 2014 (ICLR); Du, Hu & Lee 2018 'Algorithmic regularization in learning deep homogeneous "
    "models' (NeurIPS, Thms 2.1-2.2); Kunin et al. 2021 'Neural mechanics' (ICLR)",
    config=Config,
    plan=plan,
    execute=execute,
    evaluate=evaluate,
    comparisons=[*SLOPE.values(), *SMALLEST.values()],
    scales={"quick": {}, "full": {"n_lrs": 6, "time": 20.0}},
    quick_seconds=7.0,
)
