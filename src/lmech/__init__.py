"""lmech: a laboratory for learning mechanics — predict, measure, compare, show."""

from lmech.core import Check, Figure, Law, LmechInputError, Observable, Panel, Prediction, Series, Snapshot, Verdict
from lmech.laws import REGISTRY
from lmech.sweep import check

__version__ = "0.1.0"

__all__ = [
    "REGISTRY",
    "Check",
    "Figure",
    "Law",
    "LmechInputError",
    "Observable",
    "Panel",
    "Prediction",
    "Series",
    "Snapshot",
    "Verdict",
    "check",
]
