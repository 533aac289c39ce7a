"""Stage simulate: the embedded default cohort (replace with your own DICOM + labels.csv)."""

import argparse

from _common import setup, workers
from mrseq.params import stage_params
from mrseq.simulate import simulate_cohort


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    setup()
    p = stage_params("simulate")["simulate"]
    labels = simulate_cohort(
        args.out,
        n_patients=int(p["patients"]),
        seed=int(p["seed"]),
        workers=workers(p["workers"]),
        resolution_scale=float(p["resolution_scale"]),
    )
    print(f"simulated {labels.patient_id.nunique()} patients, {len(labels)} volumes")


if __name__ == "__main__":
    main()
