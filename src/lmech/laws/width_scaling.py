"""width-scaling: test loss against parameter count follows L(N) = E + A N^-alpha, well enough to extrapolate.

Claim (Kaplan et al. 2020, eq. 1.1 with an offset as in Hoffmann et al. 2022, eq. 2; Hestness et al. 2017; Bahri
et al. 2021, "resolution-limited" regime: when data are plentiful the model's size is the bottleneck and the loss
falls as a power of N towards the noise floor): a power law fitted to the smaller models predicts the larger ones.
Task (lmech.laws.scaling_tasks): Gaussian inputs in d = 8, a target that sums 2048 random ReLU units with amplitudes
k^-0.75 (a power-law spectrum: no finite width represents it exactly), label noise 0.05 (E >= 0.0025). Students:
one-hidden-layer ReLU MLPs of widths 8 ... 256, N = (d + 2) width + 1; each trained with Adam (lr 0.01 decayed
linearly to 0, batches of 256, 3000 steps) on a pool of 65536 noisy samples (>= 25 N: data are not the bottleneck),
8 seeds per width trained as one ensemble; loss = exact-noise test loss on 16384 fresh inputs.
Verdict: ``power_law`` fitted (lmech.fit, every seed a row, bootstrap over rows) to the smallest widths, all but two;
each of the two largest widths' seed-mean loss (1) inside the fit's 95% interval (with two held-out points, 80%
intervals would fail a true law about a third of the time) and (2) within 5% of the point prediction.
STATUS: NOT REGISTERED (lmech check does not know it): the law FAILS its 5% bar with this recipe.
Measured (seed 0, 8 seeds/width): 3000 steps: held out
N 1281 / 2561 measured 0.00496 / 0.00434, predicted 0.00553 / 0.00487 (-10.3% / -10.7%), inside the 95% intervals,
alpha 0.89 [0.54, 1.15]; 6000 steps: 0.00387 / 0.00353 vs 0.00376 / 0.00309 (+3.1% / +14.3%), alpha 0.89 [0.76,
1.09]. An earlier prototype (all members sharing each batch, 3000 steps) gave -0.2% / +0.4%: that agreement was luck.
The largest model flattens above the fit: at a fixed step count it is compute-limited (L(N, S) at fixed S bends).
What was tried: widths from 4 (width 4 -> 8 drops far faster than the law: tiny ReLU nets are optimisation-limited,
12% seed scatter); a target of 256 units with k^-1 amplitudes (the students reach the noise floor by width 64, so the
held-out points carry no information about the law); fresh samples every step (the teacher's evaluation cost more
than training). The recipe is fixed, not trained to convergence: doubling the steps (2000 -> 4000) lowered every
width's loss by 20-25%, because a power-law target is also learnt at a power-law rate in time; the law here is L(N)
at a fixed recipe, as in Kaplan et al.'s L(N, S) at fixed S.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from pydantic import Field, field_validator

from lmech.config import LawConfig
from lmech.core import DATA, Evaluation, Law, Prediction, Row, RunRecord, RunResult, RunSpec, generator
from lmech.laws import scaling_tasks as task
from lmech.train import torch_threads

ID = "width-scaling"


class Config(LawConfig):
    widths: list[int] = Field(
        [8, 16, 32, 64, 128, 256], min_length=6, description="hidden widths (the 2 largest held out)"
    )
    seeds: int = Field(8, ge=2, le=64, description="networks per width (one ensemble)")
    dim: int = Field(8, ge=1, le=64, description="input dimension")
    features: int = Field(2048, ge=1, description="ReLU units of the target")
    decay: float = Field(0.75, gt=0, description="target amplitudes k^-decay")
    noise: float = Field(0.05, ge=0, description="label noise std")
    pool: int = Field(65536, ge=256, description="training samples (shared by all widths)")
    batch: int = Field(256, ge=1, description="minibatch size")
    steps: int = Field(3000, ge=10, description="Adam steps")
    lr: float = Field(0.01, gt=0, description="Adam step size, decayed linearly to 0")
    test: int = Field(16384, ge=256, description="test inputs")
    bootstrap: int = Field(200, ge=10, le=2000, description="bootstrap refits")
    level: float = Field(0.95, gt=0, lt=1, description="level of the prediction interval")

    @field_validator("widths")
    @classmethod
    def _ascending(cls, v: list[int]) -> list[int]:
        if any(w < 1 for w in v) or sorted(set(v)) != v:
            raise ValueError(f"widths must be distinct positive integers in increasing order; got {v}")
        return v


def plan(cfg: Config) -> list[tuple[RunSpec, ...]]:
    shared = cfg.model_dump(exclude={"widths", "seeds", "bootstrap", "level"})
    return [
        tuple(RunSpec(ID, LAW.version, {**shared, "width": w, "member": m}) for m in range(cfg.seeds))
        for w in cfg.widths
    ]


@functools.lru_cache(maxsize=2)
def _pool(seed: int, dim: int, features: int, decay: float, noise: float, size: int):
    target = task.teacher(seed, dim, features, decay)
    g = generator(seed, DATA, 97)
    x = torch.randn(size, dim, generator=g)
    return x, target(x) + noise * torch.randn(size, generator=g)


def execute(configs: Sequence[Mapping[str, Any]]) -> list[RunResult]:
    start = time.perf_counter()
    c = configs[0]
    members = [cc["member"] for cc in configs]
    with torch_threads(1):
        x, y = _pool(c["seed"], c["dim"], c["features"], c["decay"], c["noise"], c["pool"])
        gens = [generator(c["seed"], DATA, 96, c["width"], m) for m in members]

        def batches(_t: int):
            idx = torch.stack([torch.randint(0, len(x), (c["batch"],), generator=g) for g in gens])  # (E, b)
            return x[idx], y[idx]

        params = task.students(c["dim"], c["width"], members, c["seed"])
        params, _ = task.fit_ensemble(params, batches, c["steps"], c["lr"])
        x_test, y_test = task.test_set(
            c["seed"], c["dim"], c["test"], task.teacher(c["seed"], c["dim"], c["features"], c["decay"])
        )
        losses = task.mean_squared_error(params, x_test, y_test) + c["noise"] ** 2
    seconds = (time.perf_counter() - start) / len(configs)
    n = float(task.parameter_count(c["dim"], c["width"]))
    return [
        RunResult("done", [Row(c["steps"], "test_loss", float(v)), Row(c["steps"], "parameters", n)], seconds)
        for v in losses
    ]


def evaluate(cfg: Config, records: Sequence[RunRecord]) -> Evaluation:
    widths = sorted(cfg.widths)
    by_width = [[r.last("test_loss") for r in records if r.config["width"] == w] for w in widths]
    n = [task.parameter_count(cfg.dim, w) for w in widths]
    ex = task.extrapolate(n, [np.array(v) for v in by_width], cfg.bootstrap, cfg.level, cfg.seed)
    regime = (
        f"widths {widths} (N {n}), {cfg.seeds} seeds each, {cfg.steps} Adam steps (lr {cfg.lr:g}, batch {cfg.batch}) "
        f"on {cfg.pool} samples; target: {cfg.features} ReLU units, amplitudes k^-{cfg.decay:g}, d = {cfg.dim}, "
        f"label noise {cfg.noise:g}; " + task.describe(ex, "N")
    )
    prediction = Prediction(
        "test loss of the two largest models",
        ex.band.point.tolist() if ex.band is not None else None,
        "L(N) = E + A N^-alpha fitted to the smaller models (Huber on log L, bootstrap intervals)",
        "data plentiful (pool >= 25 N); the same training recipe at every width; the smaller models already in the "
        "power-law regime",
        "Kaplan et al. 2020, eq. 1.1; Hoffmann et al. 2022, eq. 2; Bahri et al. 2021",
    )
    return Evaluation(
        task.checks(ex),
        regime,
        task.figure(ex, "width-scaling: L(N) fitted on the smaller models, extrapolated", "parameters N"),
        prediction,
        "seed-mean test loss E_x (f - f*)^2 + noise^2 on fresh inputs after the fixed recipe",
    )


LAW = Law(
    id=ID,
    pillar=3,
    claim="Test loss against parameter count follows L = E + A N^-alpha: a fit on the smaller MLPs predicts the two "
    "largest within 5% and inside its 95% interval.",
    reference="Kaplan et al. 2020 'Scaling laws for neural language models'; Hestness et al. 2017; Bahri et al. 2021 "
    "'Explaining neural scaling laws'; Hoffmann et al. 2022",
    config=Config,
    plan=plan,
    execute=execute,
    evaluate=evaluate,
    comparisons=[task.RELATIVE],
    scales={"quick": {}, "full": {"widths": [8, 16, 32, 64, 128, 256, 512], "seeds": 16, "steps": 6000}},
    quick_seconds=20.0,
)
