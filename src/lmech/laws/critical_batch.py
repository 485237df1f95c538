"""critical-batch: steps to a target loss follow S(B) = S_min (1 + B_crit / B), with B_crit given by the noise scale.

Claim (McCandlish, Kaplan, Amodei & OpenAI Dota Team 2018, "An empirical model of large-batch training", eqs.
2.11-2.12 and sec. 2.3): with the learning rate tuned separately for each batch size B, the number of optimizer steps
to reach a fixed target loss is S(B) = S_min (1 + B_crit / B) (equivalently examples E = E_min (1 + B / B_crit)), and
B_crit is predicted by the gradient noise scale B_simple = tr(Sigma) / |G|^2 (B_noise = tr(H Sigma) / G^T H G)
measured near the target loss.
Measurement: noisy linear regression, d = 100, x ~ N(0, diag(1/i)), y = x . w* + ``noise`` z, w* ~ N(0, I),
n = 4096 training points; plain SGD (no momentum, as in the paper's derivation) from w = 0 with minibatches drawn
with replacement; for each B a log-spaced lr grid (``lrs`` values over [2^-7, 2] / lambda_max) x ``seeds`` seeds
(seed s sees the same minibatches at every lr); steps to the first step with excess training loss <= ``target`` x
its initial value; the tuned lr minimises the mean over seeds (an lr failing on any seed, diverged included, scores
inf). The noise scales are measured with lmech.observables.noise on the whole training set (population=True: it is
the population SGD samples from) at the weights of seed 0 of the largest batch size at its tuned lr, at the step it
first reaches the target. B_crit's uncertainty: a bootstrap over seeds (re-tuning the lr and refitting each time).
STATUS: NOT REGISTERED (lmech check does not know it): the ratio check fails (below), and the issue's second task,
an MLP on digits, is not built.
Verdict: (1) the hyperbola fits: max |log S - log S_fit| <= 0.25; (2) B_crit / B_simple in [1/3, 3].
Measured (quick, seed 0, 4.7 s): S_min 33.4, B_crit 29.7 (bootstrap 68% [29, 30.8]), max |log residual| 0.19; at the
target B_simple 1321, B_noise 2514: B_crit / B_simple = 0.023, the ratio check FAILS by ~40x. Why: on an ill-
conditioned quadratic the lr is capped by stability (~ 1 / lambda_max), not by the greedy step |G|^2 / G^T H G of
the paper's derivation; near the target the gradient lies in low-curvature directions, so both noise scales
overstate the batch at which noise starts to matter by ~ lambda_max / lambda_eff ~ S_min. The stability-corrected
scale tr(Sigma) / (2 lambda_max L_excess) (reported as B_stable, not part of the claim) is 25 here (B_crit / it
1.19) and tracked B_crit within 2x in a scan of noise 1-3 and targets 0.02-0.1 (B_crit 28 / 52 / 121 / 106 vs 15 /
25 / 88 / 97). Targets easy enough for B_simple to agree (S_min ~ 1-2) make the law trivial, so the failure is kept
and recorded.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from pydantic import Field, field_validator

from lmech.config import LawConfig
from lmech.core import (
    DATA,
    Evaluation,
    Figure,
    Law,
    Panel,
    Prediction,
    RatioWindow,
    Row,
    RunRecord,
    RunResult,
    RunSpec,
    Series,
    Threshold,
    generator,
)
from lmech.laws.batch_tasks import excess, fit_hyperbola, linear_task, sgd_steps_to_target, tuned
from lmech.observables import HessianOperator, noise_scale, per_example_gradients
from lmech.train import torch_threads

ID = "critical-batch"
TASKS = ("linear",)


class Config(LawConfig):
    tasks: list[str] = Field(list(TASKS), min_length=1, description=f"any of {', '.join(TASKS)}")
    batches: list[int] = Field([1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024], description="batch sizes (>= 6)")
    lrs: int = Field(15, ge=3, le=100, description="log-spaced learning rates over [2^-7, 2] / lambda_max")
    seeds: int = Field(8, ge=2, le=256, description="SGD seeds per (batch size, lr)")
    target: float = Field(0.05, gt=0, lt=1, description="target excess training loss, as a fraction of the initial")
    budget: int = Field(20000, ge=100, le=10**6, description="step budget per run")
    d: int = Field(100, ge=2, le=2000, description="input dimension of the linear regression")
    n: int = Field(4096, ge=16, le=10**6, description="training points")
    noise: float = Field(1.0, ge=0, description="label noise std")
    bootstrap: int = Field(200, ge=10, le=5000, description="bootstrap resamplings of the seeds for B_crit's interval")

    @field_validator("tasks")
    @classmethod
    def _known(cls, tasks: list[str]) -> list[str]:
        unknown = [t for t in tasks if t not in TASKS]
        if unknown:
            raise ValueError(f"tasks must be among {', '.join(TASKS)}; got {unknown}")
        return tasks

    @field_validator("batches")
    @classmethod
    def _six(cls, batches: list[int]) -> list[int]:
        if len(set(batches)) < 6 or any(b < 1 for b in batches):
            raise ValueError(
                f"batches needs at least 6 distinct positive batch sizes to fit and judge S(B); got {batches}"
            )
        return sorted(set(batches))


def plan(cfg: Config) -> list[tuple[RunSpec, ...]]:
    shared = cfg.model_dump(exclude={"tasks", "batches", "bootstrap"})
    return [(RunSpec(ID, LAW.version, {**shared, "task": t, "batch": b}),) for t in cfg.tasks for b in cfg.batches]


def execute(configs: Sequence[Mapping[str, Any]]) -> list[RunResult]:
    return [_run(c) for c in configs]


def _run(c: Mapping[str, Any]) -> RunResult:
    start = time.perf_counter()
    with torch_threads(1):
        task = linear_task(c["d"], c["n"], c["noise"], c["seed"])
        top = float(torch.linalg.eigvalsh(task.hessian)[-1])
        lrs = torch.tensor(np.geomspace(2**-7, 2.0, c["lrs"]) / top, dtype=torch.float64)
        gen = generator(c["seed"], DATA, 1, c["batch"])
        target = c["target"] * task.initial_excess
        hits, at_hit = sgd_steps_to_target(task, c["batch"], lrs, c["seeds"], target, c["budget"], gen)
        rows = [Row(0, "lambda_max", top), Row(0, "initial_excess", task.initial_excess)]
        rows += [Row(k, "lr", float(lr)) for k, lr in enumerate(lrs)]
        rows += [Row(k * c["seeds"] + s, "hit", float(hits[s, k])) for k in range(len(lrs)) for s in range(c["seeds"])]
        k, steps = tuned(hits.T.numpy())
        if math.isfinite(steps):
            rows += _noise_rows(task, at_hit[:, k], top, c["seed"])
    return RunResult("done", rows, time.perf_counter() - start)


def _noise_rows(task: Any, w: torch.Tensor, top: float, seed: int) -> list[Row]:
    """B_simple, B_noise (McCandlish eqs. 2.7-2.8) over the training set at w, and the stability-corrected scale."""
    params = {"w": w.clone()}

    def fn(p: dict, x: torch.Tensor) -> torch.Tensor:
        return x @ p["w"]

    def loss_of(p: dict) -> torch.Tensor:
        return 0.5 * ((fn(p, task.x) - task.y) ** 2).mean()

    grads = per_example_gradients(fn, params, task.x, task.y, lambda out, yi: 0.5 * (out - yi) ** 2)  # (n, d)
    ns = noise_scale(
        grads, population=True, hessian=HessianOperator(loss_of, params), hessian_examples=512, gen=generator(seed, 7)
    )
    loss = float(excess(task, w[:, None])[0])
    return [
        Row(0, "b_simple", ns.b_simple),
        Row(0, "b_noise", ns.b_noise if ns.b_noise is not None else math.nan),
        Row(0, "b_stable", ns.trace_sigma / (2 * top * loss)),
        Row(0, "measured_excess", loss),
    ]


def _steps(r: RunRecord, seeds: int, pick: np.ndarray | None = None) -> tuple[int, float]:
    hits = r.series("hit")[1].reshape(-1, seeds)  # (K, seeds)
    return tuned(hits if pick is None else hits[:, pick])


FIT = Threshold(
    "S(B) fits the hyperbola: max |log S - log S_fit|",
    0.25,
    "seed noise of the mean of 8 first-passage times is ~5-10% per batch size and the lr grid (x1.5 spacing) can "
    "miss the optimum by ~10%; 0.25 (28%) allows both, while a power law or a plateau-free curve misses by > 0.4",
)
RATIO = RatioWindow(
    "B_crit (fitted) / B_simple (at the target)",
    1 / 3,
    3.0,
    "the issue's factor of 3: the paper finds the noise scale predicts B_crit to within a small factor",
)


def evaluate(cfg: Config, records: Sequence[RunRecord]) -> Evaluation:
    checks, notes, panels = [], [], []
    for task in cfg.tasks:
        recs = sorted((r for r in records if r.config["task"] == task), key=lambda r: r.config["batch"])
        batch = np.array([r.config["batch"] for r in recs], float)
        steps = np.array([_steps(r, cfg.seeds)[1] for r in recs])
        if not np.all(np.isfinite(steps)):
            missing = batch[~np.isfinite(steps)].astype(int).tolist()
            checks.append(FIT(math.inf))
            notes.append(f"{task}: batch sizes {missing} never reached the target within {cfg.budget} steps")
            continue
        s_min, b_crit, resid, cov = fit_hyperbola(batch, steps)
        low, high = _bootstrap(cfg, recs, batch)
        last = recs[-1]
        b_simple, b_noise, b_stable = (last.last(k) for k in ("b_simple", "b_noise", "b_stable"))
        checks += [
            Threshold(f"{task}: {FIT.name}", FIT.bound, FIT.rationale)(float(np.abs(resid).max())),
            RatioWindow(f"{task}: {RATIO.name}", RATIO.low, RATIO.high, RATIO.rationale)(b_simple, b_crit),
        ]
        lr_index = [_steps(r, cfg.seeds)[0] for r in recs]
        notes.append(
            f"{task}: S_min {s_min:.3g}, B_crit {b_crit:.3g} (fit +-{b_crit * math.sqrt(cov[1, 1]):.2g}; seed "
            f"bootstrap 68% [{low:.3g}, {high:.3g}]), max |log residual| {np.abs(resid).max():.3f}; at the target "
            f"(B = {int(batch[-1])}, seed 0): B_simple {b_simple:.4g}, B_noise {b_noise:.4g}, B_crit / B_simple "
            f"{b_crit / b_simple:.3g}; stability-corrected tr(Sigma) / (2 lambda_max L) {b_stable:.3g} "
            f"(B_crit / it {b_crit / b_stable:.2f}); tuned lr index per B {lr_index} of {cfg.lrs}"
        )
        panels.append(_panel(task, batch, steps, s_min, b_crit, b_simple, b_noise))
    regime = (
        f"noisy linear regression d = {cfg.d}, lambda_i = 1/i, n = {cfg.n}, noise {cfg.noise:g}; plain SGD (no "
        f"momentum), minibatches with replacement; {len(cfg.batches)} batch sizes {cfg.batches[0]}-{cfg.batches[-1]}, "
        f"{cfg.lrs} lrs x {cfg.seeds} seeds each, target excess loss {cfg.target:g} x initial; " + "; ".join(notes)
    )
    prediction = Prediction(
        "steps to the target vs batch size; B_crit",
        "S(B) = S_min (1 + B_crit / B) with B_crit ~ B_simple",
        "S(B) = S_min (1 + B_crit/B) (eq. 2.11); B_simple = tr(Sigma)/|G|^2, B_noise = tr(H Sigma)/(G^T H G) (eqs. "
        "2.7-2.8)",
        "lr tuned per batch size; the noise scale roughly constant over the run and measured near the target; the "
        "greedy optimal step |G|^2 / G^T H G is reachable (fails on ill-conditioned quadratics, where stability "
        "caps the lr)",
        "McCandlish, Kaplan, Amodei et al. 2018, sec. 2 and Fig. 4",
    )
    return Evaluation(
        checks,
        regime,
        Figure("critical-batch: steps to a target loss vs batch size", panels),
        prediction,
        "first step with excess training loss <= target, mean over seeds at the best lr of a grid, per batch size; "
        "noise scales over the whole training set at the largest batch's weights when it reaches the target",
    )


def _bootstrap(cfg: Config, recs: Sequence[RunRecord], batch: np.ndarray) -> tuple[float, float]:
    """68% interval of B_crit from resampling the seeds of each batch size (lr re-tuned, hyperbola refitted)."""
    rng = np.random.default_rng([cfg.seed, DATA, 99])
    fits = []
    for _ in range(cfg.bootstrap):
        steps = np.array([_steps(r, cfg.seeds, rng.integers(0, cfg.seeds, cfg.seeds))[1] for r in recs])
        if np.all(np.isfinite(steps)):
            fits.append(fit_hyperbola(batch, steps)[1])
    if not fits:
        return math.nan, math.nan
    return float(np.quantile(fits, 0.16)), float(np.quantile(fits, 0.84))


def _panel(task: str, batch: np.ndarray, steps: np.ndarray, s_min: float, b_crit: float, b_simple: float,
           b_noise: float) -> Panel:  # fmt: skip
    grid = np.geomspace(batch.min(), batch.max(), 60)
    series = [
        Series("measured (tuned lr)", batch.tolist(), steps.tolist(), "dots", 0),
        Series(f"fit: B_crit = {b_crit:.3g}", grid.tolist(), (s_min * (1 + b_crit / grid)).tolist(), "line", 0),
        Series(
            f"B_crit = B_simple = {b_simple:.3g}", grid.tolist(), (s_min * (1 + b_simple / grid)).tolist(), "line", 3
        ),
        Series("S_min", [0], [s_min], "hline", 7),
    ]
    if math.isfinite(b_noise):
        series.append(
            Series(
                f"B_crit = B_noise = {b_noise:.3g}", grid.tolist(), (s_min * (1 + b_noise / grid)).tolist(), "line", 2
            )
        )
    return Panel(f"{task}: steps to the target", "batch size B", "steps S", series, "log", "log")


LAW = Law(
    id=ID,
    pillar=4,
    claim="With the lr tuned per batch size, plain SGD's steps to a target loss follow S(B) = S_min (1 + B_crit/B) "
    "over >= 6 batch sizes, and the fitted B_crit agrees with the gradient noise scale B_simple within a factor 3.",
    reference="McCandlish, Kaplan, Amodei & OpenAI Dota Team 2018 'An empirical model of large-batch training'",
    config=Config,
    plan=plan,
    execute=execute,
    evaluate=evaluate,
    comparisons=[FIT, RATIO],
    scales={"quick": {}, "full": {"seeds": 32, "lrs": 29, "bootstrap": 1000}},
    quick_seconds=5.0,
)
