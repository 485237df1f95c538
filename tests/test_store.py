"""The run store: round trips, atomic runs, refusing files that are not lmech stores."""

import math
import multiprocessing
import sqlite3

import pytest

from lmech.core import Check, Figure, Panel, Prediction, Row, RunResult, RunSpec, Series, Verdict
from lmech.store import RunStore, StoreError


def _spec(i=0):
    return RunSpec("law-x", 1, {"seed": i, "lr": 0.1})


def test_run_round_trip_with_non_finite_values(store):
    rows = [Row(0, "loss", 1.0), Row(5, "loss", math.nan), Row(0, "s", 2.0)]
    run_id = store.record(_spec(), RunResult("diverged", rows, 0.5, 5), started=0.0)
    rec = store.find([_spec().key])[_spec().key]
    assert rec.id == run_id and rec.status == "diverged" and rec.diverged_step == 5
    steps, values = rec.series("loss")
    assert list(steps) == [0, 5] and values[0] == 1.0 and math.isnan(values[1])
    assert rec.config == {"seed": 0, "lr": 0.1}
    assert store.runs()[0]["rows"] == 3


def test_recording_twice_keeps_one_run(store):
    a = store.record(_spec(), RunResult("done", [Row(0, "x", 1.0)], 0.1), 0.0)
    b = store.record(_spec(), RunResult("done", [Row(0, "x", 2.0)], 0.1), 0.0)
    assert a == b and len(store.runs()) == 1


def test_a_failed_write_leaves_no_half_run(store):
    def rows():
        yield Row(0, "x", 1.0)
        raise KeyboardInterrupt  # interrupted in the middle of writing rows

    with pytest.raises(KeyboardInterrupt):
        store.record(_spec(), RunResult("done", rows(), 0.1), 0.0)
    assert store.runs() == [] and store.find([_spec().key]) == {}
    assert store._db.execute("SELECT COUNT(*) FROM rows").fetchone()[0] == 0


def test_verdict_round_trip(store):
    fig = Figure("f", [Panel("p", "x", "y", [Series("s", [1.0], [2.0])])])
    check = Check("c", True, [1.0], [1.1], 0.1, 0.2, "metric", "why")
    said = Prediction("t", [1.0], "t = ln(x)", "gradient flow", "Saxe 2014")
    v = Verdict("law-x", True, [check], "regime", 1.5, [1, 2], False, {"seed": 0}, fig, 1, "claim", "ref", said, "m")
    store.add_verdict(v, "quick")
    ((scale, back),) = store.latest_verdicts()
    assert scale == "quick" and back == v


def test_corrupt_file_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "lmech.db"
    junk = b"this is not a database at all" * 100
    path.write_bytes(junk)
    with pytest.raises(StoreError, match="not an SQLite database"):
        RunStore(path)
    assert path.read_bytes() == junk


def test_damaged_sqlite_is_refused(tmp_path):
    path = tmp_path / "lmech.db"
    RunStore(path).close()
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError):
        RunStore(path)


def test_foreign_sqlite_is_refused(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE customers (id INTEGER)")
    with pytest.raises(StoreError, match="not an lmech store"):
        RunStore(path)


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(StoreError, match="is a directory"):
        RunStore(tmp_path)


def test_a_job_is_stored_whole_or_not_at_all(store):
    def rows():
        yield Row(0, "x", 1.0)
        raise KeyboardInterrupt

    good = RunResult("done", [Row(0, "x", 1.0)], 0.1)
    with pytest.raises(KeyboardInterrupt):
        store.record_job([(_spec(0), good), (_spec(1), RunResult("done", rows(), 0.1))], 0.0)
    assert store.runs() == []  # the first run of the job was rolled back with the second


def _open(path):
    try:
        RunStore(path).close()
        return "ok"
    except Exception as exc:  # reported, not raised, across the process boundary
        return repr(exc)


def test_processes_opening_a_new_store_together_all_succeed(tmp_path):
    ctx = multiprocessing.get_context("fork")
    for trial in range(20):
        path = tmp_path / f"{trial}.db"
        with ctx.Pool(2) as pool:
            assert pool.map(_open, [path, path]) == ["ok", "ok"]
