"""Is the model generalisation-limited or fit-limited? Its accuracy on its own training volumes.

A diagnostic, not a test result: the trained net reads a sample of the synthetic volumes it
trained on (the training side of `synthetic_split`, the same patients the final fit used) as
they are and through the training augmentation (the loader's MONAI transforms and the whole-batch
stage, seeded), and a sample of the synthetic validation patients it never trained on. If the
training volumes score far above validation, the gap is generalisation (more data, more
augmentation); if they score about the same, the net cannot fit its own data, and the errors
left are either ambiguity in the images (no pixel evidence for the label) or an optimisation
or capacity limit — in both cases more data of the same kind does not help.

Printed and written (reports/fit/fit_ceiling.json): accuracy and per-class sensitivity per
reading; the training volumes' confusion; DWI sensitivity by b-value; `other` by subtype;
DWI_Low at b <= 150 by quartile of its residual fat and of its SNR.

Usage: python bench/fit_ceiling.py [--volumes 3000] [--checkpoint models/train/best.ckpt]
       [--config models/train/config.json] [--synthetic data/synthetic] [--out reports/fit]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mrseq import layout
from mrseq.augment import BatchAugment
from mrseq.sequences import MODEL_CLASSES
from mrseq.training import build_augment, load_classifier, synthetic_split

B_EDGES = [-1, 0, 50, 150, 300, 400, 499, 600, 700, 900, 1200, 1600, 2100, 5000]


def load_arrays(folder: Path, rows: pd.DataFrame) -> np.ndarray:
    """The rows' volumes as stored (float16), read once for every reading of them."""
    return np.stack([np.load(folder / f) for f in rows.array])


def predict(net, arrays: np.ndarray, strength: float = 0.0) -> np.ndarray:
    """Argmax class names; `strength` > 0 reads them through the training augmentation."""
    per_volume = build_augment(strength) if strength > 0 else None
    if per_volume is not None:
        per_volume.set_random_state(seed=0)
    batch_stage = BatchAugment(strength, seed=0) if strength > 0 else None
    out = []
    with torch.no_grad():
        for start in range(0, len(arrays), 32):
            xs = [torch.from_numpy(v.astype(np.float32)) for v in arrays[start : start + 32]]
            if per_volume is not None:
                xs = [torch.as_tensor(per_volume(v), dtype=torch.float32) for v in xs]
            x = torch.stack(xs)
            if batch_stage is not None:
                x = batch_stage(x)
            out.append(net(x).argmax(1).numpy())
    return np.array(MODEL_CLASSES)[np.concatenate(out)]


def summary(rows: pd.DataFrame, pred: np.ndarray) -> dict:
    labels = rows.label.to_numpy()
    ok = pred == labels
    present = [c for c in MODEL_CLASSES if (labels == c).any()]
    per_class = {c: round(float(ok[labels == c].mean()), 3) for c in present}
    return {"n": len(rows), "accuracy": round(float(ok.mean()), 4), "sensitivity": per_class}


def by_b_value(rows: pd.DataFrame, pred: np.ndarray) -> list[dict]:
    """DWI sensitivity and the wrong answers per b-value bin (by label, lowest bin first)."""
    d = rows.assign(pred=pred)
    d = d[d.label.isin(["DWI_Low", "DWI_High"])]
    d = d.assign(bin=pd.cut(d.true_b_value.astype(float), B_EDGES))
    out = []
    for (label, b), g in d.groupby(["label", "bin"], observed=True):
        wrong = g[g.pred != g.label].pred.value_counts().to_dict()
        out.append(
            {"label": label, "b": str(b), "n": len(g), "sensitivity": _mean(g), "wrong": wrong}
        )
    return out


def _mean(g: pd.DataFrame) -> float:
    return round(float((g.pred == g.label).mean()), 3)


def low_b_by(rows: pd.DataFrame, pred: np.ndarray, column: str) -> list[dict]:
    """DWI_Low at b <= 150 (read as T2WI_fs most often) by quartile of `column`: `fat_residual`
    is the DWI's unsuppressed, chemically shifted fat, an EPI sign a TSE does not have."""
    d = rows.assign(pred=pred)
    d = d[(d.label == "DWI_Low") & (d.true_b_value.astype(float) <= 150)]
    if len(d) < 4:
        return []
    d = d.assign(q=pd.qcut(d[column], 4))  # categorical: groups come lowest first
    return [
        {
            column: str(q),
            "n": len(g),
            "sensitivity": _mean(g),
            "as_T2WI_fs": int((g.pred == "T2WI_fs").sum()),
        }
        for q, g in d.groupby("q", observed=True)
    ]


def by_subtype(rows: pd.DataFrame, pred: np.ndarray) -> dict:
    d = rows.assign(pred=pred)
    d = d[d.label == "other"]
    return {s: {"n": len(g), "kept_out": _mean(g)} for s, g in d.groupby("subtype")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--volumes", type=int, default=3000, help="training volumes sampled")
    parser.add_argument("--checkpoint", default="models/train/best.ckpt")
    parser.add_argument("--config", default="models/train/config.json")
    parser.add_argument("--synthetic", default="data/synthetic")
    parser.add_argument("--out", default="reports/fit")
    args = parser.parse_args()
    torch.set_num_threads(2)
    config = json.loads(Path(args.config).read_text())
    net = load_classifier(args.checkpoint, config["model"]).net.eval()
    folder = Path(args.synthetic)
    index = pd.read_csv(folder / layout.INDEX_CSV)
    t = config["train"]
    train, val = synthetic_split(index, float(t["synthetic_val_fraction"]), int(t["seed"]))
    train = train.sample(min(args.volumes, len(train)), random_state=0)
    arrays = load_arrays(folder, train)
    plain = predict(net, arrays)
    readings = {
        "training volumes": summary(train, plain),
        "training volumes, augmented": summary(
            train, predict(net, arrays, float(t["augment_strength"]))
        ),
        "validation patients (never trained on)": summary(
            val, predict(net, load_arrays(folder, val))
        ),
    }
    confusion = pd.crosstab(train.label, plain)
    result = {
        "checkpoint": args.checkpoint,
        "readings": readings,
        "training_confusion": confusion.to_dict(orient="index"),
        "training_dwi_by_b": by_b_value(train, plain),
        "training_other_by_subtype": by_subtype(train, plain),
        "training_low_b_by_fat": low_b_by(train, plain, "fat_residual"),
        "training_low_b_by_snr": low_b_by(train, plain, "snr"),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "fit_ceiling.json").write_text(json.dumps(result, indent=2) + "\n")
    for name, r in readings.items():
        print(f"{name:40s} n={r['n']:5d} accuracy {r['accuracy']:.3f}  {r['sensitivity']}")
    print(confusion.to_string())
    for r in result["training_dwi_by_b"]:
        print(f"{r['label']:9s} b {r['b']:14s} n={r['n']:4d} {r['sensitivity']:.3f} {r['wrong']}")
    print(json.dumps(result["training_other_by_subtype"]))
    for key in ("training_low_b_by_fat", "training_low_b_by_snr"):
        print(key, json.dumps(result[key]))


if __name__ == "__main__":
    main()
