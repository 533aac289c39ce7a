"""Stage train: the final fit (the same train_model() every tune trial runs)."""

import argparse
import json
from pathlib import Path

from _common import setup, write_json
from mrseq.params import set_dotted, stage_params
from mrseq.training import train_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--processed", required=True)
    parser.add_argument("--splits", required=True)
    parser.add_argument("--synthetic", help="training-only volumes (the synthesize stage)")
    parser.add_argument("--best", help="the sweep's best.json: its config overrides params")
    parser.add_argument("--out", required=True, help="checkpoint folder")
    parser.add_argument("--metrics", required=True)
    args = parser.parse_args()
    setup()
    cfg = stage_params("train")  # tracked: train_model's reads are what the audit sees
    if args.best:
        best = json.loads(Path(args.best).read_text())
        for key, value in best["config"].items():
            set_dotted(cfg, key, value)  # in place: a copy would not be tracked
        print(f"using the sweep's best config: {best['config']}")
    with open(args.splits) as f:
        splits = json.load(f)
    result = train_model(
        cfg, args.processed, splits, args.out, group="train", synthetic=args.synthetic
    )
    write_json(
        args.metrics,
        {"val_loss": result["best_val_loss"], **result["best"], "epochs_run": result["epochs_run"]},
    )


if __name__ == "__main__":
    main()
