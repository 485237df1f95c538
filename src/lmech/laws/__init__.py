"""The registered laws, one module each."""

from lmech.core import Registry
from lmech.laws import balancedness, dln_modes, eigenlearning

REGISTRY = Registry([dln_modes.LAW, balancedness.LAW, eigenlearning.LAW])

__all__ = ["REGISTRY"]
