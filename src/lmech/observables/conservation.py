"""Conserved quantities of gradient flow and their drift under gradient descent.

Deep linear networks: C_l = W_{l+1}^T W_{l+1} - W_l W_l^T is conserved (Saxe et al. 2014;
Arora et al. 2018; Du, Hu & Lee 2018, Thm 2.1). Networks with a positively homogeneous
activation (ReLU): for every hidden neuron j, c_j = ||w_in,j||^2 + b_j^2 - ||w_out,j||^2 is
conserved (Du, Hu & Lee 2018, Thm 2.2; Kunin et al. 2021). One GD step with step size eta
changes C_l by exactly eta^2 (G_{l+1}^T G_{l+1} - G_l G_l^T), so the drift is O(eta) at fixed
gradient-flow time.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch

from lmech.core import Observable, Params, Snapshot


def linear_invariants(params: Params, weights: Sequence[str]) -> list[torch.Tensor]:
    """[C_1, ..., C_{L-1}] with C_l = W_{l+1}^T W_{l+1} - W_l W_l^T, for weights (out, in) in order."""
    ws = [params[name].to(torch.float64) for name in weights]
    return [b.T @ b - a @ a.T for a, b in pairwise(ws)]


def _linear_scales(params: Params, weights: Sequence[str]) -> list[float]:
    ws = [params[name].to(torch.float64) for name in weights]
    return [0.5 * float(torch.linalg.norm(b.T @ b) + torch.linalg.norm(a @ a.T)) for a, b in pairwise(ws)]


def neuron_invariants(params: Params, layers: Sequence[tuple[str, str | None, str]]) -> list[torch.Tensor]:
    """Per hidden layer: c_j = ||w_in,j||^2 + b_j^2 - ||w_out,j||^2 for each neuron j.

    ``layers`` lists (incoming weight, incoming bias or None, outgoing weight) names."""
    return [
        _incoming(params, w_in, b_in) - (params[w_out].to(torch.float64) ** 2).sum(0) for w_in, b_in, w_out in layers
    ]


def _incoming(params: Params, w_in: str, b_in: str | None) -> torch.Tensor:
    sq = (params[w_in].to(torch.float64) ** 2).sum(1)
    return sq + params[b_in].to(torch.float64) ** 2 if b_in else sq


def _neuron_scales(params: Params, layers: Sequence[tuple[str, str | None, str]]) -> list[float]:
    return [
        0.5
        * float(
            torch.linalg.norm(_incoming(params, w_in, b_in))
            + torch.linalg.norm((params[w_out].to(torch.float64) ** 2).sum(0))
        )
        for w_in, b_in, w_out in layers
    ]


def invariant_drift(kind: str, names: Sequence) -> Observable:
    """Relative drift of the conserved quantities since the first measurement.

    drift_l(t) = ||C_l(t) - C_l(0)||_F / s_l(t), with s_l the mean Frobenius norm of the two
    terms whose difference is conserved (so the drift is relative to the weights' own scale).
    Rows "drift/l" per layer pair and "drift" (the max). ``kind`` is "linear" (``names``: the
    weight names in order) or "neuron" (``names``: (w_in, b_in, w_out) per hidden layer).
    """
    invariants, scales = {"linear": (linear_invariants, _linear_scales), "neuron": (neuron_invariants, _neuron_scales)}[
        kind
    ]

    def init(s: Snapshot) -> list[torch.Tensor]:
        return invariants(s.params, names)

    def measure(s: Snapshot, start: list[torch.Tensor]) -> tuple[dict[str, float], list[torch.Tensor]]:
        now, sizes = invariants(s.params, names), scales(s.params, names)
        drifts = [float(torch.linalg.norm(c - c0)) / size for c, c0, size in zip(now, start, sizes, strict=True)]
        values = {f"drift/{i}": d for i, d in enumerate(drifts)}
        values["drift"] = max(drifts)
        return values, start

    return Observable(f"{kind}_invariant_drift", init, measure)
