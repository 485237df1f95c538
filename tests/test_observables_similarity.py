"""Representation similarity: oracles (unbiased HSIC against its O(n^4) U-statistic and Song et al.'s eq. 5),
limits (RBF CKA -> linear CKA at large bandwidth; debiased -> biased at large n), properties (invariances, ranges,
self-similarity, streaming = one-shot), null baselines, and degenerate input."""

from __future__ import annotations

import itertools

import pytest
import torch

from lmech.core import LmechInputError, random_orthogonal
from lmech.observables.similarity import (
    CrossMoments,
    cka_from_grams,
    hsic,
    knn_indices,
    linear_cka,
    mutual_knn,
    null_baseline,
    procrustes,
    rbf_cka,
)


def _pair(n=40, p=6, q=5, seed=0, noise=1.0):
    """X and Y sharing a 3-dimensional latent signal plus independent noise."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 3, generator=gen, dtype=torch.float64)
    x = z @ torch.randn(3, p, generator=gen, dtype=torch.float64) + noise * torch.randn(n, p, generator=gen).double()
    y = z @ torch.randn(3, q, generator=gen, dtype=torch.float64) + noise * torch.randn(n, q, generator=gen).double()
    return x, y


MEASURES = {
    "linear CKA": linear_cka,
    "debiased linear CKA": lambda x, y: linear_cka(x, y, debiased=True),
    "RBF CKA": rbf_cka,
    "debiased RBF CKA": lambda x, y: rbf_cka(x, y, bandwidth=0.5, debiased=True),
    "mutual k-NN": lambda x, y: mutual_knn(x, y, k=5),
    "Procrustes": procrustes,
}
TRANSLATION_INVARIANT = [m for m in MEASURES if m != "mutual k-NN"]


def test_unbiased_hsic_equals_its_u_statistic_and_song_eq5():
    """HSIC_1 is the mean over ordered distinct 4-tuples (t, u, v, w) of k_tu l_tu + k_tu l_vw - 2 k_tu l_tv
    (the U-statistic that defines it, Song et al. 2012), and their eq. 5 with zero-diagonal Grams."""
    x, y = _pair(n=7, p=3, q=2)
    k, l = x @ x.T, torch.exp(-(torch.cdist(y, y) ** 2))  # noqa: E741
    terms = [
        k[t, u] * l[t, u] + k[t, u] * l[v, w] - 2 * k[t, u] * l[t, v]
        for t, u, v, w in itertools.permutations(range(7), 4)
    ]
    oracle = float(torch.stack(terms).mean())
    kt, lt, one, n = k - torch.diag(k.diag()), l - torch.diag(l.diag()), torch.ones(7, dtype=torch.float64), 7
    song = (torch.trace(kt @ lt) + (one @ kt @ one) * (one @ lt @ one) / ((n - 1) * (n - 2))) / (n * (n - 3))
    song -= 2 / (n - 2) * (one @ kt @ lt @ one) / (n * (n - 3))
    assert hsic(k, l, debiased=True) == pytest.approx(oracle, rel=1e-12)
    assert hsic(k, l, debiased=True) == pytest.approx(float(song), rel=1e-12)
    h = torch.eye(n, dtype=torch.float64) - 1 / n
    assert hsic(k, l) == pytest.approx(float(torch.trace(k @ h @ l @ h)) / (n - 1) ** 2, rel=1e-12)


@pytest.mark.parametrize("debiased", [False, True])
def test_streaming_moments_equal_the_one_shot_gram_form(debiased):
    x, y = _pair(n=53)
    x = x + 100.0  # a large offset: the shift by the first batch's mean keeps the sums well conditioned
    gram = cka_from_grams(x @ x.T, y @ y.T, debiased=debiased)
    moments = CrossMoments.empty()
    for i in range(0, 53, 10):  # uneven batches, the last of 3 rows
        moments = moments.update(x[i : i + 10], y[i : i + 10])
    assert moments.n == 53
    assert moments.linear_cka(debiased=debiased) == pytest.approx(gram, abs=1e-10)
    assert linear_cka(x, y, debiased=debiased) == pytest.approx(gram, abs=1e-10)
    assert moments.procrustes() == pytest.approx(procrustes(x, y), abs=1e-12)


@pytest.mark.parametrize("name", list(MEASURES))
def test_invariant_to_orthogonal_maps_and_isotropic_scaling(name):
    measure, (x, y) = MEASURES[name], _pair()
    gen = torch.Generator().manual_seed(3)
    qx, qy = random_orthogonal(6, 6, gen), random_orthogonal(5, 5, gen)
    base = measure(x, y)
    assert measure(x @ qx, 3.0 * y @ qy) == pytest.approx(base, abs=1e-10)
    assert measure(0.01 * x, y) == pytest.approx(base, abs=1e-10)
    assert measure(1e-7 * x, 1e7 * y) == pytest.approx(base, abs=1e-10)  # each judged on its own scale
    assert measure(x, x) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("name", TRANSLATION_INVARIANT)
def test_cka_and_procrustes_are_translation_invariant(name):
    x, y = _pair()
    assert MEASURES[name](x + torch.arange(6.0).double(), y - 4.0) == pytest.approx(MEASURES[name](x, y), abs=1e-10)


def test_mutual_knn_uses_cosine_neighbours_so_translation_changes_it():
    x, y = _pair(n=60)
    assert mutual_knn(x, y, k=5) != pytest.approx(mutual_knn(x + 3.0, y, k=5), abs=1e-3)


def test_ranges_biased_in_0_1_debiased_in_minus1_1_and_can_be_negative():
    debiased = []
    for seed in range(30):
        x, y = _pair(n=8, p=4, q=3, seed=seed, noise=3.0)
        assert 0.0 <= linear_cka(x, y) <= 1.0
        assert 0.0 <= rbf_cka(x, y) <= 1.0
        assert 0.0 <= procrustes(x, y) <= 1.0
        assert 0.0 <= mutual_knn(x, y, k=3) <= 1.0
        debiased.append(linear_cka(x, y, debiased=True))
    assert all(-1.0 <= d <= 1.0 for d in debiased)
    assert min(debiased) < 0  # the unbiased HSIC is centred on the truth, so noisy pairs fall below 0


def test_debiased_removes_the_positive_bias_and_agrees_with_biased_at_large_n():
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(60, 20, generator=gen).double(), torch.randn(60, 20, generator=gen).double()
    assert linear_cka(x, y) > 0.2  # independent, yet biased CKA ~ (p + q) / n-ish
    assert abs(linear_cka(x, y, debiased=True)) < 0.05
    x, y = _pair(n=4000, noise=1.0, seed=2)
    assert linear_cka(x, y, debiased=True) == pytest.approx(linear_cka(x, y), abs=0.01)


def test_rbf_cka_tends_to_linear_cka_at_large_bandwidth():
    """exp(-d^2 / 2s^2) = 1 - d^2 / 2s^2 + O(s^-4), and double centring maps -d^2/2 to the linear Gram."""
    x, y = _pair()
    assert rbf_cka(x, y, bandwidth=300.0) == pytest.approx(linear_cka(x, y), abs=1e-5)
    assert rbf_cka(x, y, bandwidth=300.0, debiased=True) == pytest.approx(linear_cka(x, y, debiased=True), abs=1e-5)


def test_null_baselines_sit_at_chance():
    x, y = _pair(n=400, noise=0.3)
    mean, std = null_baseline(lambda a, b: linear_cka(a, b, debiased=True), x, y, permutations=5, seed=0)
    assert abs(mean) < 3 * std + 0.01 and std < 0.02
    assert linear_cka(x, y, debiased=True) > mean + 10 * std
    mean, std = null_baseline(lambda a, b: mutual_knn(a, b, k=10), x, y, permutations=5)
    assert mean == pytest.approx(10 / 399, abs=0.01)  # chance: k / (n - 1)
    assert null_baseline(linear_cka, x, y, permutations=1)[1] == 0.0
    assert null_baseline(linear_cka, x, y, seed=4) == null_baseline(linear_cka, x, y, seed=4)  # seeded


def test_mutual_knn_matches_a_direct_set_count():
    x, y = _pair(n=30)
    xn, yn = x / x.norm(dim=1, keepdim=True), y / y.norm(dim=1, keepdim=True)
    total = 0.0
    for i in range(30):
        sx, sy = (xn @ xn[i]).tolist(), (yn @ yn[i]).tolist()
        nx = sorted((j for j in range(30) if j != i), key=lambda j: -sx[j])[:4]
        ny = sorted((j for j in range(30) if j != i), key=lambda j: -sy[j])[:4]
        total += len(set(nx) & set(ny)) / 4
    assert mutual_knn(x, y, k=4) == pytest.approx(total / 30)
    assert not (knn_indices(x, 4) == torch.arange(30)[:, None]).any()  # a sample is never its own neighbour


def test_procrustes_is_one_for_a_rotated_scaled_shifted_copy():
    x, _ = _pair()
    q = random_orthogonal(6, 6, torch.Generator().manual_seed(5))
    assert procrustes(x, 2.0 * x @ q + 1.0) == pytest.approx(1.0, abs=1e-12)
    padded = torch.cat([x @ q, torch.zeros(40, 3, dtype=torch.float64)], 1)  # q > p: still a rotated copy
    assert procrustes(x, padded) == pytest.approx(1.0, abs=1e-12)


def test_rank_deficient_inputs_give_finite_values():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(20, 1, generator=gen).double() @ torch.randn(1, 8, generator=gen).double()  # rank 1
    y = torch.randn(20, 50, generator=gen).double()  # n < q
    x_const_col = torch.cat([x, torch.ones(20, 1, dtype=torch.float64)], 1)  # one constant feature is harmless
    for name, measure in MEASURES.items():
        for a, b in ((x, y), (y, x), (x_const_col, y), (x, x)):
            value = measure(a, b)
            assert torch.isfinite(torch.tensor(value)) and -1.0 <= value <= 1.0 + 1e-12, name
    assert linear_cka(x, 2 * x + 1) == pytest.approx(1.0)
    zero_row = x.clone()
    zero_row[0] = 0.0  # a zero row under cosine neighbours: similar to nothing, never NaN
    assert 0.0 <= mutual_knn(zero_row, y, k=3) <= 1.0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda x: linear_cka(torch.ones(10, 3), x[:10]), "X has no"),
        (lambda x: linear_cka(x[:10], torch.full((10, 2), 7.0)), "Y has no"),
        (lambda x: procrustes(torch.ones(10, 3), x[:10]), "X has no variance"),
        (lambda x: linear_cka(x[:1], x[:1]), "at least 2 samples"),
        (lambda x: linear_cka(x[:3], x[:3], debiased=True), "at least 4 samples"),
        (lambda x: rbf_cka(torch.ones(10, 3), x[:10]), "median distance"),
        (lambda x: rbf_cka(x, x, bandwidth=0.0), "bandwidth"),
        (lambda x: mutual_knn(x[:5], x[:5], k=5), "at least 6 samples"),
        (lambda x: mutual_knn(x, x, k=0), "k must be"),
        (lambda x: linear_cka(x, x[:-1]), "same n"),
        (lambda x: linear_cka(x * torch.nan, x), "NaN"),
        (lambda x: CrossMoments.of(x, x).update(x[:, :2], x), "widths changed"),
        (lambda x: CrossMoments.empty().linear_cka(), "more samples"),
        (lambda x: null_baseline(linear_cka, x, x, permutations=0), "permutations"),
        (lambda x: cka_from_grams(x @ x.T, x[:5] @ x[:5].T), "Gram matrices"),
    ],
)
def test_degenerate_input_is_a_clear_error(call, message):
    x, _ = _pair(n=12)
    with pytest.raises(LmechInputError, match=message):
        call(x)
