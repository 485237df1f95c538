"""width-scaling: test loss at convergence against parameter count follows L(N) = E + A N^-alpha, well enough to
extrapolate.

Claim (Kaplan et al. 2020, eq. 1.1, L(N) for models trained to convergence on plentiful data, with an offset as in
Hoffmann et al. 2022, eq. 2; Hestness et al. 2017; Bahri et al. 2021, "resolution-limited" regime: the model's size
is the bottleneck): a power law with offset fitted to the four smaller models predicts the two larger ones within 5%
and inside its 95% interval.
Task (lmech.laws.scaling_tasks): Gaussian inputs in d = 16; a target that sums 2048 random ReLU units with equal
amplitudes and random signs (``decay=0``: close to a sample of the arc-cosine Gaussian process; no finite width
represents it, and no single unit carries a visible share of its variance), label noise 0.01. Students:
one-hidden-layer ReLU MLPs of widths 16 ... 96 (N = (d + 2) width + 1 = 289 ... 1729), Adam (lr 0.01 decayed linearly
to 0, batches of 256, 48000 steps) on a pool of 262144 noisy samples (>= 150 N: the pool's overfitting term ~L N / P
stays under 0.7%), 8 seeds per width; every width of every seed trains in one pass (scaling_tasks.stack_widths: the
units of all widths side by side, each width reading out its own; member m of every width sees the same batch
stream), so a schedule is one job; loss = exact-noise test loss on 16384 fresh inputs.
Verdict: (0) convergence: every width is also trained for half the schedule; doubling the schedule must move no
width's seed-mean loss by more than 1% beyond twice its standard error (paired by member; so L is the converged L(N),
not L(N, S) at a fixed S); ``power_law`` fitted (lmech.fit, every seed a row, bootstrap over rows) to the four
smallest widths; each of the two largest widths' seed-mean loss (1) inside the fit's 95% interval and (2) within 5%
of the point prediction.
Measured (quick, version 3; 80 s on 2 threads, over the 60 s quick aim: a converged L(N) needs the 48000-step
schedule and 8 seeds, below); change = L(48000) / L(24000) - 1, the largest |change| - 2 se; fits with 95% bootstrap
intervals; held out = widths 64 / 96:
  seed | converged      | E [95%]                  | alpha [95%]         | held out, vs the fit        | verdict
  0    | 0.55% (holds)  | 0.0086 [0.0026, 0.0135]  | 0.60 [0.47, 0.86]   | -0.2% / -0.1%, both inside  | HOLDS
  1    | 1.21% (FAILS)  | 0.0113 [0, 0.0261]       | 0.58 [0.42, 1.11]   | +1.8% / +2.2%, both inside  | FAILS (conv.)
  2    | 0.80% (holds)  | 0.0166 [0.0086, 0.0255]  | 0.59 [0.46, 0.84]   | +0.2% / -1.7%, both inside  | HOLDS
  3    | 0.75% (holds)  | 0.0087 [0.0019, 0.0154]  | 0.62 [0.43, 1.13]   | +0.2% / -0.8%, both inside  | HOLDS
  4    | 0.90% (holds)  | 0.0116 [0.0091, 0.0150]  | 0.77 [0.66, 1.05]   | -0.2% / -1.8%, both inside  | HOLDS
(numbers as ``lmech check width-scaling --seed N`` gives them on 2 threads; on 1 thread seeds 0-3 are bitwise the
same and seed 4 differs by float rounding: 0.86%, -0.5% / -2.3%.) On an AMD EPYC, whose float path differs (the same
code at d617bd6 and after), seed 0 is another realisation: width 32 still falls 1.6% +- 0.3% on doubling, 1.0% beyond
2 se (FAILS convergence, as seed 1 above), E 0.0088 [0.0016, 0.0123], alpha 0.62 [0.45, 0.75], held out +0.3% / +1.1%,
both inside: the quick schedule's convergence margin is ~0.5% at the best seeds, so the quick verdict of a seed is at
the float path's mercy.
Full mode (16 seeds, 96000 steps; 278 s) at seed 1: converged (0.24%), E 0.018 [0, 0.021], alpha 0.72 [0.41, 0.81],
held out +0.2% / -1.9%, inside: HOLDS, so seed 1's quick failure is the schedule's length.
The offset E is not the noise floor (1e-4): it is the fit's reading of the curve's slowly falling local exponent (seed
0: 0.48 ... 0.34 from width 16 to 96; (L - E) / L is still 28-59% at the held-out widths), which is why a free offset is
needed: with E pinned at 0 the fits of the d = 8 runs below miss. What fails where: (a) at seed 1 the criterion of
convergence (width 32 still falls 2.1% +- 0.4% on doubling) although the extrapolation holds; (b) lr 0.02, 24000 steps
(40 s): holds at seeds 0, 2, 3, fails convergence at seed 1 (1.2%) and everything at seed 4 (widths 24, 32 still fall
2.1-2.7%; held out -1.1% / -4.4%, outside): an unconverged fitted width bends the fit; also, at lr 0.02 the widest
nets stop improving before the narrow ones (width 96 +0.0% on doubling, 3% above its lr-0.01 loss: SP Adam's best
step size falls with width); (c) widths 8 ... 48 (24000 steps): widths 8 and 12 are pre-asymptotic (local exponents
0.99 and 0.90 against 0.48 above width 16, seed 0) and the fit misses by -12 to -15%.
Before (versions 1-2, d = 8): the k^-0.75 teacher (one unit near k ~ 30-50 carries about as much variance as the loss
there, so one teacher's L(N) has unit-sized steps: local exponents 0.91, 0.90, 1.00, 1.20, 0.91 at seed 1) and Adam
lr 0.03 (kills 15-18% of the width-96 units by 48000 steps) made the law fail at seeds 0-2 by 5-19%; equal amplitudes
in d = 8 (widths 16 ... 96, lr 0.01, 48000 steps) is smooth but its local exponent drops only at the largest width
(0.60, 0.64, 0.62, 0.60, 0.53 at seed 0; 96000 steps or lr 0.005 leave this unchanged), so the fit pins E at 0 and
width 96 lands 3.6% above it, outside the 1.5%-wide interval (seed 0; seed 1 held); in d = 4 the local exponents
wobble (0.92, 0.97, 0.82, 0.98, 0.82: -7% / -12%). One teacher per seed, per-member teachers (losses spread 26-53%),
smooth tanh targets (not converged) and random features (30-65% scatter between feature draws) were also tried.
muP students and fixed-budget L(N, S) fits (Kaplan et al. eq. 1.6) at d = 8 missed by 5-12%.
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
        [16, 24, 32, 48, 64, 96], min_length=6, description="hidden widths (the 2 largest held out)"
    )
    seeds: int = Field(8, ge=2, le=64, description="networks per width")
    dim: int = Field(16, ge=1, le=64, description="input dimension")
    features: int = Field(2048, ge=1, description="ReLU units of the target")
    decay: float = Field(0.0, ge=0, description="target amplitudes k^-decay (0: equal)")
    noise: float = Field(0.01, ge=0, description="label noise std")
    pool: int = Field(262144, ge=256, description="training samples (shared by all widths)")
    batch: int = Field(256, ge=1, description="minibatch size")
    steps: int = Field(48000, ge=20, description="Adam steps (a second schedule of steps / 2 checks convergence)")
    lr: float = Field(0.01, gt=0, description="Adam step size, decayed linearly to 0 (at the base width under muP)")
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
    """One job per schedule (``steps`` and ``steps // 2``): every width of every seed trains in it as one ensemble."""
    shared = cfg.model_dump(exclude={"widths", "seeds", "bootstrap", "level", "steps", "parametrization", "base_width"})
    if cfg.parametrization != "sp":  # SP configs keep their keys (and their stored runs)
        shared |= {"parametrization": cfg.parametrization, "base_width": cfg.base_width or min(cfg.widths)}
    return [
        tuple(
            RunSpec(ID, LAW.version, {**shared, "steps": s, "width": w, "member": m})
            for w in cfg.widths
            for m in range(cfg.seeds)
        )
        for s in (cfg.steps, cfg.steps // 2)
    ]


@functools.lru_cache(maxsize=2)
def _pool(seed: int, dim: int, features: int, decay: float, noise: float, size: int):
    target = task.teacher(seed, dim, features, decay)
    g = generator(seed, DATA, 97)
    x = torch.randn(size, dim, generator=g)
    return x, target(x) + noise * torch.randn(size, generator=g)


def execute(configs: Sequence[Mapping[str, Any]]) -> list[RunResult]:
    """Train the job's widths x members together (lmech.laws.scaling_tasks.stack_widths): member m of every width
    sees the same minibatch stream (common random numbers across widths), members see independent streams."""
    start = time.perf_counter()
    c = configs[0]
    widths = sorted({cc["width"] for cc in configs})
    members = sorted({cc["member"] for cc in configs})
    if len(configs) != len(widths) * len(members):
        raise ValueError("a width-scaling job holds every (width, member) pair once")
    with torch_threads(None):  # the executor's share of the cores (measured 1.5x faster on 2 threads than on 1)
        x, y = _pool(c["seed"], c["dim"], c["features"], c["decay"], c["noise"], c["pool"])
        gens = [generator(c["seed"], DATA, 96, m) for m in members]

        def batches(_t: int):
            idx = torch.cat([torch.randint(0, len(x), (c["batch"],), generator=g) for g in gens])  # (E b,)
            return x.index_select(0, idx).view(len(gens), c["batch"], -1), y.index_select(0, idx).view(len(gens), -1)

        table, base = parametrization(c.get("parametrization", "sp")), c.get("base_width")
        params = task.stack_widths([task.students(c["dim"], w, members, c["seed"], table, base) for w in widths])
        rates = task.stack_rates([task.student_rates(c["lr"], w, table, base) for w in widths], widths)
        sel = task.readout_selection(widths)
        params, _ = task.fit_ensemble(
            params, batches, c["steps"], rates, grad_fn=functools.partial(task.joint_gradients, sel=sel)
        )
        x_test, y_test = task.test_set(
            c["seed"], c["dim"], c["test"], task.teacher(c["seed"], c["dim"], c["features"], c["decay"])
        )
        losses = (
            task.mean_squared_error(params, x_test, y_test, model=functools.partial(task.joint_forward, sel=sel))
            + c["noise"] ** 2
        )  # (E, S)
    seconds = (time.perf_counter() - start) / len(configs)
    results = []
    for cc in configs:
        v = float(losses[members.index(cc["member"]), widths.index(cc["width"])])
        n = float(task.parameter_count(c["dim"], cc["width"]))
        rows = [Row(c["steps"], "test_loss", v), Row(c["steps"], "parameters", n)]
        results.append(
            RunResult("done", rows, seconds) if np.isfinite(v) else RunResult("diverged", [], seconds, c["steps"])
        )
    return results


def evaluate(cfg: Config, records: Sequence[RunRecord]) -> Evaluation:
    widths = sorted(cfg.widths)
    long = task.losses_by(records, "width", widths, cfg.steps)
    short = task.losses_by(records, "width", widths, cfg.steps // 2)
    change, se = task.relative_change(short, long)
    n = [task.parameter_count(cfg.dim, w) for w in widths]
    ex = task.extrapolate(n, long, cfg.bootstrap, cfg.level, cfg.seed)
    regime = (
        f"widths {widths} (N {n}), {cfg.seeds} seeds each, {cfg.steps} Adam steps (lr {cfg.lr:g}, batch {cfg.batch}) "
        f"on {cfg.pool} samples; target: {cfg.features} ReLU units, {task.amplitudes(cfg.decay)}, d = {cfg.dim}, "
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
    version=3,
    scales={"quick": {}, "full": {"seeds": 16, "steps": 96000}},
    quick_seconds=80.0,
)
