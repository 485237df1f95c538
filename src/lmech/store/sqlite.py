"""The run store: one SQLite file (WAL mode) holding runs, their tidy rows, and verdicts.

Every run is written in a single transaction together with its rows, so an interrupted
check (Ctrl-C, kill) leaves either the whole run or nothing. Runs are keyed by the hash of
their configuration (:attr:`lmech.core.RunSpec.key`), which makes re-running a check reuse
finished runs. A file that is not an lmech store is never modified.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lmech.core import (
    Check,
    Figure,
    LmechInputError,
    Prediction,
    Row,
    RunRecord,
    RunResult,
    RunSpec,
    Verdict,
    to_jsonable,
)

SCHEMA_VERSION = "1"
_MAGIC = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    key TEXT UNIQUE NOT NULL,
    law TEXT NOT NULL,
    version INTEGER NOT NULL,
    seed INTEGER,
    config TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('done', 'diverged')),
    diverged_step INTEGER,
    started REAL NOT NULL,
    seconds REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS rows (
    run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    name TEXT NOT NULL,
    value REAL
);
CREATE INDEX IF NOT EXISTS rows_by_run ON rows(run);
CREATE TABLE IF NOT EXISTS verdicts (
    id INTEGER PRIMARY KEY,
    law TEXT NOT NULL,
    pillar INTEGER NOT NULL,
    claim TEXT NOT NULL,
    reference TEXT NOT NULL,
    scale TEXT NOT NULL,
    config TEXT NOT NULL,
    holds INTEGER NOT NULL,
    diverged INTEGER NOT NULL,
    regime TEXT NOT NULL,
    seconds REAL NOT NULL,
    runs TEXT NOT NULL,
    checks TEXT NOT NULL,
    statement TEXT NOT NULL,
    figure TEXT,
    created REAL NOT NULL
);
"""


class StoreError(LmechInputError):
    """The store file cannot be used (unreadable, corrupt, or not an lmech store)."""


class RunStore:
    """Runs, rows and verdicts in one SQLite file (``":memory:"`` for a throwaway store)."""

    def __init__(self, path: str | os.PathLike = ":memory:"):
        self.path = str(path)
        if self.path != ":memory:":
            _check_file(Path(self.path))
        try:
            self._db = sqlite3.connect(self.path, timeout=30.0)
            self._db.execute("PRAGMA foreign_keys = ON")
            _patiently(self._init_schema)
            if self.path != ":memory:":
                _patiently(lambda: self._db.execute("PRAGMA journal_mode = WAL"))
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"store {self.path} cannot be read as an lmech store ({exc}); "
                "it was left untouched: move it away or pass --store PATH"
            ) from None

    def _init_schema(self) -> None:
        """Check, or create, the schema inside one IMMEDIATE transaction: processes opening a new
        file at the same time see either no tables or the whole schema, never half of it."""
        db = self._db
        db.isolation_level = None  # manual transactions for this block
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                self._check_or_create()
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        finally:
            db.isolation_level = ""  # back to the module's implicit transactions

    def _check_or_create(self) -> None:
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables and "meta" not in tables:
            raise StoreError(
                f"store {self.path} is an SQLite file but not an lmech store "
                f"(tables: {', '.join(sorted(tables))}); it was left untouched"
            )
        if not tables:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            return
        row = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None or row[0] != SCHEMA_VERSION:
            raise StoreError(
                f"store {self.path} has schema {row and row[0]!r}, this lmech "
                f"reads schema {SCHEMA_VERSION!r}; it was left untouched"
            )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # runs ---------------------------------------------------------------------------------

    def record(self, spec: RunSpec, result: RunResult, started: float) -> int:
        """Write one finished run and its rows in one transaction; returns the run id."""
        return self.record_job([(spec, result)], started)[0]

    def record_job(self, runs: Sequence[tuple[RunSpec, RunResult]], started: float) -> list[int]:
        """Write the runs of one job (trained together) and their rows in one transaction, so a
        job is stored whole or not at all; returns the run ids."""
        with self._db:
            return [self._insert(spec, result, started) for spec, result in runs]

    def _insert(self, spec: RunSpec, result: RunResult, started: float) -> int:
        cur = self._db.execute(
            "INSERT OR IGNORE INTO runs (key, law, version, seed, config, status, diverged_step,"
            " started, seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                spec.key,
                spec.law,
                spec.version,
                spec.config.get("seed"),
                json.dumps(to_jsonable(spec.config), sort_keys=True),
                result.status,
                result.diverged_step,
                started,
                result.seconds,
            ),
        )
        if cur.rowcount == 0:  # another writer recorded the same run first
            return self._db.execute("SELECT id FROM runs WHERE key=?", (spec.key,)).fetchone()[0]
        self._db.executemany(
            "INSERT INTO rows VALUES (?, ?, ?, ?)",
            ((cur.lastrowid, int(r.step), r.name, _real(r.value)) for r in result.rows),
        )
        return cur.lastrowid

    def find(self, keys: Iterable[str]) -> dict[str, RunRecord]:
        """The finished runs among ``keys``, by key."""
        keys = list(keys)
        out: dict[str, RunRecord] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for row in self._db.execute(f"SELECT * FROM runs WHERE key IN ({marks})", chunk):
                rec = self._record(row)
                out[rec.key] = rec
        return out

    def run(self, run_id: int) -> RunRecord:
        row = self._db.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            raise LmechInputError(f"no run with id {run_id} in store {self.path}")
        return self._record(row)

    def runs(self, law: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Run summaries (no rows), newest first."""
        sql = (
            "SELECT r.id, r.law, r.seed, r.status, r.diverged_step, r.seconds, r.started, r.key,"
            " (SELECT COUNT(*) FROM rows WHERE run=r.id) FROM runs r"
        )
        args: tuple = ()
        if law:
            sql, args = sql + " WHERE r.law=?", (law,)
        sql += " ORDER BY r.id DESC LIMIT ?"
        cols = ("id", "law", "seed", "status", "diverged_step", "seconds", "started", "key", "rows")
        return [dict(zip(cols, r, strict=True)) for r in self._db.execute(sql, (*args, limit))]

    def _record(self, row: Sequence[Any]) -> RunRecord:
        run_id, key, _law, _version, _seed, cfg, status, div_step, _started, seconds = row
        rows = [
            Row(s, n, math.nan if v is None else v)
            for s, n, v in self._db.execute("SELECT step, name, value FROM rows WHERE run=? ORDER BY rowid", (run_id,))
        ]
        return RunRecord(run_id, key, json.loads(cfg), status, div_step, seconds, rows)

    # verdicts -----------------------------------------------------------------------------

    def add_verdict(self, verdict: Verdict, scale: str) -> int:
        figure = json.dumps(verdict.figure.to_dict()) if verdict.figure else None
        checks = json.dumps(to_jsonable([asdict(c) for c in verdict.checks]))
        prediction = to_jsonable(asdict(verdict.prediction)) if verdict.prediction else None
        statement = json.dumps({"prediction": prediction, "measurement": verdict.measurement})
        with self._db:
            cur = self._db.execute(
                "INSERT INTO verdicts (law, pillar, claim, reference, scale, config, holds, diverged,"
                " regime, seconds, runs, checks, statement, figure, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    verdict.law,
                    verdict.pillar,
                    verdict.claim,
                    verdict.reference,
                    scale,
                    json.dumps(to_jsonable(verdict.config), sort_keys=True),
                    int(verdict.holds),
                    int(verdict.diverged),
                    verdict.regime,
                    verdict.seconds,
                    json.dumps(list(verdict.runs)),
                    checks,
                    statement,
                    figure,
                    time.time(),
                ),
            )
        return cur.lastrowid

    def latest_verdicts(self, scale: str | None = None) -> list[tuple[str, Verdict]]:
        """The newest verdict of each law (optionally at one scale), as (scale, verdict)."""
        where, args = ("WHERE scale=?", (scale,)) if scale else ("", ())
        newest = f"SELECT MAX(id) FROM verdicts {where} GROUP BY law"
        sql = f"SELECT * FROM verdicts WHERE id IN ({newest}) ORDER BY pillar, law"
        return [(row[5], _verdict(row)) for row in self._db.execute(sql, args)]

    def verdicts(self, law: str) -> list[tuple[str, Verdict]]:
        rows = self._db.execute("SELECT * FROM verdicts WHERE law=? ORDER BY id", (law,))
        return [(row[5], _verdict(row)) for row in rows]


def _verdict(row: Sequence[Any]) -> Verdict:
    (
        _id,
        law,
        pillar,
        claim,
        reference,
        _scale,
        cfg,
        holds,
        diverged,
        regime,
        seconds,
        runs,
        checks,
        statement,
        figure,
        _created,
    ) = row
    said = json.loads(statement)
    return Verdict(
        law=law,
        holds=bool(holds),
        checks=[Check(**c) for c in json.loads(checks)],
        regime=regime,
        seconds=seconds,
        runs=json.loads(runs),
        diverged=bool(diverged),
        config=json.loads(cfg),
        figure=Figure.from_dict(json.loads(figure)) if figure else None,
        pillar=pillar,
        claim=claim,
        reference=reference,
        prediction=Prediction(**said["prediction"]) if said["prediction"] else None,
        measurement=said["measurement"],
    )


def _patiently(action: Callable[[], Any], seconds: float = 30.0) -> Any:
    """Run ``action``, retrying while another process holds the lock (SQLite does not always call
    its busy handler when a new file is being set up by two processes at once)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return action()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _real(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _check_file(path: Path) -> None:
    """Refuse files that are unreadable or not SQLite, before sqlite3 touches them."""
    if path.is_dir():
        raise StoreError(f"store path {path} is a directory; pass a file such as {path / 'lmech.db'}")
    if not path.exists():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the store's folder {path.parent}: {exc.strerror}") from None
        return
    if not os.access(path, os.R_OK | os.W_OK):
        raise StoreError(f"store {path} is not readable and writable by this user")
    with open(path, "rb") as fh:
        head = fh.read(len(_MAGIC))
    if head and head != _MAGIC:
        raise StoreError(
            f"store {path} is not an SQLite database (corrupt, or another kind of file); "
            "it was left untouched: move it away or pass --store PATH"
        )
