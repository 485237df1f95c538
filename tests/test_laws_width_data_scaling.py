"""width-scaling and data-scaling: bad configs are refused naming the field; the convergence criterion and the shared
extrapolation verdict on synthetic curves; joint training of the widths and the in-place Adam, its averaging and
schedules against their references; the anisotropic task's inputs and target; the quick verdicts at seed 0.

width-scaling's quick run holds at seed 0 (~110 s), data-scaling's too (~40-60 s); see the module docstrings. The paired
(cluster-bootstrap) discrepancy and the Sobol test set are checked on synthetic and analytic references.
"""

import functools

import numpy as np
import pytest
import torch

from lmech.config import make_config
from lmech.core import LmechInputError
from lmech.laws import data_scaling, scaling_tasks, width_scaling
from lmech.report.figures import render
from lmech.store import RunStore
from lmech.sweep.executor import execute
from lmech.train import adam

pytestmark = pytest.mark.slow


def test_width_scaling_needs_six_widths():
    with pytest.raises(LmechInputError, match="widths"):
        make_config(width_scaling.LAW, overrides={"widths": [8, 16, 32, 64, 128]})


def test_width_scaling_needs_ascending_widths():
    with pytest.raises(LmechInputError, match="widths"):
        make_config(width_scaling.LAW, overrides={"widths": [8, 16, 32, 64, 256, 128]})


def test_data_scaling_needs_six_ascending_sizes():
    with pytest.raises(LmechInputError, match="sizes"):
        make_config(data_scaling.LAW, overrides={"sizes": [256, 512, 1024, 2048, 4096]})
    with pytest.raises(LmechInputError, match="sizes"):
        make_config(data_scaling.LAW, overrides={"sizes": [256, 512, 1024, 4096, 2048, 8192]})
    with pytest.raises(LmechInputError, match="validation"):
        make_config(data_scaling.LAW, overrides={"validation": 0})


def test_convergence_criterion_sees_a_drift_and_not_the_seeds_scatter():
    rng = np.random.default_rng(0)
    short = [0.010 * np.exp(0.002 * rng.standard_normal(64)) for _ in range(3)]
    drifted = [v.mean() * 0.97 * np.exp(0.002 * rng.standard_normal(64)) for v in short]
    change, se = scaling_tasks.relative_change(short, drifted)
    assert np.allclose(change, -0.03, atol=0.002) and np.all(se < 0.001)
    assert not width_scaling.CONVERGED(float(np.max(np.abs(change) - 2 * se))).holds  # a 3% drift: not converged
    same = [0.010 * np.exp(0.002 * rng.standard_normal(64)) for _ in range(3)]
    change, se = scaling_tasks.relative_change(short, same)
    assert np.all(np.abs(change) < 0.002) and width_scaling.CONVERGED(float(np.max(np.abs(change) - 2 * se))).holds
    # a scattered pair of schedules: the change is within its noise, which the criterion discounts
    noisy_short = [0.010 * np.exp(0.05 * rng.standard_normal(8))]
    noisy_long = [0.010 * np.exp(0.05 * rng.standard_normal(8))]
    change, se = scaling_tasks.relative_change(noisy_short, noisy_long)
    assert 0.01 < se[0] < 0.05


def _synthetic(x, e=0.01, a=2.0, alpha=0.6, noise=0.005, seeds=8):
    rng = np.random.default_rng(0)
    return [e + a * xi**-alpha * np.exp(noise * rng.standard_normal(seeds)) for xi in x]


def test_extrapolation_holds_on_a_true_power_law():
    x = np.array([81, 161, 321, 641, 1281, 2561], dtype=float)
    ex = scaling_tasks.extrapolate(x, _synthetic(x), bootstrap=50, level=0.95, seed=0)
    inside, relative = scaling_tasks.checks(ex)
    assert inside.holds and relative.holds, (inside, relative)
    assert 0.5 < ex.result.params["alpha"] < 0.7


def test_scaling_figure_draws_seed_means_over_their_single_seeds(tmp_path):
    """The left panel: every seed's loss as a faint "samples" tick, the seed means as "dots" drawn after them, in
    the same colour per group (fitted / held out); the figure renders."""
    x = np.array([81, 161, 321, 641, 1281, 2561], dtype=float)
    losses = _synthetic(x)
    ex = scaling_tasks.extrapolate(x, losses, bootstrap=20, level=0.95, seed=0)
    series = scaling_tasks.figure(ex, "synthetic", "x").panels[0].series
    samples = [s for s in series if s.style == "samples"]
    means = [s for s in series if s.style == "dots"]
    assert [len(s.y) for s in samples] == [4 * 8, 2 * 8] and [len(s.y) for s in means] == [4, 2]
    assert [s.color for s in samples] == [s.color for s in means]
    assert series.index(samples[0]) < series.index(means[0])
    assert means[1].y == pytest.approx([v.mean() for v in losses[4:]])
    assert render(scaling_tasks.figure(ex, "synthetic", "x"), tmp_path / "f.png").stat().st_size > 0


def test_extrapolation_fails_on_a_bent_curve():
    x = np.array([81, 161, 321, 641, 1281, 2561], dtype=float)
    losses = _synthetic(x)
    losses[-2:] = [v * 0.8 for v in losses[-2:]]  # the largest two 20% below the law
    _, relative = scaling_tasks.checks(scaling_tasks.extrapolate(x, losses, bootstrap=50, level=0.95, seed=0))
    assert not relative.holds and relative.error > 0.15


def test_paired_discrepancy_holds_on_a_true_law_and_sees_a_bend_through_correlated_members():
    """Members whose losses share one factor at every x (a member's 'easy' data helps it everywhere): resampling them
    as units cancels the factor in measured / predicted, so the interval is narrow, holds 0 on the law itself and
    excludes it where the largest two points sit 3% above the law (which the 16% member scatter alone would hide)."""
    x = np.array([2048, 3072, 4096, 6144, 8192, 12288], dtype=float)
    rng = np.random.default_rng(1)
    factor = np.exp(0.16 * rng.standard_normal(16))  # per member, shared across x
    law = 0.7 * x**-0.5
    losses = [li * factor * np.exp(0.005 * rng.standard_normal(16)) for li in law]
    ex = scaling_tasks.extrapolate(x, losses, bootstrap=100, level=0.95, seed=0, delta=1.0)
    _, band = scaling_tasks.paired_discrepancy(ex, bootstrap=100, level=0.95, seed=0)
    assert np.all(band.low < 0) and np.all(band.high > 0) and np.all(band.high - band.low < 0.02), band
    bent = losses[:4] + [v * 1.03 for v in losses[4:]]
    ex = scaling_tasks.extrapolate(x, bent, bootstrap=100, level=0.95, seed=0, delta=1.0)
    point, band = scaling_tasks.paired_discrepancy(ex, bootstrap=100, level=0.95, seed=0)
    assert np.all(band.low > 0), band  # 0 outside: the bend is resolved
    assert point == pytest.approx([0.03, 0.03], abs=0.01)
    assert 2 * ex.stderr[-1] / ex.mean[-1] > 0.03  # the unpaired mean alone: 3% is inside its 2 standard errors


def test_paired_discrepancy_needs_the_same_members_everywhere():
    x = np.array([81, 161, 321, 641, 1281, 2561], dtype=float)
    losses = _synthetic(x)
    losses[0] = losses[0][:5]
    with pytest.raises(ValueError, match="same members"):
        scaling_tasks.paired_discrepancy(scaling_tasks.extrapolate(x, losses, 20, 0.95, 0), 20, 0.95, 0)


def test_paired_interval_is_unknown_when_the_refits_are_refused(monkeypatch):
    """If the bootstrap's refits are refused (an exponent on its bound), the interval is NaN, not infinite (which
    would hold 0 whatever the data)."""
    x = np.array([81, 161, 321, 641, 1281, 2561], dtype=float)
    ex = scaling_tasks.extrapolate(x, _synthetic(x), bootstrap=20, level=0.95, seed=0)

    def refused(*_args, **_kwargs):
        raise scaling_tasks.FitError("alpha ended on its bound")

    monkeypatch.setattr(scaling_tasks, "fit", refused)
    point, band = scaling_tasks.paired_discrepancy(ex, 20, 0.95, 0)
    assert np.all(np.isfinite(point)) and np.all(np.isnan(band.low)) and np.all(np.isnan(band.high)), band


def test_sobol_test_set_is_gaussian_with_less_error_than_iid_points():
    """Scrambled Sobol points through the Gaussian quantile: E x_i^2 = 1 and E relu(x_1 + x_2) = 1/sqrt(pi) estimated
    to 0.5% and 0.2%, where 4096 i.i.d. points have standard errors 2.2% and 2.3%; deterministic in the seed."""
    x, y = scaling_tasks.sobol_test_set(3, 4, 4096, lambda z: torch.relu(z[:, 0] + z[:, 1]))
    assert x.shape == (4096, 4) and torch.isfinite(x).all()
    assert (x.double() ** 2).mean(0).sub(1).abs().max() < 0.005
    assert y.double().mean().item() == pytest.approx(1 / np.pi**0.5, rel=0.002)
    assert torch.equal(x, scaling_tasks.sobol_test_set(3, 4, 4096, lambda z: z[:, 0])[0])
    assert not torch.equal(x, scaling_tasks.sobol_test_set(4, 4, 4096, lambda z: z[:, 0])[0])


def test_joint_widths_train_each_student_as_alone():
    """Stacked students of several widths: the joint outputs, gradients and per-width losses equal each width's own
    (no parameter is shared, so one pass trains every width exactly as a separate ensemble would)."""
    widths, members, dim = [3, 5, 8], [0, 1], 4
    parts = [scaling_tasks.students(dim, w, members, seed=0) for w in widths]
    for q in parts:
        q["b1"] = q["b1"] + 0.3 * torch.randn_like(q["b1"])
        q["b2"] = q["b2"] + 0.1
    joint, sel = scaling_tasks.stack_widths(parts), scaling_tasks.readout_selection(widths)
    x, y = torch.randn(len(members), 32, dim), torch.randn(len(members), 32)
    _, _, out = scaling_tasks.joint_forward(joint, x, sel)
    grads = scaling_tasks.joint_gradients(joint, x, y, sel)
    start = 0
    for s, (w, q) in enumerate(zip(widths, parts, strict=True)):
        units = slice(start, start + w)
        own = scaling_tasks.gradients(q, x, y)
        torch.testing.assert_close(out[..., s], scaling_tasks.forward(q, x)[1])
        for k, block in {"w1": grads["w1"][:, units], "b1": grads["b1"][:, units], "w2": grads["w2"][:, units]}.items():
            torch.testing.assert_close(block, own[k])
        torch.testing.assert_close(grads["b2"][:, s], own["b2"])
        start += w
    x_test, y_test = torch.randn(100, dim), torch.randn(100)
    model = functools.partial(scaling_tasks.joint_forward, sel=sel)
    joint_loss = scaling_tasks.mean_squared_error(joint, x_test, y_test, chunk=30, model=model)
    for s, q in enumerate(parts):
        torch.testing.assert_close(joint_loss[:, s], scaling_tasks.mean_squared_error(q, x_test, y_test, chunk=30))


def test_in_place_adam_follows_the_functional_adam_and_its_schedule():
    """fit_ensemble's in-place step equals lmech.train.adam's update followed by the linear-decay interpolation."""
    widths, members = [3, 5], [0, 1, 2]
    start = scaling_tasks.stack_widths([scaling_tasks.students(4, w, members, seed=0) for w in widths])
    rates = scaling_tasks.stack_rates([{"w1": 0.01, "b1": 0.02, "w2": 0.01, "b2": 0.03}] * 2, widths)
    grad = functools.partial(scaling_tasks.joint_gradients, sel=scaling_tasks.readout_selection(widths))
    g = torch.Generator().manual_seed(0)
    data = [(torch.randn(3, 16, 4, generator=g), torch.randn(3, 16, generator=g)) for _ in range(50)]
    trained, _ = scaling_tasks.fit_ensemble(start, lambda t: data[t], 50, rates, grad_fn=grad)
    opt = adam(rates)
    p, state = dict(start), opt.init(start)
    for t in range(50):
        new, state = opt.update(grad(p, *data[t]), state, p)
        p = {k: v + (1 - t / 50) * (new[k] - v) for k, v in p.items()}
    for k in p:
        torch.testing.assert_close(trained[k], p[k], rtol=1e-5, atol=1e-6)
    assert not torch.equal(trained["w1"], start["w1"])  # trained a copy; the start is untouched


def test_averaged_fit_follows_a_reference_loop_with_the_inverse_sqrt_schedule():
    """fit_ensemble with ``average`` and ``inverse_sqrt``: the model is the windowed EMA of lmech.train.adam's iterates
    under the step-size multiplier (1 + t / tau)^-1/2."""
    members, tau, decay = [0, 1], 7.0, 0.8
    start = scaling_tasks.students(3, 5, members, seed=0)
    g = torch.Generator().manual_seed(1)
    data = [(torch.randn(2, 16, 3, generator=g), torch.randn(2, 16, generator=g)) for _ in range(40)]
    model, _ = scaling_tasks.fit_ensemble(
        start, lambda t: data[t], 40, 0.01, schedule=scaling_tasks.inverse_sqrt(tau), average=decay
    )
    opt = adam(dict.fromkeys(start, 0.01))
    p, state, avg = dict(start), opt.init(start), dict(start)
    for t in range(40):
        new, state = opt.update(scaling_tasks.gradients(p, *data[t]), state, p)
        p = {k: v + (1 + t / tau) ** -0.5 * (new[k] - v) for k, v in p.items()}
        w = max(1 - decay, 1 / (t + 1))
        avg = {k: v + w * (p[k] - v) for k, v in avg.items()}
    for k in p:
        torch.testing.assert_close(model[k], avg[k], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(model["w1"], p["w1"])  # the average, not the last iterate
    with pytest.raises(ValueError, match="average"):
        scaling_tasks.fit_ensemble(start, lambda t: data[t], 2, 0.01, average=1.0)


def test_an_inverse_sqrt_run_holds_its_shorter_runs():
    """With a schedule that ignores the run's length, the kept model at step S of a 2S-step run is the S-step run's
    (the free convergence check of data-scaling); with the linear decay it is not."""
    start = scaling_tasks.students(3, 5, [0, 1], seed=0)
    g = torch.Generator().manual_seed(2)
    data = [(torch.randn(2, 16, 3, generator=g), torch.randn(2, 16, generator=g)) for _ in range(40)]
    x_val, y_val = torch.randn(64, 3, generator=g), torch.randn(64, generator=g)

    def run(steps, schedule):
        seen = {}
        model, _ = scaling_tasks.fit_ensemble(
            start,
            lambda t: data[t],
            steps,
            0.05,
            lambda q: scaling_tasks.mean_squared_error(q, x_val, y_val),
            every=5,
            schedule=schedule,
            average=0.9,
            on_check=lambda t, kept: seen.update({t: {k: v.clone() for k, v in kept.items()}}),
        )
        return model, seen

    schedule = scaling_tasks.inverse_sqrt(10.0)
    short, _ = run(20, schedule)
    _, seen = run(40, schedule)
    assert sorted(seen) == list(range(5, 45, 5))
    for k in short:
        torch.testing.assert_close(seen[20][k], short[k])
    short, _ = run(20, scaling_tasks.linear_decay)
    _, seen = run(40, scaling_tasks.linear_decay)
    assert not torch.allclose(seen[20]["w1"], short["w1"])


def test_stable_then_decay_branches_are_the_runs_trained_alone():
    """stable_then_decay's runs of 12 and 24 steps (cooldown 25%) share their constant-step phase, and each equals a
    run of its own length trained alone by fit_ensemble under the schedule 1 until S - c, then 1 - (t - S + c) / c
    (the same steps and batches); shared phase: 24 - 6 + 3 + 6 = 27 steps, not 36."""
    widths, members = [3, 5], [0, 1]
    start = scaling_tasks.stack_widths([scaling_tasks.students(4, w, members, seed=0) for w in widths])
    grad = functools.partial(scaling_tasks.joint_gradients, sel=scaling_tasks.readout_selection(widths))
    g = torch.Generator().manual_seed(3)
    data = [(torch.randn(2, 16, 4, generator=g), torch.randn(2, 16, generator=g)) for _ in range(24)]
    asked = []

    def batches(t):
        asked.append(t)
        return data[t]

    long, short = scaling_tasks.stable_then_decay(start, batches, [24, 12], 0.02, 0.25, grad_fn=grad)
    assert len(asked) == 27 and asked[9:12] == [9, 10, 11] and asked[12:15] == [9, 10, 11]

    def alone(steps):
        c = round(0.25 * steps)
        schedule = lambda t, _s: 1.0 if t < steps - c else 1.0 - (t - steps + c) / c  # noqa: E731
        return scaling_tasks.fit_ensemble(start, lambda t: data[t], steps, 0.02, grad_fn=grad, schedule=schedule)[0]

    for trained, steps in [(short, 12), (long, 24)]:
        reference = alone(steps)
        for k in reference:
            torch.testing.assert_close(trained[k], reference[k], rtol=1e-6, atol=1e-7)
    assert not torch.allclose(short["w1"], long["w1"])
    with pytest.raises(ValueError, match="cooldown"):
        scaling_tasks.stable_then_decay(start, batches, [12, 24], 0.02, 0.0, grad_fn=grad)


def test_indexed_batches_depend_on_the_step_alone():
    """A step's minibatch is the same whichever steps were asked for before it (the branches revisit steps)."""
    x, y = torch.arange(40.0).reshape(20, 2), torch.arange(20.0)
    gens = [lambda k, m=m: torch.Generator().manual_seed(100 * m + k) for m in range(3)]
    forward = scaling_tasks.indexed_batches(x, y, gens, batch=4, block=5)
    first = [forward(t) for t in range(12)]
    again = scaling_tasks.indexed_batches(x, y, gens, batch=4, block=5)
    for t in [11, 3, 7, 3, 0]:
        xb, yb = again(t)
        assert xb.shape == (3, 4, 2) and torch.equal(xb, first[t][0]) and torch.equal(yb, first[t][1])
        assert torch.equal(xb[:, :, 0] / 2, yb)  # inputs and labels of the same samples
    assert not torch.equal(first[0][0][0], first[0][0][1])  # members draw their own samples


def test_data_scaling_run_lengths_grow_as_sqrt_d_on_whole_checks():
    lengths = [data_scaling.run_steps(d, 12288, 5000, 100) for d in [2048, 3072, 4096, 6144, 8192, 12288]]
    assert lengths == [2200, 2600, 3000, 3600, 4200, 5000]
    assert all(n % 200 == 0 for n in lengths)  # each run's half is a validation check
    assert data_scaling.run_steps(2048, 12288, 20, 100) == 200
    with pytest.raises(LmechInputError, match="noise"):
        make_config(data_scaling.LAW, overrides={"noise": 0.0})


def test_stacked_rates_broadcast_per_width():
    rates = [{"w1": 1.0, "b1": 2.0, "w2": 3.0, "b2": 4.0}, {"w1": 5.0, "b1": 6.0, "w2": 7.0, "b2": 8.0}]
    stacked = scaling_tasks.stack_rates(rates, [2, 3])
    assert stacked["w1"].shape == (1, 5, 1) and stacked["b2"].tolist() == [[4.0, 8.0]]
    assert stacked["w2"].tolist() == [[3.0, 3.0, 7.0, 7.0, 7.0]]


@pytest.fixture(scope="module")
def width_quick():
    cfg = make_config(width_scaling.LAW, seed=0)
    with RunStore() as store:
        records = execute(width_scaling.LAW, width_scaling.plan(cfg), store).records
    return width_scaling.evaluate(cfg, records)


def test_width_scaling_quick_holds_at_seed0(width_quick):
    """Seed 0 (quick, ~110 s on a 2-core AMD EPYC): converged (largest |change| - 2 se 0.44%), fit E 0.0095, alpha
    0.63, held-out widths 64 / 96 at +0.6% / +0.4% of the extrapolation, inside its intervals."""
    converged, inside, relative = width_quick.checks
    assert converged.name.startswith("converged") and converged.holds, converged
    assert inside.holds and relative.holds, (inside, relative)
    assert relative.error < 0.03, relative  # 0.6% here; seeds 0-3 span 0.4-3.6% (another BLAS may change the path)
    assert 0.015 < relative.measured[1] < 0.022  # width 96's loss, measured 0.0187
    titles = [p.title for p in width_quick.figure.panels]
    assert titles[0].startswith("test loss") and titles[1].startswith("loss above the fitted E")


@pytest.fixture(scope="module")
def data_quick():
    cfg = make_config(data_scaling.LAW, seed=0)
    with RunStore() as store:
        records = execute(data_scaling.LAW, data_scaling.plan(cfg), store).records
    return data_scaling.evaluate(cfg, records)


def test_data_scaling_quick_holds_at_seed0(data_quick):
    """Seed 0 (16 members, ~40-60 s on 2 cores): every D converged, held-out D 8192 / 12288 at -0.5% / -2.4% of the
    extrapolation, inside its intervals; the paired discrepancy is reported (0 inside [-4.4, +0.3]% at D 12288)."""
    converged, inside, relative = data_quick.checks
    assert converged.name.startswith("converged") and converged.holds, converged
    assert inside.holds and relative.holds, (inside, relative)
    assert relative.error == pytest.approx(0.024, abs=0.01)  # seeds 0-5: 1.0-3.0%, always below the prediction
    assert relative.measured[1] < relative.predicted[1]
    assert 0.033 < relative.measured[1] < 0.041  # D 12288's excess, measured 0.0368
    assert "reported, not judged: measured / predicted - 1" in data_quick.regime
    assert [p.title.split(" ")[0] for p in data_quick.figure.panels] == ["test", "loss"]


def test_input_scales_follow_the_power_law_spectrum_at_the_isotropic_norm():
    s = scaling_tasks.input_scales(32, 1.0).double()
    assert s.pow(2).sum().item() == pytest.approx(32.0, rel=1e-6)
    ratios = s.pow(2) / s[0] ** 2
    torch.testing.assert_close(ratios, torch.arange(1, 33, dtype=torch.float64) ** -1.0, rtol=1e-6, atol=0.0)
    assert torch.equal(scaling_tasks.input_scales(8, 0.0), torch.ones(8))


def test_anisotropic_teacher_is_standardised_on_its_inputs():
    """The target has mean 0 and variance 1 on the inputs it is trained on (its reference sample is scaled), and on
    isotropic inputs its default is unchanged (width-scaling's task)."""
    scales = scaling_tasks.input_scales(32, 1.0)
    target = scaling_tasks.teacher(7, 32, 256, 0.0, 1.0)
    y = target(torch.randn(40000, 32, generator=torch.Generator().manual_seed(1)) * scales).double()
    assert abs(y.mean().item()) < 0.03 and y.std().item() == pytest.approx(1.0, abs=0.03)
    x, y_test = scaling_tasks.sobol_test_set(7, 32, 1024, target, scales)
    z, _ = scaling_tasks.sobol_test_set(7, 32, 1024, lambda v: v[:, 0])
    torch.testing.assert_close(x, z * scales)
    torch.testing.assert_close(y_test, target(x))
    iso = torch.randn(5, 4)
    assert torch.equal(scaling_tasks.teacher(7, 4, 64, 0.0)(iso), scaling_tasks.teacher(7, 4, 64, 0.0, 0.0)(iso))
