"""Label corruption (Zhang et al. 2017): identity at p = 0, labels independent of the truth at p = 1, agreement
1 - p + p/C in between, nested across fractions, deterministic, and clear errors on bad input."""

import math

import pytest
import torch

from lmech.core import LmechInputError, generator
from lmech.data.base import Dataset
from lmech.data.corruption import corrupt_dataset, corrupt_labels, expected_agreement

C = 10


def _labels(n: int = 20000, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, C, (n,), generator=generator(seed))


def test_fraction_zero_is_the_identity():
    y = _labels(1000)
    out = corrupt_labels(y, 0.0, C, generator(1))
    assert torch.equal(out.labels, y) and not out.replaced.any()
    assert out.labels.dtype == y.dtype


def test_fraction_one_replaces_every_label_independently_of_the_truth():
    y = _labels()
    out = corrupt_labels(y, 1.0, C, generator(1))
    assert out.replaced.all()
    # agreement ~ 1/C; binomial standard error sqrt(0.1 * 0.9 / 20000) = 0.0021, tolerance 4 standard errors
    assert (out.labels == y).double().mean().item() == pytest.approx(1 / C, abs=4 * math.sqrt(0.09 / len(y)))
    # the new labels are uniform over classes and do not depend on the true class: P(new = j | true = i) ~ 1/C
    joint = torch.zeros(C, C)
    joint.index_put_((y, out.labels), torch.ones(len(y)), accumulate=True)
    conditional = joint / joint.sum(1, keepdim=True)  # (C, C); ~2000 labels per row, se ~0.0067
    assert (conditional - 1 / C).abs().max().item() < 5 * math.sqrt(0.09 / 2000)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_agreement_is_one_minus_p_plus_p_over_c(p):
    y = _labels()
    out = corrupt_labels(y, p, C, generator(2))
    expected = expected_agreement(p, C)
    assert expected == pytest.approx(1 - p + p / C)
    se = math.sqrt(expected * (1 - expected) / len(y))
    assert (out.labels == y).double().mean().item() == pytest.approx(expected, abs=4 * se)
    # the replaced fraction is Bernoulli(p); unreplaced labels are untouched
    assert out.replaced.double().mean().item() == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / len(y)))
    assert torch.equal(out.labels[~out.replaced], y[~out.replaced])


def test_deterministic_given_the_generator_and_nested_across_fractions():
    y = _labels(5000)
    a = corrupt_labels(y, 0.5, C, generator(3, 7))
    b = corrupt_labels(y, 0.5, C, generator(3, 7))
    assert torch.equal(a.labels, b.labels) and torch.equal(a.replaced, b.replaced)
    assert not torch.equal(a.labels, corrupt_labels(y, 0.5, C, generator(4, 7)).labels)
    # the same generator state at a larger fraction replaces a superset, with the same new classes
    big = corrupt_labels(y, 0.8, C, generator(3, 7))
    assert bool((big.replaced | ~a.replaced).all())
    assert torch.equal(big.labels[a.replaced], a.labels[a.replaced])


def test_corrupt_dataset_touches_training_labels_only():
    y, yt = _labels(300), _labels(100, seed=5)
    data = Dataset("toy", torch.zeros(300, 2), y, torch.zeros(100, 2), yt, {"classes": C})
    out = corrupt_dataset(data, 1.0, generator(0))
    assert torch.equal(out.y_test, yt) and out.x is data.x
    assert torch.equal(out.info["true_y"], y) and out.info["replaced"].all()
    assert out.info["label_corruption"] == 1.0 and data.info == {"classes": C}
    assert not torch.equal(out.y, y)


@pytest.mark.parametrize("bad", [-0.1, 1.5, math.nan, math.inf, "half"])
def test_bad_fraction_is_a_clear_input_error(bad):
    with pytest.raises(LmechInputError, match="fraction"):
        corrupt_labels(_labels(10), bad, C, generator(0))
    with pytest.raises(LmechInputError, match="fraction"):
        expected_agreement(bad, C)


def test_bad_labels_or_classes_are_clear_input_errors():
    with pytest.raises(LmechInputError, match="classes"):
        corrupt_labels(_labels(10), 0.5, 1, generator(0))
    with pytest.raises(LmechInputError, match="labels must lie"):
        corrupt_labels(torch.tensor([0, 10]), 0.5, C, generator(0))
    with pytest.raises(LmechInputError, match="1-d"):
        corrupt_labels(torch.zeros(2, 2, dtype=torch.long), 0.5, C, generator(0))
    data = Dataset("toy", torch.zeros(3, 2), torch.tensor([0, 1, 2]))  # no "classes" in info
    with pytest.raises(LmechInputError, match="classes"):
        corrupt_dataset(data, 0.5, generator(0))
