"""Datasets as tensors: synthetic teachers, scikit-learn's bundled digits, label corruption. Nothing downloads."""

from lmech.core import random_orthogonal
from lmech.data.base import Dataset, generator, one_hot
from lmech.data.corruption import corrupt_dataset, corrupt_labels
from lmech.data.digits import digits
from lmech.data.synthetic import linear_teacher, mlp_teacher, whiten

__all__ = [
    "Dataset",
    "corrupt_dataset",
    "corrupt_labels",
    "digits",
    "generator",
    "linear_teacher",
    "mlp_teacher",
    "one_hot",
    "random_orthogonal",
    "whiten",
]
