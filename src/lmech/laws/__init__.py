"""The registered laws, one module each."""

from lmech.core import Registry
from lmech.laws import (
    balancedness,
    dln_modes,
    double_descent,
    eigenlearning,
    kernel_scaling,
    ntk_convergence,
    ntk_regression,
)

REGISTRY = Registry(
    [
        dln_modes.LAW,
        balancedness.LAW,
        eigenlearning.LAW,
        kernel_scaling.LAW,
        double_descent.LAW,
        ntk_regression.LAW,
        ntk_convergence.LAW,
    ]
)

__all__ = ["REGISTRY"]
