"""Deep linear networks f(x) = W_L ... W_1 x (Saxe, McClelland & Ganguli 2014)."""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn

from lmech.core import LmechInputError, random_orthogonal


def deep_linear(
    dim_in: int,
    width: int,
    dim_out: int,
    depth: int,
    *,
    init_scale: float,
    gen: torch.Generator,
    dtype: torch.dtype = torch.float32,
) -> nn.Sequential:
    """``depth`` bias-free linear layers (depth = number of weight matrices, >= 1) with every
    entry drawn i.i.d. from N(0, init_scale^2)."""
    if depth < 1:
        raise LmechInputError(f"depth must be >= 1; got {depth}")
    dims = [dim_in] + [width] * (depth - 1) + [dim_out]
    layers = [nn.Linear(a, b, bias=False, dtype=dtype) for a, b in pairwise(dims)]
    with torch.no_grad():
        for layer in layers:
            layer.weight.copy_(init_scale * torch.randn(layer.weight.shape, generator=gen, dtype=torch.float64))
    return nn.Sequential(*layers)


def align_to_teacher(
    net: nn.Sequential, u: torch.Tensor, v: torch.Tensor, layer_gain: float, gen: torch.Generator
) -> nn.Sequential:
    """Aligned, balanced ("spectral") init: W_1 = R_1 a V^T, W_l = R_l a R_{l-1}^T, W_L = U a R_{L-1}^T
    with a = ``layer_gain`` on each of the r teacher modes and Haar-random R_l (width, r), so the
    end-to-end map is a^L U V^T and each mode follows the decoupled ODE exactly (Saxe et al. 2014,
    eq. 6 and sec. 3). Returns a new network; ``net`` is left as it was."""
    layers = [m for m in net if isinstance(m, nn.Linear)]
    r = u.shape[1]
    widths = [layer.weight.shape[0] for layer in layers[:-1]]
    if any(w < r for w in widths):
        raise LmechInputError(f"aligned init needs hidden width >= number of modes ({r}); got {min(widths)}")
    bases = [v] + [random_orthogonal(w, r, gen) for w in widths] + [u]
    out = nn.Sequential(
        *[nn.Linear(layer.in_features, layer.out_features, bias=False, dtype=layer.weight.dtype) for layer in layers]
    )
    with torch.no_grad():
        for layer, left, right in zip(out, bases[1:], bases[:-1], strict=True):
            layer.weight.copy_(layer_gain * left @ right.T)
    return out
