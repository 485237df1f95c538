"""lazy-rich in quick mode (seed 0), its config validation, and properties of its set-up."""

import math

import pytest
import torch

import lmech
from lmech.core import LmechInputError
from lmech.laws import lazy_rich

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def verdict():
    return lmech.check("lazy-rich", seed=0)


def _checks(v):
    return {c.name: c for c in v.checks}


def test_quick_holds_with_a_rich_and_a_lazy_regime(verdict):
    assert verdict.holds, (verdict.regime, [c.describe() for c in verdict.checks])
    checks = _checks(verdict)
    assert len(checks) == 6  # fit, movement and alignment at each of the two alphas
    rich_move = checks["relative parameter movement, mean over nets (alpha = 0.1, rich)"].measured
    lazy_move = checks["relative parameter movement, mean over nets (alpha = 30, lazy)"].measured
    rich_aligned = checks["teacher-aligned mass, mean over nets (alpha = 0.1, rich)"].measured
    lazy_aligned = checks["teacher-aligned mass, mean over nets (alpha = 30, lazy)"].measured
    assert 2.0 < rich_move < 6.0  # measured 3.82: the neurons grow by ~alpha^-1/2
    assert 0.02 < lazy_move < 0.08  # measured 0.047 ~ 1.4 / alpha
    assert rich_aligned > 0.8  # measured 0.95
    assert lazy_aligned < 0.08  # measured 0.045, chance 0.051
    assert checks["worst relative train MSE (alpha = 0.1)"].measured < 1e-4  # measured 5.6e-7
    assert checks["worst relative train MSE (alpha = 30)"].measured < 5e-3  # measured 1.8e-3
    assert "chance level 0.051" in verdict.regime


def test_figure_shows_both_alphas_and_the_loss(verdict):
    titles = [p.title for p in verdict.figure.panels]
    assert titles == ["alpha = 0.1 (rich), net 0", "alpha = 30 (lazy), net 0", "training loss (net 0)"]
    dots = [s for s in verdict.figure.panels[0].series if s.style == "dots"]
    assert [len(s.x) for s in dots] == [200, 200]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [({"alphas": [-1.0]}, "alphas"), ({"neurons": 201}, "neurons"), ({"lr": 0}, "lr"), ({"nets": 0}, "nets")],
)
def test_bad_config_is_a_clear_input_error(overrides, field):
    with pytest.raises(LmechInputError, match=field):
        lmech.check("lazy-rich", overrides=overrides)


def test_symmetric_init_gives_exactly_zero_output_and_chance_alignment():
    xt, y = lazy_rich.dataset(0, 0, 50, -0.5)
    a, w = lazy_rich.initial_params(0, 0, 200)
    for alpha in (0.1, 30.0):
        assert torch.equal(lazy_rich.student(a, w, xt, alpha), torch.zeros(50, dtype=torch.float64))
    assert y.min() >= 0 and y.std() > 0
    # the aligned mass of many isotropic neurons approaches the chance level 3 (1 - cos 15 deg) / 2
    teacher = lazy_rich.teacher(-0.5)
    a, w = lazy_rich.initial_params(1, 0, 200000)
    assert lazy_rich.aligned_mass(a, w, teacher) == pytest.approx(lazy_rich.chance_level(), abs=0.004)
    assert lazy_rich.chance_level() == pytest.approx(1.5 * (1 - math.cos(math.radians(15))))


def test_aligned_mass_counts_neurons_on_teacher_directions_only():
    teacher = lazy_rich.teacher(-0.5)  # |w*_k| = sqrt(1.25) each
    on = teacher * torch.tensor([[2.0], [0.5], [1.0]], dtype=torch.float64)  # a positive scale keeps the direction
    turn = math.radians(20)  # the input part turned by 20 deg: 17.9 deg off in 3D, outside the 15 deg cone
    rot = torch.tensor(
        [[math.cos(turn), -math.sin(turn), 0], [math.sin(turn), math.cos(turn), 0], [0, 0, 1]], dtype=torch.float64
    )
    a = torch.tensor([1.0, -2.0, 1.0, 1.0, 1.0, 1.0], dtype=torch.float64)
    w = torch.cat([on, teacher @ rot.T])
    # masses |a_j| |w_j| in units of sqrt(1.25): aligned 2 + 1 + 1 (the sign of a does not matter), off 1 + 1 + 1
    assert lazy_rich.aligned_mass(a, w, teacher) == pytest.approx(4 / 7)
