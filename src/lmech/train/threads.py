"""Thread count for a block of torch work.

Tiny models are dominated by per-op overhead, and on a 2-core machine a second intra-op
thread only adds synchronisation (and, when another process is busy, OpenMP spin-waits that
made a deep-linear step 70x slower in a measurement here). Laws of small networks run with one
thread; the previous setting is restored afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` intra-op threads (None: leave as is)."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
