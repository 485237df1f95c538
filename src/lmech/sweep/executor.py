"""Run a law's jobs through the store: reuse finished runs, compute the missing ones.

Jobs run serially or on a local process pool (``jobs > 1``). Each finished job is written
to the store as soon as it completes, all its runs in one transaction, so an interrupted
check loses only the jobs in flight and the next invocation completes the rest.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from lmech.core import Job, Law, LmechInputError, RunRecord, RunResult
from lmech.store import RunStore

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Execution:
    """The records of a plan (in plan order) and how many runs were reused or computed."""

    records: list[RunRecord]
    reused: int
    computed: int


def execute(
    law: Law, jobs: Sequence[Job], store: RunStore, *, n_jobs: int = 1, progress: Progress | None = None
) -> Execution:
    """Make sure every run in ``jobs`` is in ``store``; returns their records in plan order."""
    if n_jobs < 1:
        raise LmechInputError(f"jobs must be a positive integer; got {n_jobs}")
    specs = [spec for job in jobs for spec in job]
    done = store.find(spec.key for spec in specs)
    pending = [tuple(s for s in job if s.key not in done) for job in jobs]
    pending = [job for job in pending if job]
    total = sum(len(job) for job in pending)
    finished = 0

    def save(job: Job, results: list[RunResult], started: float) -> None:
        nonlocal finished
        if len(results) != len(job):
            raise RuntimeError(f"law {law.id} returned {len(results)} results for {len(job)} runs")
        store.record_job(list(zip(job, results, strict=True)), started)
        finished += len(job)
        if progress:
            progress(finished, total)

    if progress:
        progress(0, total)
    if n_jobs == 1 or len(pending) <= 1:
        for job in pending:
            started = time.time()
            save(job, law.execute([s.config for s in job]), started)
    else:
        _run_pool(law.id, pending, n_jobs, save)
    records = store.find(spec.key for spec in specs)
    return Execution([records[s.key] for s in specs], len(specs) - total, total)


def _run_pool(
    law_id: str, pending: list[Job], n_jobs: int, save: Callable[[Job, list[RunResult], float], None]
) -> None:
    threads = max(1, (os.cpu_count() or 1) // n_jobs)
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=n_jobs, mp_context=ctx, initializer=_init_worker, initargs=(threads,))
    futures: dict[Future, tuple[Job, float]] = {}
    try:
        for job in pending:
            futures[pool.submit(_run_job, law_id, [s.config for s in job])] = (job, time.time())
        remaining = set(futures)
        while remaining:
            complete, remaining = wait(remaining, return_when=FIRST_COMPLETED)
            for fut in complete:
                job, started = futures[fut]
                save(job, fut.result(), started)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _run_job(law_id: str, configs: list[Mapping[str, Any]]) -> list[RunResult]:
    from lmech.laws import REGISTRY

    return REGISTRY.get(law_id).execute(configs)
