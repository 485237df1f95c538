"""Datasets as tensors: synthetic teachers, scikit-learn's bundled digits, label corruption,
modular arithmetic, the standard library's source as a character corpus. Nothing downloads."""

from lmech.core import random_orthogonal
from lmech.data.base import Dataset, generator, one_hot
from lmech.data.corruption import corrupt_dataset, corrupt_labels
from lmech.data.digits import digits
from lmech.data.modular import ModularTask, modular_addition
from lmech.data.stdlib_text import TextCorpus, lm_batches, stdlib_corpus
from lmech.data.synthetic import linear_teacher, mlp_teacher, whiten

__all__ = [
    "Dataset",
    "ModularTask",
    "TextCorpus",
    "corrupt_dataset",
    "corrupt_labels",
    "digits",
    "generator",
    "linear_teacher",
    "lm_batches",
    "mlp_teacher",
    "modular_addition",
    "one_hot",
    "random_orthogonal",
    "stdlib_corpus",
    "whiten",
]
