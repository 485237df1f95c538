"""``check``: predict, measure, compare and record one law — the Python entry point."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from lmech.config import make_config
from lmech.core import Check, Evaluation, Law, RunRecord, Verdict
from lmech.laws import REGISTRY
from lmech.store import RunStore
from lmech.sweep.executor import Progress, execute


def check(
    law_id: str,
    scale: str = "quick",
    seed: int = 0,
    overrides: Mapping[str, Any] | None = None,
    store: RunStore | str | os.PathLike | None = None,
    *,
    jobs: int = 1,
    progress: Progress | None = None,
) -> Verdict:
    """Check one law and record its verdict.

    ``store`` is a :class:`RunStore`, a path to one (finished runs there are reused), or None
    for a throwaway in-memory store. ``overrides`` maps config keys to values (strings are
    parsed as on the command line). Raises :class:`lmech.core.LmechInputError` on bad input.
    """
    law = REGISTRY.get(law_id)
    cfg = make_config(law, scale, seed, overrides)
    owned = not isinstance(store, RunStore)
    db = RunStore(store if store is not None else ":memory:") if owned else store
    try:
        start = time.perf_counter()
        result = execute(law, law.plan(cfg), db, n_jobs=jobs, progress=progress)
        diverged = [r for r in result.records if r.status == "diverged"]
        if diverged and not law.divergence_expected:
            evaluation = divergence(law, diverged)
        else:
            evaluation = law.evaluate(cfg, result.records)
        verdict = Verdict(
            law=law.id,
            holds=bool(evaluation.checks) and all(c.holds for c in evaluation.checks),
            checks=list(evaluation.checks),
            regime=evaluation.regime,
            seconds=round(time.perf_counter() - start, 3),
            runs=[r.id for r in result.records],
            diverged=bool(diverged),
            config=cfg.model_dump(),
            figure=evaluation.figure,
            pillar=law.pillar,
            claim=law.claim,
            reference=law.reference,
            prediction=evaluation.prediction,
            measurement=evaluation.measurement,
        )
        db.add_verdict(verdict, scale)
        return verdict
    finally:
        if owned:
            db.close()


def divergence(law: Law, diverged: Sequence[RunRecord]) -> Evaluation:
    """The verdict when runs diverged: recorded as an outcome, outside the law's regime."""
    first = diverged[0]
    knobs = {k: first.config[k] for k in ("lr", "kind", "init_scale", "depth") if k in first.config}
    what = ", ".join(f"{k}={v}" for k, v in knobs.items())
    check = Check(
        "no divergence",
        False,
        "finite loss throughout",
        f"NaN/inf at step {first.diverged_step}",
        math.inf,
        "0 diverged runs",
        "diverged runs",
        f"{law.id}'s prediction assumes training stays finite",
    )
    regime = (
        f"{len(diverged)} run(s) diverged (first: run {first.id} with {what} at step "
        f"{first.diverged_step}): outside the regime where {law.id} applies"
    )
    return Evaluation([check], regime, None)
