"""Residual MLP with pre-LayerNorm blocks, and the roles and residual branches of its parameters.

    h_0     = W_in x + b_in
    h_{l+1} = h_l + W2_l act(W1_l LN(h_l) + b1_l) + b2_l        l = 0 .. blocks - 1
    f       = W_out LN(h_L) + b_out

LN is a parameter-free LayerNorm (mean 0, variance 1 over the width; ``norm=False`` replaces it by the identity).
The blocks are pre-normalised as in pre-activation ResNets (He et al. 2016, "Identity mappings") and pre-LN
transformers: the stream h is only ever added to, so each branch's output multiplier sets its share of the stream.
There is no activation before the readout (a ReLU there would discard the stream's negative half; the readout sees
LN(h_L), as in pre-LN transformers). With LN each branch adds variance independent of |h| at init, so without a
branch multiplier the stream's mean square grows linearly in the number of blocks (RMS ~ sqrt(L)); with the
depth-muP multiplier L^-1/2 on every branch (Yang et al. 2023, "Tensor Programs VI"; Bordelon et al. 2023) it stays
O(1). Without LN (``norm=False``) a relu branch's output scales with |h|, so unscaled blocks grow the stream
geometrically (mean square x3 per block with He-gain weights). Parametrizations are applied from outside
(lmech.parametrize) through :func:`resmlp_roles` and :func:`resmlp_branches`.

:func:`resmlp_forward` is the pure forward function; it broadcasts over a leading ensemble axis (weights (E, o, i),
biases (E, o), output (E, n, o)), so a stacked ensemble is evaluated in one call.
"""

from __future__ import annotations

import math
import re

import torch
from torch import nn

from lmech.core import LmechInputError, Params
from lmech.nets.mlp import DEFAULT_GAIN, activation

_BLOCK = re.compile(r"^blocks\.(\d+)\.(fc1|fc2)\.(weight|bias)$")
_ENDS = {"input.weight", "input.bias", "output.weight", "output.bias"}


class ResMLP(nn.Module):
    """x (n, dim_in) -> f (n, dim_out); see the module docstring for the blocks. Weights ~ N(0, gain^2 / fan_in)
    with the activation's He/LeCun gain (readout gain 1), biases 0: standard parametrization, no branch multiplier
    (apply one with ``lmech.parametrize.with_multipliers``)."""

    def __init__(
        self,
        dim_in: int,
        width: int,
        blocks: int,
        dim_out: int,
        *,
        activation_name: str = "relu",
        norm: bool = True,
        gen: torch.Generator,
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__()
        for name, value in (("dim_in", dim_in), ("width", width), ("blocks", blocks), ("dim_out", dim_out)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise LmechInputError(f"ResMLP {name} must be a positive integer; got {value!r}")
        activation(activation_name)  # a clear error for an unknown name
        self.activation_name, self.norm = activation_name, bool(norm)
        self.input = nn.Linear(dim_in, width, dtype=dtype)
        self.blocks = nn.ModuleList(
            nn.ModuleDict({"fc1": nn.Linear(width, width, dtype=dtype), "fc2": nn.Linear(width, width, dtype=dtype)})
            for _ in range(blocks)
        )
        self.output = nn.Linear(width, dim_out, dtype=dtype)
        gain = DEFAULT_GAIN.get(activation_name, 1.0)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith("bias"):
                    p.zero_()
                else:
                    std = (1.0 if name == "output.weight" else gain) / math.sqrt(p.shape[1])
                    p.copy_(std * torch.randn(p.shape, generator=gen, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return resmlp_forward(dict(self.named_parameters()), x, self.activation_name, self.norm)


def _layer_norm(h: torch.Tensor) -> torch.Tensor:
    return nn.functional.layer_norm(h, h.shape[-1:])


def _linear(params: Params, name: str, h: torch.Tensor) -> torch.Tensor:
    """h W^T + b; broadcasts over a leading ensemble axis of W (E, o, i) and b (E, o)."""
    return h @ params[f"{name}.weight"].transpose(-1, -2) + params[f"{name}.bias"].unsqueeze(-2)


def resmlp_forward(
    params: Params, x: torch.Tensor, activation_name: str = "relu", norm: bool = True, stream: bool = False
) -> torch.Tensor:
    """The ResMLP's output f (or, with ``stream=True``, the residual stream h_L before the final LN) at ``params``
    (names as :class:`ResMLP`'s; the number of blocks is read from them)."""
    act = activation(activation_name)
    ln = _layer_norm if norm else (lambda h: h)
    h = _linear(params, "input", x)  # (n, width) or (E, n, width)
    for i in range(_count_blocks(params)):
        h = h + _linear(params, f"blocks.{i}.fc2", act(_linear(params, f"blocks.{i}.fc1", ln(h))))
    return h if stream else _linear(params, "output", ln(h))


def _count_blocks(params: Params) -> int:
    """Number of blocks, after checking that ``params`` are a ResMLP's (names and completeness)."""
    bad = sorted(k for k in params if k not in _ENDS and not _BLOCK.match(k))
    if bad or not _ENDS <= set(params):
        raise LmechInputError(
            "expected a ResMLP's parameters (input.*, blocks.<i>.fc1/fc2.weight/bias, output.*); "
            f"got unexpected {bad} and missing {sorted(_ENDS - set(params))}"
        )
    ids = {int(_BLOCK.match(k).group(1)) for k in params if k not in _ENDS}
    blocks = len(ids)
    want = {f"blocks.{i}.{fc}.{t}" for i in range(blocks) for fc in ("fc1", "fc2") for t in ("weight", "bias")}
    have = set(params) - _ENDS
    if ids != set(range(blocks)) or have != want:
        raise LmechInputError(f"ResMLP blocks must be numbered 0..L-1 with fc1 and fc2; missing {sorted(want - have)}")
    return blocks


def resmlp_roles(params: Params) -> dict[str, str]:
    """Roles for lmech.parametrize: W_in "input", block weights "hidden", W_out "output", b_out "output_bias" (its
    size, dim_out, does not grow with the width), every other bias "bias"."""
    _count_blocks(params)
    roles = {k: "bias" if k.endswith("bias") else "hidden" for k in params}
    roles["input.weight"], roles["output.weight"], roles["output.bias"] = "input", "output", "output_bias"
    return roles


def resmlp_branches(params: Params) -> dict[str, str]:
    """Residual-branch parts: each block's fc1 (weight, bias) "in", its fc2 (weight, bias) "out" (the branch's
    last layer, whose forward multiplier scales the branch output)."""
    _count_blocks(params)
    return {k: "in" if ".fc1." in k else "out" for k in params if k.startswith("blocks.")}
