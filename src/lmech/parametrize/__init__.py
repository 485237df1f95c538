"""abc-parametrizations as data: per-role exponents of the width multiplier, and pure functions that apply them."""

from lmech.parametrize.tables import (
    MUP,
    PARAMETRIZATIONS,
    ROLES,
    SP,
    Parametrization,
    Scaling,
    initialise,
    learning_rates,
    mlp_roles,
    parametrization,
    width_multiplier,
)

__all__ = [
    "MUP",
    "PARAMETRIZATIONS",
    "ROLES",
    "SP",
    "Parametrization",
    "Scaling",
    "initialise",
    "learning_rates",
    "mlp_roles",
    "parametrization",
    "width_multiplier",
]
