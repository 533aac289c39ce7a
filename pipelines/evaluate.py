"""Stage evaluate: the test split through the exported model's Predictor."""

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
    parser.add_argument("--splits", required=True)
    parser.add_argument("--metrics", required=True, help="folder for test.json etc.")
    parser.add_argument("--plots", required=True)
    args = parser.parse_args()
    setup()
    params = stage_params("evaluate")
    predictor = Predictor.from_dir(args.model)
    interim = Path(args.interim)
    table = pd.read_csv(interim / LABELLED_CSV)
    test_ids = set(json.loads(Path(args.splits).read_text())["test"])
    test = table[table.volume_id.isin(test_ids)]
    rejected = pd.read_csv(interim / REJECTED_CSV)  # series ingest turned down, with why
    rejected = rejected[rejected.patient_id.isin(set(test.patient_id))]
    out = (Path(args.metrics), Path(args.plots))
    result = evaluate_cohort(predictor, interim, test, rejected, params, out)
    print(json.dumps(result["overall"]))
    for name, row in result["per_class"].items():
        print(
            f"{name:<9} acc {row['accuracy']['value']:.3f} {row['accuracy']['ci95']}  "
            f"sens {row['sensitivity']['value']:.3f}  n={row['support']}"
        )


if __name__ == "__main__":
    main()
