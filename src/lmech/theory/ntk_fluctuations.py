"""Leading-order fluctuations of the empirical NTK of a one-hidden-layer network around its infinite-width limit.

Network (NTK parametrization, lmech.nets.NTKMLP with depth 1): f(x) = (W_std/sqrt(m)) sum_k a_k phi(h_k(x)) + b_std c,
h_k(x) = (W_std/sqrt(d)) w_k.x + b_std b_k, with a_k, w_k, b_k, c ~ N(0, 1). Its NTK is an average over neurons,

    Theta_m(x, x') = b_std^2 + (1/m) sum_k t_k(x, x'),
    t_k = W_std^2 phi(h_k) phi(h'_k) + W_std^2 a_k^2 phi'(h_k) phi'(h'_k) (W_std^2 x.x'/d + b_std^2),

so E[t_k] + b_std^2 is the analytic NTK and, by the central limit theorem,
E ||Theta_m - Theta||_F^2 = (1/m) sum_{x, x'} Var[t_k(x, x')] (Jacot et al. 2018; Hanin & Nica 2019 for depth > 1).
The variance is estimated here by sampling neurons (independently of any network being measured).
"""

from __future__ import annotations

import math

import torch

from lmech.core import LmechInputError
from lmech.nets.mlp import activation


def ntk_fluctuation(
    x,
    *,
    activation_name: str = "relu",
    weight_std: float = 1.0,
    bias_std: float = 0.0,
    neurons: int = 100_000,
    gen: torch.Generator,
) -> torch.Tensor:
    """Var[t_k(x_i, x_j)] over one neuron's parameters, (n, n) float64: the width-1 variance of the NTK entries.

    The predicted relative error at width m is sqrt(sum(var) / m) / ||Theta||_F. Sampling error of the sum:
    ~ sqrt(2 / neurons) relative (0.4% at 1e5 neurons).
    """
    x = torch.as_tensor(x, dtype=torch.float64)
    if x.ndim != 2 or len(x) == 0:
        raise LmechInputError(f"x must be a non-empty (n, d) matrix; got shape {tuple(x.shape)}")
    if neurons < 2:
        raise LmechInputError(f"neurons must be >= 2; got {neurons}")
    phi = activation(activation_name)
    n, d = x.shape
    w2, bias = weight_std**2, bias_std or 0.0
    first = w2 * (x @ x.T) / d + bias**2  # gradient Gram of the first layer, c_ij
    total, squares, batch = torch.zeros(n, n, dtype=torch.float64), torch.zeros(n, n, dtype=torch.float64), 8192
    for start in range(0, neurons, batch):
        k = min(batch, neurons - start)
        w = torch.randn(k, d, generator=gen, dtype=torch.float64)
        b = torch.randn(k, generator=gen, dtype=torch.float64)
        a2 = w2 * torch.randn(k, generator=gen, dtype=torch.float64) ** 2  # W_std^2 a_k^2
        h = (weight_std / math.sqrt(d) * x @ w.T + bias * b).requires_grad_(True)  # (n, k)
        out = phi(h)
        (slope,) = torch.autograd.grad(out.sum(), h)  # phi'(h), elementwise
        f, g = out.detach(), slope.detach()
        # t_k(i, j) = w2 f_ik f_jk + c_ij A_k g_ik g_jk; sums over k of t and t^2 as matrix products
        total += w2 * f @ f.T + first * ((g * a2) @ g.T)
        squares += w2 * w2 * (f * f) @ (f * f).T + 2 * w2 * first * ((f * g * a2) @ (f * g).T)
        squares += first * first * ((g * g * a2 * a2) @ (g * g).T)
    mean = total / neurons
    return (squares / neurons - mean * mean) * neurons / (neurons - 1)
