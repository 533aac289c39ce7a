"""Run one function over many jobs: in worker processes when that pays, always with a bar."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

from tqdm import tqdm


@contextmanager
def worker_pool(workers: int, initializer: Callable | None = None) -> Iterator:
    """A process pool to share between passes (a pool's processes start on first use and each
    start costs ~0.1 s), or None for one worker."""
    if workers <= 1:
        yield None
        return
    with ProcessPoolExecutor(workers, initializer=initializer) as pool:
        yield pool


def run_all(
    fn: Callable,
    jobs: Sequence,
    *,
    desc: str,
    unit: str,
    progress: bool = True,
    pool: ProcessPoolExecutor | None = None,
    workers: int = 1,
    min_jobs: int = 2,
    chunksize: int = 1,
    initializer: Callable | None = None,
) -> list:
    """[fn(job) for job in jobs], in order: in worker processes (`pool` when given, else a pool
    of `workers`) when there are at least `min_jobs` jobs (below that, sending them costs more
    than it saves), else here."""
    bar = dict(total=len(jobs), desc=desc, unit=unit, disable=not progress)
    if len(jobs) < min_jobs or (pool is None and workers <= 1):
        return [fn(job) for job in tqdm(jobs, **bar)]
    if pool is not None:
        return list(tqdm(pool.map(fn, jobs, chunksize=chunksize), **bar))
    with worker_pool(min(workers, len(jobs)), initializer) as own:
        return list(tqdm(own.map(fn, jobs, chunksize=chunksize), **bar))
