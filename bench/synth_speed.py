"""Training volumes per CPU-second: the DICOM path vs synthesis straight to the model grid.

DICOM path: simulate (write DICOM) + ingest (read, stack) + preprocess, as the pipeline's
simulate/ingest/preprocess stages do. Synth path: the synthesize stage's code with params.yaml's
settings. Both single-process on the same patients' seeds, in one run (the machine is noisy),
so the printed ratio is what counts, not the seconds.
Usage: python bench/synth_speed.py [--patients 6]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from mrseq.ingest import ingest
from mrseq.labels import attach_labels
from mrseq.preprocess import PreprocessSpec, preprocess_index
from mrseq.simulate import simulate_cohort, single_threaded
from mrseq.simulate.synth import synthesize_cohort


def dicom_path(out: Path, n: int, seed: int, spec: PreprocessSpec) -> int:
    labels = simulate_cohort(out / "raw", n, seed, progress=False)
    table, _ = ingest(out / "raw", out / "interim", workers=1, progress=False)
    joined = attach_labels(table, labels)
    return len(preprocess_index(joined, out / "interim", out / "processed", spec, progress=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=6)
    args = parser.parse_args()
    single_threaded()
    params = yaml.safe_load(Path("params.yaml").read_text())
    pre, syn = params["preprocess"], params["synthesize"]
    spec = PreprocessSpec.from_dict(pre)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("dicom", "synth"):
            start = time.process_time()
            if name == "dicom":
                n = dicom_path(Path(tmp) / name, args.patients, 77, spec)
            else:
                n = len(
                    synthesize_cohort(
                        Path(tmp) / name,
                        args.patients,
                        77,
                        spec,
                        syn["min_pixel_mm"],
                        syn["anatomy_step_mm"],
                        progress=False,
                    )
                )
            seconds = time.process_time() - start
            rows.append(
                {"path": name, "volumes": n, "cpu_s": seconds, "vol_per_cpu_min": 60 * n / seconds}
            )
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format="%.2f"))
    ratio = table.vol_per_cpu_min.iloc[1] / table.vol_per_cpu_min.iloc[0]
    print(f"synth / DICOM path, volumes per CPU-minute: {ratio:.2f}x (goal >= 3x)")


if __name__ == "__main__":
    main()
