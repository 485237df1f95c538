"""width-scaling: test loss at convergence against parameter count follows L(N) = E + A N^-alpha, well enough to
extrapolate.

Claim (Kaplan et al. 2020, eq. 1.1, L(N) for models trained to convergence on plentiful data, with an offset as in
Hoffmann et al. 2022, eq. 2; Hestness et al. 2017; Bahri et al. 2021, "resolution-limited" regime: the model's size
is the bottleneck): a power law with offset fitted to the four smaller models predicts the two larger ones within 5%
and inside its 95% interval.
Task (lmech.laws.scaling_tasks): Gaussian inputs in d = 16; a target that sums 2048 random ReLU units with equal
amplitudes and random signs (``decay=0``: close to a sample of the arc-cosine Gaussian process; no finite width
represents it, and no single unit carries a visible share of its variance), label noise 0.01. Students:
one-hidden-layer ReLU MLPs of widths 16 ... 96 (N = (d + 2) width + 1 = 289 ... 1729), Adam at lr 0.01 with the
stable-then-decay schedule (constant, then falling linearly to 0 over the last 25% of the run: Hu et al. 2024's WSD;
Hagele et al. 2024), batches of 256, 48000 steps, on a pool of 262144 noisy samples (>= 150 N: the pool's
overfitting term ~L N / P stays under 0.7%), 8 seeds per width; every width of every seed trains in one pass
(scaling_tasks.stack_widths: the units of all widths side by side, each width reading out its own; member m of
every width sees the same minibatch at step t); loss = exact-noise test loss on 16384 fresh inputs.
Verdict: (0) convergence: every width is also trained for half the schedule (stable 18000, cooldown 6000 steps: the
same schedule shape, and the same first 18000 steps, so the two runs cost 54000 steps, not 72000,
``scaling_tasks.stable_then_decay``); doubling the schedule must move no width's seed-mean loss by more than 1%
beyond twice its standard error (paired by member; so L is the converged L(N), not L(N, S) at a fixed S);
``power_law`` fitted (lmech.fit, every seed a row, bootstrap over rows) to the four smallest widths; each of the two
largest widths' seed-mean loss (1) inside the fit's 95% interval and (2) within 5% of the point prediction.
Measured (quick, version 4, on a 2-core AMD EPYC: 83-120 s, over the 60 s quick aim); change = L(48000) /
L(24000) - 1, the largest |change| - 2 se; fits with 95% bootstrap intervals; held out = widths 64 / 96:
  seed | converged      | E [95%]                  | alpha [95%]         | held out, vs the fit          | verdict
  0    | 0.44% (holds)  | 0.0095 [0.0052, 0.0118]  | 0.63 [0.51, 0.72]   | +0.6% / +0.4%, both inside    | HOLDS
  1    | 0.31% (holds)  | 0.0172 [0.0093, 0.0272]  | 0.70 [0.54, 1.21]   | +0.8% / -0.5%, both inside    | HOLDS
  2    | 0.45% (holds)  | 0.0245 [0.0028, 0.0307]  | 0.83 [0.41, 1.17]   | -0.7% / -3.6%, both inside    | HOLDS
  3    | 0.62% (holds)  | 0.0087 [0.0035, 0.0178]  | 0.64 [0.48, 1.66]   | +1.6% / +1.5%, both inside    | HOLDS
  4    | 0.96% (holds)  | 0.0147 [0.0131, 0.0168]  | 0.98 [0.85, 1.23]   | -1.2% / -4.7%, 96 outside     | FAILS
At seed 4 width 24 still falls 2.2% +- 0.6% on doubling (every member by 0.3-5%; 0.04% inside the bar), and the curve
bends within the fitted range: the fit reads the bend as an offset close to the curve (E 0.0147, 84% of L(96)) and width
96 lands 4.7% below it, outside its interval. Full mode at seed 4 (16 seeds, 96000 steps, ~10 min) is converged (every
width within 0.8% +- 0.3% on doubling) and fails the same way, by more (-1.8% / -6.0%, width 96 outside): the failure is
the form on this range, not training or noise. Its local exponents settle from 0.57 (widths 16-24) through 0.42, 0.37,
0.33 to 0.32 (64-96): past width ~32 L(N) is close to a pure power law, and the pre-asymptotic narrowest width makes a
free E + A N^-alpha on a 3x range bend toward an offset that is not there. Widths 24 ... 128 (quick, 130-140 s) hold at
seed 4 (-2.0% / -4.1%, inside the wider interval) and seed 0 (-0.1% / -1.3%); the default keeps 16 ... 96 for its cost
and reports seed 4 as it is.
Why stable-then-decay (measured at seed 0 on this CPU, 8 members): with the linear decay of version 3 (48000 and a
separate 24000-step run, 72000 steps, 126 s) width 32 fell 1.6% +- 0.3% on doubling and the verdict failed
convergence by 0.03%; probes of a constant step size with a 12000-step cooldown reached the linear decay's loss at
the narrow widths in half the steps (width 32: 0.02776 at 24000 against 0.02804) and moved them 0.5% from 24000 to
48000, while widths 64-96 stopped improving at lr 0.01 (width 96 0.0188, 1.2% above the linear decay's 0.01858): SP
Adam's best step size falls with width. (1 + t / 4000)^-1/2 with weight averaging (0.999) moved every width ~1% per
doubling. Variants at seed 4: lr 0.02 (SP) makes the wide nets worse the longer they train (width 96 +6.4% on
doubling; fails); muP (base width 16, lr 0.02) converges (0.8%) but bends the curve more (-8.6% at width 96);
batches of 128 with 96000 steps hold (0.9%, -1.7% / -2.7%) at 153 s, with width 96 rising 1.4% on doubling.
Version 3 (linear decay, 48000 steps; on an earlier 2-core CPU, whose float path differs): seeds 0, 2, 3, 4 held
(held out -0.2/-0.1, +0.2/-1.7, +0.2/-0.8, -0.2/-1.8%); seed 1 failed convergence (width 32 -2.1% +- 0.4%, 1.21%)
with the extrapolation inside (+1.8% / +2.2%); full mode (16 seeds, 96000 steps) held at seed 1.
The offset E is not the noise floor (1e-4): it is the fit's reading of the curve's slowly falling local exponent (seed
0: 0.48 ... 0.34 from width 16 to 96; (L - E) / L is still 28-59% at the held-out widths), which is why a free offset is
needed: with E pinned at 0 the fits of the d = 8 runs below miss. What failed where in version 3 and before: (a) at seed
1 the criterion of convergence (width 32 still falls 2.1% +- 0.4% on doubling) although the extrapolation holds; (b) lr
0.02, 24000 steps (40 s): holds at seeds 0, 2, 3, fails convergence at seed 1 (1.2%) and everything at seed 4 (widths
24, 32 still fall 2.1-2.7%; held out -1.1% / -4.4%, outside): an unconverged fitted width bends the fit; also, at lr
0.02 the widest nets stop improving before the narrow ones (width 96 +0.0% on doubling, 3% above its lr-0.01 loss: SP
Adam's best step size falls with width); (c) widths 8 ... 48 (24000 steps): widths 8 and 12 are pre-asymptotic (local
exponents 0.99 and 0.90 against 0.48 above width 16, seed 0) and the fit misses by -12 to -15%.
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
    lr: float = Field(0.01, gt=0, description="Adam step size before the cooldown (at the base width under muP)")
    cooldown: float = Field(
        0.25, gt=0, le=1, description="fraction of a run over which the step size falls linearly to 0 at its end"
    )
    parametrization: str = Field("sp", pattern="^(sp|mup)$", description="sp, or mup with base_width")
    base_width: int | None = Field(None, ge=1, description="muP's base width (default: the smallest width)")
    test: int = Field(16384, ge=256, description="test inputs")
    bootstrap: int = Field(200, ge=10, le=2000, description="bootstrap refits")
    level: float = Field(0.95, gt=0, lt=1, description="level of the prediction interval")

    @field_validator("widths")
    @classmethod
    def _ascending(cls, widths: list[int]) -> list[int]:
        return ascending(widths, "widths")


MEMBERS_PER_JOB = 8  # quick mode's seeds: one job on all the cores; full mode's 16 split into 2 parallel jobs


def plan(cfg: Config) -> list[tuple[RunSpec, ...]]:
    """One job per group of 8 members: every width, for both schedules (``steps`` and ``steps // 2``), trains as one
    ensemble whose two runs share their constant-step phase (``scaling_tasks.stable_then_decay``). A member's runs
    do not depend on its group (its initialisation and batches come from its own streams)."""
    shared = cfg.model_dump(exclude={"widths", "seeds", "bootstrap", "level", "steps", "parametrization", "base_width"})
    if cfg.parametrization != "sp":  # SP configs keep their keys (and their stored runs)
        shared |= {"parametrization": cfg.parametrization, "base_width": cfg.base_width or min(cfg.widths)}
    return [
        tuple(
            RunSpec(ID, LAW.version, {**shared, "steps": s, "width": w, "member": m})
            for s in (cfg.steps, cfg.steps // 2)
            for w in cfg.widths
            for m in range(first, min(first + MEMBERS_PER_JOB, cfg.seeds))
        )
        for first in range(0, cfg.seeds, MEMBERS_PER_JOB)
    ]


@functools.lru_cache(maxsize=2)
def _pool(seed: int, dim: int, features: int, decay: float, noise: float, size: int):
    target = task.teacher(seed, dim, features, decay)
    g = generator(seed, DATA, 97)
    x = torch.randn(size, dim, generator=g)
    return x, target(x) + noise * torch.randn(size, generator=g)


def execute(configs: Sequence[Mapping[str, Any]]) -> list[RunResult]:
    """Train the job's widths x members together (lmech.laws.scaling_tasks.stack_widths), one run per schedule
    length, the runs sharing their constant-step phase; member m of every width sees the same minibatch of step t
    (common random numbers across widths and across the runs' lengths), members see independent streams."""
    start = time.perf_counter()
    c = configs[0]
    widths = sorted({cc["width"] for cc in configs})
    members = sorted({cc["member"] for cc in configs})
    lengths = sorted({cc["steps"] for cc in configs})
    if len(configs) != len(widths) * len(members) * len(lengths):
        raise ValueError("a width-scaling job holds every (steps, width, member) triple once")
    with torch_threads(None):  # the executor's share of the cores (measured 1.5x faster on 2 threads than on 1)
        x, y = _pool(c["seed"], c["dim"], c["features"], c["decay"], c["noise"], c["pool"])
        gens = [functools.partial(generator, c["seed"], DATA, 96, m) for m in members]
        batches = task.indexed_batches(x, y, gens, c["batch"])
        table, base = parametrization(c.get("parametrization", "sp")), c.get("base_width")
        params = task.stack_widths([task.students(c["dim"], w, members, c["seed"], table, base) for w in widths])
        rates = task.stack_rates([task.student_rates(c["lr"], w, table, base) for w in widths], widths)
        sel = task.readout_selection(widths)
        models = task.stable_then_decay(
            params, batches, lengths, rates, c["cooldown"], grad_fn=functools.partial(task.joint_gradients, sel=sel)
        )
        x_test, y_test = task.test_set(
            c["seed"], c["dim"], c["test"], task.teacher(c["seed"], c["dim"], c["features"], c["decay"])
        )
        model = functools.partial(task.joint_forward, sel=sel)
        losses = [task.mean_squared_error(q, x_test, y_test, model=model) + c["noise"] ** 2 for q in models]  # (E, S)
    seconds = (time.perf_counter() - start) / len(configs)
    results = []
    for cc in configs:
        v = float(losses[lengths.index(cc["steps"])][members.index(cc["member"]), widths.index(cc["width"])])
        n = float(task.parameter_count(c["dim"], cc["width"]))
        rows = [Row(cc["steps"], "test_loss", v), Row(cc["steps"], "parameters", n)]
        results.append(
            RunResult("done", rows, seconds) if np.isfinite(v) else RunResult("diverged", [], seconds, cc["steps"])
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
        f"widths {widths} (N {n}), {cfg.seeds} seeds each, {cfg.steps} Adam steps (lr {cfg.lr:g}, falling "
        f"linearly to 0 over the last {cfg.cooldown:.0%} of a run; batch {cfg.batch}) "
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
    version=4,
    scales={"quick": {}, "full": {"seeds": 16, "steps": 96000}},
    quick_seconds=110.0,
)
