"""The neural feature ansatz: the first layer's Gram matrix against the network's average gradient outer product.

Radhakrishnan, Beaglehole, Pandit & Belkin 2024 ("Mechanism for feature learning in neural networks and
backpropagation-free machine learning models", Science 383; arXiv 2212.13881) posit the neural feature ansatz (NFA):
after training, the neural feature matrix (NFM) of the first layer is proportional to the average gradient outer
product (AGOP) of the network with respect to its input,

    W_1^T W_1  ∝  AGOP(f) = (1/n) sum_i J_i^T J_i,    J_i = d f(x_i) / d x  (C x d, summed over the C outputs),

and they measure it by the correlation of the two matrices' entries. For a two-layer *linear* net trained by gradient
flow from a balanced init the relation holds exactly with a power, W_1^T W_1 ∝ AGOP^{1/2} (Radhakrishnan et al. 2024;
Beaglehole, Mitliagkas & Agarwala 2024, "Feature learning as alignment", arXiv 2402.05271, use the power 1/2 as well;
Tansley, Massart & Cartis 2025 show the power 1/L for L linear layers), so both powers are reported here.

Measures (all float64):

- ``agop(fn, params, x)``: (d, d) AGOP of ``fn(params, x) -> (n,) or (n, C)`` by ``vmap(jacrev)`` over the batch;
- ``neural_feature_matrix(w1)``: W_1^T W_1 for a (width, d) first-layer weight;
- ``psd_power(m, p)``: M^p of a symmetric PSD matrix through its eigendecomposition (negative round-off clipped);
- ``matrix_correlation(a, b)``: Pearson correlation of the d^2 entries (each matrix minus the mean of its entries),
  the NFA correlation; ``centered=False`` gives the uncentred cosine <A, B>_F / (||A||_F ||B||_F), which is high
  even between unrelated PSD matrices (their diagonals are all positive) and so is only a secondary number;
- ``anisotropic_correlation(a, b)``: the Pearson correlation of the traceless parts A - (tr A / d) I, B - (tr B / d) I;
  two near-isotropic matrices (a wide random first layer) correlate highly entry by entry, not here;
- ``subspace_overlap(m, basis)``: the same overlap of M's top-k eigenvectors with a given orthonormal (d, k) frame;
- ``ansatz_scores(nfm, agop, k)``: all of the above for one state, in a dict;
- ``eigenspace_overlap(a, b, k)``: ||U_k^T V_k||_F^2 / k for the top-k eigenvectors U_k of A and V_k of B: 1 when the
  subspaces coincide, k/d in expectation for a uniformly random pair, 0 when orthogonal.
"""

from __future__ import annotations

import torch
from torch.func import jacrev, vmap

from lmech.core import Fn, LmechInputError, Params


def agop(fn: Fn, params: Params, x: torch.Tensor, *, chunk: int = 1024) -> torch.Tensor:
    """(d, d) AGOP (1/n) sum_i J_i^T J_i of the input Jacobians J_i (C, d) of ``fn(params, .)`` at the rows of x (n, d).

    The Jacobian of each example comes from ``jacrev`` of the single-example function, mapped over the batch with
    ``vmap`` in chunks of ``chunk`` rows (memory n * C * d); the model is never mutated."""
    if x.ndim != 2 or len(x) == 0:
        raise LmechInputError(f"x must be a non-empty (n, d) batch; got shape {tuple(x.shape)}")
    frozen = {k: v.detach() for k, v in params.items()}

    def single(xi: torch.Tensor) -> torch.Tensor:
        return fn(frozen, xi[None]).reshape(-1)  # (C,)

    jac = vmap(jacrev(single))
    total = torch.zeros(x.shape[1], x.shape[1], dtype=torch.float64)
    for start in range(0, len(x), chunk):
        j = jac(x[start : start + chunk].detach()).double()  # (b, C, d)
        total += torch.einsum("bcd,bce->de", j, j)
    return total / len(x)


def neural_feature_matrix(w1: torch.Tensor) -> torch.Tensor:
    """(d, d) NFM W_1^T W_1 of a (width, d) first-layer weight, float64."""
    if w1.ndim != 2:
        raise LmechInputError(f"the first-layer weight must be (width, d); got shape {tuple(w1.shape)}")
    w = w1.detach().double()
    return w.T @ w


def psd_power(m: torch.Tensor, power: float) -> torch.Tensor:
    """M^power = V diag(lambda^power) V^T of a symmetric PSD matrix; eigenvalues below 0 (round-off) become 0."""
    _square(m, "matrix")
    s = m.detach().double()
    vals, vecs = torch.linalg.eigh((s + s.T) / 2)
    return (vecs * vals.clamp_min(0) ** power) @ vecs.T


def matrix_correlation(a: torch.Tensor, b: torch.Tensor, *, centered: bool = True) -> float:
    """Pearson correlation of the entries of two same-shape matrices (``centered``), else their cosine
    <A, B>_F / (||A||_F ||B||_F). In [-1, 1]; invariant to positive scaling of either matrix."""
    if a.shape != b.shape:
        raise LmechInputError(f"matrices must have the same shape; got {tuple(a.shape)} and {tuple(b.shape)}")
    u, v = a.detach().double().reshape(-1), b.detach().double().reshape(-1)
    if centered:
        u, v = u - u.mean(), v - v.mean()
    norms = u.norm() * v.norm()
    if norms == 0:
        what = "constant (all entries equal)" if centered else "zero"
        raise LmechInputError(f"correlation is undefined: a matrix is {what}")
    return float((u @ v) / norms)


def anisotropic_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson correlation of the traceless parts A - (tr A / d) I and B - (tr B / d) I: the NFA correlation with
    the isotropic part removed. Two nearly isotropic matrices (a wide random first layer, W_1^T W_1 ~ c I) have a
    high plain correlation from their diagonals alone; this one is near 0 for unrelated matrices."""
    d = _square(a, "a")
    eye = torch.eye(d, dtype=torch.float64)
    a, b = a.detach().double(), b.detach().double()
    return matrix_correlation(a - a.trace() / d * eye, b - b.trace() / d * eye)


def eigenspace_overlap(a: torch.Tensor, b: torch.Tensor, k: int) -> float:
    """||U_k^T V_k||_F^2 / k for the top-k eigenvectors of symmetric A and B: in [0, 1], 1 for the same subspace,
    k/d on average for independent uniformly random subspaces."""
    d = _square(a, "a")
    _square(b, "b")
    if a.shape != b.shape:
        raise LmechInputError(f"matrices must have the same shape; got {tuple(a.shape)} and {tuple(b.shape)}")
    if not 1 <= k <= d:
        raise LmechInputError(f"k must be between 1 and the dimension {d}; got {k}")
    u, v = top_eigenvectors(a, k), top_eigenvectors(b, k)
    return float((u.T @ v).square().sum() / k)


def top_eigenvectors(m: torch.Tensor, k: int) -> torch.Tensor:
    """(d, k) orthonormal eigenvectors of the k largest eigenvalues of a symmetric matrix (a zero matrix raises:
    its eigenspaces are not defined)."""
    s = m.detach().double()
    if torch.count_nonzero(s) == 0:
        raise LmechInputError("eigenspaces of a zero matrix are undefined")
    _vals, vecs = torch.linalg.eigh((s + s.T) / 2)  # ascending
    return vecs[:, -k:]


def subspace_overlap(m: torch.Tensor, basis: torch.Tensor) -> float:
    """||U_k^T Q||_F^2 / k: how much of the k-dim subspace spanned by the orthonormal columns of ``basis`` (d, k)
    the top-k eigenvectors U_k of M capture (e.g. a target's relevant subspace)."""
    if basis.ndim != 2 or basis.shape[0] != m.shape[0]:
        raise LmechInputError(f"basis must be (d, k) with d = {m.shape[0]}; got shape {tuple(basis.shape)}")
    k = basis.shape[1]
    return float((top_eigenvectors(m, k).T @ basis.double()).square().sum() / k)


def ansatz_scores(nfm: torch.Tensor, grad_outer: torch.Tensor, k: int) -> dict[str, float]:
    """The NFA numbers of one state: Pearson correlation of W^T W with AGOP (``corr``) and with AGOP^{1/2}
    (``corr_sqrt``), the uncentred cosine with AGOP (``cosine``) and the top-k eigenspace overlap (``overlap``;
    the same for AGOP^{1/2}, whose eigenvectors are those of AGOP)."""
    root = psd_power(grad_outer, 0.5)
    return {
        "corr": matrix_correlation(nfm, grad_outer),
        "corr_sqrt": matrix_correlation(nfm, root),
        "cosine": matrix_correlation(nfm, grad_outer, centered=False),
        "corr_traceless": anisotropic_correlation(nfm, grad_outer),
        "overlap": eigenspace_overlap(nfm, grad_outer, k),
    }


def _square(m: torch.Tensor, name: str) -> int:
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise LmechInputError(f"{name} must be a square (d, d) matrix; got shape {tuple(m.shape)}")
    return m.shape[0]
