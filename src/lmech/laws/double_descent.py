"""double-descent: the test error of min-norm random-feature regression peaks at P = n.

Claim (Belkin et al. 2019; Advani, Saxe & Sompolinsky 2020; Mei & Montanari 2022): ridgeless regression on P
random ReLU features of n samples has a test-error peak at the interpolation threshold P = n, and the random-feature
eigenframework (Bach 2024; Simon, Karkada, Ghosh & Belkin 2024; lmech.theory.random_features) predicts the curve
from the eigenstructure of the features' limiting kernel (the arc-cosine kernel).
Measurement: a pool of N Gaussian inputs in d dimensions is the population; target f*(x) = z1 + (z2^2 - 1)/sqrt(2)
along two random directions, label noise eps; each draw samples n pool points (with replacement), fresh noise and
P features relu(w^T x), w ~ N(0, I/d); min-norm least squares; error over the pool against f*, plus eps^2.
Verdict: the largest measured error lies at P/n in [0.9, 1.1] and is >= 10x the error at P/n = 2; theory within 15%
of the mean wherever |P/n - 1| > 0.1.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from pydantic import Field

from lmech.config import LawConfig
from lmech.core import (
    DATA,
    INIT,
    Evaluation,
    Figure,
    Law,
    Panel,
    Prediction,
    RelativeError,
    Row,
    RunRecord,
    RunResult,
    RunSpec,
    Series,
    Threshold,
    generator,
)
from lmech.theory import kernel_eigensystem, nngp, random_feature_regression
from lmech.train import torch_threads

ID = "double-descent"


class Config(LawConfig):
    n: int = Field(200, ge=10, le=2000, description="training samples")
    ratios: list[float] = Field(
        [0.25, 0.5, 0.7, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 4.0, 8.0, 20.0],
        min_length=3,
        description="feature counts P as multiples of n (must include 1 and 2)",
    )
    dim: int = Field(20, ge=2, le=200, description="input dimension d")
    pool: int = Field(3000, ge=100, le=8000, description="population pool size N (keep N >= 10 n)")
    noise: float = Field(0.3, ge=0.0, le=10.0, description="label-noise standard deviation eps")
    draws: int = Field(
        20, ge=2, le=1000, description="draws (samples, noise, features) per P for P > 2n; 5x more for P <= 2n"
    )


def draws_at(draws: int, ratio: float) -> int:
    """Near the peak the error is heavy-tailed across draws and a draw is cheap (P <= 2n): take 5x more."""
    return 5 * draws if ratio <= 2.0 else draws


@functools.cache
def population(dim: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(pool inputs (N, d), target f* on the pool (N,)), float64."""
    gen = generator(seed, DATA)
    x = torch.randn(size, dim, generator=gen, dtype=torch.float64)
    directions = torch.linalg.qr(torch.randn(dim, 2, generator=gen, dtype=torch.float64))[0]
    z = x @ directions
    return x, z[:, 0] + (z[:, 1] ** 2 - 1) / math.sqrt(2)


def plan(cfg: Config) -> list[tuple[RunSpec, ...]]:
    shared = cfg.model_dump(exclude={"ratios", "draws"})
    return [
        (
            RunSpec(
                ID,
                LAW.version,
                {**shared, "features": max(1, round(r * cfg.n)), "ratio": r, "draws": draws_at(cfg.draws, r)},
            ),
        )
        for r in cfg.ratios
    ]


def execute(configs: Sequence[Mapping[str, Any]]) -> list[RunResult]:
    return [_run(c) for c in configs]


def _run(c: Mapping[str, Any]) -> RunResult:
    x, target = population(c["dim"], c["pool"], c["seed"])
    gen = generator(c["seed"], INIT, c["features"])
    rows, start = [], time.perf_counter()
    with torch_threads(1):
        for draw in range(c["draws"]):
            idx = torch.randint(len(x), (c["n"],), generator=gen)
            y = target[idx] + c["noise"] * torch.randn(c["n"], generator=gen, dtype=torch.float64)
            w = torch.randn(c["dim"], c["features"], generator=gen, dtype=torch.float64) / math.sqrt(c["dim"])
            coef = torch.linalg.lstsq(torch.relu(x[idx] @ w), y[:, None], driver="gelsd").solution  # min-norm
            error = ((torch.relu(x @ w) @ coef)[:, 0] - target).pow(2).mean().item() + c["noise"] ** 2
            rows.append(Row(draw, "test_mse", error))
    return RunResult("done", rows, time.perf_counter() - start)


def evaluate(cfg: Config, records: Sequence[RunRecord]) -> Evaluation:
    recs = sorted(records, key=lambda r: r.config["ratio"])
    ratio = np.array([r.config["ratio"] for r in recs])
    features = [r.config["features"] for r in recs]
    values = [r.series("test_mse")[1] for r in recs]
    mean = np.array([v.mean() for v in values])
    error = np.array([v.std(ddof=1) / math.sqrt(len(v)) for v in values])
    x, target = population(cfg.dim, cfg.pool, cfg.seed)
    lam, v = kernel_eigensystem(nngp(x, depth=1), target)  # arc-cosine kernel = E_w relu(w.x) relu(w.x')
    theory = np.array([random_feature_regression(lam, v, cfg.n, p, noise=cfg.noise**2).test_mse for p in features])
    window = (ratio >= 0.9) & (ratio <= 1.1)
    checks = []
    peak_at = float(ratio[int(np.argmax(mean))])
    checks.append(PEAK_LOCATION(round(abs(peak_at - 1.0), 9)))
    if np.any(ratio == 2.0) and window.any():
        checks.append(PEAK_HEIGHT(mean[window].max() / mean[ratio == 2.0][0]))
    away = np.round(np.abs(ratio - 1), 9) > 0.1
    checks.append(CURVE(theory[away], mean[away]))
    notes = ", ".join(
        f"P/n={r:g}: {m:.3g}±{e:.2g} vs {t:.3g}" for r, m, e, t in zip(ratio, mean, error, theory, strict=True)
    )
    regime = (
        f"n = {cfg.n}, d = {cfg.dim}, pool N = {cfg.pool}, noise eps = {cfg.noise:g}, "
        f"{cfg.draws} draws per P > 2n, {draws_at(cfg.draws, 1.0)} per P <= 2n; "
        f"measured mean ± s.e. vs theory: {notes}; the theory is infinite at P = n exactly and near it the "
        "mean over draws is dominated by rare near-singular draws, so it is not compared there"
    )
    finite = np.isfinite(theory)
    figure = Figure(
        "double-descent: min-norm ReLU random features",
        [
            Panel(
                f"test MSE vs P/n (n = {cfg.n})",
                "features / samples P/n",
                "test MSE",
                [
                    Series("RF eigenframework", ratio[finite].tolist(), theory[finite].tolist(), "line", 0),
                    Series("measured (mean over draws)", ratio.tolist(), mean.tolist(), "dots", 1),
                    Series(
                        "interpolation threshold P = n", [1.0, 1.0], [float(mean.min()), float(mean.max())], "line", 7
                    ),
                ],
                "log",
                "log",
            )
        ],
    )
    prediction = Prediction(
        "test MSE of min-norm regression on P random ReLU features",
        "peak (infinite in theory) at P = n; finite elsewhere",
        "RF eigenframework: n = z + ridge/kappa, P = z + P kappa/gamma, z = sum_i lam_i/(lam_i + gamma); "
        "E = E0 (sum_i c_i v_i^2 + eps^2)",
        "Gaussian-universal features; the pool's arc-cosine-kernel eigenstructure stands for the population",
        "Bach 2024 (SIAM J. Math. Data Sci.); Simon, Karkada, Ghosh & Belkin 2024 (ICLR), sec. 4",
    )
    measurement = "mean over draws of the pool MSE against f* plus eps^2, min-norm least squares (LAPACK gelsd)"
    return Evaluation(checks, regime, figure, prediction, measurement)


PEAK_LOCATION = Threshold(
    "peak location |P/n - 1| of the largest measured error",
    0.1,
    "the interpolation threshold is P = n; the grid has points at 0.9, 1.0, 1.1",
)
PEAK_HEIGHT = Threshold(
    "peak height: max error at P/n in [0.9, 1.1] / error at P/n = 2",
    10.0,
    "Belkin et al. 2019: a sharp peak; LITERATURE calibration measured 56.9 / 0.33 ~ 170x",
    below=False,
)
CURVE = RelativeError(
    "RF eigenframework vs measured, |P/n - 1| > 0.1",
    0.15,
    "the framework is exact only as n, P -> infinity; at n = 200 its O(1/n + 1/|P - n|) bias plus "
    "the spread of the mean over draws near the peak stay within 15%",
)

LAW = Law(
    id=ID,
    pillar=1,
    claim="Min-norm regression on P random ReLU features peaks at P = n (>= 10x the error at P = 2n) and follows the "
    "random-feature eigenframework within 15% away from the peak.",
    reference="Belkin, Hsu, Ma & Mandal 2019 (PNAS); Advani, Saxe & Sompolinsky 2020; Mei & Montanari 2022; Bach "
    "2024; Simon, Karkada, Ghosh & Belkin 2024 'More is better' (ICLR)",
    config=Config,
    plan=plan,
    execute=execute,
    evaluate=evaluate,
    comparisons=[PEAK_LOCATION, PEAK_HEIGHT, CURVE],
    scales={"quick": {}, "full": {"draws": 100, "pool": 4000}},
    quick_seconds=20.0,
)
