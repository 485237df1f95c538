"""The laws themselves, in quick mode with fixed seeds: they hold in their stated regime and fail
(honestly, with the reason in the regime) outside it."""

import math

import numpy as np
import pytest

import lmech
from lmech.config import make_config
from lmech.core import Row, RunRecord
from lmech.store import RunStore

pytestmark = pytest.mark.slow


def test_dln_modes_quick_holds():
    v = lmech.check("dln-modes", scale="quick", seed=0)
    assert v.holds and not v.diverged
    times, order = v.checks
    assert times.error < 0.05  # measured 0.2% (GD discretisation ~ lr * lam / 2)
    assert order.error == 0
    assert len(v.runs) == 3 and v.figure is not None and len(v.figure.panels) == 3


@pytest.mark.parametrize(
    "overrides",
    [
        {"dim": 12, "width": 24, "singular_values": [6, 4, 3, 2, 1.5]},
        {"init_scale": 1e-5, "seeds": 2},
        {"init": "aligned", "seeds": 1},
        {"init": "aligned", "depth": 3, "init_scale": 0.3, "seeds": 1},
        {"init": "aligned", "depth": 4, "init_scale": 0.4, "seeds": 1},
        {"depth": 3, "init_scale": 0.07, "width": 16, "seeds": 2},
        {"depth": 4, "seeds": 2},
        {"depth": 8, "seeds": 1},
    ],
)
def test_dln_modes_holds_across_its_regime(overrides):
    v = lmech.check("dln-modes", overrides=overrides, seed=1)
    assert v.holds, (v.regime, [c.describe() for c in v.checks])


def test_dln_modes_fails_outside_its_regime():
    # aligned init at lr = 0.04: GD's discretisation error lr * lam / 2 ~ 10% exceeds the 5% tolerance
    coarse = lmech.check("dln-modes", overrides={"init": "aligned", "lr": 0.04, "seeds": 1})
    assert not coarse.holds and not coarse.diverged and 0.05 < coarse.error < 0.2
    # too few steps: the weak modes are never learned, and the regime says so
    short = lmech.check("dln-modes", overrides={"steps": 2000, "seeds": 1})
    assert not short.holds and math.isinf(short.error) and "never reached half strength" in short.regime


def test_balancedness_quick_holds():
    v = lmech.check("balancedness")
    assert v.holds and [c.name for c in v.checks] == [
        "drift slope (linear)",
        "drift slope (relu)",
        "drift at smallest lr (linear)",
        "drift at smallest lr (relu)",
    ]
    for c in v.checks[:2]:
        assert abs(c.measured["slope"] - 1.0) < 0.1  # measured 1.000 and 1.005
    assert all(c.measured < 1e-3 for c in v.checks[2:])


def test_balancedness_deeper_and_wider():
    assert lmech.check("balancedness", overrides={"depth": 3, "width": 48, "dim": 6}).holds


def test_balancedness_breaks_near_the_stability_limit():
    # lr up to 0.4: the ReLU net's drift is no longer linear in lr (measured slope 2.6)
    v = lmech.check("balancedness", overrides={"lr": 0.05})
    checks = {c.name: c for c in v.checks}
    assert not v.holds and not v.diverged
    assert not checks["drift slope (relu)"].holds and checks["drift slope (relu)"].measured["slope"] > 1.2


def test_dln_modes_reports_a_mode_that_starts_too_strong_instead_of_crashing():
    # a seed whose drawn s0 of the weakest mode exceeds lam/2 has no half-time: a failing verdict, not a crash
    law = lmech.REGISTRY.get("dln-modes")
    cfg = make_config(law, overrides={"singular_values": [2.0, 1.0], "seeds": 1})
    t = np.linspace(0, 5, 50)
    rows = [Row(int(i), "time", float(v)) for i, v in enumerate(t)]
    rows += [Row(int(i), "mode/0", float(2 * v / (1 + v))) for i, v in enumerate(t)]
    rows += [Row(i, "mode/1", 0.6) for i in range(50)] + [Row(i, "loss", 1.0 / (1 + i)) for i in range(50)]
    rows += [Row(0, "s0/0", 1e-3), Row(0, "s0/1", 0.6)]  # mode 1 starts above lam/2 = 0.5
    record = RunRecord(1, "k", {}, "done", None, 0.1, rows)
    evaluation = law.evaluate(cfg, [record])
    assert not any(c.holds for c in evaluation.checks)
    assert "no half-time to predict" in evaluation.regime


def test_dln_modes_default_scale_at_depth_keeps_quick_mode_quick():
    v = lmech.check("dln-modes", overrides={"depth": 6, "seeds": 1})
    assert v.holds and v.seconds < 30 and v.config["init_scale"] is None


def test_divergence_is_a_verdict():
    v = lmech.check("balancedness", overrides={"lr": 1e6, "kinds": ["relu"], "n_lrs": 2})
    assert v.diverged and not v.holds and "diverged" in v.regime


def test_check_reuses_the_store_and_a_process_pool_gives_the_same_runs(tmp_path):
    with RunStore(tmp_path / "a.db") as serial, RunStore(tmp_path / "b.db") as pooled:
        a = lmech.check("balancedness", store=serial, overrides={"kinds": ["linear"], "n_lrs": 3})
        b = lmech.check("balancedness", store=pooled, overrides={"kinds": ["linear"], "n_lrs": 3}, jobs=2)
        again = lmech.check("balancedness", store=serial, overrides={"kinds": ["linear"], "n_lrs": 3})
        assert a.runs == again.runs
        for ra, rb in zip(a.runs, b.runs, strict=True):
            assert serial.run(ra).rows == pooled.run(rb).rows  # deterministic across processes
    assert a.checks == b.checks
