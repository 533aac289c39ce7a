"""Time `mrseq ingest` against a bare pydicom read of the same tree, in one run.

Bare read = dcmread of every file + pixel_array, one process: the floor any DICOM tool pays.
Prints both times and the ratio (goal <= 1.5). Usage: python bench/ingest.py [--patients N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pydicom

from mrseq.dicom import list_files
from mrseq.ingest import ingest
from mrseq.simulate import simulate_cohort


def bare_read(root: Path) -> int:
    files, _ = list_files([root])
    for path in files:
        pydicom.dcmread(path).pixel_array  # noqa: B018
    return len(files)


def best_of(n: int, fn):
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    workers = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw"
        simulate_cohort(raw, n_patients=args.patients, seed=123, workers=workers, progress=False)
        n_files = bare_read(raw)  # warm the page cache for both contenders
        bare = best_of(args.repeats, lambda: bare_read(raw))
        ours = best_of(
            args.repeats, lambda: ingest(raw, Path(tmp) / "out", workers=workers, progress=False)
        )
    print(f"files: {n_files}, cores: {workers}")
    print(f"bare pydicom read (1 process): {bare:.2f} s")
    print(f"mrseq ingest ({workers} processes): {ours:.2f} s")
    print(f"ratio ingest / bare read: {ours / bare:.2f} (goal <= 1.5)")


if __name__ == "__main__":
    main()
