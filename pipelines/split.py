"""Stage split: patient-level stratified train/val/test."""

import argparse

import pandas as pd

from _common import setup, write_json
from mrseq.params import stage_params
from mrseq.split import split_patients


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    setup()
    p = stage_params("split")["split"]
    splits = split_patients(pd.read_csv(args.index), tuple(p["fractions"]), int(p["seed"]))
    write_json(args.out, splits)
    print({k: len(v) for k, v in splits.items()})


if __name__ == "__main__":
    main()
