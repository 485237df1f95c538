"""Neural feature ansatz observables: AGOP oracles, the NFM, correlations and eigenspace overlaps."""

import math

import pytest
import torch

from lmech.core import LmechInputError, generator, random_orthogonal
from lmech.nets import MLP
from lmech.nets.functional import functional
from lmech.observables.feature_ansatz import (
    agop,
    anisotropic_correlation,
    ansatz_scores,
    eigenspace_overlap,
    matrix_correlation,
    neural_feature_matrix,
    psd_power,
    subspace_overlap,
)


def _tiny_net(dim_out: int = 2):
    net = MLP(5, 7, 2, dim_out, activation_name="tanh", bias_scale=0.3, gen=generator(0), dtype=torch.float64)
    return functional(net)


def test_agop_of_a_linear_model_is_wt_a_at_w_exactly():
    gen = generator(1)
    w, a = torch.randn(4, 6, generator=gen, dtype=torch.float64), torch.randn(3, 4, generator=gen, dtype=torch.float64)
    x = torch.randn(9, 6, generator=gen, dtype=torch.float64)
    fn = lambda p, xb: xb @ p["w"].T @ p["a"].T  # noqa: E731  f(x) = A W x, J = A W for every x
    expected = w.T @ a.T @ a @ w
    torch.testing.assert_close(agop(fn, {"w": w, "a": a}, x), expected, rtol=1e-12, atol=1e-12)
    # one output f = a . W x: AGOP = W^T a a^T W, rank one
    got = agop(fn, {"w": w, "a": a[:1]}, x)
    torch.testing.assert_close(got, w.T @ a[0][:, None] @ a[0][None, :] @ w, rtol=1e-12, atol=1e-12)
    assert torch.linalg.matrix_rank(got) == 1


def test_agop_matches_an_explicit_loop_and_finite_differences_on_a_tiny_mlp():
    fn, params = _tiny_net()
    x = torch.randn(6, 5, generator=generator(2), dtype=torch.float64)
    loop = torch.zeros(5, 5, dtype=torch.float64)
    for xi in x:
        j = torch.autograd.functional.jacobian(lambda v: fn(params, v[None])[0], xi)  # (2, 5)
        loop += j.T @ j
    got = agop(fn, params, x, chunk=4)  # two chunks
    torch.testing.assert_close(got, loop / len(x), rtol=1e-10, atol=1e-12)
    eps, fd = 1e-6, torch.zeros(5, 5, dtype=torch.float64)
    for xi in x:
        cols = [
            (fn(params, (xi + eps * e)[None]) - fn(params, (xi - eps * e)[None]))[0] / (2 * eps) for e in torch.eye(5)
        ]
        j = torch.stack(cols, 1)  # (2, 5) central differences, error O(eps^2)
        fd += j.T @ j
    torch.testing.assert_close(got, fd / len(x), rtol=1e-6, atol=1e-9)


def test_agop_is_symmetric_psd_float64_and_leaves_params_alone():
    fn, params = _tiny_net(3)
    before = {k: v.clone() for k, v in params.items()}
    g = agop(fn, params, torch.randn(20, 5, generator=generator(3), dtype=torch.float64))
    assert g.dtype == torch.float64 and g.shape == (5, 5)
    torch.testing.assert_close(g, g.T)
    assert torch.linalg.eigvalsh(g).min() > -1e-12
    assert all(torch.equal(before[k], params[k]) for k in params)


def test_nfm_and_psd_power():
    w = torch.randn(8, 4, generator=generator(4))
    m = neural_feature_matrix(w)
    assert m.dtype == torch.float64
    torch.testing.assert_close(m, w.double().T @ w.double())
    root = psd_power(m, 0.5)
    torch.testing.assert_close(root @ root, m, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(psd_power(m, 1.0), m, rtol=1e-10, atol=1e-10)


def test_correlation_properties():
    gen = generator(5)
    a = (lambda z: z @ z.T)(torch.randn(6, 6, generator=gen, dtype=torch.float64))
    b = (lambda z: z @ z.T)(torch.randn(6, 6, generator=gen, dtype=torch.float64))
    assert matrix_correlation(a, a) == pytest.approx(1.0)
    assert matrix_correlation(a, b) == pytest.approx(matrix_correlation(b, a))
    assert matrix_correlation(3.0 * a, 0.5 * b) == pytest.approx(matrix_correlation(a, b))
    assert matrix_correlation(a, -a) == pytest.approx(-1.0)
    # Pearson removes the mean entry, the cosine does not: A + c 11^T is perfectly correlated with A
    assert matrix_correlation(a, a + 5.0) == pytest.approx(1.0)
    assert matrix_correlation(a, a + 5.0, centered=False) < 0.99
    # cosine is <A, B>_F / (|A| |B|); for PSD matrices it is >= 0
    cos = float((a * b).sum() / (a.norm() * b.norm()))
    assert matrix_correlation(a, b, centered=False) == pytest.approx(cos) and cos > 0


def test_traceless_correlation_ignores_the_isotropic_part():
    gen = generator(6)
    noise = [(lambda z: z @ z.T / 100)(torch.randn(10, 10, generator=gen, dtype=torch.float64)) for _ in range(2)]
    a, b = 50 * torch.eye(10, dtype=torch.float64) + noise[0], 50 * torch.eye(10, dtype=torch.float64) + noise[1]
    assert matrix_correlation(a, b) > 0.9  # two near-identities look alike entry by entry
    assert anisotropic_correlation(a, b) == pytest.approx(
        matrix_correlation(*[n - n.trace() / 10 * torch.eye(10, dtype=torch.float64) for n in noise])
    )
    assert anisotropic_correlation(a, b) < 0.6
    assert anisotropic_correlation(a, a + 7 * torch.eye(10, dtype=torch.float64)) == pytest.approx(1.0)


def test_eigenspace_overlap_properties():
    gen = generator(7)
    q = random_orthogonal(12, 12, gen)
    spec = torch.tensor([9.0, 8.0, 7.0] + [0.1] * 9, dtype=torch.float64)
    a = q @ torch.diag(spec) @ q.T
    b = q @ torch.diag(torch.tensor([1.0, 3.0, 2.0] + [0.5] * 9, dtype=torch.float64)) @ q.T  # same top-3 space
    assert eigenspace_overlap(a, b, 3) == pytest.approx(1.0)
    assert eigenspace_overlap(a, b, 3) == pytest.approx(eigenspace_overlap(b, a, 3))
    assert eigenspace_overlap(4.0 * a, 0.1 * b, 3) == pytest.approx(1.0)
    other = q @ torch.diag(spec.flip(0)) @ q.T  # top-3 space orthogonal to a's
    assert eigenspace_overlap(a, other, 3) == pytest.approx(0.0, abs=1e-12)
    assert subspace_overlap(a, q[:, :3]) == pytest.approx(1.0)
    # independent random subspaces overlap by k/d on average
    vals = [
        eigenspace_overlap(a, (lambda r: r @ torch.diag(spec) @ r.T)(random_orthogonal(12, 12, gen)), 3)
        for _ in range(400)
    ]
    assert sum(vals) / len(vals) == pytest.approx(3 / 12, abs=0.03)  # s.e. ~0.007


def test_ansatz_scores_on_an_exact_ansatz():
    """W^T W = AGOP exactly: every score is 1; against AGOP^{1/2} the correlation is below 1 (different spectrum)."""
    w = torch.randn(30, 8, generator=generator(8), dtype=torch.float64)
    m = neural_feature_matrix(w)
    s = ansatz_scores(m, m, 3)
    assert s["corr"] == pytest.approx(1.0) and s["overlap"] == pytest.approx(1.0)
    assert s["cosine"] == pytest.approx(1.0) and s["corr_traceless"] == pytest.approx(1.0)
    assert s["corr_sqrt"] < 1.0
    s = ansatz_scores(psd_power(m, 0.5), m, 3)
    assert s["corr_sqrt"] == pytest.approx(1.0) and s["overlap"] == pytest.approx(1.0)


def test_degenerate_inputs_raise_clear_errors():
    a = torch.eye(4, dtype=torch.float64)
    with pytest.raises(LmechInputError, match="k must be between 1 and the dimension 4"):
        eigenspace_overlap(a, a, 5)
    with pytest.raises(LmechInputError, match="k must be"):
        eigenspace_overlap(a, a, 0)
    with pytest.raises(LmechInputError, match="zero matrix"):
        eigenspace_overlap(torch.zeros(4, 4), a, 2)
    with pytest.raises(LmechInputError, match="zero"):
        matrix_correlation(torch.zeros(4, 4), a, centered=False)
    with pytest.raises(LmechInputError, match="constant"):
        matrix_correlation(torch.ones(4, 4), a)
    with pytest.raises(LmechInputError, match="same shape"):
        matrix_correlation(a, torch.eye(3))
    with pytest.raises(LmechInputError, match="square"):
        eigenspace_overlap(torch.ones(3, 4), torch.ones(3, 4), 1)
    with pytest.raises(LmechInputError, match=r"\(n, d\)"):
        agop(lambda p, x: x.sum(1), {}, torch.ones(5))
    with pytest.raises(LmechInputError, match=r"\(width, d\)"):
        neural_feature_matrix(torch.ones(5))
    assert math.isfinite(matrix_correlation(a, a))
