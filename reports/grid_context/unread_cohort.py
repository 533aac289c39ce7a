"""An unread cohort for the grid context: 80 simulated patients, seed 9000, that nobody looked at
before the rule was written (the benchmark's errors were read to make it).

Usage (from the repository root, ~7 min on 2 cores, ~6 GB in /tmp):
    PYTHONPATH=src python reports/grid_context/unread_cohort.py [SEED] [OUT]   # 9000 /tmp/unread
    python pipelines/benchmark.py --model models/mrseq --interim /tmp/unread/interim \
        --metrics /tmp/unread/metrics --plots /tmp/unread/plots
`unread_cohort_seed9000.json` is that benchmark.json (`series_context.grid_context` is the rule's
count); `unread_cohort_predictions.csv` the answers each volume alone, with the series context,
and with both. Seed 9100 made the cohort `bench/adc_evidence.py` was fitted on.
"""

import sys
from pathlib import Path

from mrseq.ingest import ingest
from mrseq.labels import attach_labels, rejected_rows
from mrseq.layout import LABELLED_CSV, REJECTED_CSV
from mrseq.simulate import simulate_cohort

if __name__ == "__main__":
    SEED = int(sys.argv[1]) if len(sys.argv) > 1 else 9000
    OUT = Path(sys.argv[2] if len(sys.argv) > 2 else "/tmp/unread")
    labels = simulate_cohort(OUT / "raw", 80, SEED, 2, 1.0)
    table, summary = ingest(OUT / "raw", OUT / "interim", workers=2)
    attach_labels(table, labels).to_csv(OUT / "interim" / LABELLED_CSV, index=False)
    rejected_rows(summary.rejected, labels).to_csv(OUT / "interim" / REJECTED_CSV, index=False)
    print(summary.line())
