"""ntk-linearization: a wide network trained by gradient descent follows its own linearisation at initialisation.

Claim (Jacot, Gabriel & Hongler 2018; Lee et al. 2019, Thm 2.1 and Figs. 1-2): in the NTK parametrization, full-batch
GD on (1/2n) sum ||f - y||^2 keeps the network within O(width^-1/2) of its linearisation
f_lin(x; theta) = f_0(x) + J_0(x) (theta - theta_0), uniformly in time, while the parameters move by O(1) in total:
relative movement ||theta_T - theta_0|| / ||theta_0|| ~ P^-1/2 with P the parameter count (~ width^-1/2 with one
hidden layer, ~ width^-1 with more, where the width x width matrices hold most parameters).
Prediction: the linearised model's GD trajectory, exactly (lmech.theory.linearized_dynamics after each step count),
from the network's *own* empirical NTK at initialisation, the full (n C) x (n C) block over outputs (the off-diagonal
output blocks are O(width^-1/2) at finite width and would otherwise pollute the comparison), and its own f_0. So the
deviation measures training's departure from linearity only; lmech's ntk-regression law compares with the analytic
infinite-width kernel instead, which adds the O(width^-1/2) fluctuation of the initial kernel.
Measurement: ReLU MLPs (lmech.nets.NTKMLP, W_std = sqrt 2, b_std = 0.1, float64) on a digits subset (inputs on the
sphere, centred one-hot targets), lr = lr_fraction x 2 / lam_max(K_0 / n); at geometrically spaced steps the
deviation ||f_t - f_lin,t|| / ||f_lin,t - f_0|| on the training and the test inputs (relative to what training
changed: f_0 is large and identical in both, so dividing by ||f_lin,t|| would flatter the agreement by ~1.5x here).
Verdict: the supremum over recorded times (train and test, worst seed) below 3% at every width >= 1024; log-log slope
of the seed-mean deviation against width in [-1, -0.4]; log-log slope of the relative movement in the predicted
slope of P^-1/2 (-0.50 at depth 1) +- 0.1.
Measured (seeds 0-2, 20 training digits, depth 1): deviation 4.3-5.3% / 1.8-2.3% / 0.6-0.8% at widths 256 / 1024 /
4096 (slope ~ -0.7); movement 0.065 / 0.033 / 0.017. Where it fails: the constant grows with the training set (through
K^-1): with 50 digits the deviation is 4.2% at width 1024 (1.8% at 4096); on a 5-d Gaussian teacher task with unit-
variance targets, 3.4% at 1024. At depth 2 the movement slope is -0.96 against P^-1/2's -0.93.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from pydantic import Field
from torch.func import functional_call

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
from lmech.nets import NTKMLP
from lmech.observables import module_ntk, parameter_movement
from lmech.theory import linearized_dynamics
from lmech.train import torch_threads

ID = "ntk-linearization"
BAR_WIDTH = 1024


class Config(LawConfig):
    widths: list[int] = Field([256, 1024, 4096], min_length=2, description="hidden widths")
    depth: int = Field(1, ge=1, le=3, description="hidden layers")
    seeds: int = Field(2, ge=1, le=16, description="networks (and training subsets) per width")
    n_train: int = Field(20, ge=2, le=500, description="training digits")
    n_test: int = Field(200, ge=1, le=1000, description="test digits")
    steps: int = Field(1000, ge=10, le=100000, description="full-batch GD steps")
    records: int = Field(20, ge=2, le=200, description="geometrically spaced steps at which outputs are compared")
    lr_fraction: float = Field(0.5, gt=0, lt=1, description="lr = lr_fraction * 2 / lam_max(K_0 / n)")
    weight_std: float = Field(math.sqrt(2), gt=0, description="W_std")
    bias_std: float = Field(0.1, ge=0, description="b_std")


def recorded_steps(steps: int, records: int) -> list[int]:
    return sorted({int(s) for s in np.geomspace(1, steps, records).round()})


def plan(cfg: Config) -> list[tuple[RunSpec, ...]]:
    shared = cfg.model_dump(exclude={"widths", "seeds"})
    return [
        (RunSpec(ID, LAW.version, {**shared, "width": w, "member": m}),) for w in cfg.widths for m in range(cfg.seeds)
    ]


def _subsets(seed: int, member: int, n_train: int, n_test: int):
    x, y = digits_pool()
    perm = torch.randperm(len(x), generator=generator(seed, DATA, member))
    return x[perm[:n_train]], y[perm[:n_train]], x[perm[n_train : n_train + n_test]]


def _flat_kernel(k: torch.Tensor, classes: int) -> torch.Tensor:
    """(n1, n2, C, C) or (n1, n2) -> the (n1 C, n2 C) matrix acting on outputs flattened example-major."""
    if k.ndim == 2:
        return k
    n1, n2 = k.shape[:2]
    return k.permute(0, 2, 1, 3).reshape(n1 * classes, n2 * classes)


def execute(configs: Sequence[Mapping[str, Any]]) -> list[RunResult]:
    return [_run(c) for c in configs]


def _run(c: Mapping[str, Any]) -> RunResult:
    start = time.perf_counter()
    x_train, y_train, x_test = _subsets(c["seed"], c["member"], c["n_train"], c["n_test"])
    n, classes = y_train.shape
    with torch_threads(1):
        net = NTKMLP(
            x_train.shape[1],
            c["width"],
            c["depth"],
            classes,
            weight_std=c["weight_std"],
            bias_std=c["bias_std"],
            gen=generator(c["seed"], INIT, c["width"], c["member"]),
            dtype=torch.float64,
        )
        theta0 = {k: v.detach().clone() for k, v in net.named_parameters()}
        x_all = torch.cat([x_train, x_test])
        k_all = _flat_kernel(module_ntk(net, x_all, outputs="full"), classes)
        k_train, k_test = k_all[: n * classes, : n * classes], k_all[n * classes :, : n * classes]
        with torch.no_grad():
            f0_train, f0_test = net(x_train), net(x_test)
        lr = c["lr_fraction"] * 2 / (torch.linalg.eigvalsh(k_train)[-1].item() / n)
        # the loss averages over the n examples (not n C outputs): the flattened kernel's rate is K / n, which
        # linearized_dynamics (dividing by its size n C) gets from C K
        linear = linearized_dynamics(
            classes * k_train, y_train.reshape(-1), f0_train.reshape(-1), classes * k_test, f0_test.reshape(-1)
        )
        params = {k: v.clone().requires_grad_() for k, v in theta0.items()}
        rows, due = [], set(recorded_steps(c["steps"], c["records"]))
        loss = math.nan
        for step in range(c["steps"] + 1):
            out = functional_call(net, params, (x_train,))
            if step in due:
                with torch.no_grad():
                    rows += _compare(
                        step, out.detach(), functional_call(net, params, (x_test,)), linear, lr, f0_train, f0_test
                    )
            if step == c["steps"]:
                break
            loss_t = ((out - y_train) ** 2).sum() / (2 * n)
            grads = torch.autograd.grad(loss_t, list(params.values()))
            with torch.no_grad():
                for p, g in zip(params.values(), grads, strict=True):
                    p -= lr * g
            loss = loss_t.item()
        final = {k: v.detach() for k, v in params.items()}
        k_final = _flat_kernel(module_ntk(_loaded(net, final), x_train, outputs="full"), classes)
    movement = parameter_movement(theta0, final)
    rows += [Row(c["steps"], f"movement/{k}", v) for k, v in movement.items() if k != "total"]
    rows += [
        Row(c["steps"], "movement", movement["total"]),
        Row(c["steps"], "ntk_movement", (torch.linalg.norm(k_final - k_train) / torch.linalg.norm(k_train)).item()),
        Row(c["steps"], "parameters", float(sum(v.numel() for v in theta0.values()))),
        Row(c["steps"], "lr", lr),
        Row(c["steps"], "train_loss", loss),
    ]
    return RunResult("done", rows, time.perf_counter() - start)


def _compare(step, f_train, f_test, linear, lr, f0_train, f0_test) -> list[Row]:
    lin_train, lin_test = linear.after_steps(lr, step)
    rows = []
    for name, f, lin, f0 in (("train", f_train, lin_train, f0_train), ("test", f_test, lin_test, f0_test)):
        f, lin, f0 = f.reshape(-1), lin.reshape(-1), f0.reshape(-1)
        rows.append(Row(step, f"deviation_{name}", ((f - lin).norm() / (lin - f0).norm()).item()))
    change = f_test[0, 0] - f0_test[0, 0]
    rows += [Row(step, "net_change", change.item()), Row(step, "lin_change", (lin_test[0] - f0_test[0, 0]).item())]
    return rows


def _loaded(net: torch.nn.Module, params: Mapping[str, torch.Tensor]) -> torch.nn.Module:
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.copy_(params[name])
    return net


def predicted_movement_slope(widths: np.ndarray, parameters: np.ndarray) -> float:
    """Slope of log P^-1/2 against log width: ||theta_T - theta_0|| = O(1) and ||theta_0|| = sqrt(P) (N(0, 1)
    parameters), so the relative movement scales like P^-1/2."""
    slope, _ = np.polyfit(np.log(widths), -0.5 * np.log(parameters), 1)
    return float(slope)


def evaluate(cfg: Config, records: Sequence[RunRecord]) -> Evaluation:
    widths = np.array(sorted(set(cfg.widths)))
    by_width = {w: [r for r in records if r.config["width"] == w] for w in widths}

    def sup(r: RunRecord) -> float:
        return float(max(r.series("deviation_train")[1].max(), r.series("deviation_test")[1].max()))

    worst = np.array([max(sup(r) for r in by_width[w]) for w in widths])
    mean = np.array([np.mean([sup(r) for r in by_width[w]]) for w in widths])
    movement = np.array([np.mean([r.last("movement") for r in by_width[w]]) for w in widths])
    parameters = np.array([by_width[w][0].last("parameters") for w in widths])
    slope = predicted_movement_slope(widths, parameters)
    wide = widths >= BAR_WIDTH
    checks = [
        BAR(float(worst[wide].max()) if wide.any() else math.nan),
        SHRINKING(widths, mean),
        movement_comparison(slope)(widths, movement),
    ]
    ntk_move = [np.mean([r.last("ntk_movement") for r in by_width[w]]) for w in widths]
    regime = (
        f"depth {cfg.depth}, {cfg.n_train} training / {cfg.n_test} test digits, {cfg.steps} GD steps at "
        f"{cfg.lr_fraction:g} x 2/lam_max, {cfg.seeds} seed(s) per width; sup_t deviation (worst seed) "
        + ", ".join(f"{w}: {d:.2%}" for w, d in zip(widths, worst, strict=True))
        + "; relative movement "
        + ", ".join(f"{w}: {m:.4f}" for w, m in zip(widths, movement, strict=True))
        + f" (P^-1/2 predicts slope {slope:.2f}); NTK movement "
        + ", ".join(f"{w}: {m:.2%}" for w, m in zip(widths, ntk_move, strict=True))
        + "; final train loss "
        + ", ".join(f"{r.last('train_loss'):.1e}" for w in widths for r in by_width[w][:1])
    )
    if not wide.any():
        regime += f"; no width >= {BAR_WIDTH}: the 3% bar is not judged"
    prediction = Prediction(
        "the network's outputs along GD; its relative parameter movement",
        "f_lin,t from the empirical NTK at init; movement ~ P^-1/2",
        "f_lin,s(X') = f_0(X') + K_0(X', X) K_0^-1 (I - (I - lr K_0 / n)^s)(y - f_0(X))",
        "NTK parametrization, width -> infinity, full-batch GD below the stability limit, MSE loss",
        "Lee et al. 2019 (NeurIPS), eqs. 8-11 and Thm 2.1; Jacot et al. 2018",
    )
    return Evaluation(
        checks,
        regime,
        _figure(cfg, widths, worst, mean, movement, parameters, by_width),
        prediction,
        "sup over recorded steps of ||f_t - f_lin,t|| / ||f_lin,t - f_0|| on train and test inputs (all outputs); "
        "||theta_T - theta_0|| / ||theta_0||",
    )


def _figure(cfg, widths, worst, mean, movement, parameters, by_width) -> Figure:
    ref = mean[0] * (widths / widths[0]) ** -0.5
    move_ref = movement[0] * np.sqrt(parameters[0] / parameters)
    trajectories = []
    for color, w in enumerate((widths[0], widths[-1])):
        r = by_width[w][0]
        steps, lin = r.series("lin_change")
        _, net = r.series("net_change")
        trajectories += [
            Series(f"linearised, width {w}", steps.tolist(), lin.tolist(), "line", color),
            Series(f"network, width {w}", steps.tolist(), net.tolist(), "dots", color),
        ]
    return Figure(
        "ntk-linearization: wide networks follow their linearisation",
        [
            Panel(
                "sup_t deviation from the linearised model",
                "width",
                "||f - f_lin|| / ||f_lin - f_0||",
                [
                    Series("width^-1/2 (through the narrowest)", widths.tolist(), ref.tolist(), "line", 0),
                    Series("width^-1", widths.tolist(), (mean[0] * widths[0] / widths).tolist(), "line", 2),
                    Series("mean over seeds", widths.tolist(), mean.tolist(), "dots", 0),
                    Series("worst seed", widths.tolist(), worst.tolist(), "dots", 1),
                    Series("3% bar", widths.tolist(), [0.03] * len(widths), "hline", 7),
                ],
                "log",
                "log",
            ),
            Panel(
                "relative parameter movement",
                "width",
                "||theta_T - theta_0|| / ||theta_0||",
                [
                    Series("P^-1/2 (through the narrowest)", widths.tolist(), move_ref.tolist(), "line", 0),
                    Series("measured", widths.tolist(), movement.tolist(), "dots", 1),
                ],
                "log",
                "log",
            ),
            Panel(
                "one test output along training",
                "GD step",
                "f_t(x) - f_0(x), first test digit, output 0",
                trajectories,
                "log",
            ),
        ],
    )


BAR = Threshold(
    f"sup_t deviation at widths >= {BAR_WIDTH} (worst seed)",
    0.03,
    "the issue's bar, calibrated on a 2-layer net (2.0% at width 1024); the departure from linearity is "
    "O(width^-1/2) (Lee et al. 2019, Thm 2.1)",
)
SHRINKING = SlopeWindow(
    "deviation vs width, log-log slope",
    -0.5,
    -1.0,
    -0.4,
    "Thm 2.1 bounds it by width^-1/2; the function's deviation is often O(1/width) in practice, hence down to -1",
)


def movement_comparison(predicted: float) -> SlopeWindow:
    return SlopeWindow(
        "relative parameter movement vs width, log-log slope",
        predicted,
        predicted - 0.1,
        predicted + 0.1,
        "||theta_T - theta_0|| = O(1) while ||theta_0|| = sqrt(P); +-0.1 covers the seed-to-seed scatter of three "
        "widths",
    )


LAW = Law(
    id=ID,
    pillar=2,
    claim="A wide NTK-parametrized MLP trained by full-batch GD follows its linearisation at init on train and test "
    "points: deviation < 3% at width >= 1024, shrinking with width (slope in [-1, -0.4]); parameters move by "
    "~width^-1/2 (relative).",
    reference="Lee et al. 2019 'Wide neural networks of any depth evolve as linear models under gradient descent' "
    "(NeurIPS); Jacot, Gabriel & Hongler 2018 (NeurIPS)",
    config=Config,
    plan=plan,
    execute=execute,
    evaluate=evaluate,
    comparisons=[BAR, SHRINKING, movement_comparison(-0.5)],
    scales={"quick": {}, "full": {"widths": [128, 256, 512, 1024, 2048, 4096, 8192], "seeds": 4}},
    quick_seconds=8.0,
)
