"""Probe (2026-12-07, twelfth session), no model change: accuracy by prostate volume on the
synthetic patients the net trained on and on its synthetic validation patients (150 of each,
target volumes only, each read alone). The synthetic index has no prostate volume, so it is
redrawn from the patient seed exactly as synthesize_patient draws it (checked against the DICOM
cohort's labels: equal to 0.1 ml). Output: gland_size.txt beside this file.

Usage: PYTHONPATH=src python reports/fit/gland_size.py
"""

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mrseq.predict import Predictor
from mrseq.simulate.anatomy import make_patient
from mrseq.simulate.protocol import plan_study
from mrseq.training import synthetic_split

folder = Path("data/synthetic")
idx = pd.read_csv(folder / "index.csv")
train, val = synthetic_split(idx, 0.1, 0)
rng0 = np.random.default_rng(0)


def volume(pid):
    i = int(pid.split("-")[1])
    rng = np.random.default_rng([2000, i])
    plan_study(rng, 1.0)
    return make_patient(rng).prostate_volume_ml


out = []
for name, part in (("train", train), ("val", val)):
    part = part[part.label.isin(["T2WI_fs", "T2WI_nan", "DWI_Low", "DWI_High", "ADC"])]
    pats = sorted(part.patient_id.unique())
    pick = set(rng0.choice(pats, min(150, len(pats)), replace=False))
    part = part[part.patient_id.isin(pick)]
    vols = {p: volume(p) for p in pick}
    pred = Predictor.from_dir("models/mrseq")
    T = float(pred.spec["output"]["temperature"])
    for s in range(0, len(part), 16):
        rows = part.iloc[s : s + 16]
        x = torch.from_numpy(np.stack([np.load(folder / f).astype(np.float32) for f in rows.array]))
        if x.ndim == 4:
            x = x[:, None]
        with torch.no_grad():
            p = torch.softmax(pred.model(x)[:, : len(pred.classes)] / T, 1).numpy()
        for r, q in zip(rows.itertuples(), p, strict=True):
            out.append(
                dict(
                    part=name,
                    label=r.label,
                    predicted=pred.classes[int(q.argmax())],
                    ml=vols[r.patient_id],
                )
            )
o = pd.DataFrame(out)

edges = [0, 30, 55, 100, 1000]
for name, g in o.groupby("part"):
    q = pd.cut(g.ml, edges)
    print(
        name,
        "right",
        (g.predicted == g.label)
        .groupby(q, observed=True)
        .agg(["mean", "size"])
        .round(3)
        .to_dict("index"),
    )
    t2 = g[g.label.str.startswith("T2")]
    print(
        name,
        "T2->other",
        (t2.predicted == "other")
        .groupby(pd.cut(t2.ml, edges), observed=True)
        .agg(["mean", "size"])
        .round(3)
        .to_dict("index"),
    )
