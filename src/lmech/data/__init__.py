"""Datasets as tensors: synthetic teachers and scikit-learn's bundled digits. Nothing downloads."""

from lmech.core import random_orthogonal
from lmech.data.base import Dataset, generator, one_hot
from lmech.data.digits import digits
from lmech.data.synthetic import linear_teacher, mlp_teacher, whiten

__all__ = ["Dataset", "digits", "generator", "linear_teacher", "mlp_teacher", "one_hot", "random_orthogonal", "whiten"]
