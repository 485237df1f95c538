"""The lmech command: exit codes, the JSON contract, bad inputs, divergence, interruption."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lmech.cli import app
from lmech.core import Registry
from lmech.laws import REGISTRY

JSON_KEYS = {
    "law",
    "holds",
    "predicted",
    "measured",
    "error",
    "tolerance",
    "metric",
    "regime",
    "seconds",
    "runs",
    "diverged",
}
runner = CliRunner()


def lmech(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("LMECH_STORE", None)
    return subprocess.run(
        [sys.executable, "-m", "lmech.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env
    )


def invoke(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


@pytest.mark.slow
def test_check_json_contract_and_exit_zero(tmp_path):
    proc = lmech("check", "dln-modes", "--quick", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1  # exactly one JSON object on stdout
    out = json.loads(lines[0])
    assert JSON_KEYS <= set(out) and out["law"] == "dln-modes" and out["holds"] is True
    assert out["diverged"] is False and out["error"] <= out["tolerance"] and len(out["runs"]) == 3
    assert (tmp_path / "lmech-runs" / "lmech.db").exists()
    assert (tmp_path / "lmech-runs" / "figures" / "dln-modes.png").stat().st_size > 10_000


def test_unknown_law_exits_2_and_lists_laws(tmp_path):
    res = invoke("check", "no-such-law", "--out", str(tmp_path))
    assert res.exit_code == 2
    assert "unknown law 'no-such-law'" in res.output and "dln-modes" in res.output and "balancedness" in res.output
    assert "Traceback" not in res.output


def test_unknown_set_key_lists_accepted_keys(tmp_path):
    res = invoke("check", "dln-modes", "--set", "colour=red", "--out", str(tmp_path))
    assert res.exit_code == 2
    assert "unknown key 'colour'" in res.output and "lr (float, default 0.001)" in res.output


def test_out_of_range_value_names_key_and_constraint(tmp_path):
    res = invoke("check", "dln-modes", "--set", "width=-3", "--out", str(tmp_path))
    assert res.exit_code == 2
    assert "width" in res.output and "greater than or equal to 1" in res.output and "--set width=-3" in res.output


def test_malformed_set(tmp_path):
    res = invoke("check", "dln-modes", "--set", "width", "--out", str(tmp_path))
    assert res.exit_code == 2 and "key=value" in res.output


def test_corrupt_store_is_refused_and_not_overwritten(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"garbage" * 1000)
    res = invoke("check", "dln-modes", "--store", str(bad), "--out", str(tmp_path))
    assert res.exit_code == 2 and "not an SQLite database" in res.output
    assert bad.read_bytes() == b"garbage" * 1000


def test_runs_and_show_on_a_missing_store(tmp_path):
    res = invoke("runs", "--store", str(tmp_path / "none.db"))
    assert res.exit_code == 2 and "no store at" in res.output


@pytest.mark.slow
def test_diverging_run_is_recorded_with_exit_1(tmp_path):
    proc = lmech("check", "dln-modes", "--set", "lr=1e6", "--json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    out = json.loads(proc.stdout)
    assert out["diverged"] is True and out["holds"] is False and "diverged" in out["regime"]
    with sqlite3.connect(tmp_path / "lmech-runs" / "lmech.db") as db:
        statuses = db.execute("SELECT status, diverged_step FROM runs").fetchall()
    assert statuses and all(s == "diverged" and step is not None for s, step in statuses)


@pytest.mark.slow
def test_second_check_reuses_runs_and_report_redraws_from_store(tmp_path):
    store, out = tmp_path / "s.db", tmp_path / "out"
    first = invoke("check", "balancedness", "--json", "--store", str(store), "--out", str(out))
    assert first.exit_code == 0, first.output
    again = invoke("check", "balancedness", "--json", "--store", str(store), "--out", str(out))
    a, b = json.loads(first.stdout), json.loads(again.stdout)
    assert a["runs"] == b["runs"] and b["seconds"] < a["seconds"] / 3  # nothing recomputed
    (out / "figures" / "balancedness.png").unlink()
    res = invoke("report", "--store", str(store), "--out", str(out))
    assert res.exit_code == 0
    assert (out / "figures" / "balancedness.png").exists() and "balancedness" in (out / "almanac.html").read_text()
    listing = invoke("runs", "--store", str(store))
    assert listing.exit_code == 0 and "balancedness" in listing.output
    shown = invoke("show", str(a["runs"][0]), "--json", "--store", str(store))
    assert shown.exit_code == 0 and json.loads(shown.stdout)["status"] == "done"
    assert invoke("show", "999", "--store", str(store)).exit_code == 2


def _count_runs(path: Path) -> int:
    """Finished runs in the store, read-only (never creating the file before the child does), 0 while unreadable."""
    if not path.exists():
        return 0
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        finally:
            db.close()
    except sqlite3.OperationalError:
        return 0


def _default_sigint() -> None:
    """The child must see Ctrl-C even when the tests run in the background: a shell starts background jobs with
    SIGINT ignored, the child inherits that, and Python then installs no KeyboardInterrupt handler (this made the
    SIGINT case finish with exit 0 in background runs of make test)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


LONGER = ("--set", "width=96")  # ~1 s per run: a wide window between the second stored run and the end, even under load


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_interrupted_check_leaves_a_consistent_store_and_resumes(tmp_path, sig):
    store = tmp_path / "s.db"
    env = {**os.environ}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lmech.cli",
            "check",
            "balancedness",
            *LONGER,
            "--store",
            str(store),
            "--out",
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )
    deadline = time.time() + 120
    while _count_runs(store) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    if sig == signal.SIGINT:
        seen = f"exit {proc.returncode}, {_count_runs(store)} runs stored, stderr tail: {err[-500:]!r}"
        assert proc.returncode == 130 and "interrupted" in err, seen
    kept = _count_runs(store)
    assert 2 <= kept < 8
    with sqlite3.connect(store) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        empty = db.execute("SELECT COUNT(*) FROM runs r WHERE NOT EXISTS (SELECT 1 FROM rows WHERE run=r.id)")
        assert empty.fetchone()[0] == 0  # no half-written run
        kept_ids = {r[0] for r in db.execute("SELECT id FROM runs")}
    res = invoke("check", "balancedness", *LONGER, "--json", "--store", str(store), "--out", str(tmp_path))
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert len(out["runs"]) == 8 and kept_ids <= set(out["runs"])


def test_out_must_be_a_folder(tmp_path):
    target = tmp_path / "a-file"
    target.write_text("x")
    res = invoke("check", "dln-modes", "--out", str(target))
    assert res.exit_code == 2 and "is a file" in res.output


def test_laws_lists_ids_and_details():
    res = invoke("laws", "--detail")
    assert res.exit_code == 0
    for text in ("dln-modes", "balancedness", "max relative error <= 0.2", "singular_values (list[float]"):
        assert text in res.output


@pytest.mark.slow
def test_almanac_checks_every_law_and_writes_the_page(tmp_path, monkeypatch):
    """The almanac over a two-law registry: every law's own test checks its quick verdict, and `make run` runs the
    almanac over all of them; running them all again here would double the suite's longest part."""
    monkeypatch.setattr("lmech.cli.REGISTRY", Registry([REGISTRY.get("dln-modes"), REGISTRY.get("balancedness")]))
    res = invoke("almanac", "--quick", "--out", str(tmp_path))
    assert res.exit_code == 0, res.output
    page = (tmp_path / "almanac.html").read_text()
    count = 2
    assert f"{count} of {count} laws hold" in page and "dln-modes" in page and "balancedness" in page
    assert (tmp_path / "figures" / "dln-modes.png").exists() and (tmp_path / "figures" / "balancedness.png").exists()
    assert f"{count} of {count} laws hold" in res.output


def test_fit_prints_parameters_intervals_and_the_compute_optimal_allocation(tmp_path):
    import numpy as np

    from lmech.fit import form, optimal_allocation

    truth = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
    rng, lines = np.random.default_rng(0), ["N,D,loss"]
    for c in (6e18, 3e19, 1e20, 3e20):
        n_opt = optimal_allocation(truth, c)[0]
        for f in np.geomspace(1 / 8, 8, 6):
            n, d = n_opt * f, c / (6 * n_opt * f)
            loss = form("chinchilla").predict(truth, N=[n], D=[d]).item() * np.exp(0.01 * rng.standard_normal())
            lines.append(f"{n:.8g},{d:.8g},{loss:.8f}")
    table = tmp_path / "runs.csv"
    table.write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["fit", str(table), "--bootstrap", "30", "--json", "--compute", "3e21"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out["params"]) == {"E", "A", "B", "alpha", "beta"} and out["bootstrap"] == 30
    assert out["compute_optimal"]["compute"] == [3e21]
    assert 0.25 < out["params"]["alpha"] < 0.45
    shown = runner.invoke(app, ["fit", str(table), "--bootstrap", "10"])
    assert shown.exit_code == 0 and "compute-optimal" in shown.stdout


def test_fit_refuses_malformed_tables_with_exit_2(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("N,D,loss\n1e8,2e9,abc\n")
    result = runner.invoke(app, ["fit", str(bad)])
    assert result.exit_code == 2 and "line 2: loss must be a number" in result.stderr
    few = tmp_path / "few.csv"
    few.write_text("N,D,loss\n1e8,2e9,3\n2e8,2e9,2.9\n")
    result = runner.invoke(app, ["fit", str(few)])
    assert result.exit_code == 2 and "too few points" in result.stderr
    assert runner.invoke(app, ["fit", str(few), "--form", "bogus"]).exit_code == 2
