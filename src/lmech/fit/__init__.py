"""Scaling-law fitting: frozen forms, a robust fit with bootstrap intervals, compute-optimal allocation, and tables
of runs from CSV files or the run store."""

from lmech.fit.allocation import Allocation, compute_optimal, exponents, optimal_allocation
from lmech.fit.fitting import Band, FitError, FitResult, fit
from lmech.fit.forms import FORMS, Form, form
from lmech.fit.io import from_records, read_csv

__all__ = [
    "FORMS",
    "Allocation",
    "Band",
    "FitError",
    "FitResult",
    "Form",
    "compute_optimal",
    "exponents",
    "fit",
    "form",
    "from_records",
    "optimal_allocation",
    "read_csv",
]
