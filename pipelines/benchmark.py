"""Stage benchmark: the separately seeded cohort through the exported model's Predictor."""

import argparse
import json
from pathlib import Path

import pandas as pd

from _common import setup
from mrseq.evaluate import evaluate_cohort
from mrseq.layout import LABELLED_CSV, REJECTED_CSV
from mrseq.params import stage_params
from mrseq.predict import Predictor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--interim", required=True)
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--plots", required=True)
    args = parser.parse_args()
    setup()
    params = stage_params("benchmark")
    predictor = Predictor.from_dir(args.model)
    interim = Path(args.interim)
    table = pd.read_csv(interim / LABELLED_CSV)
    rejected = pd.read_csv(interim / REJECTED_CSV)
    out = (Path(args.metrics), Path(args.plots))
    result = evaluate_cohort(predictor, interim, table, rejected, params, out, "benchmark")
    print(json.dumps({k: result[k] for k in ("overall", "ece", "confidence_auroc")}))
    for band, row in result["bands"].items():
        print(
            f"{band:<9} acc {row['accuracy']['value']:.3f} {row['accuracy']['ci95']} n={row['n']}"
        )


if __name__ == "__main__":
    main()
