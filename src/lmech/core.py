"""The vocabulary of lmech: observables, predictions, comparisons, verdicts, laws and their registry.

A *law* is a claim from the literature with a quantitative prediction. lmech computes the
prediction from theory, measures the same quantity by training networks, compares the two
with a stated metric and tolerance (a :class:`Comparison`), and records a :class:`Verdict`.
This module imports nothing else of lmech.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch

# --------------------------------------------------------------------------------------------
# Tensors and randomness

Params = dict[str, torch.Tensor]
"""Named parameter tensors (stacked along a leading member axis for ensembles)."""
Fn = Callable[[Params, torch.Tensor], torch.Tensor]
"""A functional model: fn(params, x) -> outputs."""

DATA, INIT = 0, 1
"""Random streams: a run's data and its initialisation never share numbers."""


def generator(seed: int, *stream: int) -> torch.Generator:
    """A CPU generator for ``seed`` and an optional stream path (e.g. ``generator(seed, INIT, member)``),
    derived with numpy's SeedSequence so that distinct paths give independent streams. Library
    code takes generators explicitly and never touches the global seed."""
    if not stream:
        return torch.Generator().manual_seed(int(seed))
    state = np.random.SeedSequence([int(seed), *map(int, stream)]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & (2**63 - 1))


def random_orthogonal(n: int, k: int, gen: torch.Generator) -> torch.Tensor:
    """An (n, k) matrix with orthonormal columns, Haar-distributed (QR with sign fix), float64."""
    q, r = torch.linalg.qr(torch.randn(n, k, generator=gen, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


# --------------------------------------------------------------------------------------------
# Errors


class LmechInputError(ValueError):
    """Bad input from a user: the message names the field, the allowed values and the fix."""


# --------------------------------------------------------------------------------------------
# Observables


@dataclass(frozen=True)
class Snapshot:
    """What an observable may look at after ``step`` updates (before the next one).

    ``params`` maps names to one model's tensors; ``fn(params, x)`` is the functional model;
    ``time`` is gradient-flow time (lr * step); ``loss`` the training loss at these parameters.
    """

    step: int
    time: float
    params: Mapping[str, Any]
    fn: Callable[..., Any]
    x: Any
    y: Any
    loss: float


class Observable(NamedTuple):
    """A measurement of a training state, made by a factory (optax-style pair of functions).

    ``init(snapshot) -> state`` and ``measure(snapshot, state) -> (values, state)``, where
    ``values`` maps row names to floats. State is explicit (e.g. a warm-start vector).
    """

    name: str
    init: Callable[[Snapshot], Any]
    measure: Callable[[Snapshot, Any], tuple[dict[str, float], Any]]


def stateless(name: str, measure: Callable[[Snapshot], dict[str, float]]) -> Observable:
    """An observable without state from a plain ``measure(snapshot) -> values`` function."""
    return Observable(name, lambda _s: None, lambda s, state: (measure(s), state))


class Row(NamedTuple):
    """A tidy row: one value of one named quantity at one step."""

    step: int
    name: str
    value: float


# --------------------------------------------------------------------------------------------
# Predictions and comparisons


@dataclass(frozen=True)
class Prediction:
    """A theoretical prediction: the value, the formula it came from, its assumptions and source."""

    quantity: str
    value: Any
    formula: str
    assumptions: str
    reference: str


@dataclass(frozen=True)
class Check:
    """The outcome of one comparison between a prediction and a measurement."""

    name: str
    holds: bool
    predicted: Any
    measured: Any
    error: float
    tolerance: Any
    metric: str
    rationale: str

    def describe(self) -> str:
        mark = "holds" if self.holds else "FAILS"
        return f"{self.name}: {mark} ({self.metric}: {_fmt(self.error)}, tolerance {_fmt(self.tolerance)})"


def _as_array(value: Any) -> np.ndarray:
    return np.atleast_1d(np.asarray(value, dtype=np.float64))


def _finite(*arrays: np.ndarray) -> bool:
    return all(bool(np.all(np.isfinite(a))) for a in arrays)


@dataclass(frozen=True)
class RelativeError:
    """Holds when max_i |measured_i - predicted_i| / |predicted_i| <= tolerance."""

    name: str
    tolerance: float
    rationale: str

    def __call__(self, predicted: Any, measured: Any) -> Check:
        p, m = _as_array(predicted), _as_array(measured)
        error = float(np.max(np.abs(m - p) / np.abs(p))) if _finite(p, m) else math.inf
        return Check(
            self.name,
            error <= self.tolerance,
            predicted,
            measured,
            error,
            self.tolerance,
            "max relative error |measured - predicted| / |predicted|",
            self.rationale,
        )


@dataclass(frozen=True)
class RatioWindow:
    """Holds when every ratio measured_i / predicted_i lies in [low, high]."""

    name: str
    low: float
    high: float
    rationale: str

    def __call__(self, predicted: Any, measured: Any) -> Check:
        p, m = _as_array(predicted), _as_array(measured)
        ratios = m / p if _finite(p, m) else np.array([math.nan])
        worst = float(ratios[np.argmax(np.abs(np.log(np.abs(ratios))))]) if _finite(ratios) else math.nan
        holds = _finite(ratios) and bool(np.all((ratios >= self.low) & (ratios <= self.high)))
        return Check(
            self.name,
            holds,
            predicted,
            measured,
            worst,
            [self.low, self.high],
            "measured / predicted (the ratio furthest from 1)",
            self.rationale,
        )


@dataclass(frozen=True)
class Ordering:
    """Holds when the measured values are ranked exactly as the predicted ones (each row
    separately for 2-d input, e.g. one row per seed).

    Only pairs the prediction resolves count: pairs whose predicted values differ by less than
    ``resolution`` (relative to the larger) are ties at the prediction's stated accuracy. The
    error is the number of discordant resolved pairs (Kendall's inversion count); tolerance 0.
    """

    name: str
    rationale: str
    resolution: float = 0.0

    def __call__(self, predicted: Any, measured: Any) -> Check:
        p, m = np.atleast_2d(_as_array(predicted)), np.atleast_2d(_as_array(measured))
        if not _finite(p, m) or p.shape != m.shape:
            inversions = math.inf
        else:
            i, j = np.triu_indices(p.shape[1], k=1)
            gap = np.abs(p[:, i] - p[:, j]) / np.maximum(np.abs(p[:, i]), np.abs(p[:, j]))
            discordant = np.sign(p[:, i] - p[:, j]) != np.sign(m[:, i] - m[:, j])
            inversions = float(np.sum(discordant & (gap > self.resolution)))
        metric = "discordant pairs between measured and predicted order"
        if self.resolution:
            metric += f" (pairs predicted within {self.resolution:.0%} of each other are ties)"
        return Check(self.name, inversions == 0, predicted, measured, inversions, 0, metric, self.rationale)


@dataclass(frozen=True)
class Threshold:
    """Holds when the measured value is below (or above) a bound; ``predicted`` is the bound."""

    name: str
    bound: float
    rationale: str
    below: bool = True

    def __call__(self, measured: float) -> Check:
        value = float(measured)
        ok = math.isfinite(value) and (value <= self.bound if self.below else value >= self.bound)
        side = "<=" if self.below else ">="
        return Check(self.name, ok, self.bound, value, value, self.bound, f"measured {side} bound", self.rationale)


@dataclass(frozen=True)
class SlopeWindow:
    """Holds when the least-squares slope of log(y) against log(x) lies in [low, high].

    ``predicted`` is the theoretical slope; the error reported is the fitted slope itself (the
    number the window is applied to), and the measured value carries its standard error.
    """

    name: str
    predicted: float
    low: float
    high: float
    rationale: str

    def __call__(self, x: Any, y: Any) -> Check:
        lx, ly = np.log(_as_array(x)), np.log(np.abs(_as_array(y)))
        if not _finite(lx, ly) or len(lx) < 2:
            slope, stderr = math.nan, math.nan
        else:
            slope, stderr = log_log_slope(lx, ly)
        ok = math.isfinite(slope) and self.low <= slope <= self.high
        return Check(
            self.name,
            ok,
            self.predicted,
            {"slope": slope, "stderr": stderr},
            slope,
            [self.low, self.high],
            "least-squares slope of log y vs log x",
            self.rationale,
        )


def log_log_slope(lx: np.ndarray, ly: np.ndarray) -> tuple[float, float]:
    """Least-squares slope of ly against lx and its standard error (nan for two points)."""
    design = np.stack([lx, np.ones_like(lx)], axis=1)
    coef, *_ = np.linalg.lstsq(design, ly, rcond=None)
    resid = ly - design @ coef
    dof = len(lx) - 2
    stderr = math.sqrt(float(resid @ resid) / dof / float(np.sum((lx - lx.mean()) ** 2))) if dof > 0 else math.nan
    return float(coef[0]), stderr


Comparison = RelativeError | RatioWindow | Ordering | Threshold | SlopeWindow


def describe_comparison(c: Comparison) -> str:
    """One line: what the comparison demands and why."""
    match c:
        case RelativeError():
            what = f"max relative error <= {c.tolerance:g}"
        case RatioWindow():
            what = f"measured/predicted in [{c.low:g}, {c.high:g}]"
        case Ordering():
            what = "measured order equals predicted order" + (
                f" (resolved pairs: predicted > {c.resolution:.0%} apart)" if c.resolution else ""
            )
        case Threshold():
            what = f"measured {'<=' if c.below else '>='} {c.bound:g}"
        case SlopeWindow():
            what = f"log-log slope in [{c.low:g}, {c.high:g}] (theory {c.predicted:g})"
    return f"{c.name}: {what} — {c.rationale}"


# --------------------------------------------------------------------------------------------
# Figures as data: a law describes its figure; report/ renders it from the store alone.


@dataclass(frozen=True)
class Series:
    """One plotted series. ``style``: "line" (theory), "dots" (measurement), "samples" (the single
    measurements behind a mean drawn as "dots": faint horizontal ticks), "band" (tolerance, between
    ``y_low`` and ``y_high``), "hline" (a horizontal reference at ``y[0]``)."""

    label: str
    x: Sequence[float]
    y: Sequence[float]
    style: str = "line"
    color: int | None = None
    y_low: Sequence[float] | None = None
    y_high: Sequence[float] | None = None


@dataclass(frozen=True)
class Panel:
    title: str
    xlabel: str
    ylabel: str
    series: Sequence[Series]
    xscale: str = "linear"
    yscale: str = "linear"


@dataclass(frozen=True)
class Figure:
    title: str
    panels: Sequence[Panel]

    def to_dict(self) -> dict:
        return to_jsonable(asdict(self))

    @staticmethod
    def from_dict(d: Mapping) -> Figure:
        panels = [Panel(**{**p, "series": [Series(**s) for s in p["series"]]}) for p in d["panels"]]
        return Figure(d["title"], panels)


# --------------------------------------------------------------------------------------------
# Verdicts


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking a law: all checks, the regime they apply to, and provenance.

    The headline fields (``predicted``, ``measured``, ``error``, ``tolerance``, ``metric``) are
    those of the first check; ``holds`` requires every check to hold and no run to diverge.
    """

    law: str
    holds: bool
    checks: Sequence[Check]
    regime: str
    seconds: float = 0.0
    runs: Sequence[int] = ()
    diverged: bool = False
    config: Mapping[str, Any] = field(default_factory=dict)
    figure: Figure | None = None
    pillar: int = 0
    claim: str = ""
    reference: str = ""
    prediction: Prediction | None = None
    measurement: str = ""

    @property
    def headline(self) -> Check:
        return self.checks[0]

    @property
    def predicted(self) -> Any:
        return self.headline.predicted

    @property
    def measured(self) -> Any:
        return self.headline.measured

    @property
    def error(self) -> float:
        return self.headline.error

    @property
    def tolerance(self) -> Any:
        return self.headline.tolerance

    @property
    def metric(self) -> str:
        return self.headline.metric

    def summary(self) -> dict:
        """The JSON contract of ``lmech check --json`` (plus every check under ``checks``)."""
        return to_jsonable(
            {
                "law": self.law,
                "holds": self.holds,
                "predicted": self.predicted,
                "measured": self.measured,
                "error": self.error,
                "tolerance": self.tolerance,
                "metric": self.metric,
                "regime": self.regime,
                "seconds": self.seconds,
                "runs": list(self.runs),
                "diverged": self.diverged,
                "checks": [asdict(c) for c in self.checks],
                "prediction": asdict(self.prediction) if self.prediction else None,
                "measurement": self.measurement,
            }
        )


@dataclass(frozen=True)
class Evaluation:
    """What a law's ``evaluate`` returns: checks, the regime, the figure, and what was predicted
    and measured, stated in words."""

    checks: Sequence[Check]
    regime: str
    figure: Figure | None = None
    prediction: Prediction | None = None
    measurement: str = ""


# --------------------------------------------------------------------------------------------
# Runs


@dataclass(frozen=True)
class RunSpec:
    """One training run of a law, identified by a hash of its configuration and the law's version."""

    law: str
    version: int
    config: Mapping[str, Any]

    @property
    def key(self) -> str:
        blob = json.dumps(
            {"law": self.law, "version": self.version, "config": to_jsonable(self.config)},
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:24]


Job = tuple[RunSpec, ...]
"""Runs trained together (e.g. the seeds of one ensemble)."""


@dataclass(frozen=True)
class RunResult:
    """What a run produced: ``status`` is "done" or "diverged" (NaN/inf at ``diverged_step``)."""

    status: str
    rows: Sequence[Row]
    seconds: float
    diverged_step: int | None = None


@dataclass(frozen=True)
class RunRecord:
    """A finished run as read back from the store."""

    id: int
    key: str
    config: Mapping[str, Any]
    status: str
    diverged_step: int | None
    seconds: float
    rows: Sequence[Row]

    def series(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) of one named quantity, in step order."""
        pts = sorted((r.step, r.value) for r in self.rows if r.name == name)
        if not pts:
            raise KeyError(f"run {self.id} has no rows named {name!r}")
        steps, values = zip(*pts, strict=True)
        return np.asarray(steps), np.asarray(values, dtype=np.float64)

    def last(self, name: str) -> float:
        return float(self.series(name)[1][-1])


# --------------------------------------------------------------------------------------------
# Laws and the registry


@dataclass(frozen=True)
class Law:
    """A law: claim and reference, a validated config, the runs it needs, and how to judge them.

    ``config`` is a frozen pydantic model class whose defaults are the quick scale; ``scales``
    maps a scale name to the overrides it applies. ``plan(cfg)`` lists the jobs (runs trained
    together); ``execute(configs)`` trains one job in any process and returns one
    :class:`RunResult` per config; ``evaluate(cfg, records)`` predicts, compares and describes the
    figure. Bump ``version`` when a run's meaning changes, so stored runs are not reused.
    ``divergence_expected``: the law sweeps into unstable settings (a learning-rate grid), so a diverged run is
    a measurement its ``evaluate`` judges, not a verdict-ending failure.
    """

    id: str
    pillar: int
    claim: str
    reference: str
    config: type
    plan: Callable[[Any], Sequence[Job]]
    execute: Callable[[Sequence[Mapping[str, Any]]], list[RunResult]]
    evaluate: Callable[[Any, Sequence[RunRecord]], Evaluation]
    comparisons: Sequence[Comparison] = ()
    scales: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: {"quick": {}, "full": {}})
    quick_seconds: float = math.nan
    version: int = 1
    divergence_expected: bool = False


class Registry:
    """An immutable mapping from law id to :class:`Law`."""

    def __init__(self, laws: Sequence[Law]):
        ids = [law.id for law in laws]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate law ids in {ids}")
        self._laws = {law.id: law for law in laws}

    def get(self, law_id: str) -> Law:
        try:
            return self._laws[law_id]
        except KeyError:
            known = ", ".join(self._laws)
            raise LmechInputError(f"unknown law {law_id!r}; known laws: {known}") from None

    def ids(self) -> list[str]:
        return list(self._laws)

    def __iter__(self) -> Iterator[Law]:
        return iter(self._laws.values())

    def __len__(self) -> int:
        return len(self._laws)


# --------------------------------------------------------------------------------------------
# Helpers


def to_jsonable(value: Any) -> Any:
    """Plain JSON types from numpy/torch values; non-finite floats become None."""
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return to_jsonable(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)
