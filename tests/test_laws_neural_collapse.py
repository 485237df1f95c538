"""neural-collapse in quick mode (seed 0), the batch-norm-free recipe that stalls, a run too short to collapse, its
config validation, and its set-up."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import lmech
from lmech.core import INIT, LmechInputError, generator
from lmech.laws import neural_collapse as nc
from lmech.nets.mlp import MLP

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def verdict():
    return lmech.check(nc.ID, seed=0)


def _checks(v):
    return {c.name: c for c in v.checks}


def test_quick_collapses_with_papyans_recipe(verdict):
    """Batch norm, wd on every parameter, lr /10 at 1/3 and 2/3: NC1 falls ~47x and is still falling, NC3 ~0.04, the
    cosine spread shrinks 0.19 -> 0.05, NC4 = 0 (seeds 0-2: falls 47, 35, 45x; NC3 0.039, 0.038, 0.039)."""
    checks = _checks(verdict)
    assert len(checks) == 4
    fall, still, dual, cos = (checks[c.name] for c in (nc.FALL, nc.KEEPS_FALLING, nc.SELF_DUALITY, nc.EQUIANGULAR))
    assert fall.holds and 20.0 < fall.measured < 100.0  # measured 47.1 +- 1.1
    assert still.holds and still.measured < -0.15  # mean + 2 SE of the tail slope; measured -0.292 +- 0.006
    assert dual.holds and 0.02 < dual.measured < 0.06  # measured 0.039 (0.26 at the TPT start, ~2 at init)
    assert cos.holds and cos.measured > 0.08  # cosine std 0.188 -> 0.048
    assert verdict.holds
    assert "nc4 0 +- 0" in verdict.regime  # the classifier is the nearest-class-centre rule at the end
    assert "train_acc 1 +- 0" in verdict.regime and "batch norm" in verdict.regime


def test_without_batch_norm_self_duality_stalls_above_its_bar():
    """The bias-free, batch-norm-free net with a constant step size reaches a floor: NC3 0.107 at seed 0 (0.117, 0.120
    at seeds 1, 2), its classifier weighted towards the most confused digit pairs, so the verdict fails."""
    plain = {"batchnorm": False, "bias": False, "decay_all": False, "lr_drops": []}
    v = lmech.check(nc.ID, seed=0, overrides=plain)
    checks = _checks(v)
    fall, dual = checks[nc.FALL.name], checks[nc.SELF_DUALITY.name]
    assert not dual.holds and 0.1 < dual.measured < 0.13  # measured 0.107
    assert 3.0 < fall.measured < 6.0  # measured 4.75, against ~47 with batch norm
    assert not v.holds and "bias-free ReLU MLPs (2 x 64)" in v.regime


def test_figure_shows_nc1_nc2_nc3_nc4_and_accuracy(verdict):
    titles = [p.title for p in verdict.figure.panels]
    assert titles == [
        "NC1 = tr(Sigma_W Sigma_B^+)/C",
        "NC2: spreads (net 0)",
        "NC3 and NC4 (net 0)",
        "accuracy (net 0)",
    ]
    nc1 = verdict.figure.panels[0]
    assert nc1.yscale == "log" and len([s for s in nc1.series if s.label.startswith("net")]) == 4
    assert any(s.label.startswith("TPT starts") for s in nc1.series)


def test_a_run_that_stops_soon_after_100_percent_accuracy_has_not_collapsed():
    """Too few steps: 150 steps reach 100% train accuracy (at ~step 30) but NC1 has not yet fallen 4x."""
    v = lmech.check(nc.ID, seed=0, overrides={"steps": 150, "nets": 2, "records": 10})
    fall = _checks(v)[nc.FALL.name]
    assert not fall.holds and 1.0 < fall.measured < 4.0
    assert not v.holds


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"width": 5}, "width"),
        ({"per_class": 1}, "per_class"),
        ({"momentum": 1.0}, "momentum"),
        ({"nets": 1}, "nets"),
        ({"lr_drops": [0.6, 0.3]}, "lr_drops"),
        ({"lr_drops": [1.5]}, "lr_drops"),
        ({"batch": 500}, "batch"),
    ],
)
def test_bad_config_is_a_clear_input_error(overrides, field):
    with pytest.raises(LmechInputError, match=field):
        lmech.check(nc.ID, overrides=overrides)


def test_training_set_is_balanced_and_seeded():
    x, y = nc.training_set(0, 7)
    assert x.shape == (70, 64) and torch.equal(torch.bincount(y), torch.full((10,), 7))
    assert torch.equal(nc.training_set(0, 7)[0], x) and not torch.equal(nc.training_set(1, 7)[0], x)


def test_stacked_forward_equals_each_mlp_module():
    c = {"width": 16, "depth": 2, "bias": True, "batchnorm": False, "seed": 3}
    params = nc._stack(c, [0, 1, 2])
    x = torch.randn(5, 64, generator=torch.Generator().manual_seed(0))
    logits, feats = nc.forward(params, x, 2)
    assert logits.shape == (3, 5, 10) and feats.shape == (3, 5, 16)
    for k in range(3):
        net = MLP(64, 16, 2, 10, bias=True, gen=generator(3, INIT, k))
        torch.testing.assert_close(logits[k], net(x))


def test_batch_norm_forward_equals_torch_batchnorm_in_training_mode():
    """Oracle: Linear -> BatchNorm1d (training mode, random scale and shift) -> ReLU, twice, then the classifier; and
    with ``ref`` the statistics come from the first rows only, as BatchNorm1d's statistics of those rows."""
    gen = torch.Generator().manual_seed(1)
    params = nc._stack({"width": 16, "depth": 2, "bias": True, "batchnorm": True, "seed": 3}, [0, 1])
    for i in range(2):
        params[f"g{i}"] = 1 + 0.3 * torch.randn(2, 16, generator=gen)
        params[f"s{i}"] = 0.3 * torch.randn(2, 16, generator=gen)
    x = torch.randn(12, 64, generator=gen)
    logits, feats = nc.forward(params, x, 2)
    mixed = nc.forward(params, x, 2, ref=7)[0]
    for k in range(2):
        layers = []
        for i in range(2):
            lin = torch.nn.Linear(64 if i == 0 else 16, 16)
            bn = torch.nn.BatchNorm1d(16)
            with torch.no_grad():
                lin.weight.copy_(params[f"w{i}"][k]), lin.bias.copy_(params[f"b{i}"][k])
                bn.weight.copy_(params[f"g{i}"][k]), bn.bias.copy_(params[f"s{i}"][k])
            layers += [lin, bn, torch.nn.ReLU()]
        body = torch.nn.Sequential(*layers).train()
        head = torch.nn.Linear(16, 10)
        with torch.no_grad():
            head.weight.copy_(params["w2"][k]), head.bias.copy_(params["b2"][k])
        torch.testing.assert_close(feats[k], body(x))
        torch.testing.assert_close(logits[k], head(body(x)))
        torch.testing.assert_close(mixed[k, :7], head(body(x[:7])))
        h = x  # ref=7: every row normalised with the (biased) statistics of rows 0-6
        for i in range(2):
            z = h @ params[f"w{i}"][k].T + params[f"b{i}"][k]
            ref = z[:7]
            z = F.batch_norm(z, ref.mean(0), ref.var(0, unbiased=False), params[f"g{i}"][k], params[f"s{i}"][k])
            h = torch.relu(z)
        torch.testing.assert_close(mixed[k], head(h))


def test_record_steps_cover_start_and_end():
    steps = nc.record_steps(1000, 10)
    assert {0, 1, 1000} <= steps and max(steps) == 1000 and len(steps) <= 21
    assert np.all(np.diff(sorted(steps)) > 0)


def test_a_diverging_run_is_a_recorded_outcome_not_a_crash():
    v = lmech.check(nc.ID, overrides={"lr": 10.0, "batchnorm": False, "steps": 60, "nets": 2, "records": 5})
    assert v.diverged and not v.holds


def test_minibatch_mode_runs_and_says_so():
    """Papyan et al.'s minibatch SGD (batch norm then uses each minibatch's statistics); the metrics stay full-set."""
    v = lmech.check(nc.ID, overrides={"batch": 100, "steps": 60, "nets": 2, "records": 5})
    assert "batch-100 SGD" in v.regime and "train_acc" in v.regime and not v.diverged
