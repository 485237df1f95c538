"""Networks in the NTK parametrization (Jacot et al. 2018): parameters ~ N(0, 1), scales in the forward pass.

A dense layer computes h = (W_std / sqrt(fan_in)) W a + b_std b with W, b ~ N(0, 1). Its infinite-width kernels are
``lmech.theory.kernels(..., parametrization="ntk")`` (neural-tangents' ``stax.Dense(..., parameterization="ntk")``).
"""

from __future__ import annotations

import math
from itertools import pairwise

import torch
from torch import nn

from lmech.core import LmechInputError
from lmech.nets.mlp import activation


class NTKLinear(nn.Module):
    """h = weight_multiplier * a W^T + bias_multiplier * b, with W, b ~ N(0, 1).

    ``weight_multiplier`` = W_std / sqrt(fan_in) and ``bias_multiplier`` = b_std are plain floats, read by the
    structured empirical NTK (a dense layer's NTK is multiplier^2 (A A^T) * (G G^T))."""

    def __init__(
        self,
        fan_in: int,
        fan_out: int,
        *,
        weight_std: float,
        bias_std: float | None,
        gen: torch.Generator,
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(fan_out, fan_in, generator=gen, dtype=torch.float64).to(dtype))
        self.weight_multiplier = weight_std / math.sqrt(fan_in)
        self.bias_multiplier = bias_std or 0.0
        self.bias = None
        if bias_std is not None:
            self.bias = nn.Parameter(torch.randn(fan_out, generator=gen, dtype=torch.float64).to(dtype))

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        h = self.weight_multiplier * (a @ self.weight.T)
        return h if self.bias is None else h + self.bias_multiplier * self.bias


class NTKMLP(nn.Module):
    """``depth`` hidden NTKLinear layers with an activation, then a linear NTKLinear readout."""

    def __init__(
        self,
        dim_in: int,
        width: int,
        depth: int,
        dim_out: int = 1,
        *,
        activation_name: str = "relu",
        weight_std: float = math.sqrt(2),
        bias_std: float | None = 0.1,
        gen: torch.Generator,
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__()
        if depth < 0 or width < 1 or dim_in < 1 or dim_out < 1:
            raise LmechInputError(
                f"NTKMLP needs depth >= 0 and positive sizes; got depth={depth}, width={width}, "
                f"dim_in={dim_in}, dim_out={dim_out}"
            )
        self.act = activation(activation_name)
        dims = [dim_in] + [width] * depth + [dim_out]
        self.layers = nn.ModuleList(
            NTKLinear(a, b, weight_std=weight_std, bias_std=bias_std, gen=gen, dtype=dtype) for a, b in pairwise(dims)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:-1]:
            x = self.act(layer(x))
        return self.layers[-1](x)
