"""The registered laws, one module each."""

from lmech.core import Registry
from lmech.laws import balancedness, dln_modes

REGISTRY = Registry([dln_modes.LAW, balancedness.LAW])

__all__ = ["REGISTRY"]
