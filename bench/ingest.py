"""Time `mrseq ingest` against a bare pydicom decode of the same tree, in one run.

Bare decode = dcmread of every file + pixel_array: the floor any DICOM tool pays, run with the
same number of processes as ingest. With --compressed the tree is first re-encoded, half the
patients JPEG-LS lossless and half JPEG 2000 lossless, as archives hold it. The default 24
patients are ~5,200 files. Prints both times and the ratio (goal <= 1.5).
Usage: python bench/ingest.py [--patients N] [--compressed]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pydicom
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless

from mrseq.dicom import list_files
from mrseq.ingest import ingest
from mrseq.simulate import simulate_cohort


def decode(path: str) -> int:
    return pydicom.dcmread(path).pixel_array.size


def bare_read(root: Path, workers: int) -> int:
    files, _ = list_files([root])
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(decode, files, chunksize=64))
    return len(files)


def encode(args: tuple[str, str, str]) -> None:
    source, target, syntax = args
    ds = pydicom.dcmread(source)
    ds.compress(syntax)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    ds.save_as(target)


def compress_tree(raw: Path, out: Path, workers: int) -> None:
    patients = sorted(p for p in raw.iterdir() if p.is_dir())
    jobs = []
    for n, patient in enumerate(patients):
        syntax = JPEGLSLossless if n % 2 == 0 else JPEG2000Lossless
        for f in sorted(patient.rglob("*.dcm")):
            jobs.append((str(f), str(out / f.relative_to(raw)), syntax))
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(encode, jobs, chunksize=32))


def best_of(n: int, fn, before=lambda: None):
    times = []
    for _ in range(n):
        before()
        os.sync()  # no write-back left from the last run: ingest writes ~0.8 GB a run
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=24)  # >= 5,000 files uncompressed
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compressed", action="store_true")
    args = parser.parse_args()
    workers = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        tree = raw = Path(tmp) / "raw"
        simulate_cohort(raw, n_patients=args.patients, seed=123, workers=workers, progress=False)
        if args.compressed:
            tree = Path(tmp) / "compressed"
            compress_tree(raw, tree, workers)
        n_files = bare_read(tree, workers)  # warm the page cache for both contenders
        bare = best_of(args.repeats, lambda: bare_read(tree, workers))
        out = Path(tmp) / "out"
        # new files each run, as `dvc repro` writes them (it removes a stage's outputs first)
        ours = best_of(
            args.repeats,
            lambda: ingest(tree, out, workers=workers, progress=False),
            before=lambda: shutil.rmtree(out, ignore_errors=True),
        )
    kind = "JPEG-LS + JPEG 2000 lossless" if args.compressed else "uncompressed"
    print(f"files: {n_files} ({kind}), processes: {workers} for both")
    print(f"bare pydicom decode: {bare:.2f} s")
    print(f"mrseq ingest: {ours:.2f} s")
    print(f"ratio ingest / bare decode: {ours / bare:.2f} (goal <= 1.5)")


if __name__ == "__main__":
    main()
