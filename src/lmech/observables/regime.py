"""Lazy or rich? Diagnostics of how far training has moved a network from its initialisation.

In the lazy (kernel) regime the parameters, the tangent kernel and the hidden features barely move while the
function fits the data; in the rich (feature-learning) regime all three move by O(1) (Chizat, Oyallon & Bach 2019,
"On lazy training in differentiable programming", NeurIPS, sec. 2-3; Jacot et al. 2018; Lee et al. 2019; Geiger
et al. 2020). The measures:

- relative parameter movement ||theta_t - theta_0|| / ||theta_0||, per tensor and in total;
- relative NTK movement ||K_t - K_0||_F / ||K_0||_F on a fixed probe batch;
- kernel-target alignment A(K, Y) = <K_c, Y Y^T>_F / (||K_c||_F ||Y Y^T||_F), K_c the centred kernel H K H with
  H = I - 11^T/n (Cristianini et al. 2002; centred form Cortes, Mohri & Rostamizadeh 2012); in [-1, 1], it rises as
  a rich network's kernel aligns with the task (Baratin et al. 2021; Atanasov et al. 2022);
- relative hidden-feature change ||Phi_t - Phi_0||_F / ||Phi_0||_F of a feature map on the probe batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch

from lmech.core import Fn, LmechInputError, Observable, Params, Snapshot
from lmech.observables.ntk import empirical_ntk

FeatureMap = Callable[[Params, torch.Tensor], torch.Tensor]
"""features(params, x) -> (n, width) hidden features of the batch x."""


def parameter_movement(initial: Mapping[str, torch.Tensor], current: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """Relative movement ||theta - theta_0|| / ||theta_0|| of every tensor (by name) and of all of them ("total").

    A tensor that starts at zero gets its absolute movement (a relative one is undefined)."""
    if set(initial) != set(current):
        raise LmechInputError(
            f"initial and current parameters must have the same names; got {sorted(initial)} and {sorted(current)}"
        )
    out, moved, start = {}, 0.0, 0.0
    for name, p0 in initial.items():
        d = float((current[name].detach().double() - p0.detach().double()).norm() ** 2)
        s = float(p0.detach().double().norm() ** 2)
        out[name] = math.sqrt(d / s) if s > 0 else math.sqrt(d)
        moved, start = moved + d, start + s
    out["total"] = math.sqrt(moved / start) if start > 0 else math.sqrt(moved)
    return out


def kernel_distance(initial: torch.Tensor, current: torch.Tensor) -> float:
    """||K - K_0||_F / ||K_0||_F."""
    if initial.shape != current.shape:
        shapes = f"{tuple(initial.shape)} and {tuple(current.shape)}"
        raise LmechInputError(f"kernels must have the same shape; got {shapes}")
    scale = torch.linalg.norm(initial.double())
    if scale == 0:
        raise LmechInputError("the initial kernel is zero: its relative movement is undefined")
    return float(torch.linalg.norm(current.double() - initial.double()) / scale)


def kernel_alignment(kernel: torch.Tensor, targets: torch.Tensor, *, centered: bool = True) -> float:
    """<K, Y Y^T>_F / (||K||_F ||Y Y^T||_F) for an (n, n) kernel and (n,) or (n, C) targets; with ``centered``,
    K and Y Y^T are first centred by H = I - 11^T / n (Cortes et al. 2012, def. 4)."""
    k = kernel.double()
    y = targets.double().reshape(len(targets), -1)
    if k.ndim != 2 or k.shape[0] != k.shape[1] or k.shape[0] != len(y):
        raise LmechInputError(
            f"kernel must be (n, n) and targets (n,) or (n, C); got {tuple(kernel.shape)} and {tuple(targets.shape)}"
        )
    if centered:
        k = k - k.mean(0, keepdim=True) - k.mean(1, keepdim=True) + k.mean()
        y = y - y.mean(0, keepdim=True)
    target = y @ y.T
    norms = torch.linalg.norm(k) * torch.linalg.norm(target)
    if norms == 0:
        raise LmechInputError("alignment is undefined: the (centred) kernel or the targets are zero")
    return float((k * target).sum() / norms)


def feature_change(initial: torch.Tensor, current: torch.Tensor) -> float:
    """||Phi - Phi_0||_F / ||Phi_0||_F for feature matrices of the same probe batch."""
    return kernel_distance(initial, current)


def regime(
    x_probe: torch.Tensor,
    *,
    targets: torch.Tensor | None = None,
    features: FeatureMap | None = None,
    ntk: bool = True,
    name: str = "regime",
) -> Observable:
    """Records, relative to the first measured state: ``movement`` (total) and ``movement/<tensor>``,
    ``ntk_movement`` and, with ``targets``, ``alignment`` of the current NTK (when ``ntk``), and
    ``feature_change`` of ``features(params, x_probe)`` (when given). One model (not an ensemble)."""

    def init(s: Snapshot):
        params0 = {k: v.detach().clone() for k, v in s.params.items()}
        k0 = _ntk(s.fn, params0, x_probe) if ntk else None
        phi0 = features(params0, x_probe).detach() if features is not None else None
        return params0, k0, phi0

    def measure(s: Snapshot, state):
        params0, k0, phi0 = state
        move = parameter_movement(params0, s.params)
        values = {"movement": move.pop("total"), **{f"movement/{k}": v for k, v in move.items()}}
        if ntk:
            k = _ntk(s.fn, s.params, x_probe)
            values["ntk_movement"] = kernel_distance(k0, k)
            if targets is not None:
                values["alignment"] = kernel_alignment(k, targets)
        if features is not None:
            values["feature_change"] = feature_change(phi0, features(s.params, x_probe).detach())
        return values, state

    return Observable(name, init, measure)


def _ntk(fn: Fn, params: Params, x: torch.Tensor) -> torch.Tensor:
    return empirical_ntk(fn, {k: v.detach() for k, v in params.items()}, x)
