"""Ad hoc: does the committed net read resolution? T2WI_fs and low-b DWI training volumes,
as stored and blurred like the training augmentation's resolution loss (zoom 0.7, 0.5).

Run from the repository root: python reports/recipe/epi_floor/resolution_probe.py"""

import json
import sys
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

sys.path.insert(0, "bench")
from fit_ceiling import load_arrays, predict

from mrseq import layout
from mrseq.training import load_classifier, synthetic_split


def blurred(arrays, zoom: float):
    """In-plane resolution lowered by `zoom` (area down, trilinear back up)."""
    x = torch.from_numpy(arrays.astype("float32"))
    if zoom < 1:
        size = x.shape[2:]
        small = [max(2, round(s * zoom)) for s in size[:2]] + [size[2]]
        x = F.interpolate(F.interpolate(x, size=small, mode="area"), size=size, mode="trilinear")
    return x.numpy()


def main() -> None:
    torch.set_num_threads(1)
    config = json.loads(Path("models/train/config.json").read_text())
    net = load_classifier("models/train/best.ckpt", config["model"]).net.eval()
    folder = Path("data/synthetic")
    index = pd.read_csv(folder / layout.INDEX_CSV)
    t = config["train"]
    train, _ = synthetic_split(index, float(t["synthetic_val_fraction"]), int(t["seed"]))
    fs = train[train.label == "T2WI_fs"].sample(200, random_state=0)
    low_b = (train.label == "DWI_Low") & (train.true_b_value.astype(float) <= 150)
    low = train[low_b].sample(150, random_state=0)
    for name, rows in (("T2WI_fs", fs), ("DWI_Low b<=150", low)):
        arrays = load_arrays(folder, rows)
        for zoom in (1.0, 0.7, 0.5):
            answers = pd.Series(predict(net, blurred(arrays, zoom)))
            share = answers.value_counts(normalize=True).round(3).to_dict()
            print(f"{name:15s} in-plane zoom {zoom}: {share}")


if __name__ == "__main__":
    main()
