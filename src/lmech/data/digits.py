"""scikit-learn's bundled 8x8 digits (1797 images, 10 classes): the first real dataset, no download."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from lmech.core import LmechInputError
from lmech.data.base import Dataset

SPLIT_SEED = 0  # the split is fixed: the same train/test images on every machine


@lru_cache(maxsize=4)
def _split(test_fraction: float) -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    return tuple(train_test_split(x, y, test_size=test_fraction, random_state=SPLIT_SEED, stratify=y))


def digits(test_fraction: float = 0.25, dtype: torch.dtype = torch.float32) -> Dataset:
    """Standardised digits (each pixel: train mean 0, train std 1; constant pixels left at 0) with
    a fixed stratified train/test split. ``y`` holds class indices 0..9."""
    if not 0.0 < test_fraction < 1.0:
        raise LmechInputError(f"test_fraction must be in (0, 1); got {test_fraction}")
    x_tr, x_te, y_tr, y_te = _split(float(test_fraction))
    mean, std = x_tr.mean(0), x_tr.std(0)
    std[std == 0] = 1.0

    def prep(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor((a - mean) / std, dtype=dtype)

    return Dataset(
        "digits",
        prep(x_tr),
        torch.as_tensor(y_tr),
        prep(x_te),
        torch.as_tensor(y_te),
        {"classes": 10, "test_fraction": test_fraction, "split_seed": SPLIT_SEED},
    )
