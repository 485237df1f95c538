"""Parametrizations as frozen tables of width exponents per layer role (Yang & Hu 2021, "Tensor Programs IV",
abc-parametrizations; Yang et al. 2022, "Tensor Programs V", Table 3).

With m = width / base_width, a parameter of role r is initialised with std  gain / sqrt(fan_in) * m^init_r  and
trained with learning rate  base_lr * m^lr_r  (separate exponents for SGD and Adam); ``multiplier`` scales its
layer's output by m^multiplier_r. Every exponent is relative to standard parametrization (SP) at the base width, so
any table at m = 1 is SP exactly. Roles: "input" (the first layer's weights: fan_in fixed), "hidden" (fan_in and
fan_out grow with m), "output" (the readout: fan_in grows), "bias" (all biases).

muP (TP-V Table 3): input weights and biases: init var 1/fan_in, SGD lr x fan_out (m^1), Adam lr x 1; hidden: init
var 1/fan_in, SGD lr x 1, Adam lr x 1/fan_in (m^-1); output: init var 1/fan_in^2 (std m^-1/2 relative to SP), SGD
and Adam lr x 1/fan_in (m^-1). Nothing is stored on tensors: the functions return new dicts. (The ``multiplier``
column is part of the table for abc-parametrizations that use one; SP and muP as tabled here have none, and no
model applies it yet.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from lmech.core import LmechInputError, Params

ROLES = ("input", "hidden", "output", "bias")
OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class Scaling:
    """Exponents of m for one role: initial std, forward multiplier, SGD and Adam learning rates."""

    init: float = 0.0
    multiplier: float = 0.0
    lr_sgd: float = 0.0
    lr_adam: float = 0.0


@dataclass(frozen=True)
class Parametrization:
    name: str
    roles: Mapping[str, Scaling]
    source: str

    def __post_init__(self):
        missing = [r for r in ROLES if r not in self.roles]
        if missing:
            raise LmechInputError(f"parametrization {self.name!r} lacks roles {missing}")


SP = Parametrization("sp", {r: Scaling() for r in ROLES}, "standard parametrization: init var 1/fan_in, one lr")
MUP = Parametrization(
    "mup",
    {
        "input": Scaling(lr_sgd=1.0),
        "hidden": Scaling(lr_adam=-1.0),
        "output": Scaling(init=-0.5, lr_sgd=-1.0, lr_adam=-1.0),
        "bias": Scaling(lr_sgd=1.0),
    },
    "Yang et al. 2022 (Tensor Programs V), Table 3",
)
PARAMETRIZATIONS = {p.name: p for p in (SP, MUP)}


def parametrization(name: str) -> Parametrization:
    try:
        return PARAMETRIZATIONS[name]
    except KeyError:
        raise LmechInputError(f"parametrization must be one of {', '.join(PARAMETRIZATIONS)}; got {name!r}") from None


def width_multiplier(width: int, base_width: int) -> float:
    if not (isinstance(base_width, int) and base_width >= 1 and isinstance(width, int) and width >= 1):
        raise LmechInputError(f"width and base_width must be positive integers; got {width!r} and {base_width!r}")
    if base_width > width:
        raise LmechInputError(f"base_width ({base_width}) must not exceed width ({width}): m = width / base_width >= 1")
    return width / base_width


def mlp_roles(params: Params) -> dict[str, str]:
    """Roles of an lmech MLP's parameters (layers.0 = input, last layer = output, the others hidden, biases bias)."""
    if not params or any(not k.startswith("layers.") or not k.split(".")[1].isdigit() for k in params):
        raise LmechInputError(f"expected an lmech MLP's parameters (layers.<i>.weight/bias); got {sorted(params)}")
    weights = sorted((k for k in params if k.endswith("weight")), key=lambda k: int(k.split(".")[1]))
    roles = {k: "bias" for k in params if k.endswith("bias")}
    roles.update({k: "hidden" for k in weights})
    roles[weights[0]], roles[weights[-1]] = "input", "output"
    return roles


def _role_of(roles: Mapping[str, str], name: str) -> str:
    role = roles.get(name)
    if role not in ROLES:
        raise LmechInputError(f"parameter {name!r} has role {role!r}; roles must be one of {', '.join(ROLES)}")
    return role


def initialise(
    params: Params,
    roles: Mapping[str, str],
    table: Parametrization,
    m: float,
    gen: torch.Generator,
    gain: float = 1.0,
    output_gain: float = 1.0,
) -> Params:
    """New parameters: weights ~ N(0, (g / sqrt(fan_in) m^init)^2) (g = ``output_gain`` for the output, else
    ``gain``), biases zero. Applying it twice with the same generator state gives the same result."""
    out = {}
    for name, p in params.items():
        role = _role_of(roles, name)
        if role == "bias":
            out[name] = torch.zeros_like(p)
            continue
        g = output_gain if role == "output" else gain
        std = g / math.sqrt(p.shape[-1]) * m ** table.roles[role].init
        out[name] = std * torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.dtype)
    return out


def learning_rates(
    roles: Mapping[str, str], table: Parametrization, m: float, base_lr: float, optimizer: str
) -> dict[str, float]:
    """Per-parameter learning rates base_lr m^lr_role for ``optimizer`` ("sgd" or "adam")."""
    if optimizer not in OPTIMIZERS:
        raise LmechInputError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {optimizer!r}")
    column = "lr_sgd" if optimizer == "sgd" else "lr_adam"
    return {name: base_lr * m ** getattr(table.roles[_role_of(roles, name)], column) for name in roles}
