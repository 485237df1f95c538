"""Training loops against exact references: least squares, per-member gradients, torch's Adam."""

import math

import pytest
import torch
from torch import nn

from lmech.core import LmechInputError
from lmech.data import generator, mlp_teacher
from lmech.nets import MLP, ensemble, functional, member
from lmech.train import LOSSES, OPTIMIZERS, adam, gd, gradients, mlp_gradients, mse, record_steps, sgd, train


def test_gd_on_linear_regression_reaches_least_squares():
    gen = generator(0)
    x = torch.randn(64, 5, generator=gen, dtype=torch.float64)
    y = x @ torch.randn(5, 2, generator=gen, dtype=torch.float64) + 0.1 * torch.randn(
        64, 2, generator=gen, dtype=torch.float64
    )
    net = nn.Linear(5, 2, bias=False, dtype=torch.float64)
    fn, params = functional(net)
    out = train(fn, params, x, y, loss=mse, optimizer=gd(0.5), steps=400)
    exact = torch.linalg.lstsq(x, y).solution.T
    torch.testing.assert_close(out.params["weight"], exact, rtol=1e-9, atol=1e-9)


def test_ensemble_gradients_equal_each_members_own():
    data = mlp_teacher(4, 32, gen=generator(0), dtype=torch.float64)
    nets = [MLP(4, 16, 2, 1, gen=generator(i), dtype=torch.float64) for i in range(3)]
    fn, stacked = ensemble(nets)
    grads, losses = gradients(fn, mse, ensemble=True)(stacked, data.x, data.y)
    for i in range(3):
        g, loss = gradients(fn, mse)(member(stacked, i), data.x, data.y)
        assert float(losses[i]) == pytest.approx(float(loss), rel=1e-12)
        for k in g:
            torch.testing.assert_close(grads[k][i], g[k], rtol=1e-10, atol=1e-12)


def test_ensemble_training_equals_separate_training():
    data = mlp_teacher(4, 32, gen=generator(0))
    nets = [MLP(4, 16, 1, 1, gen=generator(i)) for i in range(2)]
    fn, stacked = ensemble(nets)
    together = train(fn, stacked, data.x, data.y, loss=mse, optimizer=sgd(0.05, momentum=0.9), steps=50, ensemble=True)
    for i, net in enumerate(nets):
        f1, p1 = functional(net)
        alone = train(f1, p1, data.x, data.y, loss=mse, optimizer=sgd(0.05, momentum=0.9), steps=50)
        for k in p1:
            # float32: batched and single matmuls round differently (~1e-7 per op), over 50 momentum steps
            torch.testing.assert_close(together.params[k][i], alone.params[k], rtol=1e-5, atol=1e-6)


def test_adam_matches_torch_optim_adam():
    data = mlp_teacher(4, 32, gen=generator(0), dtype=torch.float64)
    net = MLP(4, 8, 1, 1, gen=generator(1), dtype=torch.float64)
    fn, params = functional(net)
    ours = train(fn, params, data.x, data.y, loss=mse, optimizer=adam(0.01), steps=30).params
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(30):
        opt.zero_grad()
        mse(net(data.x), data.y).backward()
        opt.step()
    for k, v in net.named_parameters():
        torch.testing.assert_close(ours[k], v.detach(), rtol=1e-9, atol=1e-10)


def test_minibatch_sgd_is_seeded_and_learns():
    data = mlp_teacher(4, 256, gen=generator(0))
    runs = []
    for _ in range(2):
        fn, params = functional(MLP(4, 32, 1, 1, gen=generator(1)))
        runs.append(
            train(
                fn,
                params,
                data.x,
                data.y,
                loss=mse,
                optimizer=sgd(0.05),
                steps=300,
                batch_size=32,
                gen=generator(7),
                record=record_steps(300, 5),
            )
        )
    first = [r.value for r in runs[0].members[0].rows if r.name == "loss"]
    assert first[-1] < 0.5 * first[0]
    assert runs[0].members[0].rows == runs[1].members[0].rows


def test_divergence_is_an_outcome_not_an_exception():
    data = mlp_teacher(4, 32, gen=generator(0))
    nets = [MLP(4, 16, 1, 1, gen=generator(i)) for i in range(2)]
    fn, stacked = ensemble(nets)
    out = train(
        fn, stacked, data.x, data.y, loss=mse, optimizer=gd(1e6), steps=100, ensemble=True, record=record_steps(100, 10)
    )
    assert [m.status for m in out.members] == ["diverged", "diverged"]
    assert all(m.diverged_step is not None and m.diverged_step <= 10 for m in out.members)
    assert out.steps < 100  # stopped once every member had diverged


def test_recorder_schedule():
    assert record_steps(10, 3) == [0, 5, 10]
    log = record_steps(1000, 10, "log")
    assert log[0] == 0 and log[-1] == 1000 and log[1] < 10
    with pytest.raises(ValueError):
        record_steps(10, 3, "cubic")


@pytest.mark.parametrize(
    "depth,activation,loss,bias",
    [
        (1, "relu", "mse", True),
        (2, "tanh", "cross_entropy", True),
        (3, "relu", "cross_entropy", False),
        (2, "linear", "mse", False),
    ],
)
def test_fused_mlp_gradients_equal_autograd(depth, activation, loss, bias):
    x = torch.randn(40, 7, generator=generator(0), dtype=torch.float64)
    if loss == "mse":
        y = torch.randn(40, 4, generator=generator(1), dtype=torch.float64)
    else:
        y = torch.randint(0, 4, (40,), generator=generator(1))
    nets = [
        MLP(
            7, 9, depth, 4, activation_name=activation, bias=bias, bias_scale=0.1, gen=generator(i), dtype=torch.float64
        )
        for i in range(3)
    ]
    fn, stacked = ensemble(nets)
    reference, ref_losses = gradients(fn, LOSSES[loss], ensemble=True)(stacked, x, y)
    fused, losses = mlp_gradients(depth, activation, loss)(stacked, x, y)
    assert sorted(fused) == sorted(reference)
    torch.testing.assert_close(losses, ref_losses, rtol=1e-12, atol=1e-14)
    for k in reference:
        torch.testing.assert_close(fused[k], reference[k], rtol=1e-10, atol=1e-13)


def test_fused_training_matches_autograd_training_with_minibatches():
    data = mlp_teacher(5, 96, gen=generator(0), dtype=torch.float64)
    nets = [MLP(5, 16, 2, 1, gen=generator(i), dtype=torch.float64) for i in range(4)]
    fn, stacked = ensemble(nets)
    common = dict(loss=mse, optimizer=sgd(0.05, momentum=0.5), steps=30, ensemble=True, batch_size=32)
    a = train(fn, stacked, data.x, data.y, gen=generator(3), **common)
    b = train(fn, stacked, data.x, data.y, gen=generator(3), grad_fn=mlp_gradients(2), **common)
    for k in a.params:
        torch.testing.assert_close(a.params[k], b.params[k], rtol=1e-9, atol=1e-12)


def test_fused_cross_entropy_takes_one_labelling_per_member():
    gen = torch.Generator().manual_seed(0)
    nets = [MLP(5, 7, 2, 3, gen=gen) for _ in range(4)]
    _, params = ensemble(nets)
    x, y = torch.randn(9, 5, generator=gen), torch.randint(0, 3, (4, 9), generator=gen)  # (E, n) labels
    fused, losses = mlp_gradients(2, "relu", "cross_entropy")(params, x, y)
    for e, net in enumerate(nets):
        f, p = functional(net)
        ref = torch.func.grad(lambda q, e=e, f=f: LOSSES["cross_entropy"](f(q, x), y[e]))(p)
        for k in p:
            assert torch.allclose(fused[k][e], ref[k], atol=1e-6)
        assert losses[e] == pytest.approx(float(LOSSES["cross_entropy"](f(p, x), y[e])), rel=1e-6)


def test_fused_rejects_what_it_does_not_implement():
    with pytest.raises(LmechInputError, match="activation relu, tanh or linear"):
        mlp_gradients(2, "gelu")


def test_adam_with_per_parameter_and_per_member_rates_equals_separate_adams():
    gen = torch.Generator().manual_seed(0)
    params = {"a": torch.randn(3, 4, generator=gen), "b": torch.randn(3, 2, generator=gen)}
    grads = [{k: torch.randn(v.shape, generator=gen) for k, v in params.items()} for _ in range(3)]
    member_lr = torch.tensor([0.1, 0.01, 0.001]).view(3, 1)
    rates = {"a": member_lr, "b": 0.05}
    joint = adam(rates, weight_decay={"a": 0.1, "b": 0.0})
    p_joint, s_joint = params, joint.init(params)
    for g in grads:
        p_joint, s_joint = joint.update(g, s_joint, p_joint)
    assert math.isnan(joint.lr)
    for i, lr in enumerate(member_lr.flatten().tolist()):
        for name, r, wd in (("a", lr, 0.1), ("b", 0.05, 0.0)):
            single = adam(r, weight_decay=wd)
            p, s = {name: params[name][i]}, single.init({name: params[name][i]})
            for g in grads:
                p, s = single.update({name: g[name][i]}, s, p)
            assert torch.allclose(p_joint[name][i], p[name], rtol=1e-6, atol=1e-7)
    with pytest.raises(LmechInputError, match="weight_decay must be a non-negative number"):
        adam(0.1, weight_decay={"a": torch.tensor([0.1, -1.0])})


def test_optimizer_registry_and_bad_lr():
    assert set(OPTIMIZERS) == {"gd", "sgd", "adam"}
    for make in OPTIMIZERS.values():
        with pytest.raises(LmechInputError, match="lr must be a positive number"):
            make(0.0)


def test_the_last_step_costs_a_forward_pass_only():
    calls = []
    data = mlp_teacher(4, 16, gen=generator(0))
    fn, params = functional(MLP(4, 8, 1, 1, gen=generator(1)))
    counting = gradients(fn, mse)

    def grad_fn(p, x, y):
        calls.append(1)
        return counting(p, x, y)

    out = train(fn, params, data.x, data.y, loss=mse, optimizer=gd(0.1), steps=7, grad_fn=grad_fn, record=[0, 7])
    assert len(calls) == 7 and out.steps == 7
    assert [r.step for r in out.members[0].rows if r.name == "loss"] == [0, 7]
