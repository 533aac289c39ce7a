"""Stage benchmark_data: a separately seeded simulated cohort, ingested, never trained on."""

import argparse
from pathlib import Path

from _common import setup, workers
from mrseq.ingest import ingest
from mrseq.labels import attach_labels, rejected_rows
from mrseq.layout import LABELLED_CSV, REJECTED_CSV
from mrseq.params import stage_params
from mrseq.simulate import simulate_cohort


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, help="folder for raw/ and interim/")
    args = parser.parse_args()
    setup()
    p = stage_params("benchmark_data")
    bench, seed = p["benchmark"], int(p["benchmark"]["seed"])
    if seed == int(p["simulate"]["seed"]):
        raise SystemExit("benchmark.seed must differ from simulate.seed (a cohort never seen)")
    out, n = Path(args.out), workers(bench["workers"])
    scale = float(p["simulate"]["resolution_scale"])  # the same generator as training
    labels = simulate_cohort(out / "raw", int(bench["patients"]), seed, n, scale)
    table, summary = ingest(out / "raw", out / "interim", workers=n)
    labelled = attach_labels(table, labels)
    labelled.to_csv(out / "interim" / LABELLED_CSV, index=False)
    rejected_rows(summary.rejected, labels).to_csv(out / "interim" / REJECTED_CSV, index=False)
    print(summary.line())
    print(f"benchmark: {len(labelled)} volumes", labelled.label.value_counts().to_dict())


if __name__ == "__main__":
    main()
