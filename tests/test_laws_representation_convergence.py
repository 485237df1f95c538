"""representation-convergence in quick mode (seed 0), where its ordering is only resolved at 4x in width (seed 2),
its config validation, and the pieces it is built from."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lmech
from lmech.core import INIT, LmechInputError, Ordering, generator
from lmech.laws import representation_convergence as rc
from lmech.nets import MLP, ensemble

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def verdict():
    return lmech.check(rc.ID, seed=0)


def _checks(v):
    return {c.name: c for c in v.checks}


def test_quick_holds_similarity_rises_with_width_far_above_null(verdict):
    assert verdict.holds, (verdict.regime, [c.describe() for c in verdict.checks])
    checks = _checks(verdict)
    assert len(checks) == 5
    dcka = np.asarray(checks["debiased linear CKA (trained, mean over pairs) increases with width"].measured)
    knn = np.asarray(checks["mutual k-NN (trained, mean over pairs) increases with width"].measured)
    assert 0.45 < dcka[0] < 0.75 and 0.88 < dcka[-1] < 0.97  # measured 0.592 at width 16, 0.932 at 512
    assert 0.35 < knn[0] < 0.5 and 0.72 < knn[-1] < 0.84  # measured 0.429, 0.783; chance 0.022
    assert np.all(np.diff(knn) > 0)  # k-NN happens to rise at every doubling at seeds 0-2
    assert checks["debiased linear CKA above its shuffled-pairing null, min z over widths"].measured > 8  # 12.3
    assert checks["mutual k-NN above its shuffled-pairing null, min z over widths"].measured > 30  # 73.5
    slope = checks["at init, 1 - biased CKA vs width (widths >= 64)"].measured["slope"]
    assert -1.3 < slope < -0.7  # measured -0.90; LLN: -1
    assert "test accuracy [0.9" in verdict.regime


def test_figure_shows_both_judged_metrics_the_biased_one_init_and_accuracy(verdict):
    titles = [p.title for p in verdict.figure.panels]
    assert titles == [
        "debiased linear CKA between seeds",
        "mutual k-NN between seeds",
        "biased linear CKA between seeds",
        "at init: 1 - biased CKA vs width",
        "test accuracy",
    ]
    labels = [s.label for s in verdict.figure.panels[1].series]
    assert labels[0] == "trained (mean over pairs)" and "null (pairing shuffled)" in labels


def test_adjacent_widths_are_not_resolved_at_small_width():
    """Seed 2: debiased CKA falls from width 32 to 64 (0.756 -> 0.737, within the noise of 6 pairs): a strict
    ordering of every width fails, the law's ordering of widths >= 4x apart holds."""
    v = lmech.check(rc.ID, seed=2, overrides={"widths": [16, 32, 64, 128]})
    check = _checks(v)["debiased linear CKA (trained, mean over pairs) increases with width"]
    assert check.holds
    strict = Ordering("strict", "every pair of widths")([16, 32, 64, 128], check.measured)
    assert not strict.holds and strict.error == 1


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"widths": [64, 32, 128, 256]}, "widths"),
        ({"widths": [16, 32, 64]}, "widths"),
        ({"nets": 2}, "nets"),
        ({"lr": 0}, "lr"),
        ({"k": 0}, "k"),
    ],
)
def test_bad_config_is_a_clear_input_error(overrides, field):
    with pytest.raises(LmechInputError, match=field):
        lmech.check(rc.ID, overrides=overrides)


def test_hidden_is_the_last_hidden_layer_of_each_member():
    nets = [MLP(64, 12, 2, 10, gen=generator(0, INIT, e)) for e in range(3)]
    _fn, params = ensemble(nets)
    x = torch.randn(5, 64, generator=torch.Generator().manual_seed(0))
    for e, net in enumerate(nets):
        expected = torch.relu(net.layers[1](torch.relu(net.layers[0](x))))
        assert torch.allclose(rc.hidden(params, x, 2, e), expected, atol=1e-6)


def test_similarities_of_a_representation_with_itself_and_with_noise():
    gen = torch.Generator().manual_seed(1)
    h, noise = torch.randn(60, 8, generator=gen).double(), torch.randn(60, 8, generator=gen).double()
    same = rc.similarities(h, 2 * h, k=5)
    assert set(same) == set(rc.METRICS) and all(v == pytest.approx(1.0) for v in same.values())
    unrelated = rc.similarities(h, noise, k=5)
    assert abs(unrelated["dcka"]) < 0.1 and unrelated["knn"] < 0.3 and unrelated["cka"] > unrelated["dcka"]


def test_divergence_is_a_recorded_outcome():
    v = lmech.check(rc.ID, seed=0, overrides={"widths": [8, 16, 32, 64], "lr": 1000.0, "epochs": 3})
    assert v.diverged and not v.holds
    assert v.checks[0].name == "no divergence"


def test_a_collapsed_hidden_layer_skips_its_pairs_instead_of_crashing():
    nets = [MLP(64, 8, 2, 10, gen=generator(0, INIT, e)) for e in range(3)]
    _fn, params = ensemble(nets)
    params["layers.1.bias"][1] = -1e6  # every ReLU of net 1's last hidden layer is dead
    rows = [[] for _ in range(3)]
    x = torch.randn(40, 64, generator=torch.Generator().manual_seed(0))
    rc._pairs(params, x, {"depth": 2, "k": 5, "permutations": 2, "seed": 0}, rows, "final")
    names = [(e, r.step, r.name) for e, rr in enumerate(rows) for r in rr]
    assert (0, 1, "final/degenerate") in names and (1, 2, "final/degenerate") in names
    assert (0, 2, "final/dcka") in names and (0, 2, "null/knn") in names
