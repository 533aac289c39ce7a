"""Probe (2026-12-07, thirteenth session), no model change: is the big-gland drop caused by how
much of the 120 x 120 x 80 mm box the gland fills? Each benchmark T2 volume is read alone
(argmax of six, no context) by the exported net after preprocessing on the trained grid and on
coarser or finer in-plane grids of the same voxel count, so the box is larger (the gland fills
less of it) or smaller (it fills more). If box filling is the cause, the biggest glands' T2 ->
other falls on the wider boxes and the small glands' rises on the narrower one. Resolution moves
with the box (1.5 mm is inside the training augmentation's range, 1.0 mm finer than trained).

Usage: PYTHONPATH=src python reports/fit/box_probe.py > reports/fit/box_probe.txt
"""

import dataclasses
from pathlib import Path

import pandas as pd
import torch

from mrseq.ingest import load_saved_volume
from mrseq.predict import Predictor
from mrseq.preprocess import preprocess_volume

TARGETS = ["T2WI_nan", "T2WI_fs"]  # the block the lead is about: T2 answered `other`
IN_PLANE_MM = [1.0, 1.25, 1.5]
EDGES = [0, 30, 55, 100, 1000]

interim = Path("data/benchmark/interim")
table = pd.read_csv(interim / "labelled.csv")
table = table[table.label.isin(TARGETS)].reset_index(drop=True)
pred = Predictor.from_dir("models/mrseq")
specs = {
    mm: dataclasses.replace(pred.preprocess, spacing=(mm, mm, pred.preprocess.spacing[2]))
    for mm in IN_PLANE_MM
}
answers: dict[float, list[str]] = {mm: [] for mm in IN_PLANE_MM}
for start in range(0, len(table), 16):  # volumes loaded a batch at a time: some are 100s of MB
    arrays = [load_saved_volume(interim / f) for f in table.file[start : start + 16]]
    for mm, spec in specs.items():
        batch = torch.stack([preprocess_volume(a, m, spec) for a, m in arrays])
        answers[mm] += [pred.classes[i] for i in pred.outputs(batch)[0].argmax(1)]
rows = [table.assign(mm=mm, answer=answers[mm]) for mm in IN_PLANE_MM]
out = pd.concat(rows)
out["right"] = out.answer == out.label
out["to_other"] = out.answer == "other"
out["gland"] = pd.cut(out.prostate_volume_ml, EDGES)
pd.set_option("display.width", 200)
print(f"{len(table)} benchmark T2 volumes, each alone; box in-plane = 96 x spacing")
print("\nright, by gland volume (ml) and in-plane spacing (mm):")
print(out.pivot_table(index="gland", columns="mm", values="right", observed=True).round(3))
print("\nanswered other:")
print(out.pivot_table(index="gland", columns="mm", values="to_other", observed=True).round(3))
print(
    "\ncount per gland bin:", out[out.mm == 1.25].groupby("gland", observed=True).size().to_dict()
)
committed = pd.read_csv("metrics/benchmark_predictions.csv").set_index("volume_id").predicted_alone
same = out[out.mm == 1.25].set_index("volume_id").answer
print(
    "\n1.25 mm agrees with predicted_alone of the committed predictions:",
    (same == committed[same.index]).mean(),
)
print("\nright by class and spacing:")
print(out.pivot_table(index="label", columns="mm", values="right").round(3))
