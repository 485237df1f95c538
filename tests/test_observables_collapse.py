"""Neural-collapse metrics: exact zeros on a simplex ETF, hand-computed values, invariances, and clear errors."""

import math

import pytest
import torch

from lmech.core import LmechInputError, Snapshot, random_orthogonal
from lmech.observables import collapse as nc


def simplex_etf(classes: int, dim: int, seed: int = 0) -> torch.Tensor:
    """(C, d) rows of a simplex ETF: sqrt(C/(C-1)) (I - 11^T/C) embedded by a random isometry, plus an offset."""
    base = math.sqrt(classes / (classes - 1)) * (torch.eye(classes) - 1 / classes).double()  # (C, C)
    return base @ random_orthogonal(dim, classes, torch.Generator().manual_seed(seed)).T  # (C, d)


def noisy_features(classes=5, dim=12, per_class=20, noise=0.3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    means = torch.randn(classes, dim, generator=gen, dtype=torch.float64)
    labels = torch.arange(classes).repeat_interleave(per_class)
    h = means[labels] + noise * torch.randn(len(labels), dim, generator=gen, dtype=torch.float64)
    w = means + 0.5 * torch.randn(classes, dim, generator=gen, dtype=torch.float64)
    return h, labels, w, torch.randn(classes, generator=gen, dtype=torch.float64)


def test_a_collapsed_simplex_etf_gives_zero_for_every_metric():
    m = simplex_etf(10, 32)
    labels = torch.arange(10).repeat_interleave(7)
    offset = torch.linspace(-1, 1, 32, dtype=torch.float64)  # a global mean: metrics use centred means
    values = nc.collapse_metrics(m[labels] + offset, labels, 3.0 * m, -3.0 * m @ offset)  # bias cancels the offset
    for key, value in values.items():
        assert value == pytest.approx(0.0, abs=1e-12), key
    cos = (m @ m.T)[0, 1] / m[0].norm() ** 2
    assert float(cos) == pytest.approx(-1 / 9)  # the ETF angle: mean cosine is -1/(C-1), trivially


def test_nc1_of_two_classes_on_a_line_matches_the_hand_computation():
    # class means -1 and 1 (mu_G = 0), each sample 0.5 away: Sigma_W = 0.25, Sigma_B = 1, NC1 = 0.25 / 2
    h = torch.tensor([[-1.5], [-0.5], [0.5], [1.5]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1])
    assert nc.within_class_variation(h, labels) == pytest.approx(0.125)


def test_nc1_matches_a_dense_reference_with_the_rank_deficient_between_class_covariance():
    h, labels, _, _ = noisy_features()
    mu = torch.stack([h[labels == c].mean(0) for c in range(5)])
    centred = mu - mu.mean(0)
    sigma_w = sum(torch.outer(v, v) for v in h - mu[labels]) / len(h)
    u, s, _ = torch.linalg.svd(centred.T @ centred / 5)
    pinv = u[:, :4] @ torch.diag(1 / s[:4]) @ u[:, :4].T  # rank C - 1 = 4 exactly
    assert nc.within_class_variation(h, labels) == pytest.approx(float(torch.trace(sigma_w @ pinv)) / 5, rel=1e-9)


def test_nc2_spreads_on_a_three_class_example():
    # centred means (2, 0), (-1, 1), (-1, -1): norms 2, sqrt2, sqrt2; cosines -1/sqrt2, -1/sqrt2, 0
    m = torch.tensor([[2.0, 0.0], [-1.0, 1.0], [-1.0, -1.0]], dtype=torch.float64)
    norms = torch.tensor([2.0, math.sqrt(2), math.sqrt(2)])
    assert nc.equinorm(m) == pytest.approx(float(norms.std(correction=0) / norms.mean()))
    std, shift = nc.cosine_spread(m)
    assert std == pytest.approx(1 / 3)  # deviations -a/3, -a/3, 2a/3 from the mean, a = 1/sqrt2
    assert shift == pytest.approx((math.sqrt(2) - 0.5) / 3)  # mean |cos + 1/2|


def test_self_duality_limits():
    m = simplex_etf(4, 6)
    assert nc.self_duality(5 * m, m) == pytest.approx(0.0, abs=1e-14)
    assert nc.self_duality(-m, m) == pytest.approx(4.0)  # opposite: ||2 M / ||M|| ||^2
    w = torch.zeros_like(m)
    w[:, 0] = 1.0
    other = torch.zeros_like(m)
    other[:, 1] = 1.0
    assert nc.self_duality(w, other) == pytest.approx(2.0)  # orthogonal


def test_ncc_mismatch_counts_the_samples_where_the_classifier_disagrees():
    # means at -1 and 0.8 (NCC boundary -0.1); w = (-1, 1) with bias (0.6, 0) puts the boundary at h = 0.3
    h = torch.tensor([[-1.2], [-0.8], [0.2], [1.4]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1])
    w = torch.tensor([[-1.0], [1.0]], dtype=torch.float64)
    assert nc.ncc_mismatch(h, labels, w) == 0.0
    assert nc.ncc_mismatch(h, labels, w, torch.tensor([0.6, 0.0], dtype=torch.float64)) == 0.25  # h = 0.2 flips


def test_metrics_are_invariant_to_rotation_scaling_and_translation():
    h, labels, w, b = noisy_features()
    base = nc.collapse_metrics(h, labels, w, b)
    q = random_orthogonal(12, 12, torch.Generator().manual_seed(3))
    rotated = nc.collapse_metrics(h @ q.T, labels, w @ q.T, b)
    scaled = nc.collapse_metrics(2.5 * h, labels, 0.4 * w, b)  # logits unchanged: W h scales by 1
    shift = torch.randn(12, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    moved = nc.collapse_metrics(h + shift, labels, w, b - w @ shift)  # logits unchanged
    for other in (rotated, scaled, moved):
        for key in base:
            assert other[key] == pytest.approx(base[key], rel=1e-9, abs=1e-12), key
    assert base["nc1"] > 0 and base["nc3"] > 0 and base["nc2_cos_std"] > 0


def test_metrics_shrink_as_noise_around_an_etf_shrinks():
    m = simplex_etf(6, 10)
    labels = torch.arange(6).repeat_interleave(15)
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(len(labels), 10, generator=gen, dtype=torch.float64)
    z -= torch.stack([z[labels == c].mean(0) for c in range(6)])[labels]  # noise with zero class means
    nc1 = [nc.within_class_variation(m[labels] + s * z, labels) for s in (0.4, 0.2, 0.1)]
    assert nc1[0] > nc1[1] > nc1[2] > 0
    assert nc1[1] / nc1[2] == pytest.approx(4.0, rel=1e-9)  # Sigma_W scales as s^2 while the means are unchanged


def test_float32_input_is_measured_in_float64():
    h, labels, w, b = noisy_features()
    single = nc.collapse_metrics(h.float(), labels, w.float(), b.float())
    double = nc.collapse_metrics(h.float().double(), labels, w.float().double(), b.float().double())
    assert single == double


@pytest.mark.parametrize(
    ("features", "labels", "match"),
    [
        (torch.zeros(4, 3), torch.tensor([0, 0, 2, 2]), "classes \\[1\\] have none"),
        (torch.randn(4, 3), torch.zeros(4, dtype=torch.long), "at least 2 classes"),
        (torch.tensor([[0.0], [math.nan], [1.0], [2.0]]), torch.tensor([0, 0, 1, 1]), "NaN"),
        (torch.randn(4, 3), torch.tensor([0, 1]), "features must be"),
    ],
)
def test_degenerate_input_is_a_clear_error(features, labels, match):
    with pytest.raises(LmechInputError, match=match):
        nc.within_class_variation(features, labels)


def test_coinciding_class_means_are_a_clear_error():
    with pytest.raises(LmechInputError, match="coincide"):
        nc.within_class_variation(torch.ones(4, 2), torch.tensor([0, 0, 1, 1]))


def test_observable_measures_a_functional_model_and_marks_nan_features():
    h, labels, w, b = noisy_features()
    obs = nc.neural_collapse(lambda p, x: x, "w", "b")
    snap = Snapshot(0, 0.0, {"w": w, "b": b}, None, h, labels, 0.0)
    values, _ = obs.measure(snap, obs.init(snap))
    assert values == nc.collapse_metrics(h, labels, w, b)
    bad = Snapshot(0, 0.0, {"w": w, "b": b}, None, h * math.nan, labels, 0.0)
    assert math.isnan(obs.measure(bad, None)[0]["nc1"])
