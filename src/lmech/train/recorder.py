"""The recorder: calls observables on a schedule and yields tidy rows (run, step, name, value).

It has one call point, ``after_step``, so it also serves users who own their training loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from lmech.core import Observable, Row, Snapshot


def record_steps(steps: int, points: int = 100, spacing: str = "linear") -> list[int]:
    """About ``points`` steps in [0, steps], always including 0 and ``steps``; ``spacing`` is
    "linear" or "log" (dense early, for staircases and fast transients)."""
    if spacing == "log":
        grid = np.unique(np.round(np.geomspace(1, steps + 1, points) - 1).astype(int))
    elif spacing == "linear":
        grid = np.unique(np.round(np.linspace(0, steps, points)).astype(int))
    else:
        raise ValueError(f"spacing must be 'linear' or 'log'; got {spacing!r}")
    return sorted({0, steps, *grid.tolist()})


class Recorder:
    """Measures ``observables`` at the scheduled ``steps``; the training loss is recorded as "loss"."""

    def __init__(self, observables: Sequence[Observable], steps: Iterable[int]):
        self.observables = list(observables)
        self.schedule = frozenset(int(s) for s in steps)
        self._states: list | None = None

    def due(self, step: int) -> bool:
        return step in self.schedule

    def after_step(self, snap: Snapshot) -> list[Row]:
        """Rows for this snapshot (call it when ``due(step)``)."""
        if self._states is None:
            self._states = [o.init(snap) for o in self.observables]
        rows = [Row(snap.step, "loss", float(snap.loss)), Row(snap.step, "time", float(snap.time))]
        for i, obs in enumerate(self.observables):
            values, self._states[i] = obs.measure(snap, self._states[i])
            rows.extend(Row(snap.step, name, float(v)) for name, v in values.items())
        return rows
