"""Label corruption: the randomization test of Zhang et al. 2017.

Zhang, Bengio, Hardt, Recht & Vinyals, "Understanding deep learning requires rethinking generalization" (ICLR 2017),
sec. 2: "partially corrupted labels: independently with probability p, the label of each image is corrupted as a
uniformly random class". The replacement is drawn from all C classes, so it may equal the true label: the expected
fraction of training labels that still agree with the truth is

    E[agreement] = (1 - p) + p / C,

and at p = 1 the labels are independent of the images (agreement 1/C). The authors' demo code
(github.com/pluskid/fitting-random-labels, ``cifar10_data.py``) does the same: a Bernoulli(p) mask, then a uniform
class for every masked label. Only training labels are corrupted; test labels stay true, so test accuracy measures
how much of the true rule the network still learns.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import NamedTuple

import torch

from lmech.core import LmechInputError
from lmech.data.base import Dataset

__all__ = ["Corruption", "corrupt_dataset", "corrupt_labels", "expected_agreement"]


class Corruption(NamedTuple):
    """Corrupted labels (n,) and the boolean mask (n,) of the labels that were replaced (a replacement may still
    equal the true class)."""

    labels: torch.Tensor
    replaced: torch.Tensor


def _check_fraction(fraction: float) -> float:
    try:
        p = float(fraction)
    except (TypeError, ValueError):
        p = math.nan
    if not (math.isfinite(p) and 0.0 <= p <= 1.0):
        raise LmechInputError(
            f"fraction (the probability that a training label is replaced) must be a number in [0, 1]; got {fraction!r}"
        )
    return p


def corrupt_labels(labels: torch.Tensor, fraction: float, classes: int, gen: torch.Generator) -> Corruption:
    """Replace each of ``labels`` (n,) independently with probability ``fraction`` by a class drawn uniformly from
    0..classes-1 (Zhang et al. 2017, sec. 2). Deterministic given ``gen``; the input is not modified."""
    p = _check_fraction(fraction)
    if not (isinstance(classes, int) and classes >= 2):
        raise LmechInputError(f"classes must be an integer >= 2; got {classes!r}")
    if labels.ndim != 1:
        raise LmechInputError(f"labels must be a 1-d tensor of class indices; got shape {tuple(labels.shape)}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= classes):
        low, high = int(labels.min()), int(labels.max())
        raise LmechInputError(f"labels must lie in 0..{classes - 1}; got values {low}..{high}")
    n = labels.shape[0]
    # Both draws are made at every fraction, so the mask and the replacement classes of one generator state are
    # nested across fractions: a label replaced at p is also replaced at every p' > p.
    u = torch.rand(n, generator=gen, dtype=torch.float64)  # (n,)
    random_classes = torch.randint(0, classes, (n,), generator=gen)  # (n,)
    replaced = u < p
    return Corruption(torch.where(replaced, random_classes.to(labels.dtype), labels), replaced)


def corrupt_dataset(data: Dataset, fraction: float, gen: torch.Generator, classes: int | None = None) -> Dataset:
    """``data`` with its training labels corrupted at ``fraction`` (test labels untouched); ``info`` records the
    fraction, the true training labels (``true_y``) and the mask of replaced labels (``replaced``)."""
    classes = int(data.info.get("classes", 0)) if classes is None else classes
    out = corrupt_labels(data.y, fraction, classes, gen)
    info = {**data.info, "label_corruption": float(fraction), "true_y": data.y, "replaced": out.replaced}
    return replace(data, y=out.labels, info=info)


def expected_agreement(fraction: float, classes: int) -> float:
    """E[fraction of corrupted labels equal to the true ones] = 1 - p + p / C."""
    p = _check_fraction(fraction)
    return 1.0 - p + p / classes
