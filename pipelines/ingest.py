"""Stage ingest: DICOM tree -> volumes + series.csv, joined with the ground-truth labels."""

import argparse
from pathlib import Path

import pandas as pd

from _common import setup, workers
from mrseq.ingest import ingest
from mrseq.labels import attach_labels, rejected_rows
from mrseq.layout import LABELLED_CSV, REJECTED_CSV
from mrseq.params import stage_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dicom", required=True)
    parser.add_argument("--labels", required=True, help="CSV: series_uid, [b_value], label")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    setup()
    p = stage_params("ingest")["ingest"]
    table, summary = ingest(args.dicom, args.out, workers=workers(p["workers"]))
    labels = pd.read_csv(args.labels)
    labelled = attach_labels(table, labels)
    labelled.to_csv(Path(args.out) / LABELLED_CSV, index=False)
    rejected_rows(summary.rejected, labels).to_csv(Path(args.out) / REJECTED_CSV, index=False)
    print(summary.line())
    print(f"{len(labelled)} volumes labelled:", labelled.label.value_counts().to_dict())


if __name__ == "__main__":
    main()
