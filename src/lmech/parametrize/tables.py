"""Parametrizations as frozen tables of width (and depth) exponents per layer role (Yang & Hu 2021, "Tensor
Programs IV", abc-parametrizations; Yang et al. 2022, "Tensor Programs V", Table 3; Yang et al. 2023, "Tensor
Programs VI", depth-muP).

With m = width / base_width, a trained parameter w of role r is initialised with std  gain / sqrt(fan_in) * m^init_r,
enters the forward pass as  m^multiplier_r * w  and is trained with learning rate  base_lr * m^lr_r  (separate
exponents for SGD and Adam). Every exponent is relative to standard parametrization (SP) at the base width, so any
table at m = 1 is SP exactly. Roles: "input" (the first layer's or the embeddings' weights: fan_in fixed),
"hidden" (fan_in and fan_out grow with m), "output" (the readout: fan_in grows), "bias" (biases and other
vector-like parameters, such as LayerNorm gains, whose one dimension grows with m), "output_bias" (the readout's
bias: no dimension grows, so every table leaves it as in SP; TP-V Table 3 scales a bias's SGD lr by its fan_out,
which is the fixed output dimension here, and mup's MuSGD leaves such "finite" parameters alone).
Attention logits are not a parameter: a table's ``attention`` exponent scales them, q.k / sqrt(d_head) * m^attention
(muP: 1/d_head, TP-V sec. 4 / Table 3 footnote).

Depth: with r = depth / base_depth, a table's ``depth`` scaling multiplies the output of every residual branch by
r^branch_multiplier (applied to the branch's last weight and bias, the parameters marked "out" by the model's
``branches``) and the learning rates of every branch parameter by r^lr.

abc symmetry (TP-IV sec. 3, "Symmetries"): writing a role's exponents as (multiplier A, init B, SGD lr C, Adam lr
C'), the shift (A - t, B + t, C + 2t, C' + t) leaves the trained function unchanged at every step (the effective
weight m^A w, its init and its updates are the same). Mean-field is muP shifted by t = 1 at the output and t = 1/2
in the hidden layers; NTK is SP with hidden and output learning rates m^-1 (for SGD), shifted by t = 1/2. The tests
train both members of each pair and compare their outputs.

Tables:
  SP       init var 1/fan_in, one learning rate for every parameter.
  NTK      Jacot, Gabriel & Hongler 2018: W = w / sqrt(fan_in), w ~ N(0, 1), one learning rate on w
           (multiplier m^-1/2 and init m^+1/2 for hidden and output weights; input layer and biases as SP).
  muP      TP-V Table 3: input weights and width-sized biases: SGD lr m^1, Adam lr 1; hidden: SGD lr 1, Adam lr
           m^-1; output: init std m^-1/2 relative to SP (var 1/fan_in^2), SGD and Adam lr m^-1; the readout's bias
           as SP; attention logits 1/d_head.
  mean-field  muP in the mean-field form (Mei, Montanari & Nguyen 2018; Chizat & Bach 2018; TP-IV's "MFP"):
           readout f = (1/width) sum a_i h_i with a ~ N(0, 1) (multiplier m^-1, init m^+1/2, SGD lr m^1, Adam lr 1),
           hidden weights W = w / sqrt(fan_in) with w ~ N(0, 1) (multiplier m^-1/2, init m^+1/2, SGD lr m^1,
           Adam lr m^-1/2); input and biases as muP.
  depth-muP muP in width and, in depth, residual branches multiplied by r^-1/2, with branch learning rates r^0 for
           SGD and r^-1/2 for Adam (TP-VI, Depth-muP for block depth 1; Bordelon et al. 2023 use the same 1/sqrt(L)
           branch scale).
Nothing is stored on tensors: the functions return new dicts and new callables.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from lmech.core import LmechInputError, Params

ROLES = ("input", "hidden", "output", "bias", "output_bias")
OPTIMIZERS = ("sgd", "adam")
BRANCH_PARTS = ("in", "out")


@dataclass(frozen=True)
class Scaling:
    """Exponents of m for one role: initial std, forward multiplier, SGD and Adam learning rates."""

    init: float = 0.0
    multiplier: float = 0.0
    lr_sgd: float = 0.0
    lr_adam: float = 0.0


@dataclass(frozen=True)
class DepthScaling:
    """Exponents of r = depth / base_depth for the parameters of residual branches."""

    branch_multiplier: float = 0.0
    lr_sgd: float = 0.0
    lr_adam: float = 0.0


@dataclass(frozen=True)
class Parametrization:
    name: str
    roles: Mapping[str, Scaling]
    source: str
    attention: float = 0.0
    depth: DepthScaling = field(default_factory=DepthScaling)

    def __post_init__(self):
        missing = [r for r in ROLES if r not in self.roles]
        if missing:
            raise LmechInputError(f"parametrization {self.name!r} lacks roles {missing}")


SP = Parametrization("sp", {r: Scaling() for r in ROLES}, "standard parametrization: init var 1/fan_in, one lr")
NTK = Parametrization(
    "ntk",
    {
        "input": Scaling(),
        "hidden": Scaling(init=0.5, multiplier=-0.5),
        "output": Scaling(init=0.5, multiplier=-0.5),
        "bias": Scaling(),
        "output_bias": Scaling(),
    },
    "Jacot, Gabriel & Hongler 2018 (NTK parametrization: W = w / sqrt(fan_in), w ~ N(0, 1), one lr on w)",
)
_MUP_ROLES = {
    "input": Scaling(lr_sgd=1.0),
    "hidden": Scaling(lr_adam=-1.0),
    "output": Scaling(init=-0.5, lr_sgd=-1.0, lr_adam=-1.0),
    "bias": Scaling(lr_sgd=1.0),
    "output_bias": Scaling(),
}
MUP = Parametrization("mup", _MUP_ROLES, "Yang et al. 2022 (Tensor Programs V), Table 3", attention=-0.5)
MEAN_FIELD = Parametrization(
    "mean-field",
    {
        "input": Scaling(lr_sgd=1.0),
        "hidden": Scaling(init=0.5, multiplier=-0.5, lr_sgd=1.0, lr_adam=-0.5),
        "output": Scaling(init=0.5, multiplier=-1.0, lr_sgd=1.0, lr_adam=0.0),
        "bias": Scaling(lr_sgd=1.0),
        "output_bias": Scaling(),
    },
    "Mei, Montanari & Nguyen 2018; Chizat & Bach 2018; Yang & Hu 2021 (TP-IV): muP in mean-field form",
    attention=-0.5,
)
DEPTH_MUP = Parametrization(
    "depth-mup",
    _MUP_ROLES,
    "Yang, Yu, Zhu & Hayou 2023 (Tensor Programs VI), Depth-muP; Bordelon et al. 2023",
    attention=-0.5,
    depth=DepthScaling(branch_multiplier=-0.5, lr_sgd=0.0, lr_adam=-0.5),
)
PARAMETRIZATIONS = {p.name: p for p in (SP, NTK, MUP, MEAN_FIELD, DEPTH_MUP)}


def parametrization(name: str) -> Parametrization:
    try:
        return PARAMETRIZATIONS[name]
    except KeyError:
        raise LmechInputError(f"parametrization must be one of {', '.join(PARAMETRIZATIONS)}; got {name!r}") from None


def width_multiplier(width: int, base_width: int) -> float:
    return _ratio(width, base_width, "width")


def depth_multiplier(depth: int, base_depth: int) -> float:
    return _ratio(depth, base_depth, "depth")


def _ratio(value: int, base: int, what: str) -> float:
    if not (isinstance(base, int) and base >= 1 and isinstance(value, int) and value >= 1):
        raise LmechInputError(f"{what} and base_{what} must be positive integers; got {value!r} and {base!r}")
    if base > value:
        raise LmechInputError(f"base_{what} ({base}) must not exceed {what} ({value}): the ratio must be >= 1")
    return value / base


def mlp_roles(params: Params) -> dict[str, str]:
    """Roles of an lmech MLP's parameters (layers.0 = input, last layer = output, the others hidden; the last
    layer's bias output_bias, the other biases bias)."""
    if not params or any(not k.startswith("layers.") or not k.split(".")[1].isdigit() for k in params):
        raise LmechInputError(f"expected an lmech MLP's parameters (layers.<i>.weight/bias); got {sorted(params)}")
    weights = sorted((k for k in params if k.endswith("weight")), key=lambda k: int(k.split(".")[1]))
    roles = {k: "bias" for k in params if k.endswith("bias")}
    roles.update({k: "hidden" for k in weights})
    roles[weights[0]], roles[weights[-1]] = "input", "output"
    last_bias = weights[-1].removesuffix("weight") + "bias"
    if last_bias in params:
        roles[last_bias] = "output_bias"
    return roles


def _role_of(roles: Mapping[str, str], name: str) -> str:
    role = roles.get(name)
    if role not in ROLES:
        raise LmechInputError(f"parameter {name!r} has role {role!r}; roles must be one of {', '.join(ROLES)}")
    return role


def _check_branches(roles: Mapping[str, str], branches: Mapping[str, str] | None) -> Mapping[str, str]:
    branches = branches or {}
    for name, part in branches.items():
        if name not in roles:
            raise LmechInputError(f"branch parameter {name!r} has no role; known parameters: {sorted(roles)}")
        if part not in BRANCH_PARTS:
            raise LmechInputError(f"branch part of {name!r} must be one of {', '.join(BRANCH_PARTS)}; got {part!r}")
    return branches


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
    ``gain``; fan_in = the last dimension), biases zero, vector gains one. Applying it twice with the same generator
    state gives the same result."""
    out = {}
    for name, p in params.items():
        role = _role_of(roles, name)
        if p.dim() < 2:  # vector-like: biases start at 0, LayerNorm-style gains ("...weight") at 1
            out[name] = torch.ones_like(p) if name.endswith("weight") else torch.zeros_like(p)
            continue
        g = output_gain if role == "output" else gain
        std = g / math.sqrt(p.shape[-1]) * m ** table.roles[role].init
        out[name] = std * torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.dtype)
    return out


def multipliers(
    roles: Mapping[str, str],
    table: Parametrization,
    m: float,
    branches: Mapping[str, str] | None = None,
    r: float = 1.0,
) -> dict[str, float]:
    """Forward multiplier of every parameter: m^multiplier_role, times r^branch_multiplier for the last weight and
    bias of each residual branch (``branches[name] == "out"``)."""
    branches = _check_branches(roles, branches)
    out = {}
    for name in roles:
        c = m ** table.roles[_role_of(roles, name)].multiplier
        if branches.get(name) == "out":
            c *= r**table.depth.branch_multiplier
        out[name] = c
    return out


def learning_rates(
    roles: Mapping[str, str],
    table: Parametrization,
    m: float,
    base_lr: float,
    optimizer: str,
    branches: Mapping[str, str] | None = None,
    r: float = 1.0,
) -> dict[str, float]:
    """Per-parameter learning rates base_lr m^lr_role (times r^lr_depth inside residual branches) for
    ``optimizer`` ("sgd" or "adam")."""
    if optimizer not in OPTIMIZERS:
        raise LmechInputError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {optimizer!r}")
    branches = _check_branches(roles, branches)
    column = "lr_sgd" if optimizer == "sgd" else "lr_adam"
    out = {}
    for name in roles:
        lr = base_lr * m ** getattr(table.roles[_role_of(roles, name)], column)
        if name in branches:
            lr *= r ** getattr(table.depth, column)
        out[name] = lr
    return out


def param_groups(params: Mapping[str, torch.Tensor], rates: Mapping[str, float]) -> list[dict[str, Any]]:
    """torch.optim parameter groups, one per distinct learning rate: ``torch.optim.Adam(param_groups(...))``."""
    missing = sorted(set(params) - set(rates))
    if missing:
        raise LmechInputError(f"no learning rate for parameters {missing}")
    groups: dict[float, list[torch.Tensor]] = {}
    for name, p in params.items():
        groups.setdefault(rates[name], []).append(p)
    return [{"params": ps, "lr": lr} for lr, ps in groups.items()]


def attention_scale(table: Parametrization, head_dim: int, base_head_dim: int) -> float:
    """Logit scale of dot-product attention: 1 / sqrt(head_dim) * (head_dim / base_head_dim)^attention."""
    return head_dim**-0.5 * width_multiplier(head_dim, base_head_dim) ** table.attention


@dataclass(frozen=True)
class Multiplied:
    """``fn`` evaluated at the effective parameters {name: c_name * w_name}: the forward multipliers of a table,
    applied without touching the model or its tensors. Wrapping a Multiplied again replaces its multipliers (applying
    twice is applying once); plain Python, so torch.func transforms and torch.compile see through it."""

    fn: Callable[..., torch.Tensor]
    factors: Mapping[str, float]

    def effective(self, params: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v * self.factors[k] if self.factors.get(k, 1.0) != 1.0 else v for k, v in params.items()}

    def __call__(self, params: Mapping[str, torch.Tensor], *args, **kwargs) -> torch.Tensor:
        return self.fn(self.effective(params), *args, **kwargs)

    def chain(self, grads: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Gradients with respect to the trained w from those with respect to the effective c w: c * grad."""
        return {k: g * self.factors[k] if self.factors.get(k, 1.0) != 1.0 else g for k, g in grads.items()}


def with_multipliers(fn: Callable[..., torch.Tensor], factors: Mapping[str, float]) -> Multiplied:
    """fn(params, *args) -> fn({k: factors[k] * params[k]}, *args); see :class:`Multiplied`."""
    bad = {k: c for k, c in factors.items() if not (math.isfinite(c) and c > 0)}
    if bad:
        raise LmechInputError(f"forward multipliers must be positive and finite; got {bad}")
    base = fn.fn if isinstance(fn, Multiplied) else fn
    return Multiplied(base, dict(factors))
