"""Modular addition: split sizes, disjointness, labels, determinism per seed, and input validation."""

import pytest
import torch

from lmech.core import LmechInputError, generator
from lmech.data.modular import is_prime, modular_addition, one_hot_pairs


@pytest.mark.parametrize(("p", "fraction"), [(2, 0.5), (7, 0.3), (23, 0.4), (31, 0.5), (12, 0.9)])
def test_split_covers_every_pair_once_with_the_requested_size(p, fraction):
    task = modular_addition(p, fraction, gen=generator(0))
    assert len(task.train) == round(fraction * p * p) and len(task.train) + len(task.test) == p * p
    codes_train = set((task.train[:, 0] * p + task.train[:, 1]).tolist())
    codes_test = set((task.test[:, 0] * p + task.test[:, 1]).tolist())
    assert not codes_train & codes_test  # disjoint
    assert codes_train | codes_test == set(range(p * p))  # together every pair, each once
    assert len(codes_train) == len(task.train) and len(codes_test) == len(task.test)
    assert task.fraction == pytest.approx(len(task.train) / p**2)


def test_labels_are_the_sum_mod_p():
    task = modular_addition(13, 0.5, gen=generator(1))
    for pairs, labels in ((task.train, task.y_train), (task.test, task.y_test)):
        for (a, b), c in zip(pairs.tolist(), labels.tolist(), strict=True):
            assert c == (a + b) % 13 and 0 <= c < 13


def test_split_is_deterministic_per_seed_and_differs_across_seeds():
    t0, t0b, t1 = (modular_addition(23, 0.4, gen=generator(s)) for s in (0, 0, 1))
    assert torch.equal(t0.train, t0b.train) and torch.equal(t0.test, t0b.test)
    assert not torch.equal(t0.train, t1.train)


def test_one_hot_pairs_concatenates_the_two_tokens():
    pairs = torch.tensor([[0, 2], [4, 4]])
    x = one_hot_pairs(pairs, 5)
    assert x.shape == (2, 10) and x.dtype == torch.float32
    assert x.sum(1).tolist() == [2.0, 2.0]
    assert x[0, 0] == 1 and x[0, 5 + 2] == 1 and x[1, 4] == 1 and x[1, 9] == 1


def test_is_prime():
    assert [n for n in range(30) if is_prime(n)] == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]
    assert modular_addition(31, 0.5, gen=generator(0)).prime
    assert not modular_addition(12, 0.5, gen=generator(0)).prime


@pytest.mark.parametrize(
    ("p", "fraction", "field"),
    [
        (1, 0.5, "p"),
        (0, 0.5, "p"),
        (5.0, 0.5, "p"),
        (True, 0.5, "p"),
        (7, 0.0, "fraction"),
        (7, 1.0, "fraction"),
        (7, -0.2, "fraction"),
        (2, 0.1, "fraction"),
        (2, 0.95, "fraction"),
    ],
)
def test_bad_input_names_the_field(p, fraction, field):
    with pytest.raises(LmechInputError, match=f"^{field} must"):
        modular_addition(p, fraction, gen=generator(0))
