"""Stage tune: Ray Tune sweep over train_model(); writes trials.csv, best.json and a picture.

Rerunning after a kill resumes the stored sweep when its settings, code and inputs are
unchanged; a sweep stored for anything else is discarded.
"""

import argparse
import json
import shutil
import sys
from pathlib import Path

from _common import setup, write_json
from mrseq.layout import BEST_JSON, INDEX_CSV, TRIALS_CSV
from mrseq.params import declared_files, stage_params
from mrseq.tuning import (
    SWEEP_NAME,
    SweepInterrupted,
    best_overrides,
    run_sweep,
    save_best,
    sweep_fingerprint,
    sweep_plot,
)


def prepare_storage(storage: Path, stamp: str) -> None:
    mark = storage / "settings.sha"
    if storage.exists() and (not mark.exists() or mark.read_text() != stamp):
        shutil.rmtree(storage)  # a sweep for other settings: never resume it
    storage.mkdir(parents=True, exist_ok=True)
    mark.write_text(stamp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--processed", required=True)
    parser.add_argument("--splits", required=True)
    parser.add_argument("--synthetic", help="training-only volumes (the synthesize stage)")
    parser.add_argument("--storage", required=True, help="Ray results (kept between runs)")
    parser.add_argument("--out", required=True, help="folder for trials.csv, best.json, sweep.png")
    parser.add_argument("--metrics", required=True)
    args = parser.parse_args()
    setup()
    tracked = stage_params("tune")
    # `tune` is read here (tracked); `train` and `model` go whole to every trial's
    # train_model() in Ray's worker processes, where reads cannot be recorded: the train
    # stage's audit checks that train_model() reads them all.
    params = {"tune": tracked["tune"], "train": tracked["train"].plain()}
    params["model"] = tracked["model"].plain()
    t = params["tune"]
    # ASHA stops trials, not early stopping; trials train on a share of the synthetic patients
    params["train"].update(
        epochs=int(t["epochs"]),
        patience=int(t["epochs"]),
        max_synthetic_patients=int(t["synthetic_patients"]),
    )
    # The stage's declared files (its code and splits.json) and the arrays' indexes.
    files = declared_files("tune") + [
        Path(folder) / INDEX_CSV for folder in filter(None, (args.processed, args.synthetic))
    ]
    prepare_storage(Path(args.storage), sweep_fingerprint(params, files))
    splits = json.loads(Path(args.splits).read_text())
    try:
        table = run_sweep(params, args.processed, splits, args.storage, synthetic=args.synthetic)
    except SweepInterrupted as exc:
        sys.exit(f"tune: {exc}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    keys = list(t["space"])
    table.to_csv(out / TRIALS_CSV, index=False)
    best = best_overrides(table, keys, t["metric"], t["mode"])
    save_best(out / BEST_JSON, best)
    sweep_plot(table, keys, t["metric"], out / "sweep.png")
    write_json(
        args.metrics,
        {
            "best_" + t["metric"].replace("/", "_"): best["value"],
            "trials": len(table),
            "errored": int((table.status == "ERROR").sum()),
            "trial_epochs": int(table.epochs_run.fillna(0).sum()),
        },
    )
    print(f"{len(table)} trials; best {t['metric']} {best['value']:.4f} with {best['config']}")
    print(f"sweep stored in {Path(args.storage) / SWEEP_NAME}")


if __name__ == "__main__":
    main()
