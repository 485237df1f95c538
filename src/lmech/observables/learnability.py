"""Per-mode learnability over training: how much of each target eigenmode a model has fitted so far.

Given orthonormal modes phi_i on n points (columns of an (n, M) matrix), an initial function f_0, a target f* and
the current function f_t (all as values on the n points), the learnability of mode i is

    L_i(t) = <phi_i, f_t - f_0> / <phi_i, f* - f_0>,

so L_i(0) = 0 and L_i = 1 when the model has fitted mode i of the target exactly. f_0 is subtracted (equivalently,
the model is centred so that f_0 = 0). For a linear model trained by full-batch GD on (1/2n) sum (f - y)^2 whose Gram
matrix K has eigenvectors phi_i with eigenvalues n lambda_i, the residual decays mode by mode and
L_i(t) = 1 - (1 - lr lambda_i)^t exactly (gradient flow: 1 - exp(-lambda_i t)).
Sources: Simon, Dickens, Karkada & DeWeese 2023 ("eigenlearning", TMLR) define the learnability of an eigenmode,
L_i = lambda_i / (lambda_i + kappa) for kernel ridge regression; the gradient-descent form above is the mode-by-mode
solution of linearised training (Jacot et al. 2018; Lee et al. 2019). Canatar, Bordelon & Pehlevan 2021 (Nat.
Commun.), "spectral bias"; Basri et al. 2019 (NeurIPS) and 2020 (ICML), frequency bias on the circle.

Degenerate eigenvalues (the cos / sin pair of each frequency on a uniform grid of the circle) span an eigenspace, in
which only the direction of the target matters: :func:`target_modes` turns each eigenspace into its one mode along
the target, phi_i = P_i (f* - f_0) / ||P_i (f* - f_0)||, so that L_i is defined by the model's progress along it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from lmech.core import LmechInputError, Observable, Snapshot

AMPLITUDE_RTOL = 1e-6  # a target mode below this fraction of ||f* - f_0|| has no defined learnability
ORTHONORMAL_ATOL = 1e-6


def fourier_basis(n: int, frequency: int) -> torch.Tensor:
    """(n, 2) orthonormal columns sqrt(2/n) (cos k theta_j, sin k theta_j) on the grid theta_j = 2 pi j / n;
    (n, 1) for k = 0 (the constant 1/sqrt(n)) and for k = n/2 (the alternating sign), float64."""
    if not (isinstance(n, int) and n >= 1):
        raise LmechInputError(f"n must be a positive integer (grid points); got {n!r}")
    if not (isinstance(frequency, int) and 0 <= frequency <= n // 2):
        raise LmechInputError(f"frequency must be an integer in [0, n/2] = [0, {n // 2}]; got {frequency!r}")
    theta = 2 * math.pi * torch.arange(n, dtype=torch.float64) / n
    if frequency == 0 or 2 * frequency == n:
        return torch.cos(frequency * theta)[:, None] / math.sqrt(n)
    return torch.stack([torch.cos(frequency * theta), torch.sin(frequency * theta)], 1) * math.sqrt(2 / n)


def kernel_eigenspaces(gram: torch.Tensor, rtol: float = 1e-8) -> list[tuple[float, torch.Tensor]]:
    """Eigenspaces of a symmetric (n, n) Gram matrix, largest eigenvalue first: [(eigenvalue, (n, d) basis)];
    eigenvalues within ``rtol`` x the largest |eigenvalue| of each other are grouped as one degenerate space."""
    k = torch.as_tensor(gram).double()
    if k.ndim != 2 or k.shape[0] != k.shape[1] or k.shape[0] == 0:
        raise LmechInputError(f"gram must be a square (n, n) matrix; got shape {tuple(k.shape)}")
    if not torch.allclose(k, k.T, rtol=1e-10, atol=1e-12 * float(k.abs().max())):
        raise LmechInputError("gram must be symmetric")
    values, vectors = torch.linalg.eigh(k)
    values, vectors = values.flip(0), vectors.flip(1)
    scale = float(values.abs().max())
    spaces, start = [], 0
    for i in range(1, len(values) + 1):
        if i == len(values) or float(values[start] - values[i]) > rtol * scale:
            spaces.append((float(values[start:i].mean()), vectors[:, start:i]))
            start = i
    return spaces


def target_modes(target: torch.Tensor, spaces: Sequence[torch.Tensor], initial: torch.Tensor | None = None):
    """(n, M) modes: for each orthonormal (n, d_i) eigenspace basis, the unit vector along the projection of
    f* - f_0 onto it. A space the target (nearly) misses, below AMPLITUDE_RTOL ||f* - f_0||, is an error."""
    y = _vector(target, "target")
    residual = y - (_vector(initial, "initial") if initial is not None else 0.0)
    scale = float(residual.norm())
    modes = []
    for i, basis in enumerate(spaces):
        b = torch.as_tensor(basis).double().reshape(len(y), -1)
        _check_orthonormal(b, f"spaces[{i}]")
        p = b @ (b.T @ residual)
        if float(p.norm()) <= AMPLITUDE_RTOL * scale:
            raise LmechInputError(
                f"the target has ~zero amplitude in spaces[{i}] (|P f*| = {float(p.norm()):.3g}, ||f* - f_0|| = "
                f"{scale:.3g}): its learnability is 0/0; drop that space"
            )
        modes.append(p / p.norm())
    return torch.stack(modes, 1)


def learnability(
    current: torch.Tensor, initial: torch.Tensor, target: torch.Tensor, modes: torch.Tensor
) -> torch.Tensor:
    """L_i = <phi_i, f_t - f_0> / <phi_i, f* - f_0> for f_t of shape (n,) or (T, n) -> (M,) or (T, M), float64.

    ``modes`` (n, M) must have orthonormal columns; a mode the target (nearly) misses, |<phi_i, f* - f_0>| <=
    AMPLITUDE_RTOL ||f* - f_0||, raises LmechInputError naming it (its learnability would be 0/0)."""
    f0, y = _vector(initial, "initial"), _vector(target, "target")
    phi = torch.as_tensor(modes).double()
    if phi.ndim != 2 or phi.shape[0] != len(y) or len(f0) != len(y):
        raise LmechInputError(
            f"modes must be (n, M) with n = len(target) = len(initial); got modes {tuple(phi.shape)}, target "
            f"{len(y)}, initial {len(f0)}"
        )
    _check_orthonormal(phi, "modes")
    f = torch.as_tensor(current).double()
    if f.shape[-1] != len(y) or f.ndim > 2:
        raise LmechInputError(f"current must be (n,) or (T, n) with n = {len(y)}; got shape {tuple(f.shape)}")
    amplitude = phi.T @ (y - f0)  # (M,)
    small = (amplitude.abs() <= AMPLITUDE_RTOL * (y - f0).norm()).nonzero().flatten().tolist()
    if small:
        raise LmechInputError(
            f"the target has ~zero amplitude on mode(s) {small} (|<phi_i, f* - f_0>| <= {AMPLITUDE_RTOL:g} "
            f"||f* - f_0||): their learnability is undefined; drop them"
        )
    return ((f - f0) @ phi) / amplitude


def learnability_observable(target: torch.Tensor, modes: torch.Tensor, name: str = "learnability") -> Observable:
    """Rows ``{name}/{i}`` = L_i of the model's outputs on the snapshot's inputs, f_0 taken at the first snapshot
    (the init). ``target`` (n,) and ``modes`` (n, M) refer to the n training inputs ``snapshot.x``."""

    def outputs(s: Snapshot) -> torch.Tensor:
        with torch.no_grad():
            return torch.as_tensor(s.fn(s.params, s.x)).detach().double().reshape(-1)

    def init(s: Snapshot) -> torch.Tensor:
        f0 = outputs(s)
        learnability(f0, f0, target, modes)  # validates shapes and amplitudes once
        return f0

    def measure(s: Snapshot, f0: torch.Tensor) -> tuple[dict[str, float], torch.Tensor]:
        values = learnability(outputs(s), f0, target, modes)
        return {f"{name}/{i}": float(v) for i, v in enumerate(values)}, f0

    return Observable(name, init, measure)


def _vector(value, name: str) -> torch.Tensor:
    v = torch.as_tensor(value).double()
    if v.ndim == 2 and v.shape[1] == 1:
        v = v[:, 0]
    if v.ndim != 1 or len(v) == 0:
        raise LmechInputError(f"{name} must be a vector of n values; got shape {tuple(v.shape)}")
    if not torch.isfinite(v).all():
        raise LmechInputError(f"{name} contains NaN or inf")
    return v


def _check_orthonormal(basis: torch.Tensor, name: str) -> None:
    gram = basis.T @ basis
    if not torch.allclose(gram, torch.eye(gram.shape[0], dtype=gram.dtype), atol=ORTHONORMAL_ATOL):
        raise LmechInputError(f"{name} must have orthonormal columns (B^T B = I); off by {_off(gram):.3g}")


def _off(gram: torch.Tensor) -> float:
    return float((gram - torch.eye(gram.shape[0], dtype=gram.dtype)).abs().max())
