"""depth-transfer: with depth-muP branch scaling the optimal learning rate of a residual MLP holds across depth;
without it the optimum drifts to smaller learning rates as blocks are added.

Claim (Yang, Yu, Zhu & Hayou 2023, "Tensor Programs VI", Depth-muP, Figs. 1 and 16; Bordelon et al. 2023,
"Depthwise hyperparameter transfer in residual networks", Fig. 1): multiplying every residual branch by L^-1/2
(relative to a base depth: r^-1/2 with r = blocks / base_blocks) and, under Adam, every branch learning rate by
r^-1/2 (lmech.parametrize.DEPTH_MUP) makes each block's update of the residual stream O(1/L), so the L blocks
together move it by O(1) and the loss landscape in the base learning rate converges as depth grows. Without the
branch scaling each of the L blocks moves the stream by O(lr) under Adam, coherently, against a stream of RMS
O(sqrt(L)) (pre-LN blocks each add O(1) variance): the relative change grows like sqrt(L) lr, so the optimal lr
falls like L^-1/2, 0.5 octave per doubling of depth (1.5 octaves over depths 2 -> 16).
Comparison: the same model, init draw and batches without branch scaling: the MUP table (muP in width, nothing in
depth). At width = base_width (the default) MUP is SP exactly, so this is also the SP comparison; muP in width is
kept so that a user's width override does not mix width and depth effects.
Measurement: ResMLP (lmech.nets.resmlp: pre-LN blocks h + W2 relu(W1 LN(h) + b1) + b2, readout W_out LN(h)) 64 ->
width -> 10 on digits (1347 training images), cross-entropy, ``steps`` Adam (b1 0.9, b2 0.999) steps of minibatches
of ``batch`` with the learning rate decayed linearly to 0, the same batch sequence for every depth, learning rate and
parametrization of a seed member (common random numbers), the same init draw for both parametrizations; all learning
rates of one (optimizer, parametrization, depth, member) are trained together as one stacked ensemble (autograd
through a broadcast forward). Loss: final training loss on the whole training set; a diverged run counts as +inf.
Optimum per member: lmech.laws.lr_sweep.optimum (parabola in log loss through the grid minimum and its
neighbours); per depth: the mean over members +- its standard error.
Verdict, per optimizer: depth-muP drift (max - min over depths of the member-mean optimum) <= 1 octave; without
branch scaling the drift exceeds depth-muP's by >= 0.75 octave (see GAP_RATIONALE); Adam only (the derivation above
is for Adam): the unscaled optimum's least-squares slope against log2 depth is -0.5 +- 0.25 octave per doubling.
Measured, quick (Adam, depths 2-16, 2 members per seed; ~20 s of one core): depth-muP drift 0.46 / 0.27 / 0.19
octave at seeds 0 / 1 / 2; unscaled drift 1.84 / 1.37 / 1.43 (gaps 1.38 / 1.10 / 1.24), slope -0.61 / -0.47 / -0.48;
single-member gaps 0.64 ... 1.57 (smallest: seed 1, member 1, 1.03 - 0.39), hence the bar 0.75 on the 2-member
mean (the issue's "drifts more", with a margin over the noise of one member).
Full (seed 0; depths 2-32, 4 members, Adam and SGD; ~170 s): Adam depth-muP 0.31, unscaled 1.98 (slope -0.50);
SGD depth-muP 0.35, unscaled 1.34 (slope -0.34; gap 0.99). Quick with SGD added (seeds 0 / 1 / 2): SGD depth-muP
0.32 / 0.21 / 0.23, unscaled 1.17 / 1.11 / 1.08 (gaps 0.85 / 0.90 / 0.86: holds, 0.1 above the bar; slopes -0.40 /
-0.38 / -0.36). SGD is measured, not derived (untested guess: the final LN makes the stream gradient shrink like
|h|^-1 ~ L^-1/2, offsetting part of the unscaled update's growth with depth), so SGD has no slope check.
Without the LayerNorms (ResMLP(norm=False), Adam, seed 0, one member) depth-muP still transfers (drift 0.54) but the
unscaled relu stream grows like 3^(L/2) at init and at 16 blocks its best loss is 7.1 (vs 0.016): a broken network,
not a drifting optimum; hence the pre-LN blocks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from pydantic import Field, ValidationInfo, field_validator, model_validator

from lmech.config import LawConfig, ascending, even_grid
from lmech.core import (
    DATA,
    INIT,
    Check,
    Evaluation,
    Figure,
    Law,
    Panel,
    Prediction,
    RunRecord,
    RunResult,
    RunSpec,
    Series,
    generator,
)
from lmech.data import digits
from lmech.laws import lr_sweep as sweep
from lmech.laws.lr_sweep import optimum
from lmech.nets import functional
from lmech.nets.resmlp import ResMLP, resmlp_branches, resmlp_forward, resmlp_roles
from lmech.parametrize import (
    depth_multiplier,
    initialise,
    learning_rates,
    multipliers,
    parametrization,
    width_multiplier,
    with_multipliers,
)
from lmech.train import adam, torch_threads

ID = "depth-transfer"
OPTIMIZERS = ("adam", "sgd")
PARAMETRIZATIONS = ("depth-mup", "mup")
LABELS = {"depth-mup": "depth-muP (branch x r^-1/2)", "mup": "no branch scaling"}
MAX_DRIFT, MIN_GAP = 1.0, 0.75
PLAIN_SLOPE, SLOPE_TOLERANCE = -0.5, 0.25  # Adam without branch scaling: octaves per doubling of depth
GAP_RATIONALE = (
    "theory: without scaling the Adam optimum falls 0.5 octave per doubling of depth (1.5 over 8x), with depth-muP "
    "not at all; the margin 0.75 leaves room for the seed noise of two drifts (member-mean optimum SE ~0.1-0.2 "
    "octave per depth, measured)"
)


class Config(LawConfig):
    depths: list[int] = Field([2, 4, 8, 16], min_length=2, description="residual blocks (>= 4x range for the claim)")
    base_blocks: int = Field(2, ge=1, description="depth at which depth-muP equals the unscaled model")
    width: int = Field(64, ge=1, le=4096, description="residual stream width")
    base_width: int = Field(64, ge=1, description="width at which muP equals SP")
    optimizers: list[str] = Field(["adam"], min_length=1, description="any of adam, sgd")
    adam_lrs: list[float] = Field([-10.0 + k for k in range(8)], min_length=3, description="log2 base lr grid, Adam")
    sgd_lrs: list[float] = Field([-4.0 + k for k in range(8)], min_length=3, description="log2 base lr grid, SGD")
    steps: int = Field(100, ge=1, le=100000, description="training steps")
    batch: int = Field(64, ge=1, le=1347, description="minibatch size")
    seeds: int = Field(2, ge=1, le=16, description="independent inits and batch orders per depth")

    @field_validator("optimizers")
    @classmethod
    def _known(cls, names: list[str]) -> list[str]:
        bad = [n for n in names if n not in OPTIMIZERS]
        if bad or len(set(names)) != len(names):
            raise ValueError(f"optimizers must be distinct names among {', '.join(OPTIMIZERS)}; got {names}")
        return names

    @field_validator("depths")
    @classmethod
    def _ascending(cls, depths: list[int]) -> list[int]:
        return ascending(depths, "depths")

    @field_validator("adam_lrs", "sgd_lrs")
    @classmethod
    def _grid(cls, grid: list[float], info: ValidationInfo) -> list[float]:
        return even_grid(grid, f"{info.field_name} (a log2 learning-rate grid)")

    @model_validator(mode="after")
    def _bases(self) -> Config:
        if self.base_blocks > self.depths[0]:
            raise ValueError(f"base_blocks ({self.base_blocks}) must not exceed the smallest depth ({self.depths[0]})")
        if self.base_width > self.width:
            raise ValueError(f"base_width ({self.base_width}) must not exceed width ({self.width})")
        return self


def plan(cfg: Config) -> list[tuple[RunSpec, ...]]:
    depth_multiplier(cfg.depths[0], cfg.base_blocks)  # clear errors before any training
    width_multiplier(cfg.width, cfg.base_width)
    shared = {k: v for k, v in cfg.model_dump().items() if k in ("seed", "base_blocks", "width", "base_width")}
    shared |= {"steps": cfg.steps, "batch": cfg.batch}
    grids = {opt: cfg.adam_lrs if opt == "adam" else cfg.sgd_lrs for opt in cfg.optimizers}
    return sweep.jobs(ID, LAW.version, shared, grids, PARAMETRIZATIONS, "blocks", cfg.depths, cfg.seeds)


def _loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-member mean cross-entropy: out (E, n, C), y (n,) -> (E,)."""
    logp = torch.log_softmax(out, dim=-1)
    return -logp.gather(-1, y.reshape(1, -1, 1).expand(out.shape[0], -1, 1)).squeeze(-1).mean(1)


def execute(configs: Sequence[Mapping[str, Any]]) -> list[RunResult]:
    start = time.perf_counter()
    c = configs[0]
    d = digits()
    table = parametrization(c["parametrization"])
    m, r = width_multiplier(c["width"], c["base_width"]), depth_multiplier(c["blocks"], c["base_blocks"])
    lr = torch.tensor([2.0 ** cc["log2_lr"] for cc in configs])  # (E,)
    with torch_threads(1):
        gen = generator(c["seed"], INIT, c["blocks"], c["member"])
        _, shapes = functional(ResMLP(64, c["width"], c["blocks"], 10, gen=gen))
        roles, branches = resmlp_roles(shapes), resmlp_branches(shapes)
        init = initialise(shapes, roles, table, m, gen, gain=math.sqrt(2.0))  # He gain for relu
        fn = with_multipliers(resmlp_forward, multipliers(roles, table, m, branches, r))
        scale = learning_rates(roles, table, m, 1.0, c["optimizer"], branches, r)
        params = {k: v.expand(len(configs), *v.shape).clone() for k, v in init.items()}  # same init per lr
        rates = {k: (lr * scale[k]).reshape(-1, *[1] * (v.dim() - 1)) for k, v in params.items()}
        state = adam(rates).init(params)
        batches = generator(c["seed"], DATA, c["member"])  # the same batches at every depth
        for t in range(c["steps"]):
            idx = torch.randint(0, d.n, (c["batch"],), generator=batches)
            live = {k: v.requires_grad_() for k, v in params.items()}
            grads = torch.autograd.grad(_loss(fn(live, d.x[idx]), d.y[idx]).sum(), list(live.values()))
            grads = dict(zip(live, grads, strict=True))  # members are independent: d(sum)/d(member) = d(member)
            now = {k: rate * (1.0 - t / c["steps"]) for k, rate in rates.items()}  # linear decay to 0
            with torch.no_grad():
                if c["optimizer"] == "adam":
                    params, state = adam(now).update(grads, state, live)
                else:
                    params = {k: p - now[k] * grads[k] for k, p in live.items()}
        with torch.no_grad():
            losses = _loss(fn(params, d.x), d.y)  # (E,) on the whole training set
    return sweep.final_losses(losses, c["steps"], (time.perf_counter() - start) / len(configs))


def _drift(values: np.ndarray) -> float:
    return float(np.max(values) - np.min(values)) if np.isfinite(values).all() else math.nan


def evaluate(cfg: Config, records: Sequence[RunRecord]) -> Evaluation:
    checks, notes, panels = [], [], []
    for opt in cfg.optimizers:
        grid = cfg.adam_lrs if opt == "adam" else cfg.sgd_lrs
        stats, loss_panels = {}, []
        for p in PARAMETRIZATIONS:
            curves = sweep.loss_table(records, opt, p, grid, "blocks", cfg.depths, cfg.seeds)
            optima = np.array([[optimum(grid, seed) for seed in curves[L]] for L in cfg.depths])  # (depths, seeds)
            mean = optima.mean(1)
            se = optima.std(1, ddof=1) / math.sqrt(cfg.seeds) if cfg.seeds > 1 else np.full(len(mean), np.nan)
            slope = float(np.polyfit(np.log2(cfg.depths), mean, 1)[0]) if np.isfinite(mean).all() else math.nan
            stats[p] = (mean, se, _drift(mean), [_drift(optima[:, s]) for s in range(cfg.seeds)], slope)
            notes.append(
                f"{opt} {p}: optimum log2 lr per depth "
                + ", ".join(f"{L}: {v:.2f}+-{e:.2f}" for L, v, e in zip(cfg.depths, mean, se, strict=True))
                + f" (drift {stats[p][2]:.2f} octaves, per seed "
                + ", ".join(f"{v:.2f}" for v in stats[p][3])
                + f"; slope {slope:.2f} octave per doubling); best loss "
                + ", ".join(f"{b:.3g}" for b in np.array([curves[L].min(1) for L in cfg.depths]).mean(1))
            )
            title = f"{opt}, {LABELS[p]}"
            loss_panels.append(sweep.loss_panel(title, "final training loss", "{} blocks".format, grid, curves, mean))
        checks += _checks(opt, stats["depth-mup"][2], stats["mup"][2])
        if opt == "adam":
            checks.append(_slope_check(stats["mup"][4]))
        panels += [*loss_panels, _optimum_panel(cfg, opt, stats)]
    regime = (
        f"pre-LN relu ResMLP 64 -> {cfg.width} (base {cfg.base_width}) x depths {cfg.depths} (base {cfg.base_blocks})"
        f" -> 10 on digits, {cfg.steps} steps of batch {cfg.batch}, cross-entropy, {cfg.seeds} seeds; "
        + "; ".join(notes)
    )
    prediction = Prediction(
        "the log2 learning rate that minimises the training loss after a fixed budget, per depth",
        "depth-muP: the same at every depth; no branch scaling (Adam): lower by 0.5 octave per doubling of depth",
        "depth-muP (TP-VI) scales each branch by L^-1/2 and its Adam lr by L^-1/2, so each block moves the residual "
        "stream by O(lr / L) and all L blocks by O(lr); unscaled, the L blocks move it by O(L lr) against an RMS "
        "of O(sqrt(L)), so the stable and optimal lr fall like L^-1/2",
        "fixed width, data, steps and batch size; depths from the base depth up; Adam (SGD measured, not derived)",
        "Yang, Yu, Zhu & Hayou 2023 (Tensor Programs VI), Depth-muP; Bordelon et al. 2023, Fig. 1",
    )
    return Evaluation(
        checks,
        regime,
        Figure("depth-transfer: training loss against learning rate across depths", panels),
        prediction,
        "final training-set cross-entropy per (depth, log2 lr, seed); optimum = parabola vertex around the grid "
        "minimum, averaged over seeds",
    )


def _checks(opt: str, drift_scaled: float, drift_plain: float) -> list[Check]:
    metric = "max - min over depths of the seed-mean optimum (octaves)"
    return [
        Check(
            f"{opt} depth-muP: drift of the optimal log2 lr across depths",
            drift_scaled <= MAX_DRIFT,
            0.0,
            drift_scaled,
            drift_scaled,
            MAX_DRIFT,
            metric,
            "the issue's 1 octave over >= 4x depth: depth-muP's optimum converges as depth grows; the grid step is "
            "one octave and the vertex interpolates within it",
        ),
        Check(
            f"{opt}: without branch scaling the optimum drifts more (drift difference)",
            drift_plain - drift_scaled >= MIN_GAP,
            MIN_GAP,
            drift_plain,
            drift_plain - drift_scaled,
            MIN_GAP,
            "drift(no branch scaling) - drift(depth-muP), octaves",
            GAP_RATIONALE,
        ),
    ]


def _slope_check(slope: float) -> Check:
    return Check(
        "adam, no branch scaling: optimum's slope against log2 depth",
        abs(slope - PLAIN_SLOPE) <= SLOPE_TOLERANCE,
        PLAIN_SLOPE,
        slope,
        abs(slope - PLAIN_SLOPE),
        SLOPE_TOLERANCE,
        "|least-squares slope of the seed-mean optimum against log2 blocks - (-0.5)|, octaves per doubling",
        "the stream's relative change per step grows like L lr / sqrt(L): -0.5 asymptotically (-0.58 from 2 to 16 "
        "blocks with the finite stream variance q0 + 2L at init); 0.25 covers that and the slope's seed noise "
        "(~0.1, from per-seed drifts that differ by ~0.3-0.7 octave)",
    )


def _optimum_panel(cfg, opt, stats) -> Panel:
    series = []
    x = [math.log2(L) for L in cfg.depths]
    for j, p in enumerate(PARAMETRIZATIONS):
        mean, se = stats[p][0], np.nan_to_num(stats[p][1])
        series.append(Series(LABELS[p], x, [float(v) for v in mean], "dots", j))
        series.append(Series("", x, [float(v) for v in mean], "band", j, list(mean - se), list(mean + se)))
    return Panel(f"{opt}: optimal log2 lr against depth (+- SE)", "log2 blocks", "optimal log2 base lr", series)


LAW = Law(
    id=ID,
    pillar=4,
    claim="With depth-muP branch scaling the optimal Adam learning rate of a residual MLP on digits moves by at most "
    "1 octave over an 8x depth range; without branch scaling it moves at least 0.75 octave more.",
    reference="Yang, Yu, Zhu & Hayou 2023 'Tensor Programs VI: Feature learning in infinite-depth neural networks', "
    "Depth-muP; Bordelon, Noci, Li, Hanin & Pehlevan 2023 'Depthwise hyperparameter transfer in residual networks', "
    "Fig. 1",
    config=Config,
    plan=plan,
    execute=execute,
    evaluate=evaluate,
    comparisons=[],
    scales={"quick": {}, "full": {"depths": [2, 4, 8, 16, 32], "seeds": 4, "optimizers": ["adam", "sgd"]}},
    quick_seconds=25.0,
    divergence_expected=True,
)
