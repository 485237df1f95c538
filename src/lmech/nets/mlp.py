"""Multilayer perceptrons with a chosen width, depth, activation, bias and init scale."""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import pairwise

import torch
from torch import nn

from lmech.core import LmechInputError

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "gelu": nn.functional.gelu,
    "erf": torch.erf,
    "sigmoid": torch.sigmoid,
    "linear": lambda z: z,
}

#: Weight std * sqrt(fan_in) that preserves the forward signal at init (He for ReLU, LeCun else).
DEFAULT_GAIN = {"relu": math.sqrt(2.0), "gelu": math.sqrt(2.0)}


def activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise LmechInputError(f"activation must be one of {', '.join(ACTIVATIONS)}; got {name!r}") from None


class MLP(nn.Module):
    """x -> act(W_1 x + b_1) -> ... -> act(W_depth h + b_depth) -> W_out h + b_out.

    ``depth`` counts hidden layers. Weights ~ N(0, init_scale^2 / fan_in) (standard
    parametrization; ``init_scale`` defaults to the activation's He/LeCun gain), biases
    ~ N(0, bias_scale^2). ``output_multiplier`` alpha scales the readout, f = alpha * (W_out h + b_out):
    the lazy/rich knob of Chizat, Oyallon & Bach 2019 (large alpha, with the loss scaled by 1/alpha^2, is lazy;
    small alpha is rich).
    """

    def __init__(
        self,
        dim_in: int,
        width: int,
        depth: int,
        dim_out: int,
        *,
        activation_name: str = "relu",
        bias: bool = True,
        init_scale: float | None = None,
        bias_scale: float = 0.0,
        output_multiplier: float = 1.0,
        gen: torch.Generator,
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__()
        if depth < 1 or width < 1:
            raise LmechInputError(f"MLP needs depth >= 1 and width >= 1; got depth={depth}, width={width}")
        if not (math.isfinite(output_multiplier) and output_multiplier > 0):
            raise LmechInputError(f"output_multiplier must be a positive finite number; got {output_multiplier!r}")
        self.output_multiplier = float(output_multiplier)
        self.act = activation(activation_name)
        gain = DEFAULT_GAIN.get(activation_name, 1.0) if init_scale is None else init_scale
        dims = [dim_in] + [width] * depth + [dim_out]
        self.layers = nn.ModuleList(nn.Linear(a, b, bias=bias, dtype=dtype) for a, b in pairwise(dims))
        with torch.no_grad():
            for i, layer in enumerate(self.layers):
                std = (gain if i < depth else 1.0) / math.sqrt(layer.in_features)
                layer.weight.copy_(std * torch.randn(layer.weight.shape, generator=gen, dtype=torch.float64))
                if bias:
                    layer.bias.copy_(bias_scale * torch.randn(layer.bias.shape, generator=gen, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:-1]:
            x = self.act(layer(x))
        out = self.layers[-1](x)
        return out if self.output_multiplier == 1.0 else self.output_multiplier * out
