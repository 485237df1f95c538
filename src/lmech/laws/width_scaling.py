"""width-scaling: test loss at convergence against parameter count follows L(N) = E + A N^-alpha, well enough to
extrapolate.

Claim (Kaplan et al. 2020, eq. 1.1, L(N) for models trained to convergence on plentiful data, with an offset as in
Hoffmann et al. 2022, eq. 2; Hestness et al. 2017; Bahri et al. 2021, "resolution-limited" regime: the model's size
is the bottleneck and the loss falls as a power of N towards the noise floor): a power law fitted to the smaller
models predicts the larger ones.
Task (lmech.laws.scaling_tasks): Gaussian inputs in d = 8, a target that sums 2048 random ReLU units with amplitudes
k^-0.75 (a power-law spectrum: no finite width represents it exactly), label noise 0.01 (E >= 1e-4). Students:
one-hidden-layer ReLU MLPs of widths 12 ... 64, N = (d + 2) width + 1; each trained with Adam (lr 0.03 decayed
linearly to 0, batches of 256, 24000 steps) on a pool of 65536 noisy samples (>= 100 N: data are not the
bottleneck), 8 seeds per width trained as one ensemble; loss = exact-noise test loss on 16384 fresh inputs.
Verdict: (0) convergence: every width is also trained for half the schedule; doubling the schedule must move no
width's seed-mean loss by more than 1% beyond twice its standard error (paired by member; so L is the converged L(N),
not L(N, S) at a fixed S); ``power_law`` fitted
(lmech.fit, every seed a row, bootstrap over rows) to the four smallest widths; each of the two largest widths'
seed-mean loss (1) inside the fit's 95% interval and (2) within 5% of the point prediction.
STATUS: NOT REGISTERED (lmech check does not know it): the law HOLDS at seed 0 and FAILS its 5% bar at seeds 1, 2;
quick mode costs ~150 s CPU (seed 2: 148.5 s CPU, 298 s wall on the shared machine), far over the 20-40 s budget.
Measured (quick, 8 seeds/width; change = L(24000 steps) / L(12000 steps) - 1 +- its paired standard error):
seed 0: changes -0.1 +- 0.2, -1.3 +- 1.2, -0.4 +- 0.7, +0.2 +- 1.2, -0.4 +- 0.9, -0.5 +- 0.9 %; fit E 1.1e-4 [0, 2.2e-3]
  (the true floor is noise^2 = 1e-4), alpha 1.15 [1.05, 1.95]; held out N 481 / 641 measured 0.00232 / 0.00172,
  predicted 0.00230 / 0.00168 (+1.1% / +2.5%), inside: HOLDS.
seed 1: changes +1.0 +- 0.8, -0.7 +- 0.9, -1.7 +- 1.2, -1.1 +- 1.2, -2.3 +- 2.2, -0.6 +- 0.8 %; fit E 0 (at its bound),
  alpha 0.93 [0.88, 0.99]; measured 0.00265 / 0.00200, predicted 0.00276 / 0.00211 (-4.1% / -5.5%): FAILS (5%).
seed 2: changes +0.4 +- 0.6, +0.6 +- 1.1, -0.3 +- 1.6, -2.0 +- 1.2, -2.1 +- 0.8, -1.4 +- 1.2 %; fit E 2.0e-3 [0, 3.9e-3]
  (20 x the true floor), alpha 1.47 [1.10, 2.16]; measured 0.00375 / 0.00274, predicted 0.00410 / 0.00339 (-8.6% /
  -19.2%), inside the 95% intervals: FAILS (5%).
Where it does not hold, and why: the converged curve is not E + A N^-alpha down to the smallest fitted widths. The
local exponent -d log(L - noise^2) / d log N between widths 24 and 64 is nearly constant at each seed (1.10-1.19,
1.00-1.04, 1.08-1.13 at seeds 0, 1, 2; the teacher depends on the seed), but between widths 12 and 16 it is 1.22,
0.87, 1.41: the smallest nets sit off the asymptotic law (which teacher units a 12-unit net captures, and how well Adam
optimises it, varies: width-12 seed-mean standard error 1-3%, scatter 3-9%). With E free and four points
that offset becomes spurious curvature (seed 2: E = 20 x the noise floor) or a wrong exponent with E pinned at 0
(seed 1), and the two held-out widths miss by 5-19%. More seeds would shrink but not remove this (seed 2's 12 -> 16
exponent is ~3 standard errors off the rest; the held-out standard errors are ~1%);
training-limitation at a fixed step count (the failure of the previous recipe: -10% at 3000 steps, +3% / +14% at
6000 steps, widths 8 ... 256, noise 0.05) is addressed by the convergence check, but that check is weak with 8 seeds:
its paired standard errors are 0.2-2%, so it passes drifts of ~2% (seed 2, widths 32-64: -2.0%, -2.1%, -1.4%; its
criterion 0.57% against the 1% tolerance); such a drift, if real, biases the held-out points low, the sign of the
misses at seeds 1 and 2, but is too small to explain seed 2's -19%.
What was tried: widths 8 ... 48 (width 8 is further off the law: 8 -> 12 exponent 0.93; converged at 24000 steps,
seed 0: -3.0% / -5.5%, fails); noise 0.05 (floor 0.0025; the fit on widths 8 ... 24 then pins E at 0 and the larger
widths lie 6-16% above it); target amplitudes k^-1 (the curve is not a power law at all: -7% / -34%); lr 0.01 (slower
to converge than 0.03); batch 1024 with lr 0.03 or 0.1 (no faster per CPU second); fitted widths 24 ... 64 with
96 and 128 held out (24000 steps, no convergence run; 75 s CPU for the two new widths alone): seed 0 +8.2% / +36%,
seed 1 +1.8% / +14%: width 128 gains only 7-10% over width 96 (local exponent ~0.3 against ~1.1 below), most likely
training-limited again (steps to convergence grow with width), so the law is not shown there either.
muP students (``parametrization="mup"``, base width 24: readout init and Adam lr x 24 / width, so every width
trains in the same dynamics; widths 24 ... 128, seed 0) do not remove the training limit: at 8000 steps doubling
the schedule still lowers the loss by 3-20% (most at the largest widths), at 24000 steps by -0.4, -2.0, -0.8, -2.2,
-4.9, -4.2% (96 and 128 not converged); the fit on 24 ... 64 (E 0, alpha 1.13) then under-predicts 96 / 128 by
4.5% / 11.6%. The steps a model needs to converge grow with its size whatever the parametrization. What would be
needed: fitted widths all in the asymptotic regime (>= 24) with held-out widths each trained to verified convergence
(schedules growing with width, >= 48000 steps at width 128: ~10x the quick budget) and more seeds for a convergence
check that resolves 1%.
A fixed budget instead of convergence (Kaplan et al.'s L(N, S) = (N_c / N)^alpha_N + (S_c / S)^alpha_S, eq. 1.6,
makes the offset E the training-limited term at a fixed S): muP students (base width 16), 3000 steps, widths 16 ...
512 (seed 0, 54 s): with the fit on 16 ... 128 (E 4.5e-4, alpha 1.06), widths 256 / 512 measure 0.00093 / 0.00072,
+5.0% / +9.9% above the prediction, inside the 95% intervals but FAILING the 5% bar: the wider nets gain less than the
additive form allows (their loss still falls 38-42% when the 1500-step schedule is doubled, against 22-34% for the
fitted widths), so at a fixed budget the two terms are not additive here.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from pydantic import Field, field_validator

from lmech.config import LawConfig, ascending
from lmech.core import DATA, Evaluation, Law, Prediction, Row, RunRecord, RunResult, RunSpec, Threshold, generator
from lmech.laws import scaling_tasks as task
from lmech.parametrize import parametrization
from lmech.train import torch_threads

ID = "width-scaling"
CONVERGED = Threshold(
    "converged: largest change of a width's seed-mean loss when the schedule is doubled, beyond 2 standard errors",
    0.01,
    "L(N) is the loss at convergence (Kaplan et al. 2020); a training-limited bias over ~1% would eat a fifth of the "
    "5% bar; the seeds' scatter (standard error of the change, reported) is not a training limit",
)


class Config(LawConfig):
    widths: list[int] = Field(
        [12, 16, 24, 32, 48, 64], min_length=6, description="hidden widths (the 2 largest held out)"
    )
    seeds: int = Field(8, ge=2, le=64, description="networks per width")
    dim: int = Field(8, ge=1, le=64, description="input dimension")
    features: int = Field(2048, ge=1, description="ReLU units of the target")
    decay: float = Field(0.75, gt=0, description="target amplitudes k^-decay")
    noise: float = Field(0.01, ge=0, description="label noise std")
    pool: int = Field(65536, ge=256, description="training samples (shared by all widths)")
    batch: int = Field(256, ge=1, description="minibatch size")
    steps: int = Field(24000, ge=20, description="Adam steps (a second schedule of steps / 2 checks convergence)")
    lr: float = Field(0.03, gt=0, description="Adam step size, decayed linearly to 0 (at the base width under muP)")
    parametrization: str = Field("sp", pattern="^(sp|mup)$", description="sp, or mup with base_width")
    base_width: int | None = Field(None, ge=1, description="muP's base width (default: the smallest width)")
    test: int = Field(16384, ge=256, description="test inputs")
    bootstrap: int = Field(200, ge=10, le=2000, description="bootstrap refits")
    level: float = Field(0.95, gt=0, lt=1, description="level of the prediction interval")

    @field_validator("widths")
    @classmethod
    def _ascending(cls, widths: list[int]) -> list[int]:
        return ascending(widths, "widths")


def plan(cfg: Config) -> list[tuple[RunSpec, ...]]:
    """One job per (schedule, width), schedules of ``steps`` and ``steps // 2``: the seeds train as one ensemble."""
    shared = cfg.model_dump(exclude={"widths", "seeds", "bootstrap", "level", "steps", "parametrization", "base_width"})
    if cfg.parametrization != "sp":  # SP configs keep their keys (and their stored runs)
        shared |= {"parametrization": cfg.parametrization, "base_width": cfg.base_width or min(cfg.widths)}
    return [
        tuple(RunSpec(ID, LAW.version, {**shared, "steps": s, "width": w, "member": m}) for m in range(cfg.seeds))
        for s in (cfg.steps, cfg.steps // 2)
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

        table, base = parametrization(c.get("parametrization", "sp")), c.get("base_width")
        params = task.students(c["dim"], c["width"], members, c["seed"], table, base)
        params, _ = task.fit_ensemble(params, batches, c["steps"], task.student_rates(c["lr"], c["width"], table, base))
        x_test, y_test = task.test_set(
            c["seed"], c["dim"], c["test"], task.teacher(c["seed"], c["dim"], c["features"], c["decay"])
        )
        losses = task.mean_squared_error(params, x_test, y_test) + c["noise"] ** 2
    seconds = (time.perf_counter() - start) / len(configs)
    n = float(task.parameter_count(c["dim"], c["width"]))
    return [
        RunResult("done", [Row(c["steps"], "test_loss", float(v)), Row(c["steps"], "parameters", n)], seconds)
        if np.isfinite(float(v))
        else RunResult("diverged", [], seconds, c["steps"])
        for v in losses
    ]


def evaluate(cfg: Config, records: Sequence[RunRecord]) -> Evaluation:
    widths = sorted(cfg.widths)
    long = task.losses_by(records, "width", widths, cfg.steps)
    short = task.losses_by(records, "width", widths, cfg.steps // 2)
    change, se = task.relative_change(short, long)
    n = [task.parameter_count(cfg.dim, w) for w in widths]
    ex = task.extrapolate(n, long, cfg.bootstrap, cfg.level, cfg.seed)
    regime = (
        f"widths {widths} (N {n}), {cfg.seeds} seeds each, {cfg.steps} Adam steps (lr {cfg.lr:g}, batch {cfg.batch}) "
        f"on {cfg.pool} samples; target: {cfg.features} ReLU units, amplitudes k^-{cfg.decay:g}, d = {cfg.dim}, "
        f"label noise {cfg.noise:g}; convergence: L({cfg.steps} steps) / L({cfg.steps // 2} steps) - 1 "
        "(+- standard error) per width "
        + ", ".join(f"{c:+.1%} +- {e:.1%}" for c, e in zip(change, se, strict=True))
        + "; "
        + task.describe(ex, "N")
    )
    prediction = Prediction(
        "test loss of the two largest models",
        ex.band.point.tolist() if ex.band is not None else None,
        "L(N) = E + A N^-alpha fitted to the smaller models (Huber on log L, bootstrap intervals)",
        "each model at convergence (doubling its schedule moves its loss < 1% beyond noise); pool >= 100 N; "
        "the smaller models already in the power-law regime",
        "Kaplan et al. 2020, eq. 1.1 (L(N) at convergence); Hoffmann et al. 2022, eq. 2; Bahri et al. 2021",
    )
    return Evaluation(
        [CONVERGED(float(np.max(np.abs(change) - 2 * se))), *task.checks(ex)],
        regime,
        task.figure(
            ex, "width-scaling: L(N) at convergence, fitted on the smaller models, extrapolated", "parameters N"
        ),
        prediction,
        "seed-mean test loss E_x (f - f*)^2 + noise^2 on fresh inputs at the end of the schedule",
    )


LAW = Law(
    id=ID,
    pillar=3,
    claim="Test loss at convergence against parameter count follows L = E + A N^-alpha: a fit on the smaller MLPs "
    "predicts the two largest within 5% and inside its 95% interval.",
    reference="Kaplan et al. 2020 'Scaling laws for neural language models'; Hestness et al. 2017; Bahri et al. 2021 "
    "'Explaining neural scaling laws'; Hoffmann et al. 2022",
    config=Config,
    plan=plan,
    execute=execute,
    evaluate=evaluate,
    comparisons=[CONVERGED, task.RELATIVE],
    scales={"quick": {}, "full": {"seeds": 16, "steps": 48000}},
    quick_seconds=150.0,
)
