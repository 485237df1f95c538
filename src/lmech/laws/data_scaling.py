"""data-scaling: excess test loss at the early-stopping optimum against training-set size follows
L(D) = E + A D^-alpha, well enough to extrapolate.

Claim (Kaplan et al. 2020, eq. 1.2: L(D) of a large model trained with early stopping; with an offset as in Hoffmann
et al. 2022; Hestness et al. 2017; Bahri et al. 2021): a power law fitted to the smaller datasets predicts the larger
ones, the two held-out D inside the fit's 95% interval and within 5% of its point prediction (width-scaling's
criterion, as the issue asks).
Task: inputs x = s * z, z ~ N(0, I_32), with covariance eigenvalues lambda_i ~ i^-1 (``scaling_tasks.input_scales``:
a power-law data spectrum, the setting in which Bahri et al. 2021 and Maloney, Roberts & Sully 2022 derive power-law
learning curves), E |x|^2 = 32; target: 2048 random ReLU units with equal amplitudes (``scaling_tasks.teacher``),
standardised on these inputs; label noise 0.25. Model: one fixed one-hidden-layer ReLU MLP of width 256 (N 8705).
For each D in 2048, 3072, 4096, 6144, 8192, 12288 (fit on a 3x range, held out at 1.33x and 2x beyond it), 16
members (40 full), member m trained on the first D samples of its own stream (nested training sets); Adam at lr 0.01
(1 + t / 500)^-1/2, batches of 256, 1600 steps at D 12288 and ~ sqrt(D) below (800 at D 2048), the weights averaged
(EMA, decay 0.99); the kept model is the average at its best loss on 8192 noisy validation samples checked every 100
steps (early stopping; D counts training samples only). Loss: the excess E_x (f - f*)^2 on 32768 scrambled Sobol
inputs shared by the members (the Bayes risk 0.0625 is exact and left out: added, it would make 5% a bar on the
noise).
Verdict: (0) convergence: the schedule ignores the run's length, so a run's first half is the shorter run; the best
model of the first half and of the whole run must differ by < 1% beyond 2 standard errors at every D (measured: 0.0%
at every D and seed; in probes twice as long the best model came at 20-25% of the run); ``power_law`` fitted to every
member's loss at the four smallest D by least squares on log L (Huber delta 1); each of the two largest D's
seed-mean loss (1) inside the fit's 95% bootstrap interval (members resampled as rows; the held-out means' standard
errors, 0.4-0.7%, are a tenth of the interval's width) and (2) within 5% of the point prediction.
Reported, not judged: measured / predicted - 1 with a paired 95% interval (``scaling_tasks.paired_discrepancy``, the
cluster bootstrap over members: their nested training sets tie their losses across D, so the interval carries the
fit's noise, the held-out means' noise and their correlation). It tests the form itself, and it sees its bias (below).

Measured (quick, 16 members, ~40 s on 2 cores), held out D 8192 / 12288, measured / predicted - 1 [paired interval at
D 12288]; every seed holds, every D at +0.0% in the convergence check:
  seed 0: -0.5% / -2.4% [-4.4, +0.3];  seed 1: -1.1% / -3.0% [-6.2, +1.5];  seed 2: -0.6% / -1.8% [-4.9, +0.7];
  seed 3: -0.7% / -2.0% [-3.8, +0.1];  seed 4: +0.3% / -1.0% [-3.8, +2.8];  seed 5: -0.8% / -1.0% [-5.7, +3.1].
Full (40 members, ~75 s when the quick run's 16 are stored, ~3 min alone): seed 0 -0.2% / -2.0% [-3.9, +0.4],
seed 1 -0.9% / -2.7% [-4.9, -0.2]; both hold.
Where the form is not exact (measured): the held-out points sit below the extrapolation at 11 of the 12 held-out
points, by 1.0-3.0% at 2x: a bias of the form, not the members' noise (the members spread 2-4%, their
means 0.4-1%). L(D) does not flatten onto the fitted E: E (0.019-0.054, 53-86% of L(12288)) is not the model's
floor. In probes of this recipe (the target standardised on isotropic inputs, so its scale differs; seed 0, 8
members), widths 256 and 512 give the same L at D 4096 / 16384 / 32768 (0.0562 / 0.0393 / 0.0339 against 0.0562 /
0.0393 / 0.0334), width 128 matches 256 within the members' noise at D 2048-6144 (seed 4), L(32768) = 0.0339 is
already under the E = 0.0354 fitted on D 2048-6144, and the local exponent falls slowly (0.48, 0.46, 0.42, 0.34,
0.30, 0.26, 0.24, 0.24, 0.20, 0.23 over 11 sizes from D 1024 to 32768) where E + A D^-alpha needs it to fall to 0.
So a free E fitted on a 3x range over-predicts the curve 2x beyond it by 1-3%: inside the 5% bar and the fit's
interval, which is why the fit's interval (what ``lmech.fit`` gives a user) is judged and the paired one reported;
the paired interval, which cancels the members' shared noise, resolves the bias at seed 1 with 40 members and
narrowly misses it elsewhere (upper ends +0.1 to +0.4% at seeds 0 and 3). Other spectra (quick, 16 members; the
two non-default spectra with 16384 validation samples): lambda_i ~ i^-0.5: seeds 0 / 1 / 3 at +0.1/-0.7,
-1.3/-3.5, -0.3/-1.1% (the same bias); i^-2: seed 0 -1.4/-4.8%, seed 3 -0.4/-1.2% with its runs not at their
optimum by half-run (convergence fails); isotropic inputs (d = 32, seed 0): +1.3% / +2.5%, the other sign (the
paired interval at D 8192, [+0.2, +2.5]%, resolves it): the curve flattens faster there, so the sign of the form's
bias follows the data spectrum (a reading from these seeds, not a theory).
Where it does not hold (versions 1-3, isotropic inputs in d = 4 and 8, noise 0.5 / 0.05, widths 64-512): the members
scatter 6-9% (against 2-4% here), and the recipe's own floor (unlimited data: 39-48% of L(12288) at d = 4, width 256,
5000 steps) bends L(D) by a teacher-dependent amount just past the fitted range. With 40 members, seeds 0-5 of
version 3 held out D 8192 / 12288 at -1.2/-0.8, +2.1/+5.7 (FAILS), +0.7/+1.4, -0.4/+0.3, -1.9/-4.7 (FAILS, and not
converged), +0.6/+1.4%; per-member teachers, noise 0.25, antithetic noise pairs and ridge control variates did not
rescue it. At d = 16 (isotropic) the curve steepens past D ~ 4096 at noise 0.01 (-13% / -31%) and sits on a
width-independent plateau at noise 0.5 (the staircase of kernel-like learning: degree-k harmonics need D ~ d^k; a
reading). The git history (versions 1-3 of this module) holds the full record.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from pydantic import Field, field_validator

from lmech.config import LawConfig, ascending
from lmech.core import (
    DATA,
    Evaluation,
    Law,
    Prediction,
    Row,
    RunRecord,
    RunResult,
    RunSpec,
    Threshold,
    generator,
)
from lmech.laws import scaling_tasks as task
from lmech.train import torch_threads

ID = "data-scaling"
CONVERGED = Threshold(
    "converged: largest change of a size's seed-mean loss between the best model of its run's first half and of the "
    "whole run, beyond 2 standard errors",
    0.01,
    "L(D) is the loss at the early-stopping optimum (Kaplan et al. 2020); a run too short to reach it biases the "
    "largest D first, and a bias over ~1% would eat a fifth of the 5% bar",
)


DELTA = 1.0  # Huber threshold on log residuals: least squares on log L (see the module docstring)


class Config(LawConfig):
    sizes: list[int] = Field(
        [2048, 3072, 4096, 6144, 8192, 12288], min_length=6, description="training-set sizes D (the 2 largest held out)"
    )
    width: int = Field(256, ge=1, le=4096, description="hidden width of the fixed model")
    seeds: int = Field(16, ge=2, le=64, description="networks (each with its own nested training sets) per size")
    dim: int = Field(32, ge=1, le=256, description="input dimension")
    spectrum: float = Field(1.0, ge=0, le=4, description="input covariance eigenvalues ~ i^-spectrum (0: isotropic)")
    features: int = Field(2048, ge=1, description="ReLU units of the target")
    decay: float = Field(0.0, ge=0, description="target amplitudes k^-decay (0: equal)")
    noise: float = Field(0.25, gt=0, description="label noise std (early stopping needs noise to stop on)")
    validation: int = Field(8192, ge=64, description="noisy validation samples for early stopping")
    every: int = Field(100, ge=1, description="steps between validation checks")
    batch: int = Field(256, ge=1, description="minibatch size (at most D)")
    steps: int = Field(
        1600, ge=20, description="Adam steps at the largest D; size D trains steps * sqrt(D / max D) (see run_steps)"
    )
    lr: float = Field(0.01, gt=0, description="Adam step size at step 0")
    tau: float = Field(500.0, gt=0, description="the step size decays as (1 + t / tau)^-1/2")
    average: float = Field(0.99, ge=0, lt=1, description="EMA decay of the weights (0: the iterate itself)")
    test: int = Field(32768, ge=256, description="test inputs (scrambled Sobol points, shared by the members)")
    bootstrap: int = Field(200, ge=10, le=2000, description="bootstrap refits")
    level: float = Field(0.95, gt=0, lt=1, description="level of the prediction interval")

    @field_validator("sizes")
    @classmethod
    def _ascending(cls, sizes: list[int]) -> list[int]:
        return ascending(sizes, "sizes", low=2)


def run_steps(size: int, largest: int, steps: int, every: int) -> int:
    """The run length of size D: steps * sqrt(D / largest D), rounded up to a multiple of 2 * every (so the run's
    half is a validation check; at least 2 checks). The early-stopping optimum comes later at larger D (measured in
    probes twice this long: at 20-25% of the run at every D), so the smaller D's shorter runs save compute without
    cutting their optimum."""
    return 2 * every * max(1, math.ceil(steps * math.sqrt(size / largest) / (2 * every)))


def plan(cfg: Config) -> list[tuple[RunSpec, ...]]:
    """One job per D: the seeds train as one ensemble, member m on the first D samples of its own stream."""
    shared = cfg.model_dump(exclude={"sizes", "seeds", "bootstrap", "level", "steps"})
    largest = max(cfg.sizes)
    jobs = [
        {**shared, "steps": run_steps(d, largest, cfg.steps, cfg.every), "pool": largest, "size": d} for d in cfg.sizes
    ]
    return [tuple(RunSpec(ID, LAW.version, {**job, "member": m}) for m in range(cfg.seeds)) for job in jobs]


@functools.lru_cache(maxsize=2)
def _held_out_sets(
    seed: int, dim: int, features: int, decay: float, spectrum: float, noise: float, validation: int, test: int
) -> tuple[torch.Tensor, ...]:
    """The noisy validation sample and the Sobol test sample (inputs, targets), shared by every D of a seed: made
    once per process, not once per job (their targets cost ~1 s of the teacher's float64 products per job)."""
    target, scales = task.teacher(seed, dim, features, decay, spectrum), task.input_scales(dim, spectrum)
    g = generator(seed, DATA, 94)
    x_val = torch.randn(validation, dim, generator=g) * scales
    y_val = target(x_val) + noise * torch.randn(validation, generator=g)
    return (x_val, y_val, *task.sobol_test_set(seed, dim, test, target, scales))


def execute(configs: Sequence[Mapping[str, Any]]) -> list[RunResult]:
    """Train one D's members together; each run records the test loss of its best model over the first half of its
    run and over the whole run (the schedule does not depend on the run's length, so the half is a shorter run)."""
    start = time.perf_counter()
    c = configs[0]
    d, ids, half = c["size"], [cc["member"] for cc in configs], c["steps"] // 2
    target = task.teacher(c["seed"], c["dim"], c["features"], c["decay"], c["spectrum"])
    scales = task.input_scales(c["dim"], c["spectrum"])
    with torch_threads(None):  # the executor's share of the cores (2 threads: 1.7x faster than 1 at d = 4)
        xs, ys = [], []
        for m in ids:  # nested: member m's training set at D is the first D samples of its own stream
            g = generator(c["seed"], DATA, 95, m)
            x = torch.randn(c["pool"], c["dim"], generator=g)[:d] * scales
            xs.append(x)
            ys.append(target(x) + c["noise"] * torch.randn(c["pool"], generator=g)[:d])
        x, y = torch.cat(xs), torch.cat(ys)  # (E D, dim), (E D,)
        x_val, y_val, x_test, y_test = _held_out_sets(
            c["seed"], c["dim"], c["features"], c["decay"], c["spectrum"], c["noise"], c["validation"], c["test"]
        )
        gens = [generator(c["seed"], DATA, 93, d, m) for m in ids]
        b, offsets = min(c["batch"], d), torch.arange(len(ids)).unsqueeze(1) * d

        def batches(_t: int):
            idx = (torch.stack([torch.randint(0, d, (b,), generator=g) for g in gens]) + offsets).view(-1)
            return x.index_select(0, idx).view(len(ids), b, -1), y.index_select(0, idx).view(len(ids), b)

        halfway = {}

        def keep_half(t: int, kept: task.Params) -> None:
            if t == half:
                halfway["loss"] = task.mean_squared_error(kept, x_test, y_test)

        params, _ = task.fit_ensemble(
            task.students(c["dim"], c["width"], ids, c["seed"]),
            batches,
            c["steps"],
            c["lr"],
            lambda p: task.mean_squared_error(p, x_val, y_val),
            c["every"],
            schedule=task.inverse_sqrt(c["tau"]),
            average=c["average"],
            on_check=keep_half,
        )
        losses = task.mean_squared_error(params, x_test, y_test)
    seconds = (time.perf_counter() - start) / len(configs)
    return [
        RunResult("done", [Row(half, "test_loss", float(h)), Row(c["steps"], "test_loss", float(v))], seconds)
        if np.isfinite(float(v)) and np.isfinite(float(h))
        else RunResult("diverged", [], seconds, c["steps"])
        for h, v in zip(halfway["loss"], losses, strict=True)
    ]


def _paired(ex: task.Extrapolation, cfg: Config) -> str:
    """The paired (cluster-bootstrap) discrepancy at the held-out D, reported and not judged: it resolves the form's
    own small bias (see the module docstring)."""
    if ex.result is None:
        return ""
    point, band = task.paired_discrepancy(ex, cfg.bootstrap, cfg.level, cfg.seed)
    held_out = sorted(cfg.sizes)[-task.HELD_OUT :]
    return f"; reported, not judged: measured / predicted - 1 with its paired {cfg.level:.0%} interval " + ", ".join(
        f"D {d}: {p:+.1%} [{lo:+.1%}, {hi:+.1%}]"
        for d, p, lo, hi in zip(held_out, point, band.low, band.high, strict=True)
    )


def evaluate(cfg: Config, records: Sequence[RunRecord]) -> Evaluation:
    sizes = sorted(cfg.sizes)
    long = task.losses_by(records, "size", sizes)  # each run's rows: the best model of its first half, of all
    short = task.losses_by(records, "size", sizes, row=0)
    change, se = task.relative_change(short, long)
    ex = task.extrapolate(sizes, long, cfg.bootstrap, cfg.level, cfg.seed, delta=DELTA)
    n = task.parameter_count(cfg.dim, cfg.width)
    lengths = [run_steps(d, sizes[-1], cfg.steps, cfg.every) for d in sizes]
    regime = (
        f"D {sizes}, width {cfg.width} (N {n}), {cfg.seeds} seeds each (nested training sets), Adam steps {lengths} "
        f"(lr {cfg.lr:g} (1 + t / {cfg.tau:g})^-1/2, batch min({cfg.batch}, D), weights averaged with EMA decay "
        f"{cfg.average:g}), early stopping on {cfg.validation} noisy validation samples every {cfg.every} steps; "
        f"target: {cfg.features} ReLU units, {task.amplitudes(cfg.decay)}, inputs in d = {cfg.dim} with covariance "
        f"eigenvalues ~ i^-{cfg.spectrum:g}, label noise {cfg.noise:g}; "
        "convergence: L(whole run) / L(first half) - 1 (+- standard error) per D "
        + ", ".join(f"{c:+.1%} +- {e:.1%}" for c, e in zip(change, se, strict=True))
        + "; "
        + task.describe(ex, "D")
        + _paired(ex, cfg)
    )
    prediction = Prediction(
        "excess test loss at the two largest D",
        ex.band.point.tolist() if ex.band is not None else None,
        "L(D) = E + A D^-alpha fitted to the smaller D (least squares on log L; intervals from the bootstrap over "
        "members)",
        "a fixed model large enough that L(D) does not depend on its width; each run at its early-stopping optimum "
        "(its first half's best model within 1% beyond noise); the smaller D already in the power-law regime",
        "Kaplan et al. 2020, eq. 1.2 (L(D) with early stopping); Hestness et al. 2017; Bahri et al. 2021",
    )
    return Evaluation(
        [
            CONVERGED(float(np.max(np.abs(change) - 2 * se))),
            *task.checks(ex),
        ],
        regime,
        task.figure(ex, "data-scaling: L(D) at early stopping, fitted on the smaller D, extrapolated", "samples D"),
        prediction,
        "seed-mean excess test loss E_x (f - f*)^2 on scrambled Sobol inputs (the label noise's noise^2, known "
        "exactly, left out: added, 5% would be a bar on the noise), at each run's best validation loss",
    )


LAW = Law(
    id=ID,
    pillar=3,
    claim="Excess test loss at the early-stopping optimum against training-set size follows L = E + A D^-alpha: a fit "
    "on the smaller D predicts the two largest inside its 95% interval and within 5%.",
    reference="Kaplan et al. 2020 'Scaling laws for neural language models'; Hestness et al. 2017; Bahri et al. 2021 "
    "'Explaining neural scaling laws'",
    config=Config,
    plan=plan,
    execute=execute,
    evaluate=evaluate,
    comparisons=[CONVERGED, task.RELATIVE],
    version=4,
    scales={"quick": {}, "full": {"seeds": 40}},
    quick_seconds=40.0,
)
