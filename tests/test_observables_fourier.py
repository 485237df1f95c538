"""The token-axis Fourier spectrum: batching, its chance level, and clear errors on degenerate embeddings."""

import pytest
import torch

from lmech.core import LmechInputError
from lmech.observables.fourier import chance_share, fourier_power, top_share


def test_batched_spectra_equal_one_at_a_time():
    e = torch.randn(3, 11, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    batched = fourier_power(e)
    assert batched.shape == (3, 5)
    for i in range(3):
        assert torch.allclose(batched[i], fourier_power(e[i]))
    assert torch.allclose(batched.sum(-1), torch.ones(3, dtype=torch.float64))


def test_chance_share_lies_between_equal_powers_and_one():
    share = chance_share(31, 32)
    assert 5 / 15 < share < 0.5  # equal powers give 1/3; the scatter of 64 numbers per frequency lifts the top five
    assert top_share(torch.full((15,), 1 / 15)) == pytest.approx(1 / 3)


@pytest.mark.parametrize("shape", [(10, 4), (2, 4), (7,)])
def test_even_or_tiny_p_is_a_clear_error(shape):
    with pytest.raises(LmechInputError, match="p odd"):
        fourier_power(torch.randn(*shape))


def test_a_constant_embedding_has_no_spectrum():
    with pytest.raises(LmechInputError, match="constant over tokens"):
        fourier_power(torch.ones(7, 3))
