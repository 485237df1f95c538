"""Compact text for numbers, arrays and verdicts (terminal tables and HTML share it)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np


def short(value: Any, digits: int = 3, items: int = 4) -> str:
    """A short human form: 3 significant digits, long lists abbreviated, dicts as k=v."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return "inf" if math.isinf(v) else "nan" if math.isnan(v) else f"{v:.{digits}g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={short(v, digits, items)}" for k, v in value.items())
    if isinstance(value, (list, tuple, np.ndarray)):
        flat = np.asarray(value, dtype=object).ravel().tolist() if _nested(value) else list(value)
        head = ", ".join(short(v, digits, items) for v in flat[:items])
        more = f", ... ({len(flat)} values)" if len(flat) > items else ""
        return f"[{head}{more}]"
    return str(value)


def _nested(value: Any) -> bool:
    return any(isinstance(v, (list, tuple, np.ndarray)) for v in value)


def verdict_word(holds: bool, diverged: bool) -> str:
    return "HOLDS" if holds else ("DIVERGED" if diverged else "FAILS")
