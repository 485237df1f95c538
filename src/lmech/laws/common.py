"""Helpers shared by law modules: reading times off recorded series, palettes of figure series."""

from __future__ import annotations

import math

import numpy as np


def first_crossing(t: np.ndarray, values: np.ndarray, level: float) -> float:
    """The first time ``values`` reaches ``level`` from below, linearly interpolated between
    recorded points; inf when it never does."""
    above = np.nonzero(values >= level)[0]
    if len(above) == 0:
        return math.inf
    k = int(above[0])
    if k == 0:
        return float(t[0])
    t0, t1, v0, v1 = t[k - 1], t[k], values[k - 1], values[k]
    return float(t0 + (level - v0) * (t1 - t0) / (v1 - v0))


def thin(x: np.ndarray, y: np.ndarray, points: int = 40) -> tuple[list[float], list[float]]:
    """At most ``points`` evenly spaced samples of a recorded series (dots on a theory curve)."""
    idx = np.unique(np.linspace(0, len(x) - 1, min(points, len(x))).round().astype(int))
    return x[idx].tolist(), y[idx].tolist()
