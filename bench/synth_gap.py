"""Does the synthesis shortcut show the net other images than the DICOM path? (`make run` first)

The net trains mostly on volumes the synthesize stage renders no finer than 1.25 mm in-plane
(noise lowered as the averaging would have), but test, benchmark and every user series come
through the DICOM path at the planned resolution. Here the same patients (own seed, never
trained on) are rendered both ways, image for image the same plans, anatomy and tissues
(`synthesize_patient` with and without `min_pixel`), and the exported model reads both. Equal
accuracy per class means the shortcut is not where the errors come from; a gap would be a
domain shift of our own making. Also printed: a high-frequency statistic of what the net sees
(median |Laplacian| in-plane over the signal), per class and path.

Usage: python bench/synth_gap.py [--patients 60] [--seed 5000] [--model models/mrseq]
Writes reports/synth_gap.csv (one row per volume and path) and prints the tables.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from mrseq.pool import run_all
from mrseq.predict import Predictor
from mrseq.preprocess import PreprocessSpec
from mrseq.simulate import single_threaded
from mrseq.simulate.synth import synthesize_patient

OUT = Path("reports/synth_gap.csv")


def render(args: tuple) -> tuple[list[dict], list[np.ndarray]]:
    """One patient's volumes: planned resolution (the DICOM path's images) or coarsened."""
    seed, index, spec, coarse, synth, skip = args
    pixel = float(synth["min_pixel_mm"]) if coarse else None
    step = float(synth["anatomy_step_mm"]) if coarse else 0.0
    done = synthesize_patient(seed, index, PreprocessSpec.from_dict(spec), pixel, step, skip=skip)
    return done.rows, done.arrays


def high_frequency(array: np.ndarray) -> float:
    """Median |in-plane Laplacian| over voxels above 0.1 (channel 0)."""
    a = array[0].astype(np.float32)
    lap = 4 * a[1:-1, 1:-1] - a[:-2, 1:-1] - a[2:, 1:-1] - a[1:-1, :-2] - a[1:-1, 2:]
    signal = a[1:-1, 1:-1] > 0.1
    return float(np.median(np.abs(lap[signal]))) if signal.any() else float("nan")


def read(predictor: Predictor, arrays: list[np.ndarray]) -> np.ndarray:
    x = torch.from_numpy(np.stack(arrays).astype(np.float32))
    probs = np.concatenate([predictor.probabilities(x[i : i + 16]) for i in range(0, len(x), 16)])
    return np.array(predictor.classes)[probs.argmax(axis=1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=60)
    parser.add_argument("--seed", type=int, default=5000)
    parser.add_argument("--model", default="models/mrseq")
    args = parser.parse_args()
    params = yaml.safe_load(Path("params.yaml").read_text())
    used = {int(params[k]["seed"]) for k in ("simulate", "synthesize", "benchmark")}
    if args.seed in used:
        raise SystemExit(f"--seed {args.seed} is a pipeline cohort's seed: pick an unseen one")
    predictor = Predictor.from_dir(args.model)
    torch.set_num_threads(2)
    spec = predictor.preprocess.to_dict()
    skip = tuple(params["other"]["held_out"])
    tables = []
    for coarse in (False, True):
        jobs = [
            (args.seed, i, spec, coarse, params["synthesize"], skip) for i in range(args.patients)
        ]
        done = run_all(
            render, jobs, desc="render", unit="pt", workers=2, initializer=single_threaded
        )
        rows = pd.DataFrame([r for rs, _ in done for r in rs])
        arrays = [a for _, arrs in done for a in arrs]
        rows["predicted"] = read(predictor, arrays)
        rows["high_frequency"] = [high_frequency(a) for a in arrays]
        rows["path"] = "synthesis (coarsened)" if coarse else "DICOM path (planned resolution)"
        tables.append(rows)
    table = pd.concat(tables, ignore_index=True)
    table["right"] = table.label == table.predicted
    OUT.parent.mkdir(exist_ok=True)
    table.to_csv(OUT, index=False)
    print(f"{args.patients} patients (seed {args.seed}), each volume alone, {args.model}")
    print(table.groupby("path").right.agg(["mean", "size"]).round(3).to_string())
    print(table.pivot_table(index="label", columns="path", values="right").round(3).to_string())
    hf = table.pivot_table(index="label", columns="path", values="high_frequency", aggfunc="median")
    print(hf.round(4).to_string())


if __name__ == "__main__":
    main()
