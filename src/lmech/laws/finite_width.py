"""finite-width: the log-norm of a signal through L random layers of width n fluctuates with variance ~ L / n.

Claim (Hanin & Nica 2019, "Products of many large random matrices and gradients in deep neural networks", Thm 1;
Hanin 2018): for x_l = W_l x_(l-1) with W_l an n x n Gaussian matrix of variance 1/n (linear) or x_l = ReLU(W_l x_(l-1))
with variance 2/n (He), log ||x_L||^2 is a sum of L independent terms, so Var[log ||x_L||^2] = L v(n):

    linear: ||W x||^2 / ||x||^2 ~ chi^2_n / n,           v(n) = psi_1(n / 2)                    ~ 2 / n
    ReLU:   ||ReLU(W x)||^2 / ||x||^2 ~ (2/n) chi^2_K,   K ~ Binomial(n, 1/2),
            v(n) = E_K psi_1(K / 2) + Var_K psi(K / 2)   (total variance; K = 0 has probability 2^-n) ~ 5 / n

(psi, psi_1: digamma, trigamma). The variance is linear in the depth-to-width ratio L / n: the deep-and-narrow
regime is not deterministic however wide each layer is.
Measurement: products of real random matrices, one input per network, many networks per (L, n) cell.
Verdict: per kind, the measured variance is linear in L/n (R^2 > 0.95 over the grid) and within 15% of L v(n) in
every cell.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from scipy.special import polygamma
from scipy.stats import binom

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
    Threshold,
    generator,
)
from lmech.train import torch_threads

ID = "finite-width"
KINDS = ("linear", "relu")


class Config(LawConfig):
    kinds: list[Literal["linear", "relu"]] = Field(["linear", "relu"], min_length=1, description="layer kinds")
    widths: list[int] = Field([16, 32, 64], min_length=2, description="widths n (>= 8)")
    depths: list[int] = Field([4, 8, 16, 32], min_length=2, description="depths L")
    networks: int = Field(1000, ge=50, le=100000, description="independent networks per (L, n) cell")


def log_norm_variance(kind: str, width: int) -> float:
    """v(n): the variance of log(||x_l||^2 / ||x_(l-1)||^2) for one layer (module docstring)."""
    if kind == "linear":
        return float(polygamma(1, width / 2))
    k = np.arange(1, width + 1)
    p = binom.pmf(k, width, 0.5)
    p = p / p.sum()  # condition on K >= 1 (K = 0 has probability 2^-n)
    mean_log = polygamma(0, k / 2)
    return float(np.sum(p * polygamma(1, k / 2)) + np.sum(p * mean_log**2) - np.sum(p * mean_log) ** 2)


def plan(cfg: Config) -> list[tuple[RunSpec, ...]]:
    return [
        (RunSpec(ID, LAW.version, {"kind": k, "width": n, "depth": depth, "networks": cfg.networks, "seed": cfg.seed}),)
        for k in cfg.kinds
        for n in cfg.widths
        for depth in cfg.depths
    ]


def execute(configs: Sequence[Mapping[str, Any]]) -> list[RunResult]:
    results = []
    for c in configs:
        start, n, gen = (
            time.perf_counter(),
            c["width"],
            generator(c["seed"], INIT, KINDS.index(c["kind"]), c["width"], c["depth"]),
        )
        gain = 2.0 if c["kind"] == "relu" else 1.0
        with torch_threads(1):
            x = torch.zeros(c["networks"], n, 1, dtype=torch.float64)
            x[:, 0, 0] = 1.0  # any unit input: the Gaussian layers are rotation invariant
            log_norm = torch.zeros(c["networks"], dtype=torch.float64)
            dead = torch.zeros(c["networks"], dtype=torch.bool)
            for _ in range(c["depth"]):
                w = torch.randn(c["networks"], n, n, generator=gen, dtype=torch.float64) * math.sqrt(gain / n)
                x = torch.bmm(w, x)
                if c["kind"] == "relu":
                    x = torch.relu(x)
                norm = x.norm(dim=1, keepdim=True)  # renormalise each layer; accumulate the log-norm
                dead |= norm[:, 0, 0] == 0  # every ReLU off (probability 2^-n per layer): the signal is gone
                log_norm += 2 * torch.log(norm[:, 0, 0].clamp_min(1e-300))
                x = x / norm.clamp_min(1e-300)
        variance = float(log_norm[~dead].var(unbiased=True))
        rows = [Row(c["depth"], "log_norm_variance", variance), Row(c["depth"], "dead_networks", float(dead.sum()))]
        results.append(RunResult("done", rows, time.perf_counter() - start))
    return results


def evaluate(cfg: Config, records: Sequence[RunRecord]) -> Evaluation:
    checks, series, notes = [], [], []
    for i, kind in enumerate(cfg.kinds):
        recs = sorted(
            (r for r in records if r.config["kind"] == kind), key=lambda r: (r.config["width"], r.config["depth"])
        )
        ratio = np.array([r.config["depth"] / r.config["width"] for r in recs])
        measured = np.array([r.last("log_norm_variance") for r in recs])
        predicted = np.array([r.config["depth"] * log_norm_variance(kind, r.config["width"]) for r in recs])
        slope = float(np.sum(ratio * measured) / np.sum(ratio * ratio))  # least squares through the origin
        residual = measured - slope * ratio
        r2 = 1 - float(np.sum(residual**2) / np.sum((measured - measured.mean()) ** 2))
        checks.append(LINEARITY[kind](r2))
        checks.append(EXACT[kind](predicted, measured))
        dead = int(sum(r.last("dead_networks") for r in recs))
        notes.append(
            f"{kind}: fitted Var / (L/n) = {slope:.3f} (large-n theory {2 if kind == 'linear' else 5}; exact v(n) n "
            f"is larger at small n), R^2 = {r2:.4f}, worst cell {np.max(np.abs(measured / predicted - 1)):.1%}, "
            f"{dead} networks whose signal died (all units off in some layer; excluded, as v(n) conditions on K >= 1)"
        )
        order = np.argsort(ratio)
        series += [
            Series(f"L v(n) ({kind})", ratio[order].tolist(), predicted[order].tolist(), "line", i),
            Series(f"measured ({kind})", ratio.tolist(), measured.tolist(), "dots", i),
        ]
    regime = (
        f"{cfg.networks} networks per cell, widths {cfg.widths}, depths {cfg.depths}; "
        + "; ".join(notes)
        + f"; the variance estimate of {cfg.networks} samples has relative s.e. "
        f"{math.sqrt(2 / (cfg.networks - 1)):.1%}"
    )
    prediction = Prediction(
        "Var[log ||x_L||^2] over random networks",
        "L v(n), linear in L/n: v = psi_1(n/2) ~ 2/n (linear), ~ 5/n (ReLU)",
        "log ||x_L||^2 = sum over layers of independent log(chi^2) terms (Gaussian layers are rotation invariant)",
        "Gaussian weights, He/LeCun variance, no biases, any depth and width",
        "Hanin & Nica 2019 (Commun. Math. Phys.), Thm 1; Hanin 2018 (NeurIPS)",
    )
    figure = Figure(
        "finite-width: log-norm fluctuations grow with depth / width",
        [Panel("variance of log ||x_L||^2", "depth / width  L/n", "Var[log ||x_L||^2]", series)],
    )
    return Evaluation(
        checks,
        regime,
        figure,
        prediction,
        "sample variance over independent networks of the accumulated log squared norm",
    )


LINEARITY = {
    kind: Threshold(
        f"linear in L/n, R^2 ({kind})", 0.95, "the issue's bar: a line through the origin in L/n", below=False
    )
    for kind in KINDS
}
EXACT = {
    kind: RelativeError(
        f"variance vs L v(n) in every cell ({kind})",
        0.15,
        "exact for Gaussian layers; the sample variance of 1000 networks has a 4.5% standard error, so 15% is ~3 s.e.",
    )
    for kind in KINDS
}

LAW = Law(
    id=ID,
    pillar=2,
    claim="Through L random layers of width n, Var[log ||x_L||^2] = L v(n) ~ c L/n (c = 2 linear, 5 ReLU): linear in "
    "L/n with R^2 > 0.95, and within 15% of the exact L v(n) in every cell.",
    reference="Hanin & Nica 2019 'Products of many large random matrices and gradients in deep neural networks' "
    "(Commun. Math. Phys.); Hanin 2018 (NeurIPS)",
    config=Config,
    plan=plan,
    execute=execute,
    evaluate=evaluate,
    comparisons=[*LINEARITY.values(), *EXACT.values()],
    scales={"quick": {}, "full": {"networks": 3000, "widths": [16, 32, 64, 128]}},
    quick_seconds=10.0,
)
