"""fit-recovery: the scaling-law fitter recovers a known Chinchilla law, with intervals that mean what they say.

Claim (Hoffmann et al. 2022, approach 3; Besiroglu, Erdil, Barnett & You 2024, "Chinchilla scaling: a replication
attempt", on why fits and their intervals must be checked): fitting L(N, D) = E + A/N^alpha + B/D^beta by Huber
regression on log residuals recovers the parameters of data generated from that law, its nominal 80% bootstrap
intervals cover the truth in about 80% of repeated experiments, and the fit extrapolates.
Data: an isoFLOP design like Hoffmann et al.'s approach 2: at each compute budget C (default 6e18 ... 3e20 FLOPs),
``sizes`` model sizes N log-spaced over [N*(C)/span, N*(C) span] around the true compute-optimal N*(C), D = C / 6N;
losses from the published law (E = 1.69, A = 406.4, B = 410.7, alpha = 0.34, beta = 0.28) times exp(noise x z),
z ~ N(0, 1) independent per run (noise 0.01: 1% scatter, the size of seed-to-seed variation of small LM runs).
Each repetition draws fresh noise and fits with lmech.fit (delta = 1e-3, ``bootstrap`` refits).
Verdict: (1) pooled coverage of the five parameters by their ``level`` intervals over the repetitions in [0.7, 0.9]
(the issue's window for nominal 80%), judged with its Monte Carlo error: the coverage estimate's 95% interval (from
the spread of per-repetition means, so the five correlated parameters of one fit count once) must overlap the
window and be no wider than it (so too few repetitions fail rather than pass by ignorance); 40 repetitions give
+-0.06, 200 (full) +-0.03. (2) the 90th percentile over
repetitions of |L_fit / L_true - 1| at the true compute-optimal (N*, D*) of 10x the largest fitted compute < 2%: one
fit's error is a random variable, and the bar is judged on a high quantile so that it speaks for most fits.
Measured (noise 0.01, 100 repetitions, 100 bootstrap refits each): coverage per parameter 0.84-0.88, pooled 0.864
(slightly conservative); extrapolation error median 0.46%, 90th percentile ~1.3%, worst 2.8%; the prediction's 80%
interval contained the true loss in 88% of repetitions.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import Field

from lmech.config import LawConfig
from lmech.core import (
    DATA,
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
from lmech.fit import fit, form, optimal_allocation

ID = "fit-recovery"
PARAMETERS = ("E", "A", "B", "alpha", "beta")
WINDOW = (0.7, 0.9)


class Config(LawConfig):
    E: float = Field(1.69, gt=0, description="true irreducible loss")
    A: float = Field(406.4, gt=0, description="true model-size amplitude")
    B: float = Field(410.7, gt=0, description="true data amplitude")
    alpha: float = Field(0.34, gt=0, le=2, description="true model-size exponent")
    beta: float = Field(0.28, gt=0, le=2, description="true data exponent")
    budgets: list[float] = Field([6e18, 1e19, 3e19, 6e19, 1e20, 3e20], min_length=2, description="compute budgets")
    sizes: int = Field(7, ge=2, le=50, description="model sizes per budget")
    span: float = Field(8.0, gt=1, description="sizes span [N*/span, N* span] around the true optimum")
    noise: float = Field(0.01, ge=0, le=0.5, description="std of the multiplicative log-normal noise")
    repetitions: int = Field(40, ge=2, le=2000, description="independent noisy data sets")
    bootstrap: int = Field(100, ge=10, le=2000, description="bootstrap refits per fit")
    level: float = Field(0.8, gt=0, lt=1, description="interval level")
    extrapolation: float = Field(10.0, ge=1, description="predict at this multiple of the largest budget")


def truth(c: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(c[k]) for k in PARAMETERS}


def design(c: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) of the isoFLOP grid around the true compute-optimal frontier."""
    n, d = [], []
    for budget in c["budgets"]:
        n_opt, _, _ = optimal_allocation(truth(c), budget)
        for factor in np.geomspace(1 / c["span"], c["span"], c["sizes"]):
            n.append(n_opt * factor)
            d.append(budget / (6 * n_opt * factor))
    return np.array(n), np.array(d)


def plan(cfg: Config) -> list[tuple[RunSpec, ...]]:
    shared = cfg.model_dump(exclude={"repetitions"})
    return [(RunSpec(ID, LAW.version, {**shared, "repetition": r}),) for r in range(cfg.repetitions)]


def execute(configs: Sequence[Mapping[str, Any]]) -> list[RunResult]:
    return [_repetition(c) for c in configs]


def _repetition(c: Mapping[str, Any]) -> RunResult:
    start = time.perf_counter()
    spec, true = form("chinchilla"), truth(c)
    n, d = design(c)
    rng = np.random.default_rng([c["seed"], DATA, c["repetition"]])
    loss = spec.predict(true, N=n, D=d).numpy() * np.exp(c["noise"] * rng.standard_normal(len(n)))
    result = fit(
        spec,
        {"N": n, "D": d, "loss": loss},
        bootstrap=c["bootstrap"],
        level=c["level"],
        seed=c["seed"] * 100_003 + c["repetition"],
    )
    compute = c["extrapolation"] * max(c["budgets"])
    n_star, d_star, l_star = optimal_allocation(true, compute)
    band = result.predict(N=n_star, D=d_star)
    rows = [Row(0, "extrapolation_error", float(band.point[0] / l_star - 1))]
    rows.append(Row(0, "extrapolation_inside", float(band.low[0] <= l_star <= band.high[0])))
    for k in PARAMETERS:
        lo, hi = result.intervals[k]
        rows += [Row(0, f"fit/{k}", result.params[k]), Row(0, f"inside/{k}", float(lo <= true[k] <= hi))]
    if c["repetition"] == 0:  # the data and the fitted surface of one repetition, for the figure
        rows += [Row(i, "data/N", float(v)) for i, v in enumerate(n)]
        rows += [Row(i, "data/D", float(v)) for i, v in enumerate(d)]
        rows += [Row(i, "data/loss", float(v)) for i, v in enumerate(loss)]
    return RunResult("done", rows, time.perf_counter() - start)


def coverage_check(inside: np.ndarray, level: float) -> Check:
    """``inside``: (repetitions, parameters) 0/1. The pooled coverage and its 95% interval from the per-repetition
    means (a normal interval; the parameters of one fit are correlated, so a repetition is the independent unit)."""
    per_rep = inside.mean(1)
    estimate = float(per_rep.mean())
    se = float(per_rep.std(ddof=1) / math.sqrt(len(per_rep))) if len(per_rep) > 1 else math.inf
    low, high = estimate - 1.96 * se, estimate + 1.96 * se
    # consistent with the window, and precise enough to tell: an interval wider than the window decides nothing
    overlaps = high >= WINDOW[0] and low <= WINDOW[1] and (high - low) <= WINDOW[1] - WINDOW[0]
    return Check(
        f"coverage of the nominal {level:.0%} intervals (pooled over parameters)",
        overlaps,
        level,
        {"coverage": estimate, "interval_95": [low, high], "per_parameter": inside.mean(0).tolist()},
        estimate,
        list(WINDOW),
        "pooled coverage; holds when its 95% Monte Carlo interval overlaps the window and is no wider than it",
        "the issue's window for nominal 80%; judged with its Monte Carlo error (STYLE 11), so few repetitions give a "
        "wide interval and the full scale (200 repetitions, +-0.03) a decisive one",
    )


EXTRAPOLATION = Threshold(
    "90th percentile of |L_fit / L_true - 1| at 10x the largest compute",
    0.02,
    "the issue's 2%; a quantile over noisy repetitions, so the bar speaks for most fits, not the luckiest",
)


def evaluate(cfg: Config, records: Sequence[RunRecord]) -> Evaluation:
    inside = np.array([[r.last(f"inside/{k}") for k in PARAMETERS] for r in records])
    errors = np.abs(np.array([r.last("extrapolation_error") for r in records]))
    covered = np.mean([r.last("extrapolation_inside") for r in records])
    estimates = np.array([[r.last(f"fit/{k}") for k in PARAMETERS] for r in records])
    checks = [coverage_check(inside, cfg.level), EXTRAPOLATION(float(np.quantile(errors, 0.9)))]
    regime = (
        f"{cfg.repetitions} repetitions, {len(cfg.budgets)} budgets x {cfg.sizes} sizes ({cfg.span:g}x span), noise "
        f"{cfg.noise:g}, {cfg.bootstrap} bootstrap refits; coverage per parameter "
        + ", ".join(f"{k} {v:.2f}" for k, v in zip(PARAMETERS, inside.mean(0), strict=True))
        + f"; extrapolation to {cfg.extrapolation:g}x the largest budget: |error| median {np.median(errors):.2%}, "
        f"90th percentile {np.quantile(errors, 0.9):.2%}, worst {errors.max():.2%}; the prediction's "
        f"{cfg.level:.0%} interval held the true loss in {covered:.0%} of repetitions; median estimates "
        + ", ".join(f"{k} {v:.3g}" for k, v in zip(PARAMETERS, np.median(estimates, 0), strict=True))
    )
    prediction = Prediction(
        "coverage of the intervals; the extrapolated loss",
        f"{cfg.level:.0%} coverage; L(N*, D*) of the true law",
        "L = E + A/N^alpha + B/D^beta; N*(C), D*(C) under C = 6 N D (Hoffmann et al. 2022, eq. 4)",
        "data generated from the law itself with independent log-normal noise (the fitter's model is correct)",
        "Hoffmann et al. 2022, appendix D.2; Besiroglu et al. 2024",
    )
    first = next(r for r in records if r.config["repetition"] == 0)
    return Evaluation(
        checks,
        regime,
        _figure(cfg, first, inside, errors),
        prediction,
        "the truth inside each bootstrap interval, per repetition; the fit's loss at the true compute-optimal point",
    )


def _figure(cfg: Config, first: RunRecord, inside: np.ndarray, errors: np.ndarray) -> Figure:
    spec = form("chinchilla")
    n, d, loss = (first.series(f"data/{k}")[1] for k in ("N", "D", "loss"))
    fitted = {k: first.last(f"fit/{k}") for k in PARAMETERS}
    series = []
    for i, budget in enumerate(cfg.budgets):
        mask = np.isclose(6 * n * d, budget, rtol=1e-6)
        grid = np.geomspace(n[mask].min(), n[mask].max(), 40)
        curve = spec.predict(fitted, N=grid, D=budget / (6 * grid)).numpy()
        series += [
            Series(
                f"C = {budget:.0e}" if i in (0, len(cfg.budgets) - 1) else "", grid.tolist(), curve.tolist(), "line", i
            ),
            Series("", n[mask].tolist(), loss[mask].tolist(), "dots", i),
        ]
    ranks = (np.arange(1, len(errors) + 1) - 0.5) / len(errors)
    return Figure(
        "fit-recovery: a known Chinchilla law, fitted back",
        [
            Panel("isoFLOP data (dots) and the fit (lines), repetition 0", "parameters N", "loss", series, "log"),
            Panel(
                f"coverage of nominal {cfg.level:.0%} intervals",
                "parameter (E, A, B, alpha, beta)",
                "fraction of repetitions",
                [
                    Series("window", [-0.5, 4.5], [WINDOW[0]] * 2, "band", 2, [WINDOW[0]] * 2, [WINDOW[1]] * 2),
                    Series("nominal", [0], [cfg.level], "hline", 7),
                    Series("measured", list(range(5)), inside.mean(0).tolist(), "dots", 0),
                ],
            ),
            Panel(
                f"extrapolation to {cfg.extrapolation:g}x the largest budget",
                "quantile over repetitions",
                "|L_fit / L_true - 1|",
                [
                    Series("sorted errors", ranks.tolist(), np.sort(errors).tolist(), "dots", 1),
                    Series("2% bar", [0], [0.02], "hline", 3),
                    Series("90th percentile", [0.9, 0.9], [errors.min(), errors.max()], "line", 7),
                ],
                "linear",
                "log",
            ),
        ],
    )


LAW = Law(
    id=ID,
    pillar=3,
    claim="Huber fits of L(N, D) = E + A/N^alpha + B/D^beta to noisy isoFLOP data from the published Chinchilla law "
    "recover it: nominal 80% bootstrap intervals cover the truth in 70-90% of repetitions, and the loss at 10x the "
    "largest compute is predicted within 2%.",
    reference="Hoffmann et al. 2022 'Training compute-optimal large language models' (appendix D.2); Besiroglu et "
    "al. 2024 'Chinchilla scaling: a replication attempt'",
    config=Config,
    plan=plan,
    execute=execute,
    evaluate=evaluate,
    comparisons=[EXTRAPOLATION],
    scales={"quick": {}, "full": {"repetitions": 200, "bootstrap": 200}},
    quick_seconds=18.0,
)
