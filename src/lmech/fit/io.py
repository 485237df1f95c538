"""Tables of runs for fitting: from a CSV file, or from run records of the store.

CSV: a header row naming the columns (case-insensitive), one row per run; the form's variables (e.g. ``N`` and ``D``
for chinchilla, ``x`` for power_law) and ``loss`` must be present, other columns are ignored. Every value must be a
finite positive number; a problem names the line and the column.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from lmech.core import LmechInputError, RunRecord
from lmech.fit.forms import Form


def read_csv(path: str | Path, spec: Form) -> dict[str, np.ndarray]:
    """{variable: values, "loss": values} from a CSV file of runs."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise LmechInputError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    rows = list(csv.reader(text.splitlines()))
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise LmechInputError(f"{path} is empty: expected a header with columns {', '.join(spec.variables)}, loss")
    header = [cell.strip().lower() for cell in rows[0]]
    repeated = sorted({h for h in header if h and header.count(h) > 1})
    if repeated:
        raise LmechInputError(f"{path}: the header repeats {', '.join(repeated)}; each column name must appear once")
    wanted = [*spec.variables, "loss"]
    index = {}
    for name in wanted:
        if name.lower() not in header:
            raise LmechInputError(
                f"{path}: column {name!r} is missing (form {spec.name!r} needs {', '.join(wanted)}); "
                f"the header has {', '.join(header)}"
            )
        index[name] = header.index(name.lower())
    out: dict[str, list[float]] = {name: [] for name in wanted}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        for name, i in index.items():
            cell = row[i].strip() if i < len(row) else ""
            try:
                value = float(cell)
            except ValueError:
                raise LmechInputError(f"{path}, line {line}: {name} must be a number; got {cell!r}") from None
            if not (math.isfinite(value) and value > 0):
                raise LmechInputError(f"{path}, line {line}: {name} must be finite and positive; got {cell!r}")
            out[name].append(value)
    if not out["loss"]:
        raise LmechInputError(f"{path} has a header but no rows of runs")
    return {name: np.asarray(values) for name, values in out.items()}


def from_records(records: Sequence[RunRecord], variables: Mapping[str, str], loss: str) -> dict[str, np.ndarray]:
    """A table from stored runs: ``variables`` maps each form variable to a config key of the runs (or, when the
    config has no such key, a row name whose last value is taken); ``loss`` is the row name of the loss (last value).
    Runs whose status is not "done" (diverged ones) are left out."""
    out: dict[str, list[float]] = {name: [] for name in [*variables, "loss"]}
    for r in records:
        if r.status != "done":
            continue
        for name, key in variables.items():
            out[name].append(float(r.config[key]) if key in r.config else r.last(key))
        out["loss"].append(r.last(loss))
    return {name: np.asarray(values) for name, values in out.items()}
