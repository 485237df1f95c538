"""ntk-regression: a wide network trained by small-step gradient descent predicts like its linearisation with the
analytic (infinite-width) NTK.

Claim (Jacot, Gabriel & Hongler 2018; Lee et al. 2019, eqs. 8-11 and Fig. 2): in the NTK parametrization, full-batch
GD on (1/2n) sum ||f - y||^2 keeps a wide network close to the linear model f_0 + grad f_0 (theta - theta_0), whose
outputs follow exp(-K t / n) with K the infinite-width NTK; the gap shrinks like width^-1/2. The network is centred,
g = f(theta) - f(theta_0) (same NTK, g_0 = 0), so its linearisation is kernel regression with the NTK along GD.
Measurement: ``depth``-hidden-layer ReLU MLPs, h = W_std/sqrt(fan_in) W a + b_std b, on a digits
subset (inputs on the sphere, centred one-hot targets), float64; after ``steps`` GD steps the network's test outputs
are compared with the exact GD trajectory of the linearised model (lmech.theory.linearized_dynamics, same f_0, same
lr and steps) built from the analytic NTK.
Verdict: relative distance ||f_net - f_lin|| / ||f_lin|| on test inputs < 5% at the widest width; log-log slope of
the distance against width in [-1, -0.3].
Measured (seed 0): 14.5% / 7.4% / 3.9% at widths 512 / 2048 / 8192 with 30 training digits. The constant grows with
the number of training points (the converged predictor involves K^-1): with 100 digits, 37% / 18% / 9.5% at widths
128 / 512 / 2048, so the 5% bar needs width ~ 8000 there too. Without centring, the random f_0 (variance ~ the NNGP,
~2 per output, against targets of ~0.3) must be unlearned as well: 47% / 24% / 14% at widths 128 / 512 / 2048.
"""

from __future__ import annotations

import itertools
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
    Row,
    RunRecord,
    RunResult,
    RunSpec,
    Series,
    SlopeWindow,
    Threshold,
    generator,
)
from lmech.laws.kernel_tasks import digits_pool
from lmech.theory import kernels, linearized_dynamics
from lmech.train import torch_threads

ID = "ntk-regression"


class Config(LawConfig):
    widths: list[int] = Field([512, 2048, 8192], min_length=2, description="hidden widths")
    depth: int = Field(1, ge=1, le=4, description="hidden layers")
    n_train: int = Field(30, ge=10, le=1000, description="training digits")
    n_test: int = Field(200, ge=10, le=1000, description="test digits")
    steps: int = Field(1000, ge=1, le=100000, description="full-batch GD steps")
    lr_fraction: float = Field(0.5, gt=0, lt=1, description="lr = lr_fraction * 2 / lam_max(K / n)")
    weight_std: float = Field(math.sqrt(2), gt=0, description="W_std")
    bias_std: float = Field(0.1, ge=0, description="b_std")


def subsets(seed: int, n_train: int, n_test: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train inputs, train targets, test inputs): disjoint random subsets of the digits pool."""
    x, y = digits_pool()
    perm = torch.randperm(len(x), generator=generator(seed, DATA))
    train, test = perm[:n_train], perm[n_train : n_train + n_test]
    return x[train], y[train], x[test]


def learning_rate(cfg: Mapping[str, Any], x_train: torch.Tensor) -> float:
    k = kernels(x_train, depth=cfg["depth"], weight_std=cfg["weight_std"], bias_std=cfg["bias_std"]).ntk
    return cfg["lr_fraction"] * 2 / (torch.linalg.eigvalsh(k)[-1].item() / len(k))


def plan(cfg: Config) -> list[tuple[RunSpec, ...]]:
    shared = cfg.model_dump(exclude={"widths"})
    return [(RunSpec(ID, LAW.version, {**shared, "width": w}),) for w in cfg.widths]


def _forward(params: list[torch.Tensor], x: torch.Tensor, c: Mapping[str, Any]) -> torch.Tensor:
    a = x
    for layer in range(c["depth"] + 1):
        w, b = params[2 * layer], params[2 * layer + 1]
        h = c["weight_std"] / math.sqrt(w.shape[1]) * a @ w.T + c["bias_std"] * b
        a = torch.relu(h) if layer < c["depth"] else h
    return a


def execute(configs: Sequence[Mapping[str, Any]]) -> list[RunResult]:
    results = []
    for c in configs:
        start = time.perf_counter()
        x_train, y_train, x_test = subsets(c["seed"], c["n_train"], c["n_test"])
        lr, gen = learning_rate(c, x_train), generator(c["seed"], INIT, c["width"])
        dims = [x_train.shape[1]] + [c["width"]] * c["depth"] + [y_train.shape[1]]
        params = []
        for fan_in, fan_out in itertools.pairwise(dims):
            params += [torch.randn(fan_out, fan_in, generator=gen, dtype=torch.float64).requires_grad_()]
            params += [torch.randn(fan_out, generator=gen, dtype=torch.float64).requires_grad_()]
        with torch_threads(2), torch.no_grad():
            f0_train, f0_test = _forward(params, x_train, c), _forward(params, x_test, c)
        with torch_threads(2):  # the centred network g = f - f_0 starts at 0 and has the same NTK as f
            for _ in range(c["steps"]):
                loss = ((_forward(params, x_train, c) - f0_train - y_train) ** 2).sum() / (2 * len(x_train))
                grads = torch.autograd.grad(loss, params)
                with torch.no_grad():
                    for p, g in zip(params, grads, strict=True):
                        p -= lr * g
            with torch.no_grad():
                f_test = _forward(params, x_test, c) - f0_test
        net = {"depth": c["depth"], "weight_std": c["weight_std"], "bias_std": c["bias_std"]}
        k_train = kernels(x_train, **net).ntk
        k_test = kernels(x_test, x_train, **net).ntk
        dynamics = linearized_dynamics(k_train, y_train, None, k_test, None)
        _, lin_test = dynamics.after_steps(lr, c["steps"])
        distance = ((f_test - lin_test).norm() / lin_test.norm()).item()
        rows = [
            Row(c["steps"], "distance", distance),
            Row(c["steps"], "lr", lr),
            Row(c["steps"], "train_loss", loss.item()),
        ]
        results.append(RunResult("done", rows, time.perf_counter() - start))
    return results


def evaluate(cfg: Config, records: Sequence[RunRecord]) -> Evaluation:
    recs = sorted(records, key=lambda r: r.config["width"])
    widths = np.array([r.config["width"] for r in recs])
    distance = np.array([r.last("distance") for r in recs])
    checks = [WIDEST(distance[-1]), SHRINKING(widths, distance)]
    regime = (
        f"depth {cfg.depth}, {cfg.n_train} training / {cfg.n_test} test digits, {cfg.steps} GD steps at lr "
        f"{recs[0].last('lr'):.3g} (= {cfg.lr_fraction:g} x 2/lam_max), final train loss "
        + ", ".join(f"{r.last('train_loss'):.2g}" for r in recs)
        + "; distances "
        + ", ".join(f"width {w}: {d:.2%}" for w, d in zip(widths, distance, strict=True))
    )
    reference = distance[0] * (widths / widths[0]) ** -0.5
    figure = Figure(
        "ntk-regression: wide networks follow their analytic-NTK linearisation",
        [
            Panel(
                "relative distance of test outputs",
                "width",
                "||f_net - f_lin|| / ||f_lin||",
                [
                    Series("width^-1/2 (through the narrowest)", widths.tolist(), reference.tolist(), "line", 0),
                    Series("measured", widths.tolist(), distance.tolist(), "dots", 1),
                    Series("5% at the widest", widths.tolist(), [0.05] * len(widths), "hline", 7),
                ],
                "log",
                "log",
            )
        ],
    )
    prediction = Prediction(
        "test outputs of the trained network",
        "f_lin after the same GD steps, from the analytic NTK",
        "g_s(x) = k(x)^T K^-1 (I - (I - lr K / n)^s) y for the centred network g = f - f_0",
        "NTK parametrization, width -> infinity, full-batch GD below the stability limit",
        "Jacot et al. 2018; Lee et al. 2019 (NeurIPS), eqs. 8-11",
    )
    measurement = "||f_net(X_test) - f_lin(X_test)|| / ||f_lin(X_test)|| (Frobenius over test points and 10 outputs)"
    return Evaluation(checks, regime, figure, prediction, measurement)


WIDEST = Threshold(
    "distance at the widest width",
    0.05,
    "LITERATURE calibration: 2.0% at width 1024 and 0.57% at 4096 for a 2-layer net; the analytic "
    "kernel differs from one net's by O(width^-1/2)",
)
SHRINKING = SlopeWindow(
    "distance vs width, log-log slope",
    -0.5,
    -1.0,
    -0.3,
    "fluctuations of the initial NTK and its motion during training are both O(width^-1/2) "
    "(Jacot et al. 2018; Lee et al. 2019)",
)

LAW = Law(
    id=ID,
    pillar=2,
    claim="A wide NTK-parametrized ReLU network trained by full-batch GD predicts like its linearisation with the "
    "analytic NTK: test-output distance < 5% at the widest width, shrinking like width^-1/2.",
    reference="Jacot, Gabriel & Hongler 2018 (NeurIPS); Lee et al. 2019 'Wide neural networks of any depth evolve as "
    "linear models under gradient descent' (NeurIPS); Arora et al. 2019",
    config=Config,
    plan=plan,
    execute=execute,
    evaluate=evaluate,
    comparisons=[WIDEST, SHRINKING],
    scales={"quick": {}, "full": {"widths": [512, 1024, 2048, 4096, 8192, 16384]}},
    quick_seconds=20.0,
)
