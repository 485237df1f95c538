"""Scaling-law fitting: exact recovery from noiseless data, the closed-form gradient against autograd, the
compute-optimal closed form against a numerical minimisation, refusals that name the reason, and CSV input."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy.optimize import minimize_scalar

from lmech.core import LmechInputError
from lmech.fit import FitError, compute_optimal, fit, form, optimal_allocation, read_csv
from lmech.fit.fitting import _value_and_grad

CHINCHILLA = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


def _isoflop(truth=CHINCHILLA, budgets=(6e18, 1e19, 3e19, 6e19, 1e20, 3e20), sizes=7):
    n, d = [], []
    for c in budgets:
        n_opt, _, _ = optimal_allocation(truth, c)
        for f in np.geomspace(1 / 8, 8, sizes):
            n.append(n_opt * f)
            d.append(c / (6 * n_opt * f))
    return np.array(n), np.array(d)


@pytest.mark.parametrize(
    ("name", "truth", "variables"),
    [
        ("chinchilla", CHINCHILLA, None),
        ("power_law", {"E": 0.5, "A": 30.0, "alpha": 0.4}, {"x": np.geomspace(1e2, 1e7, 12)}),
        ("kaplan_n", {"N_c": 8.8e13, "alpha_N": 0.076}, {"N": np.geomspace(1e6, 1e9, 8)}),
        (
            "broken_power_law",
            {"E": 0.1, "A": 5.0, "alpha": 0.2, "beta": 0.8, "d": 1e4, "f": 0.5},
            {"x": np.geomspace(1e1, 1e8, 30)},
        ),
    ],
)
def test_noiseless_data_is_recovered(name, truth, variables):
    spec = form(name)
    if variables is None:
        n, d = _isoflop()
        variables = {"N": n, "D": d}
    loss = spec.predict(truth, **variables).numpy()
    result = fit(spec, {**variables, "loss": loss}, bootstrap=0)
    for key, value in truth.items():
        assert result.params[key] == pytest.approx(value, rel=2e-3), key
    assert result.residual_std < 1e-4


def test_closed_form_gradient_equals_autograd():
    spec = form("chinchilla")
    n, d = _isoflop()
    cols = {"N": torch.as_tensor(n), "D": torch.as_tensor(d)}
    y = torch.log(spec.predict(CHINCHILLA, N=n, D=d)) + 0.01 * torch.randn(
        len(n), generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    x = np.array([0.5, 6.0, 6.1, 0.3, 0.3])
    fast, slow = _value_and_grad(spec, cols, y, 1e-3), _value_and_grad(replace(spec, design=None), cols, y, 1e-3)
    (v1, g1), (v2, g2) = fast(x), slow(x)
    assert v1 == pytest.approx(v2, rel=1e-12)
    np.testing.assert_allclose(g1, g2, rtol=1e-10, atol=1e-12)


def test_bootstrap_intervals_cover_the_truth_and_predictions_carry_them():
    spec = form("chinchilla")
    n, d = _isoflop()
    rng = np.random.default_rng(3)
    loss = spec.predict(CHINCHILLA, N=n, D=d).numpy() * np.exp(0.01 * rng.standard_normal(len(n)))
    result = fit(spec, {"N": n, "D": d, "loss": loss}, bootstrap=60, level=0.95)
    for key in CHINCHILLA:
        lo, hi = result.intervals[key]
        assert lo <= result.params[key] <= hi
    band = result.predict(N=np.array([1e10]), D=np.array([2e11]))
    assert band.low[0] <= band.point[0] <= band.high[0] and band.level == 0.95


def test_compute_optimal_matches_a_numerical_minimisation():
    spec = form("chinchilla")
    c = 1e22
    n_star, d_star, l_star = optimal_allocation(CHINCHILLA, c)

    def loss_at(log_n):
        n = np.exp(log_n)
        return spec.predict(CHINCHILLA, N=[n], D=[c / (6 * n)]).item()

    best = minimize_scalar(loss_at, bounds=(np.log(1e7), np.log(1e13)), method="bounded", options={"xatol": 1e-10})
    assert np.exp(best.x) == pytest.approx(n_star, rel=1e-4)
    assert 6 * n_star * d_star == pytest.approx(c, rel=1e-12)
    assert best.fun == pytest.approx(l_star, rel=1e-10)


def test_untrustworthy_fits_are_refused_with_the_reason():
    spec = form("chinchilla")
    n, d = _isoflop()
    loss = spec.predict(CHINCHILLA, N=n, D=d).numpy()
    with pytest.raises(FitError, match="too few points"):
        fit(spec, {"N": n[:6], "D": d[:6], "loss": loss[:6]})
    fixed_n = np.full(12, 1e9)  # one model size: A / N^alpha is a constant, confounded with E
    d12 = np.geomspace(1e9, 1e12, 12)
    with pytest.raises(FitError, match=r"not identifiable|bound") as info:
        fit(spec, {"N": fixed_n, "D": d12, "loss": spec.predict(CHINCHILLA, N=fixed_n, D=d12).numpy()}, bootstrap=0)
    assert info.value.partial is not None and "E" in info.value.partial.params
    power = form("power_law")
    x = np.geomspace(1, 100, 10)
    with pytest.raises(FitError, match="alpha ended on its bound"):  # a loss that grows with x
        fit(power, {"x": x, "loss": 1 + 0.01 * x}, bootstrap=0)


def test_compute_optimal_needs_chinchilla():
    power = form("power_law")
    x = np.geomspace(1e2, 1e6, 10)
    result = fit(power, {"x": x, "loss": 1 + 10 * x**-0.3}, bootstrap=0)
    with pytest.raises(LmechInputError, match="chinchilla"):
        compute_optimal(result, 1e20)


def test_csv_round_trip_and_errors(tmp_path):
    spec = form("chinchilla")
    good = tmp_path / "runs.csv"
    good.write_text("N,D,Loss,notes\n1e8,2e9,3.1,a\n2e8,4e9,2.9,b\n")
    table = read_csv(good, spec)
    assert table["N"].tolist() == [1e8, 2e8] and table["loss"].tolist() == [3.1, 2.9]
    cases = {
        "N,loss\n1,2\n": "column 'D' is missing",
        "N,D,loss\n1e8,x,3\n": "line 2: D must be a number",
        "N,D,loss\n1e8,2e9,3\n1e8,-1,3\n": "line 3: D must be finite and positive",
        "": "is empty",
        "N,D,loss\n": "no rows",
        "N,D,loss,N\n1,2,3,4\n": "repeats n",
    }
    for text, message in cases.items():
        bad = tmp_path / "bad.csv"
        bad.write_text(text)
        with pytest.raises(LmechInputError, match=message):
            read_csv(bad, spec)
    with pytest.raises(LmechInputError, match="cannot read"):
        read_csv(tmp_path / "missing.csv", spec)
    with pytest.raises(LmechInputError, match="form must be one of"):
        form("kaplan")
