"""A small pre-LayerNorm decoder-only transformer whose parameters carry roles, so any parametrization table applies.

    h_0 = E[:, x_t] + P[:, t]                                   token and learned position embeddings
    h <- h + Attn(LN(h)),  h <- h + W_2 gelu(W_1 LN(h) + b_1) + b_2     for each of n_layers blocks
    logits = U LN(h) + c                                         final LayerNorm and unembedding (no weight tying)

Attention is causal multi-head dot-product attention with logits s q.k (s = ``attention_scale``, default
1 / sqrt(head_dim); muP uses 1 / head_dim, Yang et al. 2022, "Tensor Programs V", sec. 4). The layout follows
GPT-2 (Radford et al. 2019) without dropout. Embeddings are stored as (width, vocab) and (width, context) matrices --
the weights of a linear map from a one-hot input -- so that every weight's fan_in is its last dimension, as
lmech.parametrize.initialise assumes: token and position embeddings are "input" weights (fan_in vocab / context,
fixed as the width grows), attention and MLP matrices "hidden", the unembedding "output", its bias "output_bias"
(vocab-sized: no width scaling), and every other vector (biases, LayerNorm gains and biases) "bias". The default
initialisation is standard parametrization, drawn by
``initialise(params, transformer_roles(params), SP, 1.0, gen)``: weights N(0, 1 / fan_in), biases 0, LayerNorm
gains 1.
"""

from __future__ import annotations

import math
import re

import torch
from torch import nn
from torch.nn import functional as F

from lmech.core import LmechInputError, Params
from lmech.parametrize import SP, initialise

__all__ = ["Transformer", "transformer_branches", "transformer_roles"]


class Attention(nn.Module):
    """Causal multi-head self-attention with separate q, k, v and output projections."""

    def __init__(self, width: int, n_heads: int, scale: float):
        super().__init__()
        self.n_heads, self.scale = n_heads, scale
        self.q, self.k, self.v, self.o = (nn.Linear(width, width) for _ in range(4))

    def _heads(self, z: torch.Tensor) -> torch.Tensor:
        b, t, w = z.shape
        return z.view(b, t, self.n_heads, w // self.n_heads).transpose(1, 2)  # (b, heads, t, head_dim)

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """Pre-softmax attention logits s q.k, (b, heads, t, t), before the causal mask."""
        q, k = self._heads(self.q(h)), self._heads(self.k(h))
        return self.scale * q @ k.transpose(-1, -2)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        q, k, v = self._heads(self.q(h)), self._heads(self.k(h)), self._heads(self.v(h))
        z = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scale)  # (b, heads, t, head_dim)
        return self.o(z.transpose(1, 2).reshape(h.shape))


class Block(nn.Module):
    def __init__(self, width: int, n_heads: int, mlp_ratio: int, scale: float):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(width), Attention(width, n_heads, scale)
        self.ln2 = nn.LayerNorm(width)
        self.mlp = nn.ModuleDict(
            {"fc": nn.Linear(width, mlp_ratio * width), "proj": nn.Linear(mlp_ratio * width, width)}
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = h + self.attn(self.ln1(h))
        return h + self.mlp["proj"](F.gelu(self.mlp["fc"](self.ln2(h))))


class Transformer(nn.Module):
    """Token ids (batch, t <= context) -> next-token logits (batch, t, vocab); see the module docstring."""

    def __init__(
        self,
        vocab: int,
        context: int,
        width: int,
        n_layers: int,
        n_heads: int,
        mlp_ratio: int = 4,
        attention_scale: float | None = None,
        *,
        gen: torch.Generator,
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__()
        for name, value in (("vocab", vocab), ("context", context), ("width", width), ("n_layers", n_layers)):
            if not isinstance(value, int) or value < 1:
                raise LmechInputError(f"{name} must be a positive integer; got {value!r}")
        for name, value in (("n_heads", n_heads), ("mlp_ratio", mlp_ratio)):
            if not isinstance(value, int) or value < 1:
                raise LmechInputError(f"{name} must be a positive integer; got {value!r}")
        if width % n_heads:
            raise LmechInputError(f"width must be divisible by n_heads; got width={width}, n_heads={n_heads}")
        self.head_dim = width // n_heads
        scale = self.head_dim**-0.5 if attention_scale is None else float(attention_scale)
        if not (math.isfinite(scale) and scale > 0):
            raise LmechInputError(f"attention_scale must be a positive finite number or None; got {attention_scale!r}")
        self.vocab, self.context, self.attention_scale = vocab, context, scale
        self.embed = nn.Linear(vocab, width, bias=False)  # weight (width, vocab): column x is token x's vector
        self.pos = nn.Linear(context, width, bias=False)  # weight (width, context)
        self.blocks = nn.ModuleList(Block(width, n_heads, mlp_ratio, scale) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(width)
        self.unembed = nn.Linear(width, vocab)
        self.to(dtype)
        params = dict(self.named_parameters())
        init = initialise(params, transformer_roles(params), SP, 1.0, gen)  # SP: N(0, 1/fan_in), gains 1, biases 0
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(init[name])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[-1]
        if t > self.context:
            raise LmechInputError(f"sequence length must be at most context={self.context}; got {t}")
        h = F.embedding(x, self.embed.weight.T) + self.pos.weight[:, :t].T  # (b, t, width)
        for block in self.blocks:
            h = block(h)
        return self.unembed(self.ln_f(h))  # (b, t, vocab)


_IN_BLOCK = re.compile(r"blocks\.\d+\.(ln1|ln2|attn\.[qkvo]|mlp\.fc|mlp\.proj)\.(weight|bias)")
_TOP = {"embed.weight", "pos.weight", "ln_f.weight", "ln_f.bias", "unembed.weight", "unembed.bias"}


def _check(params: Params) -> None:
    bad = sorted(k for k in params if k not in _TOP and not _IN_BLOCK.fullmatch(k))
    missing = sorted({"embed.weight", "pos.weight", "unembed.weight"} - set(params))
    if bad or missing:
        raise LmechInputError(
            "expected the parameters of an lmech Transformer (embed.weight, pos.weight, blocks.<i>.{ln1,ln2,attn.q/k/"
            f"v/o,mlp.fc,mlp.proj}}.*, ln_f.*, unembed.*); unknown names {bad[:5]}, missing {missing}"
        )


def transformer_roles(params: Params) -> dict[str, str]:
    """Roles for lmech.parametrize: embeddings "input", attention and MLP matrices "hidden", the unembedding
    "output" and its bias "output_bias", every other vector (biases, LayerNorm gains and biases) "bias"."""
    _check(params)
    roles = {}
    for name, p in params.items():
        if name in ("embed.weight", "pos.weight"):
            roles[name] = "input"
        elif name == "unembed.weight":
            roles[name] = "output"
        elif name == "unembed.bias":
            roles[name] = "output_bias"
        else:
            roles[name] = "hidden" if p.dim() >= 2 else "bias"
    return roles


def transformer_branches(params: Params) -> dict[str, str]:
    """Residual-branch parts for lmech.parametrize: each block's attention output projection and second MLP layer
    (weight and bias) are "out" (their product is the branch's output, which a depth multiplier scales); every other
    parameter of a block (LayerNorms, q/k/v, the first MLP layer) is "in"."""
    _check(params)
    out = {}
    for name in params:
        if _IN_BLOCK.fullmatch(name):
            out[name] = "out" if (".attn.o." in name or ".mlp.proj." in name) else "in"
    return out
