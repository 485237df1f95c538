"""Representation similarity: CKA (linear and RBF, biased and debiased), mutual k-NN alignment, Procrustes similarity,
and a shuffled-pairing null baseline for each.

Every measure compares two representations of the same n samples, X (n, p) and Y (n, q), row i of both being
sample i; all work in float64.

- HSIC with the centring matrix H = I - 11^T/n (Gretton et al. 2005): HSIC_0(K, L) = tr(K H L H) / (n - 1)^2.
- Unbiased HSIC (Song et al. 2012, JMLR 13, eq. 5), with K~, L~ the Gram matrices with zeroed diagonals:
  HSIC_1 = [tr(K~ L~) + 1'K~1 1'L~1 / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1] / (n(n-3)), n >= 4. It equals
  <U(K), U(L)> / (n(n-3)), U the U-centring of Szekely & Rizzo 2014 (Ann. Stat. 42; equality checked in the
  tests): an inner product, so Cauchy-Schwarz bounds the debiased CKA (next item).
- CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)) (Kornblith et al. 2019, ICML). Biased (HSIC_0):
  in [0, 1]. Debiased (HSIC_1, as in Nguyen, Raghu & Kornblith 2021): in [-1, 1], centred on 0 for independent
  X and Y at any n, where the biased one sits above 0 by O(effective rank / n).
  Linear kernel K = X X^T; RBF K_ij = exp(-|x_i - x_j|^2 / (2 sigma^2)), sigma = ``bandwidth`` x the median
  distance between distinct samples (as Kornblith et al. 2019 chose it).
- Mutual k-NN alignment (Huh et al. 2024, "The Platonic Representation Hypothesis", ICML; their code
  ``metrics.mutual_knn`` in minyoungg/platonic-rep): rows are L2-normalised, each sample's k nearest neighbours
  by inner product (itself excluded) are found in each space, and the score is mean_i |N_X(i) & N_Y(i)| / k, in
  [0, 1]; chance level k / (n - 1). A zero row stays zero (as torch's ``F.normalize``): similarity 0 to all.
- Orthogonal Procrustes similarity ||X_c^T Y_c||_* / (||X_c||_F ||Y_c||_F) in [0, 1] (X_c the column-centred X;
  Schoenemann 1966; as a metric, the Procrustes distance sqrt(2 - 2 s) or angle arccos(s), Williams et al.
  2021, NeurIPS), s = 1 iff Y_c = c X_c Q with Q orthogonal.

Invariances (tested): every measure is invariant to orthogonal maps X -> X Q and isotropic scaling X -> c X;
linear/RBF CKA (both estimators) and Procrustes also to translation X -> X + 1 b^T; mutual k-NN (cosine
neighbours, as Huh et al.) is not translation invariant. As for invertible
non-orthogonal linear maps: none is (CCA would be; Kornblith et al. 2019, sec. 2, argue that such invariance is
unwanted when n < p, where it makes every pair of representations look identical).

Streaming: linear CKA (both estimators) and Procrustes need only feature-space sums (sum x, X^T X, X^T Y, and
for the debiased one sums weighted by |x_i|^2), accumulated batch by batch in :class:`CrossMoments`. RBF CKA and
mutual k-NN need every pairwise distance, so they take the whole set at once (O(n^2) memory).
Degenerate input raises :class:`LmechInputError` naming the problem (too few samples, no variance, ...), never
returns NaN.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from lmech.core import LmechInputError

Measure = Callable[[torch.Tensor, torch.Tensor], float]


def _pair(x: torch.Tensor, y: torch.Tensor, min_n: int, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = torch.as_tensor(x).double(), torch.as_tensor(y).double()
    if x.ndim == 1:
        x = x[:, None]
    if y.ndim == 1:
        y = y[:, None]
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise LmechInputError(
            f"{what} needs X (n, p) and Y (n, q) with the same n; got {tuple(x.shape)}, {tuple(y.shape)}"
        )
    if len(x) < min_n:
        raise LmechInputError(f"{what} needs at least {min_n} samples; got n = {len(x)}")
    if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
        raise LmechInputError(f"{what}: X or Y holds NaN or inf")
    return x, y


# ------------------------------------------------------------------------------------------ HSIC and CKA on Grams


def hsic(k: torch.Tensor, l: torch.Tensor, *, debiased: bool = False) -> float:  # noqa: E741
    """HSIC_0 = tr(K H L H) / (n-1)^2, or Song et al.'s unbiased HSIC_1 (n >= 4) via U-centring."""
    return float((_centre(k.double(), debiased) * _centre(l.double(), debiased)).sum() / _norm(len(k), debiased))


def _centre(k: torch.Tensor, debiased: bool) -> torch.Tensor:
    """H K H (biased) or the U-centred K (diagonal zero; Szekely & Rizzo 2014)."""
    if not debiased:
        return k - k.mean(0, keepdim=True) - k.mean(1, keepdim=True) + k.mean()
    n = len(k)
    k = k - torch.diag(torch.diagonal(k))
    rows, cols = k.sum(1, keepdim=True), k.sum(0, keepdim=True)
    u = k - rows / (n - 2) - cols / (n - 2) + k.sum() / ((n - 1) * (n - 2))
    return u - torch.diag(torch.diagonal(u))


def _norm(n: int, debiased: bool) -> float:
    return n * (n - 3) if debiased else (n - 1) ** 2


def cka_from_grams(k: torch.Tensor, l: torch.Tensor, *, debiased: bool = False) -> float:  # noqa: E741
    """HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)); an error if either self-HSIC is not positive."""
    n = len(k)
    if k.ndim != 2 or k.shape != (n, n) or l.shape != k.shape:
        raise LmechInputError(f"Gram matrices must both be (n, n); got {tuple(k.shape)} and {tuple(l.shape)}")
    if debiased and n < 4:
        raise LmechInputError(f"debiased CKA needs at least 4 samples; got n = {n}")
    kc, lc = _centre(k.double(), debiased), _centre(l.double(), debiased)
    refs = float(k.double().square().sum()), float(l.double().square().sum())
    return _ratio(float((kc * lc).sum()), float((kc * kc).sum()), float((lc * lc).sum()), debiased, *refs)


def _ratio(kl: float, kk: float, ll: float, debiased: bool, kk_ref: float, ll_ref: float) -> float:
    """kl / sqrt(kk ll), clipped to [-1, 1] against rounding. A self-term at or below 1e-20 of its uncentred
    reference (the same quantity before centring, each representation on its own scale) means no variance."""
    for name, v, ref in (("X", kk, kk_ref), ("Y", ll, ll_ref)):
        if not v > 1e-20 * ref or ref == 0:
            extra = " (the debiased estimate can be <= 0 for tiny n)" if debiased else ""
            raise LmechInputError(f"CKA is undefined: {name} has no (centred) variance{extra}")
    return max(-1.0, min(1.0, kl / (kk * ll) ** 0.5))


def linear_cka(x: torch.Tensor, y: torch.Tensor, *, debiased: bool = False) -> float:
    """Linear CKA ||Y_c^T X_c||_F^2 / (||X_c^T X_c||_F ||Y_c^T Y_c||_F) (biased), or with HSIC_1 (debiased).
    Computed from feature-space moments (O(n (p + q)^2)), identical to the Gram form (tested)."""
    x, y = _pair(x, y, 4 if debiased else 2, "linear CKA")
    return CrossMoments.of(x, y).linear_cka(debiased=debiased)


def rbf_cka(x: torch.Tensor, y: torch.Tensor, *, bandwidth: float = 1.0, debiased: bool = False) -> float:
    """CKA with RBF kernels exp(-d^2 / (2 sigma^2)), sigma = ``bandwidth`` x median distance (per representation)."""
    x, y = _pair(x, y, 4 if debiased else 2, "RBF CKA")
    if not bandwidth > 0:
        raise LmechInputError(f"bandwidth must be a positive fraction of the median distance; got {bandwidth}")
    return cka_from_grams(_rbf(x, bandwidth, "X"), _rbf(y, bandwidth, "Y"), debiased=debiased)


def _rbf(x: torch.Tensor, bandwidth: float, name: str) -> torch.Tensor:
    d2 = torch.cdist(x, x).square()  # (n, n)
    off = d2[~torch.eye(len(x), dtype=torch.bool)]
    median = off.sqrt().median()
    if not median > 0:
        raise LmechInputError(f"RBF CKA: the median distance between samples of {name} is 0 (mostly repeated rows)")
    return torch.exp(-d2 / (2 * (bandwidth * median) ** 2))


# ------------------------------------------------------------------------------------------ streaming moments


@dataclass(frozen=True)
class CrossMoments:
    """Feature-space sufficient statistics of (X, Y), accumulated over row batches; immutable (``update`` returns a
    new one). Rows are shifted by the first batch's means before summing, so large offsets do not cancel
    catastrophically; every measure here is translation invariant, so the shift changes nothing else.

    With a_i = |x_i|^2, b_i = |y_i|^2 (shifted rows): n, sums of x, y; X^T X, Y^T Y, X^T Y; sums of a, b, a^2, b^2,
    ab; and sums of a x, b y, a y, b x, which the debiased HSIC_1 needs through 1'K~L~1."""

    n: int
    shift_x: torch.Tensor
    shift_y: torch.Tensor
    sums: dict[str, torch.Tensor]

    @staticmethod
    def empty() -> CrossMoments:
        return CrossMoments(0, torch.zeros(0), torch.zeros(0), {})

    @staticmethod
    def of(x: torch.Tensor, y: torch.Tensor) -> CrossMoments:
        return CrossMoments.empty().update(x, y)

    def update(self, xb: torch.Tensor, yb: torch.Tensor) -> CrossMoments:
        xb, yb = _pair(xb, yb, 1, "CrossMoments.update")
        if self.n == 0:
            sx, sy = xb.mean(0), yb.mean(0)
        else:
            sx, sy = self.shift_x, self.shift_y
            if xb.shape[1] != len(sx) or yb.shape[1] != len(sy):
                raise LmechInputError(
                    f"batch widths changed: ({len(sx)}, {len(sy)}) before, ({xb.shape[1]}, {yb.shape[1]}) now"
                )
        x, y = xb - sx, yb - sy
        a, b = x.square().sum(1), y.square().sum(1)  # (m,)
        new = {
            "x": x.sum(0), "y": y.sum(0), "xx": x.T @ x, "yy": y.T @ y, "xy": x.T @ y,
            "a": a.sum(), "b": b.sum(), "aa": a @ a, "bb": b @ b, "ab": a @ b,
            "ax": a @ x, "by": b @ y, "ay": a @ y, "bx": b @ x,
        }  # fmt: skip
        sums = {k: self.sums[k] + v for k, v in new.items()} if self.sums else new
        return CrossMoments(self.n + len(xb), sx, sy, sums)

    def _centred(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        s, n = self.sums, self.n
        mx, my = s["x"] / n, s["y"] / n
        return s["xx"] - n * torch.outer(mx, mx), s["yy"] - n * torch.outer(my, my), s["xy"] - n * torch.outer(mx, my)

    def linear_cka(self, *, debiased: bool = False) -> float:
        if self.n < (4 if debiased else 2):
            raise LmechInputError(f"{'debiased ' if debiased else ''}linear CKA needs more samples; got n = {self.n}")
        if not debiased:
            cxx, cyy, cxy = self._centred()
            kk, ll = float(cxx.square().sum()), float(cyy.square().sum())
            return _ratio(float(cxy.square().sum()), kk, ll, False, *self._refs())
        return _ratio(self._hsic1("x", "y"), self._hsic1("x", "x"), self._hsic1("y", "y"), True, *self._refs())

    def _refs(self) -> tuple[float, float]:
        """(sum_i |x_i|^2)^2 and likewise for y (shifted rows): upper bounds of the self-terms' scale."""
        return float(self.sums["a"]) ** 2, float(self.sums["b"]) ** 2

    def _hsic1(self, u: str, v: str) -> float:
        """n(n-3) HSIC_1 of linear kernels of u, v in {"x", "y"} from the sums (Song et al. 2012, eq. 5)."""
        s, n = self.sums, self.n
        wu, wv = {"x": "a", "y": "b"}[u], {"x": "a", "y": "b"}[v]
        cross = s[u + v] if u + v in s else s[v + u].T  # (p_u, p_v) sum_i u_i v_i^T
        tr = float(cross.square().sum() - s[wu + wv if wu + wv in s else wv + wu])  # tr(K~ L~)
        one_k, one_l = float(s[u] @ s[u] - s[wu]), float(s[v] @ s[v] - s[wv])  # 1'K~1, 1'L~1
        mixed = float(s[u] @ cross @ s[v] - s[u] @ s[wv + u] - s[v] @ s[wu + v])
        mixed += float(s[wu + wv if wu + wv in s else wv + wu])  # 1'K~L~1
        return tr + one_k * one_l / ((n - 1) * (n - 2)) - 2 * mixed / (n - 2)

    def procrustes(self) -> float:
        """Orthogonal Procrustes similarity ||X_c^T Y_c||_* / (||X_c||_F ||Y_c||_F) in [0, 1]."""
        if self.n < 2:
            raise LmechInputError(f"Procrustes similarity needs at least 2 samples; got n = {self.n}")
        cxx, cyy, cxy = self._centred()
        nx, ny = float(torch.trace(cxx)), float(torch.trace(cyy))
        for name, v, ref in (("X", nx, float(self.sums["a"])), ("Y", ny, float(self.sums["b"]))):
            if not v > 1e-10 * ref or ref == 0:
                raise LmechInputError(f"Procrustes similarity is undefined: {name} has no variance")
        return min(1.0, float(torch.linalg.svdvals(cxy).sum()) / (nx * ny) ** 0.5)


def procrustes(x: torch.Tensor, y: torch.Tensor) -> float:
    """Orthogonal Procrustes similarity of the centred X and Y (see :meth:`CrossMoments.procrustes`)."""
    return CrossMoments.of(*_pair(x, y, 2, "Procrustes similarity")).procrustes()


# ------------------------------------------------------------------------------------------ mutual k-NN


def knn_indices(x: torch.Tensor, k: int) -> torch.Tensor:
    """(n, k) indices of each row's k nearest neighbours by cosine similarity, itself excluded (ties: lower index)."""
    xn = x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)
    sim = xn @ xn.T
    sim.fill_diagonal_(-torch.inf)
    return torch.sort(sim, dim=1, descending=True, stable=True).indices[:, :k]


def mutual_knn(x: torch.Tensor, y: torch.Tensor, *, k: int = 10) -> float:
    """Mean over samples of |N_X(i) & N_Y(i)| / k (Huh et al. 2024); chance k / (n - 1)."""
    if not (isinstance(k, int) and k >= 1):
        raise LmechInputError(f"k must be a positive integer; got {k!r}")
    x, y = _pair(x, y, k + 1, f"mutual k-NN (k = {k})")
    n = len(x)
    mask_x, mask_y = torch.zeros(n, n, dtype=torch.bool), torch.zeros(n, n, dtype=torch.bool)
    mask_x.scatter_(1, knn_indices(x, k), True)
    mask_y.scatter_(1, knn_indices(y, k), True)
    return float((mask_x & mask_y).sum(1).double().mean() / k)


# ------------------------------------------------------------------------------------------ null baseline


def null_baseline(
    measure: Measure, x: torch.Tensor, y: torch.Tensor, *, permutations: int = 5, seed: int = 0
) -> tuple[float, float]:
    """(mean, std) of measure(X, Y[perm]) over ``permutations`` seeded random permutations of Y's rows: the level
    the measure gives with the pairing of samples destroyed (std with ddof = 1; 0 for one permutation)."""
    if permutations < 1:
        raise LmechInputError(f"permutations must be >= 1; got {permutations}")
    gen = torch.Generator().manual_seed(int(seed))
    values = torch.tensor([measure(x, y[torch.randperm(len(y), generator=gen)]) for _ in range(permutations)])
    return float(values.mean()), float(values.std()) if permutations > 1 else 0.0
