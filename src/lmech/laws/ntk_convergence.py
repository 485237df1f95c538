"""ntk-convergence: the empirical NTK at initialisation converges to the analytic infinite-width NTK.

Claim (Jacot, Gabriel & Hongler 2018, Thm 1; Arora et al. 2019, Thm 3.1; Hanin & Nica 2019 for the rate): for an
MLP in the NTK parametrization, Theta_width(x, x') -> Theta_inf(x, x') as width -> inf, with fluctuations of order
width^-1/2 (at fixed depth).
Measurement: ReLU MLPs (lmech.nets.NTKMLP) at several widths and seeds, the empirical NTK on a fixed set of digits
(inputs on the sphere; lmech.observables.module_ntk, structured method), the relative Frobenius error
||Theta_width - Theta_inf||_F / ||Theta_inf||_F, averaged over seeds.
Prediction of the magnitude (one hidden layer): E ||Theta_m - Theta||_F^2 = sum Var[t_k] / m with t_k one neuron's
contribution (lmech.theory.ntk_fluctuations), so the error is C / sqrt(m) with C computed, not fitted.
Verdict: log-log slope of the mean error against width in [-0.65, -0.35]; at depth 1, the mean error within 10% of
C / sqrt(m) at every width >= 256.
Not a check: the issue's bar "< 5% at width 2048". For this network (ReLU, W_std = sqrt 2, b_std = 0.1) the
leading-order theory predicts 5.2% on these digits (5.5% on Gaussian inputs): the bar sits at the expected value, so it
would pass or fail with the seed. Measured: 5.1% and 4.9% (two sets of 4 nets). The error grows with depth (Hanin &
Nica 2019): 6.7% at depth 2 and 7.1% at depth 3, width 2048.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from pydantic import Field

from lmech.config import LawConfig
from lmech.core import (
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
    SlopeWindow,
    generator,
)
from lmech.laws.kernel_tasks import digits_pool
from lmech.nets import NTKMLP
from lmech.observables import module_ntk
from lmech.theory import ntk
from lmech.theory.ntk_fluctuations import ntk_fluctuation
from lmech.train import torch_threads

ID = "ntk-convergence"


class Config(LawConfig):
    widths: list[int] = Field([64, 128, 256, 512, 1024, 2048], min_length=3, description="hidden widths")
    depth: int = Field(1, ge=1, le=8, description="hidden layers (the magnitude is predicted at depth 1)")
    points: int = Field(64, ge=2, le=1797, description="digits on which the kernel is measured")
    seeds: int = Field(4, ge=1, le=64, description="random networks per width")
    weight_std: float = Field(math.sqrt(2), gt=0, description="W_std")
    bias_std: float = Field(0.1, ge=0, description="b_std")


def inputs(points: int) -> torch.Tensor:
    """The first ``points`` digits of a fixed permutation of the pool (float64, on the sphere)."""
    x, _ = digits_pool()
    return x[torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:points]]


def plan(cfg: Config) -> list[tuple[RunSpec, ...]]:
    shared = cfg.model_dump(exclude={"widths", "seeds"})
    return [
        tuple(RunSpec(ID, LAW.version, {**shared, "width": w, "member": m}) for m in range(cfg.seeds))
        for w in cfg.widths
    ]


def execute(configs: Sequence[Mapping[str, Any]]) -> list[RunResult]:
    c0 = configs[0]
    x = inputs(c0["points"])
    analytic = ntk(x, depth=c0["depth"], weight_std=c0["weight_std"], bias_std=c0["bias_std"])
    results = []
    for c in configs:
        start = time.perf_counter()
        with torch_threads(1):
            net = NTKMLP(
                x.shape[1],
                c["width"],
                c["depth"],
                1,
                weight_std=c["weight_std"],
                bias_std=c["bias_std"],
                gen=generator(c["seed"], INIT, c["width"], c["member"]),
                dtype=torch.float64,
            )
            empirical = module_ntk(net, x, method="structured")
        error = (torch.linalg.norm(empirical - analytic) / torch.linalg.norm(analytic)).item()
        results.append(RunResult("done", [Row(0, "relative_error", error)], time.perf_counter() - start))
    return results


def evaluate(cfg: Config, records: Sequence[RunRecord]) -> Evaluation:
    widths = np.array(sorted(cfg.widths))
    per_width = [np.array([r.last("relative_error") for r in records if r.config["width"] == w]) for w in widths]
    mean = np.array([e.mean() for e in per_width])
    spread = np.array([e.std(ddof=1) / math.sqrt(len(e)) if len(e) > 1 else math.nan for e in per_width])
    checks = [SLOPE(widths, mean)]
    x = inputs(cfg.points)
    analytic = ntk(x, depth=cfg.depth, weight_std=cfg.weight_std, bias_std=cfg.bias_std)
    predicted = None
    if cfg.depth == 1:
        variance = ntk_fluctuation(x, weight_std=cfg.weight_std, bias_std=cfg.bias_std, gen=generator(cfg.seed, THEORY))
        predicted = np.sqrt(variance.sum().item() / widths) / torch.linalg.norm(analytic).item()
        judged = widths >= MIN_JUDGED_WIDTH
        checks.append(MAGNITUDE(predicted[judged], mean[judged]))
    at_2048 = "no prediction at this depth"
    if predicted is not None and (widths == 2048).any():
        at_2048 = f"the prediction there is {predicted[widths == 2048][0]:.2%}"
    regime = (
        f"ReLU, depth {cfg.depth}, W_std = {cfg.weight_std:.4g}, b_std = {cfg.bias_std:g}, {cfg.points} digits, "
        f"{cfg.seeds} nets per width; mean error ± s.e.: "
        + ", ".join(f"width {w}: {m:.2%} ± {s:.2%}" for w, m, s in zip(widths, mean, spread, strict=True))
        + ("" if predicted is None else "; leading-order prediction: " + ", ".join(f"{p:.2%}" for p in predicted))
        + f"; the issue's bar (< 5% at width 2048) is not judged: {at_2048}"
    )
    if predicted is not None:
        series = [
            Series("C / sqrt(width), C from one neuron's variance", widths.tolist(), predicted.tolist(), "line", 0)
        ]
    else:
        reference = mean[0] * (widths / widths[0]) ** -0.5
        series = [Series("width^-1/2 (through the narrowest)", widths.tolist(), reference.tolist(), "line", 0)]
    series += [
        Series("mean over nets", widths.tolist(), mean.tolist(), "dots", 1),
        Series("5% (the issue's bar, not judged)", widths.tolist(), [0.05] * len(widths), "hline", 7),
    ]
    each_x = [float(w) for w, e in zip(widths, per_width, strict=True) for _ in e]
    series.append(Series("each net", each_x, [float(v) for e in per_width for v in e], "dots", 2))
    figure = Figure(
        "ntk-convergence: empirical NTK -> analytic NTK",
        [
            Panel(
                "relative Frobenius error at initialisation",
                "width",
                "||Theta_w - Theta_inf|| / ||Theta_inf||",
                series,
                "log",
                "log",
            )
        ],
    )
    prediction = Prediction(
        "||Theta_width - Theta_inf||_F / ||Theta_inf||_F",
        "-> 0 like width^-1/2",
        "Theta_inf from the NNGP/NTK recursion (lmech.theory.ntk); fluctuations O(width^-1/2) at fixed depth",
        "NTK parametrization, Gaussian init, fixed depth, width -> infinity",
        "Jacot et al. 2018, Thm 1; Arora et al. 2019, Thm 3.1; Hanin & Nica 2019",
    )
    return Evaluation(
        checks,
        regime,
        figure,
        prediction,
        "relative Frobenius distance on the digit set, mean over independently seeded networks",
    )


SLOPE = SlopeWindow(
    "error vs width, log-log slope",
    -0.5,
    -0.65,
    -0.35,
    "central-limit fluctuations of the kernel's width averages: slope -1/2; +-0.15 for the finite-width "
    "bias (O(1/width)) and the scatter of a few nets",
)
MAGNITUDE = RelativeError(
    "mean error vs C / sqrt(width) (depth 1, width >= 256)",
    0.10,
    "leading order in 1/width (Jacot et al. 2018; Hanin & Nica 2019); 10% covers the O(1/width) correction, the "
    "scatter of a mean over a few nets (~3-5%) and the sampled variance (0.4%)",
)
MIN_JUDGED_WIDTH = 256
THEORY = 2  # random stream of the neurons sampled for the predicted variance

LAW = Law(
    id=ID,
    pillar=2,
    claim="The empirical NTK of an NTK-parametrized ReLU MLP converges to the analytic NTK: relative Frobenius error "
    "falls like width^-1/2 (slope -0.5 ± 0.15), with magnitude C / sqrt(width) predicted from one neuron's variance.",
    reference="Jacot, Gabriel & Hongler 2018 (NeurIPS), Thm 1; Arora et al. 2019 (NeurIPS), Thm 3.1; Hanin & Nica "
    "2019 'Finite depth and width corrections to the neural tangent kernel'",
    config=Config,
    plan=plan,
    execute=execute,
    evaluate=evaluate,
    comparisons=[SLOPE, MAGNITUDE],
    scales={"quick": {}, "full": {"widths": [64, 128, 256, 512, 1024, 2048, 4096], "seeds": 8, "points": 128}},
    quick_seconds=10.0,
)
