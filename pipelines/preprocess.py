"""Stage preprocess: every labelled volume through the shared transform, cached as arrays."""

import argparse
from pathlib import Path

import pandas as pd

from _common import setup, workers
from mrseq.layout import LABELLED_CSV
from mrseq.params import stage_params
from mrseq.preprocess import PreprocessSpec, preprocess_index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--interim", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    setup()
    p = stage_params("preprocess")["preprocess"]
    spec = PreprocessSpec.from_dict(p)  # every spec field params.yaml sets
    interim = Path(args.interim)
    index = pd.read_csv(interim / LABELLED_CSV)
    kept = preprocess_index(index, interim, Path(args.out), spec, workers(p["workers"]))
    print(f"preprocessed {len(kept)} of {len(index)} volumes to {tuple(spec.shape)}")


if __name__ == "__main__":
    main()
