"""Network builders; each has a functional form ``fn(params, x)``."""

from lmech.nets.functional import Fn, Params, count, ensemble, functional, member
from lmech.nets.linear import align_to_teacher, deep_linear
from lmech.nets.mlp import ACTIVATIONS, MLP, activation
from lmech.nets.ntk_mlp import NTKMLP, NTKLinear

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "NTKMLP",
    "Fn",
    "NTKLinear",
    "Params",
    "activation",
    "align_to_teacher",
    "count",
    "deep_linear",
    "ensemble",
    "functional",
    "member",
]
