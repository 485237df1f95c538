"""Learning-rate sweeps across model sizes, shared by mup-transfer (widths) and depth-transfer (depths): the jobs
(one per optimizer, parametrization, size and seed, its log2 lr grid trained as one ensemble), the final-loss
results, the (seeds, grid) loss table per size, the optimum of a grid, and the loss-vs-lr panel."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from lmech.core import Panel, Row, RunRecord, RunResult, RunSpec, Series


def jobs(
    law: str,
    version: int,
    shared: Mapping[str, Any],
    grids: Mapping[str, Sequence[float]],
    parametrizations: Sequence[str],
    size_key: str,
    sizes: Sequence[int],
    seeds: int,
) -> list[tuple[RunSpec, ...]]:
    """One job per (optimizer in ``grids``, parametrization, size, seed); its runs are the optimizer's log2 lrs."""
    out = []
    for opt, grid in grids.items():
        for p in parametrizations:
            for size in sizes:
                for s in range(seeds):
                    base = {**shared, "optimizer": opt, "parametrization": p, size_key: size, "member": s}
                    out.append(tuple(RunSpec(law, version, {**base, "log2_lr": g}) for g in grid))
    return out


def final_losses(losses: torch.Tensor, steps: int, seconds: float) -> list[RunResult]:
    """One result per member: its final training loss, or ``diverged`` at ``steps`` when it is not finite."""
    out = []
    for loss in losses.tolist():
        status = "done" if math.isfinite(loss) else "diverged"
        out.append(RunResult(status, [Row(steps, "train_loss", loss)], seconds, steps if status != "done" else None))
    return out


def loss_table(
    records: Sequence[RunRecord],
    opt: str,
    p: str,
    grid: Sequence[float],
    size_key: str,
    sizes: Sequence[int],
    seeds: int,
) -> dict[int, np.ndarray]:
    """{size: (seeds, grid) final losses}, +inf for diverged (or missing) runs."""
    table = {size: np.full((seeds, len(grid)), np.inf) for size in sizes}
    for r in records:
        c = r.config
        if c["optimizer"] == opt and c["parametrization"] == p and r.status == "done":
            table[c[size_key]][c["member"], list(grid).index(c["log2_lr"])] = r.last("train_loss")
    return table


def optimum(grid: Sequence[float], losses: Sequence[float]) -> float:
    """log2 lr at the vertex of the parabola through the grid minimum and its two neighbours; NaN when the minimum
    lies on the grid's edge (it cannot be located) or every run diverged. Non-finite losses count as +inf."""
    y = np.where(np.isfinite(losses), np.asarray(losses, dtype=float), np.inf)
    i = int(np.argmin(y))
    if not np.isfinite(y[i]) or i == 0 or i == len(y) - 1:
        return math.nan
    y0, y1, y2 = np.log(y[i - 1 : i + 2])  # a parabola in log loss: the curves are ~linear in log2 lr on each side
    if not np.isfinite(y0 + y2):
        return float(grid[i])
    h = grid[i + 1] - grid[i]
    return float(grid[i] + 0.5 * h * (y0 - y2) / (y0 - 2 * y1 + y2))


def loss_panel(
    title: str,
    ylabel: str,
    label: Callable[[int], str],
    grid: Sequence[float],
    curves: Mapping[int, np.ndarray],
    optima: Sequence[float],
) -> Panel:
    """Seed-mean final loss against log2 lr, one line per size (in ``curves`` order), its optimum as a dot."""
    series = []
    for j, (size, losses) in enumerate(curves.items()):
        mean = np.where(np.isfinite(losses), losses, np.nan).mean(0)  # (grid,)
        series.append(Series(label(size), list(grid), [float(v) for v in mean], "line", j))
        if math.isfinite(optima[j]):
            y = float(np.interp(optima[j], grid, np.nan_to_num(mean, nan=np.nanmax(mean))))
            series.append(Series("", [float(optima[j])], [y], "dots", j))
    return Panel(title, "log2 base learning rate", ylabel, series, yscale="log")
