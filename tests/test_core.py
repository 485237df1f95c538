"""The vocabulary: comparisons, verdicts, run keys, the registry, JSON."""

import json
import math

import numpy as np
import pytest

from lmech.core import (
    Figure,
    LmechInputError,
    Ordering,
    Panel,
    RatioWindow,
    Registry,
    RelativeError,
    RunSpec,
    Series,
    SlopeWindow,
    Threshold,
    Verdict,
    describe_comparison,
    log_log_slope,
    to_jsonable,
)
from lmech.laws import REGISTRY


def test_relative_error():
    c = RelativeError("t", 0.1, "why")
    assert c([1.0, 2.0], [1.05, 2.1]).holds
    out = c([1.0, 2.0], [1.05, 2.5])
    assert not out.holds and out.error == pytest.approx(0.25)
    assert not c([1.0], [math.inf]).holds


def test_ratio_window_reports_the_worst_ratio():
    out = RatioWindow("r", 0.9, 1.1, "why")([1.0, 1.0, 1.0], [1.05, 0.8, 1.0])
    assert not out.holds and out.error == pytest.approx(0.8)
    assert RatioWindow("r", 0.9, 1.1, "why")([2.0], [2.1]).holds


def test_ordering_counts_inversions_per_row():
    c = Ordering("o", "why")
    assert c([1, 2, 3], [10, 20, 30]).holds
    out = c([[1, 2, 3], [1, 2, 3]], [[1, 2, 3], [3, 2, 1]])
    assert not out.holds and out.error == 3
    assert not c([1, 2], [1, math.inf]).holds
    # with a resolution, pairs the prediction puts within 5% of each other are ties
    coarse = Ordering("o", "why", resolution=0.05)
    assert coarse([1.0, 1.02, 2.0], [1.03, 1.01, 2.1]).holds
    assert not coarse([1.0, 1.2, 2.0], [1.3, 1.1, 2.1]).holds


def test_threshold_both_sides():
    assert Threshold("b", 1e-3, "why")(5e-4).holds
    assert not Threshold("b", 1e-3, "why")(2e-3).holds
    assert Threshold("b", 0.5, "why", below=False)(0.7).holds
    assert not Threshold("b", 1e-3, "why")(math.nan).holds


def test_slope_window_recovers_a_known_power():
    x = np.geomspace(1e-3, 1e-1, 6)
    out = SlopeWindow("s", 2.0, 1.9, 2.1, "why")(x, 3 * x**2)
    assert out.holds and out.measured["slope"] == pytest.approx(2.0, abs=1e-12)
    assert not SlopeWindow("s", 1.0, 0.8, 1.2, "why")(x, 3 * x**2).holds


def test_log_log_slope_standard_error():
    rng = np.random.default_rng(0)
    lx = np.linspace(0, 3, 50)
    slope, se = log_log_slope(lx, 1.5 * lx + 0.01 * rng.standard_normal(50))
    assert abs(slope - 1.5) < 4 * se and se < 0.01


def test_every_comparison_describes_its_rationale():
    for comp in (
        RelativeError("a", 0.2, "R1"),
        RatioWindow("b", 0.9, 1.1, "R2"),
        Ordering("c", "R3"),
        Threshold("d", 1.0, "R4"),
        SlopeWindow("e", 1.0, 0.8, 1.2, "R5"),
    ):
        text = describe_comparison(comp)
        assert comp.name in text and text.endswith(comp.rationale[-2:])


def test_run_key_is_stable_and_sensitive():
    a = RunSpec("law", 1, {"lr": 0.1, "seed": 0})
    assert a.key == RunSpec("law", 1, {"seed": 0, "lr": 0.1}).key
    assert a.key != RunSpec("law", 1, {"lr": 0.2, "seed": 0}).key
    assert a.key != RunSpec("law", 2, {"lr": 0.1, "seed": 0}).key


def test_to_jsonable_handles_numpy_and_non_finite():
    out = to_jsonable({"a": np.float32(1.5), "b": np.array([1, 2]), "c": math.nan, "d": (math.inf,)})
    assert out == {"a": 1.5, "b": [1, 2], "c": None, "d": [None]}
    json.dumps(out, allow_nan=False)


def test_figure_round_trips_through_json():
    fig = Figure(
        "t", [Panel("p", "x", "y", [Series("s", [1.0, 2.0], [3.0, 4.0], "band", 1, [2.0, 3.0], [4.0, 5.0])], "log")]
    )
    assert Figure.from_dict(json.loads(json.dumps(fig.to_dict()))) == fig


def test_verdict_headline_is_the_first_check_and_holds_needs_all():
    first = RelativeError("t", 0.1, "why")([1.0], [1.05])
    second = Threshold("b", 1.0, "why")(2.0)
    v = Verdict("x", first.holds and second.holds, [first, second], "r")
    assert v.error == first.error and v.tolerance == 0.1 and not v.holds
    assert v.summary()["checks"][1]["name"] == "b"


def test_registry_unknown_law_lists_known():
    with pytest.raises(LmechInputError, match="known laws: dln-modes, balancedness"):
        REGISTRY.get("no-such-law")
    with pytest.raises(ValueError):
        Registry([REGISTRY.get("dln-modes")] * 2)


@pytest.mark.parametrize("law", REGISTRY.ids())
def test_battery_every_law_is_complete(law):
    """Common battery: every law states claim, reference, scales, comparisons with rationales, and its
    quick config round-trips through JSON."""
    entry = REGISTRY.get(law)
    assert entry.claim and entry.reference and 1 <= entry.pillar <= 5
    assert {"quick", "full"} <= set(entry.scales)
    cfg = entry.config(**entry.scales["quick"])
    assert entry.config.model_validate_json(cfg.model_dump_json()) == cfg
    plan = entry.plan(cfg)
    assert plan and all(spec.law == law for job in plan for spec in job)
    assert [s.key for job in plan for s in job] == [s.key for job in entry.plan(cfg) for s in job]
    assert len({s.key for job in plan for s in job}) == sum(len(job) for job in plan)
