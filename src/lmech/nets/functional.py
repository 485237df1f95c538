"""Functional forms of modules: ``fn(params, x)`` via ``torch.func.functional_call``.

Everything that measures or trains works on a pure function of explicit parameters; an
ensemble of identically shaped modules becomes one stacked parameter dict (leading axis E)
that ``torch.func.vmap`` maps over.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call, stack_module_state

from lmech.core import Fn, Params


def functional(module: nn.Module) -> tuple[Fn, Params]:
    """(fn, params): ``fn(params, x) == module(x)``; params are detached copies (the module is
    never mutated by anything that uses them)."""
    skeleton = copy.deepcopy(module).to("meta")
    params = {k: v.detach().clone() for k, v in module.named_parameters()}

    def fn(p: Params, x: torch.Tensor) -> torch.Tensor:
        return functional_call(skeleton, p, (x,))

    return fn, params


def ensemble(modules: Sequence[nn.Module]) -> tuple[Fn, Params]:
    """(fn, stacked): parameters of E identically shaped modules stacked along a new leading axis
    (``torch.func.stack_module_state``); ``fn`` is the functional form of one member."""
    if not modules:
        raise ValueError("ensemble needs at least one module")
    stacked, _buffers = stack_module_state(list(modules))
    fn, _ = functional(modules[0])
    return fn, {k: v.detach().clone() for k, v in stacked.items()}


def member(stacked: Params, i: int) -> Params:
    """The parameters of ensemble member ``i``."""
    return {k: v[i] for k, v in stacked.items()}


def count(params: Params) -> int:
    return sum(v.numel() for v in params.values())
