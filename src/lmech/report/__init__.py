"""Figures and static HTML pages, drawn from verdicts and the store; no computation."""

from lmech.report.almanac import figure_path, render_verdict, write_almanac
from lmech.report.figures import render
from lmech.report.format import short, verdict_word

__all__ = ["figure_path", "render", "render_verdict", "short", "verdict_word", "write_almanac"]
