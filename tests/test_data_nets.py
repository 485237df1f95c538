"""Datasets and network builders."""

import torch

from lmech.data import digits, generator, linear_teacher, mlp_teacher, one_hot
from lmech.nets import MLP, align_to_teacher, deep_linear, ensemble, functional


def test_linear_teacher_is_exactly_whitened_with_the_chosen_spectrum():
    data = linear_teacher(6, 5, [3.0, 2.0, 0.5], 40, gen=generator(0), dtype=torch.float64, n_test=10)
    torch.testing.assert_close(data.x.T @ data.x / 40, torch.eye(6, dtype=torch.float64), rtol=0, atol=1e-12)
    torch.testing.assert_close(
        torch.linalg.svdvals(data.info["teacher"])[:3], torch.tensor([3.0, 2.0, 0.5], dtype=torch.float64)
    )
    torch.testing.assert_close(data.y, data.x @ data.info["teacher"].T)
    assert data.x_test.shape == (10, 6)


def test_synthetic_data_is_seeded():
    a, b = mlp_teacher(5, 20, gen=generator(3)), mlp_teacher(5, 20, gen=generator(3))
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert abs(float(a.y.std()) - 1.0) < 1e-5


def test_digits_split_and_standardisation():
    data = digits()
    assert data.x.shape == (1347, 64) and data.x_test.shape == (450, 64)
    assert set(data.y.tolist()) == set(range(10))
    assert torch.allclose(data.x.mean(0), torch.zeros(64), atol=1e-5)
    assert torch.equal(digits().x_test, data.x_test)  # fixed split
    assert one_hot(data.y[:3], 10).sum() == 3


def test_functional_form_equals_module():
    net = MLP(6, 12, 2, 3, activation_name="tanh", gen=generator(0), bias_scale=0.1)
    fn, params = functional(net)
    x = torch.randn(5, 6, generator=generator(1))
    torch.testing.assert_close(fn(params, x), net(x))


def test_ensemble_stacks_members():
    nets = [deep_linear(3, 4, 2, 2, init_scale=0.1, gen=generator(i)) for i in range(4)]
    _fn, stacked = ensemble(nets)
    assert stacked["0.weight"].shape == (4, 4, 3)
    torch.testing.assert_close(stacked["1.weight"][2], nets[2][1].weight.detach())


def test_mlp_init_scale():
    net = MLP(400, 300, 1, 1, gen=generator(0), dtype=torch.float64)
    std = float(net.layers[0].weight.detach().std()) * 400**0.5
    # He init for ReLU: the std of 120k draws fluctuates by ~sqrt(1/2n) = 0.2% relative, so 0.02 is ~7 sigma
    assert abs(std - 2**0.5) < 0.02


def test_aligned_init_end_to_end_map():
    data = linear_teacher(5, 5, [2.0, 1.0], 20, gen=generator(0), dtype=torch.float64)
    u, v = data.info["U"], data.info["V"]
    net = align_to_teacher(
        deep_linear(5, 6, 5, 3, init_scale=0.1, gen=generator(1), dtype=torch.float64), u, v, 0.5, generator(2)
    )
    w = net[2].weight @ net[1].weight @ net[0].weight
    torch.testing.assert_close(w, 0.125 * u @ v.T)


def test_random_streams_are_independent_and_reproducible():
    from lmech.core import DATA, INIT

    a = torch.randn(1000, generator=generator(0, DATA))
    b = torch.randn(1000, generator=generator(0, INIT, 0))
    assert torch.equal(a, torch.randn(1000, generator=generator(0, DATA)))
    # independent streams: the sample correlation of 1000 pairs is ~N(0, 1/1000); 5 sigma = 0.16
    assert abs(float(torch.corrcoef(torch.stack([a, b]))[0, 1])) < 0.16
    assert not torch.equal(b, torch.randn(1000, generator=generator(0, INIT, 1)))
