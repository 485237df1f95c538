"""Neural collapse: the geometry of last-layer features and classifier in the terminal phase of training.

Papyan, Han & Donoho 2020, "Prevalence of neural collapse during the terminal phase of deep learning training"
(PNAS 117(40)), Figs. 2-7. From last-layer features h_i (n, d) with labels y_i in {0..C-1} and a linear classifier
logits = W h + b, W (C, d), let mu_c be the class means, mu_G the mean of the class means (the global mean for
balanced classes, Papyan's setting) and M (C, d) the centred means, rows mu_c - mu_G. Then

- NC1 (within-class variability collapse, Fig. 6): tr(Sigma_W Sigma_B^+) / C, with
  Sigma_W = (1/n) sum_i (h_i - mu_{y_i})(h_i - mu_{y_i})^T and Sigma_B = (1/C) M^T M (rank <= C - 1; the
  Moore-Penrose pseudo-inverse drops eigenvalues below ``rtol`` times the largest). -> 0.
- NC2 (simplex ETF, Figs. 2-4), for the centred means and likewise for the classifier rows w_c:
  equinorm: std_c ||m_c|| / mean_c ||m_c|| (population std), -> 0;
  equiangularity: std over pairs c < c' of cos(m_c, m_c'), -> 0 (Fig. 3). Their mean is not informative: for
  equal norms and sum_c m_c = 0 it is exactly -1/(C-1);
  maximal angle: mean over pairs of |cos(m_c, m_c') + 1/(C-1)|, -> 0 (Fig. 4).
- NC3 (self-duality, Fig. 5): ||W / ||W||_F - M / ||M||_F||_F^2, in [0, 4], -> 0.
- NC4 (nearest class centre, Fig. 7): fraction of samples whose network prediction argmax_c (W h + b)_c differs
  from the nearest class mean argmin_c ||h - mu_c||, -> 0.

All computed in float64. NC1, NC2 and NC3 are invariant to rotations of feature space, to scaling the features
(and the classifier) and to translating the features; NC4 is invariant to rotations and positive scalings of
(h, W) with b scaled alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from lmech.core import LmechInputError, Observable, Params, Snapshot, stateless

RTOL = 1e-10
"""Relative rank tolerance of the pseudo-inverse of Sigma_B (float64 round-off is ~1e-16 of the top eigenvalue)."""


def _validated(features: torch.Tensor, labels: torch.Tensor, classes: int | None) -> tuple[torch.Tensor, int]:
    if features.ndim != 2 or labels.ndim != 1 or len(labels) != len(features):
        raise LmechInputError(
            f"features must be (n, d) and labels (n,); got {tuple(features.shape)} and {tuple(labels.shape)}"
        )
    h = features.detach().double()
    if not bool(torch.isfinite(h).all()):
        raise LmechInputError("features contain NaN or inf: collapse metrics are undefined (did training diverge?)")
    c = int(labels.max()) + 1 if classes is None else int(classes)
    if c < 2:
        raise LmechInputError(f"neural collapse needs at least 2 classes; got {c}")
    if int(labels.min()) < 0 or int(labels.max()) >= c:
        raise LmechInputError(f"labels must lie in 0..{c - 1}; got range {int(labels.min())}..{int(labels.max())}")
    counts = torch.bincount(labels, minlength=c)
    if bool((counts == 0).any()):
        empty = torch.nonzero(counts == 0).flatten().tolist()
        raise LmechInputError(f"every class needs at least one sample; classes {empty} have none")
    return h, c


def class_means(
    features: torch.Tensor, labels: torch.Tensor, classes: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu (C, d) class means, mu_G (d,) mean of the class means), float64."""
    h, c = _validated(features, labels, classes)
    sums = torch.zeros(c, h.shape[1], dtype=torch.float64).index_add_(0, labels, h)
    mu = sums / torch.bincount(labels, minlength=c).double()[:, None]  # (C, d)
    return mu, mu.mean(0)


def within_class_variation(
    features: torch.Tensor, labels: torch.Tensor, classes: int | None = None, rtol: float = RTOL
) -> float:
    """NC1 = tr(Sigma_W Sigma_B^+) / C (Papyan et al. 2020, Fig. 6)."""
    h, c = _validated(features, labels, classes)
    mu, mu_g = class_means(h, labels, c)
    centred = mu - mu_g  # (C, d)
    within = h - mu[labels]  # (n, d)
    sigma_w = within.T @ within / len(h)  # (d, d)
    sigma_b = centred.T @ centred / c  # (d, d), rank <= C - 1
    if float(sigma_b.abs().max()) == 0.0:
        raise LmechInputError("all class means coincide (Sigma_B = 0): NC1 is undefined")
    return float(torch.trace(sigma_w @ torch.linalg.pinv(sigma_b, rtol=rtol, hermitian=True))) / c


def equinorm(vectors: torch.Tensor) -> float:
    """Coefficient of variation std_c ||v_c|| / mean_c ||v_c|| of the row norms (population std; Fig. 2)."""
    norms = vectors.detach().double().norm(dim=1)
    if float(norms.mean()) == 0.0:
        raise LmechInputError("all vectors are zero: the norm coefficient of variation is undefined")
    return float(norms.std(correction=0) / norms.mean())


def cosine_spread(vectors: torch.Tensor) -> tuple[float, float]:
    """(std over pairs c < c' of cos(v_c, v_c'), mean over pairs of |cos + 1/(C-1)|) for C rows (Figs. 3, 4)."""
    v = vectors.detach().double()
    c = len(v)
    if c < 2:
        raise LmechInputError(f"cosines need at least 2 vectors; got {c}")
    norms = v.norm(dim=1)
    if bool((norms == 0).any()):
        raise LmechInputError("a vector is zero: its cosines are undefined")
    u = v / norms[:, None]
    i, j = torch.triu_indices(c, c, offset=1)
    cos = (u @ u.T)[i, j]  # (C (C - 1) / 2,)
    return float(cos.std(correction=0)), float((cos + 1.0 / (c - 1)).abs().mean())


def self_duality(weight: torch.Tensor, centred_means: torch.Tensor) -> float:
    """NC3 = ||W / ||W||_F - M / ||M||_F||_F^2 for the (C, d) classifier and centred class means (Fig. 5)."""
    w, m = weight.detach().double(), centred_means.detach().double()
    if w.shape != m.shape:
        raise LmechInputError(f"classifier and class means must both be (C, d); got {tuple(w.shape)}, {tuple(m.shape)}")
    if float(w.norm()) == 0.0 or float(m.norm()) == 0.0:
        raise LmechInputError("the classifier or the centred class means are zero: self-duality is undefined")
    return float((w / w.norm() - m / m.norm()).square().sum())


def ncc_mismatch(
    features: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
) -> float:
    """NC4: fraction of samples where argmax_c (W h + b)_c != argmin_c ||h - mu_c|| (Fig. 7)."""
    h, c = _validated(features, labels, len(weight))
    mu, _ = class_means(h, labels, c)
    logits = h @ weight.detach().double().T + (0.0 if bias is None else bias.detach().double())  # (n, C)
    nearest = torch.cdist(h, mu).argmin(1)
    return float((logits.argmax(1) != nearest).double().mean())


def collapse_metrics(
    features: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
) -> dict[str, float]:
    """Every NC metric of Papyan et al. 2020 for features (n, d), labels (n,), classifier W (C, d) and bias (C,).

    Keys: nc1; nc2_norm_cv, nc2_cos_std, nc2_cos_shift (centred class means); nc2_w_norm_cv, nc2_w_cos_std,
    nc2_w_cos_shift (classifier rows); nc3; nc4."""
    c = len(weight)
    mu, mu_g = class_means(features, labels, c)
    centred = mu - mu_g
    cos_std, cos_shift = cosine_spread(centred)
    w_cos_std, w_cos_shift = cosine_spread(weight)
    return {
        "nc1": within_class_variation(features, labels, c),
        "nc2_norm_cv": equinorm(centred),
        "nc2_cos_std": cos_std,
        "nc2_cos_shift": cos_shift,
        "nc2_w_norm_cv": equinorm(weight),
        "nc2_w_cos_std": w_cos_std,
        "nc2_w_cos_shift": w_cos_shift,
        "nc3": self_duality(weight, centred),
        "nc4": ncc_mismatch(features, labels, weight, bias),
    }


def neural_collapse(
    features: Callable[[Params, torch.Tensor], torch.Tensor], weight: str, bias: str | None = None
) -> Observable:
    """Observable of every NC metric on the training set: ``features(params, x)`` gives the (n, d) last-layer
    features and ``params[weight]`` (``params[bias]``) the classifier; ``snapshot.y`` holds class indices."""

    def measure(s: Snapshot) -> dict[str, float]:
        with torch.no_grad():
            h = features(s.params, s.x)
        if not bool(torch.isfinite(h).all()):
            return {"nc1": math.nan}  # a diverged state is a recorded outcome, not a crash
        return collapse_metrics(h, s.y, s.params[weight], None if bias is None else s.params[bias])

    return stateless("collapse", measure)
