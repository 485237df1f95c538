"""Network builders; each has a functional form ``fn(params, x)``."""

from lmech.nets.functional import Fn, Params, count, ensemble, functional, member
from lmech.nets.linear import align_to_teacher, deep_linear
from lmech.nets.mlp import ACTIVATIONS, MLP, activation
from lmech.nets.ntk_mlp import NTKMLP, NTKLinear
from lmech.nets.resmlp import ResMLP, resmlp_branches, resmlp_forward, resmlp_roles
from lmech.nets.transformer import Transformer, transformer_branches, transformer_roles

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "NTKMLP",
    "Fn",
    "NTKLinear",
    "Params",
    "ResMLP",
    "Transformer",
    "activation",
    "align_to_teacher",
    "count",
    "deep_linear",
    "ensemble",
    "functional",
    "member",
    "resmlp_branches",
    "resmlp_forward",
    "resmlp_roles",
    "transformer_branches",
    "transformer_roles",
]
