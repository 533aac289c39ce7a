"""Stage split: patient-level stratified train/val/test."""

import argparse

import pandas as pd

from _common import setup, write_json
from mrseq.params import stage_params
from mrseq.split import hold_out, split_patients


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    setup()
    params = stage_params("split")
    p, index = params["split"], pd.read_csv(args.index)
    splits = split_patients(index, tuple(p["fractions"]), int(p["seed"]))
    splits = hold_out(splits, index, params["other"]["held_out"])
    write_json(args.out, splits)
    print({k: len(v) for k, v in splits.items()})


if __name__ == "__main__":
    main()
