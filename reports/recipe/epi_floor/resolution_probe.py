"""Ad hoc: does the committed net read resolution? T2WI_fs and low-b DWI training volumes,
as stored and blurred like the training augmentation's resolution loss (zoom 0.5)."""

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

sys.path.insert(0, "bench")
from fit_ceiling import load_arrays

from mrseq import layout
from mrseq.sequences import MODEL_CLASSES
from mrseq.training import load_classifier, synthetic_split

torch.set_num_threads(1)
config = json.loads(Path("models/train/config.json").read_text())
net = load_classifier("models/train/best.ckpt", config["model"]).net.eval()
folder = Path("data/synthetic")
index = pd.read_csv(folder / layout.INDEX_CSV)
train, _ = synthetic_split(index, 0.1, 0)
fs = train[train.label == "T2WI_fs"].sample(200, random_state=0)
low = train[(train.label == "DWI_Low") & (train.true_b_value.astype(float) <= 150)].sample(
    150, random_state=0
)


def read(arrays, zoom):
    x = torch.from_numpy(arrays.astype(np.float32))
    if zoom < 1:
        size = x.shape[2:]
        small = [max(2, int(round(s * zoom))) for s in size[:2]] + [size[2]]
        x = F.interpolate(F.interpolate(x, size=small, mode="area"), size=size, mode="trilinear")
    with torch.no_grad():
        return np.array(MODEL_CLASSES)[
            torch.cat([net(x[i : i + 32]).argmax(1) for i in range(0, len(x), 32)]).numpy()
        ]


for name, rows in (("T2WI_fs", fs), ("DWI_Low b<=150", low)):
    a = load_arrays(folder, rows)
    for zoom in (1.0, 0.7, 0.5):
        p = pd.Series(read(a, zoom)).value_counts(normalize=True).round(3).to_dict()
        print(f"{name:15s} in-plane zoom {zoom}: {p}")
