"""Expand a law into runs and execute them through the store (serially or on a process pool)."""

from lmech.sweep.check import check
from lmech.sweep.executor import Execution, execute

__all__ = ["Execution", "check", "execute"]
