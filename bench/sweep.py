"""ASHA vs FIFO on the same search space and budget, and Ray's per-trial overhead.

For each scheduler: trial-epochs spent (all trials, in time order) until the sweep first
reached its best validation loss, and that best. Ratio ASHA / FIFO (goal <= 0.5). Overhead:
trial start to first report under Ray vs the same train_model() call to its first epoch
without Ray. Needs the pipeline's data/processed and data/splits.json.
Usage: python bench/sweep.py [--samples 6] [--epochs 6]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import yaml

from mrseq.training import train_model
from mrseq.tuning import apply_overrides, run_sweep


def epochs_to_best(storage: Path) -> tuple[int, float]:
    """Replay every trial's reports in wall-clock order; epochs spent until the best loss."""
    reports = []
    for result in storage.glob("sweep/*/result.json"):
        for line in result.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                reports.append((r["timestamp"], r.get("time_total_s", 0), r["val/loss"]))
    reports.sort()
    best = min(r[2] for r in reports)
    for n, r in enumerate(reports, 1):
        if r[2] <= best:
            return n, best
    return len(reports), best


def sweep(params: dict, scheduler: str, tmp: Path) -> tuple[int, float]:
    import ray

    p = apply_overrides(params, {"tune.scheduler": scheduler})
    storage = tmp / scheduler
    splits = json.loads(Path("data/splits.json").read_text())
    run_sweep(p, "data/processed", splits, storage)
    ray.shutdown()
    return epochs_to_best(storage)


def direct_first_epoch(params: dict, tmp: Path) -> float:
    class Stop(pl.Callback):
        def on_validation_epoch_end(self, trainer, module):
            if not trainer.sanity_checking:
                self.t = time.perf_counter()
                trainer.should_stop = True

    stop = Stop()
    cfg = {"model": params["model"], "train": {**params["train"], "progress_bar": False}}
    splits = json.loads(Path("data/splits.json").read_text())
    start = time.perf_counter()
    train_model(cfg, "data/processed", splits, tmp / "direct", callbacks=[stop])
    return stop.t - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    os.environ.setdefault("WANDB_MODE", "disabled")
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["train"].update(epochs=args.epochs, patience=args.epochs, wandb=False)
    params["tune"].update(num_samples=args.samples, epochs=args.epochs, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        fifo_epochs, fifo_best = sweep(params, "fifo", tmp)
        asha_epochs, asha_best = sweep(params, "asha", tmp)
        first = [
            json.loads(f.read_text().splitlines()[0])["time_total_s"]
            for f in (tmp / "asha").glob("sweep/*/result.json")
        ]
        direct = direct_first_epoch(params, tmp)
    print(
        f"{args.samples} trials x up to {args.epochs} epochs, same space (params.yaml tune.space)"
    )
    print(f"FIFO: {fifo_epochs} trial-epochs to its best val/loss {fifo_best:.4f}")
    print(f"ASHA: {asha_epochs} trial-epochs to its best val/loss {asha_best:.4f}")
    print(f"ratio ASHA / FIFO trial-epochs: {asha_epochs / fifo_epochs:.2f} (goal <= 0.5)")
    mean_first = sum(first) / len(first)
    print(
        f"trial start to first report under Ray: {mean_first:.1f} s; without Ray: {direct:.1f} s; "
        f"overhead {mean_first - direct:+.1f} s"
    )


if __name__ == "__main__":
    main()
