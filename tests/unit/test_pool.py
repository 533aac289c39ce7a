import os

from mrseq.pool import run_all, worker_pool


def pid_and_square(n: int) -> tuple[int, int]:
    return os.getpid(), n * n


def test_results_keep_job_order_in_workers_and_here():
    jobs = list(range(20))
    here = run_all(pid_and_square, jobs, desc="t", unit="j", progress=False)
    there = run_all(pid_and_square, jobs, desc="t", unit="j", progress=False, workers=2)
    assert [r for _, r in here] == [r for _, r in there] == [n * n for n in jobs]
    assert {p for p, _ in here} == {os.getpid()}
    assert os.getpid() not in {p for p, _ in there}


def test_few_jobs_run_here_even_with_a_pool():
    with worker_pool(2) as pool:
        small = run_all(
            pid_and_square, [1, 2], desc="t", unit="j", progress=False, pool=pool, min_jobs=4
        )
        large = run_all(
            pid_and_square, range(8), desc="t", unit="j", progress=False, pool=pool, min_jobs=4
        )
    assert {p for p, _ in small} == {os.getpid()}
    assert os.getpid() not in {p for p, _ in large}


def test_one_worker_means_no_pool():
    with worker_pool(1) as pool:
        assert pool is None
