"""Render a law's figure description (:class:`lmech.core.Figure`) with matplotlib.

"Dots on curves": theory as lines, measurements as dots, tolerance bands shaded. The figure
is data stored with the verdict, so it can be redrawn from the store alone.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import NullFormatter

from lmech.core import Figure, Panel, Series

PALETTE = plt.get_cmap("tab10").colors


def _color(series: Series, fallback: int):
    return PALETTE[(series.color if series.color is not None else fallback) % len(PALETTE)]


def _values(seq) -> list[float]:
    return [math.nan if v is None else v for v in seq]


def _draw(ax, panel: Panel) -> None:
    for i, s in enumerate(panel.series):
        color = _color(s, i)
        x, y = _values(s.x), _values(s.y)
        label = s.label or "_nolegend_"
        if s.style == "line":
            ax.plot(x, y, "-", color=color, lw=1.6, label=label)
        elif s.style == "dots":
            ax.plot(x, y, "o", color=color, ms=3.5, alpha=0.85, label=label)
        elif s.style == "samples":
            ax.plot(x, y, "_", color=color, ms=6, mew=0.8, alpha=0.5, label=label)
        elif s.style == "band":
            ax.fill_between(x, _values(s.y_low), _values(s.y_high), color=color, alpha=0.15, lw=0, label=label)
        elif s.style == "hline":
            ax.axhline(y[0], color=color, ls="--", lw=1.0, label=label)
        else:
            raise ValueError(f"unknown series style {s.style!r}")
    ax.set(
        title=textwrap.fill(panel.title, 44),
        xlabel=panel.xlabel,
        ylabel=panel.ylabel,
        xscale=panel.xscale,
        yscale=panel.yscale,
    )
    for axis, scale, (lo, hi) in ((ax.xaxis, panel.xscale, ax.get_xlim()), (ax.yaxis, panel.yscale, ax.get_ylim())):
        if scale == "log" and lo > 0 and hi / lo > 10:  # within one decade, minor labels are the only labels
            axis.set_minor_formatter(NullFormatter())
    ax.grid(alpha=0.25)
    handles = ax.get_legend_handles_labels()[0]
    if handles:
        ax.legend(fontsize=6.5, ncol=2 if len(handles) > 6 else 1, framealpha=0.8)


def render(figure: Figure, path: str | Path) -> Path:
    """Draw ``figure`` (one row of panels) to ``path`` (PNG or SVG by suffix)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(figure.panels)
    fig, axes = plt.subplots(1, n, figsize=(4.6 * n, 3.8), squeeze=False)
    for ax, panel in zip(axes[0], figure.panels, strict=True):
        _draw(ax, panel)
    fig.suptitle(figure.title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
