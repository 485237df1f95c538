"""Multitask sparse parity (Michaud, Liu, Girit & Tegmark 2023, sec. 3): discrete subtasks ("quanta") drawn with
Zipf frequencies.

An input is a one-hot *control* block of ``n_tasks`` bits that names subtask i, followed by ``n_bits`` task bits,
uniform on {0, 1}. Subtask i's label is the parity of a fixed random subset S_i of ``k`` task bits, so the subtasks
share their inputs but no lower-order statistic reveals any label (every parity of k >= 1 bits is uncorrelated with
every function of fewer of its bits). Subtask i is drawn with probability p_i ∝ (i + 1)^-(alpha + 1), the paper's
convention (its QH3: quanta frequencies p_k ∝ k^-(alpha+1), which makes the loss scale as N^-alpha in parameters).
Samples are drawn online: a sampler, not a fixed dataset.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lmech.core import LmechInputError

__all__ = ["MultitaskParity", "multitask_sparse_parity", "zipf_probabilities"]


def zipf_probabilities(n_tasks: int, alpha: float) -> torch.Tensor:
    """(n_tasks,) float64: p_i = (i + 1)^-(alpha + 1) / sum_j (j + 1)^-(alpha + 1), i = 0 .. n_tasks - 1."""
    if not (isinstance(n_tasks, int) and n_tasks >= 1):
        raise LmechInputError(f"n_tasks must be a positive integer; got {n_tasks!r}")
    if not alpha >= 0:
        raise LmechInputError(f"alpha must be >= 0 (frequencies ∝ (i+1)^-(alpha+1)); got {alpha!r}")
    weights = torch.arange(1, n_tasks + 1, dtype=torch.float64) ** -(alpha + 1.0)
    return weights / weights.sum()


@dataclass(frozen=True)
class MultitaskParity:
    """The task: ``subsets`` (n_tasks, k) holds each subtask's bit indices (into the task bits), ``probabilities``
    (n_tasks,) the subtask frequencies. Inputs are float (n_tasks + n_bits,) vectors, labels class indices {0, 1}."""

    subsets: torch.Tensor  # (n_tasks, k) int64
    probabilities: torch.Tensor  # (n_tasks,) float64
    n_bits: int

    @property
    def n_tasks(self) -> int:
        return self.subsets.shape[0]

    @property
    def k(self) -> int:
        return self.subsets.shape[1]

    @property
    def dim(self) -> int:
        return self.n_tasks + self.n_bits

    def encode(self, task: torch.Tensor, bits: torch.Tensor, dtype: torch.dtype = torch.float32):
        """(x, y) for subtask indices ``task`` (m,) and task bits ``bits`` (m, n_bits) in {0, 1}."""
        y = bits.gather(1, self.subsets[task]).sum(1) % 2  # (m,) parity of the subtask's k bits
        control = torch.nn.functional.one_hot(task, self.n_tasks)  # (m, n_tasks)
        return torch.cat([control, bits], 1).to(dtype), y

    def sample(self, m: int, gen: torch.Generator, dtype: torch.dtype = torch.float32):
        """m fresh samples of the mixture: (x (m, dim), y (m,), task (m,))."""
        task = torch.multinomial(self.probabilities, m, replacement=True, generator=gen)  # (m,)
        bits = torch.randint(0, 2, (m, self.n_bits), generator=gen)
        x, y = self.encode(task, bits, dtype)
        return x, y, task

    def sample_subtask(self, task: int, m: int, gen: torch.Generator, dtype: torch.dtype = torch.float32):
        """m fresh samples of subtask ``task`` alone: (x (m, dim), y (m,))."""
        if not 0 <= task < self.n_tasks:
            raise LmechInputError(f"task must be in [0, {self.n_tasks}); got {task!r}")
        bits = torch.randint(0, 2, (m, self.n_bits), generator=gen)
        return self.encode(torch.full((m,), task, dtype=torch.long), bits, dtype)


def multitask_sparse_parity(n_tasks: int, n_bits: int, k: int, alpha: float, *, gen: torch.Generator):
    """A :class:`MultitaskParity` with subsets S_i drawn uniformly (k distinct bits each, independently per
    subtask) from ``gen`` and Zipf frequencies p_i ∝ (i + 1)^-(alpha + 1).

    Reference: Michaud et al. 2023 'The quantization model of neural scaling' (NeurIPS), sec. 3 (there n_tasks = 500,
    n_bits = 100, k = 3)."""
    if not (isinstance(n_bits, int) and n_bits >= 1):
        raise LmechInputError(f"n_bits must be a positive integer; got {n_bits!r}")
    if not (isinstance(k, int) and 1 <= k <= n_bits):
        raise LmechInputError(f"k must be an integer in [1, n_bits={n_bits}] (bits per parity); got {k!r}")
    probabilities = zipf_probabilities(n_tasks, alpha)
    subsets = torch.stack([torch.randperm(n_bits, generator=gen)[:k] for _ in range(n_tasks)])
    return MultitaskParity(subsets, probabilities, n_bits)
