"""critical-batch in quick mode (seed 0), its S(B) fitter, the digits MLP's hand gradients and plumbing, and its
config validation."""

import numpy as np
import pytest
import torch

import lmech
from lmech.config import make_config
from lmech.core import LmechInputError
from lmech.laws import critical_batch
from lmech.laws.batch_tasks import (
    _sgd_step,
    digits_task,
    fit_hyperbola,
    mlp_init,
    mlp_per_example_gradients,
    mlp_sgd_path,
    mlp_sgd_steps_to_target,
)
from lmech.observables import per_example_gradients


@pytest.mark.slow
def test_critical_batch_quick_linear_holds_where_the_greedy_step_is_stable():
    """Condition number 2 (training Hessian 2.7; seed 0, ~4 s): S(B) is a hyperbola (max |log residual| 0.063) and
    B_crit 320 / B_simple 284 (median over B) = 1.13."""
    v = lmech.check("critical-batch", overrides={"tasks": ["linear"]})
    fit, ratio = v.checks
    assert fit.holds and fit.measured < 0.12  # measured 0.063
    assert 250 < ratio.measured < 400  # B_crit, measured 320
    assert ratio.holds and 0.8 < ratio.measured / ratio.predicted < 1.6  # measured 1.13
    greedy = float(v.regime.split("greedy step |G|^2 / G^T H G = ")[1].split(" ")[0])
    assert greedy < 2  # measured 1.66: the greedy step is stable, as the derivation assumes


@pytest.mark.slow
def test_critical_batch_linear_fails_where_stability_caps_the_lr():
    """Condition number 100 (lambda_i = 1/i), target 0.05: the hyperbola holds; B_simple at the target overstates
    B_crit (measured B_crit 29.7, B_simple 374 as the median over B, 1321 at B = 1024 alone): the failure the law
    reports. The stability-corrected scale tr(Sigma) / (2 lambda_max L) = 25 tracks B_crit (ratio 1.19)."""
    v = lmech.check("critical-batch", overrides={"tasks": ["linear"], "condition": 100, "target": 0.05})
    fit, ratio = v.checks
    assert fit.holds and fit.measured < 0.22  # measured 0.189
    b_simple, b_crit = ratio.predicted, ratio.measured
    assert 20 < b_crit < 45  # measured 29.7
    assert not ratio.holds and b_crit / b_simple < 0.15  # measured 0.0796
    assert not v.holds
    stable = float(v.regime.split("(B_crit / it ")[1].split(")")[0])
    assert 0.5 < stable < 2  # measured 1.19
    greedy = float(v.regime.split("greedy step |G|^2 / G^T H G = ")[1].split(" ")[0])
    assert greedy > 2  # measured 5.81: beyond the stability limit


@pytest.mark.slow
def test_critical_batch_quick_digits_holds():
    """Digits MLP at 0.1 nats (seed 0, ~30 s): S(B) is a hyperbola (measured max |log residual| 0.178, B_crit 214) and
    B_crit / B_simple (median over B: 543) = 0.394, inside [1/3, 3] but with little margin. The largest batch's
    B_simple alone (935) would give 0.229 and fail: the regime text records it."""
    v = lmech.check("critical-batch", overrides={"tasks": ["digits"]})
    fit, ratio = v.checks
    assert fit.holds and fit.measured < 0.22  # measured 0.178
    assert 150 < ratio.measured < 300  # B_crit, measured 214
    assert ratio.holds and 0.35 < ratio.measured / ratio.predicted < 0.6  # measured 0.394
    assert v.holds
    alone = float(v.regime.split("largest batch alone (B = 1024): B_simple ")[1].split(",")[0])
    assert ratio.measured / alone < 1 / 3  # measured 935: the single-run estimate fails


def test_fit_hyperbola_recovers_exact_and_noisy_data():
    batch = np.array([1, 2, 4, 8, 16, 32, 64, 128, 256], float)
    exact = 40.0 * (1 + 25.0 / batch)
    s_min, b_crit, resid, _ = fit_hyperbola(batch, exact)
    assert s_min == pytest.approx(40.0, rel=1e-6) and b_crit == pytest.approx(25.0, rel=1e-6)
    assert np.abs(resid).max() < 1e-8
    rng = np.random.default_rng(0)  # 5% log-normal scatter, as from seed noise: B_crit within ~4 standard errors
    s_min, b_crit, _, cov = fit_hyperbola(batch, exact * np.exp(0.05 * rng.standard_normal(len(batch))))
    assert abs(np.log(b_crit / 25.0)) < 4 * np.sqrt(cov[1, 1])


def test_critical_batch_needs_six_batch_sizes():
    with pytest.raises(LmechInputError, match="at least 6 distinct"):
        make_config(critical_batch.LAW, overrides={"batches": [1, 4, 16, 64, 256]})


def test_critical_batch_rejects_a_condition_number_below_one():
    with pytest.raises(LmechInputError, match="condition"):
        make_config(critical_batch.LAW, overrides={"condition": 0.5})


def test_critical_batch_rejects_unknown_task_and_activation():
    with pytest.raises(LmechInputError, match="tasks must be among linear, digits"):
        make_config(critical_batch.LAW, overrides={"tasks": ["cifar"]})
    with pytest.raises(LmechInputError, match="activation must be one of tanh, relu"):
        make_config(critical_batch.LAW, overrides={"activation": "gelu"})


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_digits_hand_gradients_match_autograd(activation):
    """Oracle: the hand backward pass (per example, and the stacked SGD step) against vmap(grad) / autograd."""
    task = digits_task(8, 2, activation)
    params = [p[0].double() for p in mlp_init(task, 1, torch.Generator().manual_seed(3))]
    params = [
        p + 0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(i), dtype=p.dtype)
        for i, p in enumerate(params)
    ]  # fmt: skip (nonzero biases)
    names = [f"p{i}" for i in range(len(params))]
    act = torch.tanh if activation == "tanh" else torch.relu

    def fn(p, x):
        h = act(x @ p["p0"].T + p["p1"])
        h = act(h @ p["p2"].T + p["p3"])
        return h @ p["p4"].T + p["p5"]

    x, y = task.x[:50].double(), task.y[:50]
    ref = per_example_gradients(fn, dict(zip(names, params, strict=True)), x, y,
                                lambda out, yi: torch.nn.functional.cross_entropy(out[None], yi[None]))  # fmt: skip
    small = type(task)(x, y, task.width, task.depth, task.activation)
    assert torch.allclose(mlp_per_example_gradients(small, params), ref, atol=1e-12)
    # one SGD step at lr 1 on a minibatch of 5 = params - mean of those 5 gradients
    stacked = [p[None, None] for p in params]  # (S=1, K=1, ...)
    new = _sgd_step(small, stacked, torch.ones(1, dtype=torch.float64), x[None, None, :5], y[None, :5])
    mean = ref[:5].mean(0)
    step = torch.cat([(p - q[0, 0]).flatten() for p, q in zip(params, new, strict=True)])
    assert torch.allclose(step, mean, atol=1e-12)


def test_digits_sweep_and_replay_agree():
    """The stacked sweep (lr grid x seeds) and the one-member replay of seed 0 see the same initialisation and
    minibatches: checked every step (early steps), the replay's first hit is the sweep's interpolated hit rounded
    up."""
    task = digits_task(16, 1, "tanh")
    lrs = torch.tensor([0.5, 2.0])
    hits = mlp_sgd_steps_to_target(task, 64, lrs, 2, 0.5, 200, seed=0, ratio=1.05)
    finite = torch.isfinite(hits[0]).nonzero().flatten().tolist()  # an lr that cannot win is stopped early (inf)
    assert finite and hits[0, finite].max() < 20  # the loss is checked at every step below t = 20
    for k in finite:
        lr = float(lrs[k])
        first, snaps = mlp_sgd_path(task, 64, lr, 2, 0, 200, 0.5)
        assert first == int(np.ceil(float(hits[0, k])))
        assert set(snaps) == {first}


def test_digits_task_plumbing():
    """A tiny digits config end to end: 6 batch sizes, 3 lrs, 2 seeds, an easy target; every number is reported."""
    overrides = {"tasks": ["digits"], "batches": [8, 16, 32, 64, 128, 256], "digits_lrs": 3, "digits_seeds": 2,
                 "width": 16, "loss_target": 0.5, "bootstrap": 20}  # fmt: skip
    v = lmech.check("critical-batch", overrides=overrides)
    fit, ratio = v.checks
    assert fit.name.startswith("digits: S(B) fits") and ratio.name.startswith("digits: B_crit")
    assert np.isfinite(fit.measured) and ratio.predicted > 0 and ratio.measured > 0
    for text in ("S_min", "B_simple along that run", "median", "replay first-hit steps", "B_crit / B_noise"):
        assert text in v.regime
