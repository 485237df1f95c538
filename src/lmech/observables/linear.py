"""Observables of linear networks: the end-to-end map and its strength along teacher modes."""

from __future__ import annotations

import torch

from lmech.core import Fn, Observable, Params, Snapshot, stateless


def end_to_end_map(fn: Fn, params: Params, dim_in: int) -> torch.Tensor:
    """The matrix W with fn(params, x) = W x, read off as fn(params, I)^T (any linear model)."""
    eye = torch.eye(dim_in, dtype=next(iter(params.values())).dtype)
    return fn(params, eye).T  # (dim_out, dim_in)


def mode_strengths(u: torch.Tensor, v: torch.Tensor) -> Observable:
    """s_mu = u_mu^T W v_mu for each teacher mode mu (Saxe et al. 2014, eq. 5): rows "mode/mu"."""
    u64, v64 = u.to(torch.float64), v.to(torch.float64)

    def measure(s: Snapshot) -> dict[str, float]:
        w = end_to_end_map(s.fn, s.params, v.shape[0]).to(torch.float64)
        strengths = torch.einsum("om,oi,im->m", u64, w, v64)
        return {f"mode/{k}": float(val) for k, val in enumerate(strengths)}

    return stateless("mode_strengths", measure)
