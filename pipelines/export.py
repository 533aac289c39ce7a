"""Stage export: TorchScript + model_spec.json (preprocessing travels with the weights)."""

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from _common import setup
from mrseq.export import (
    FlipAveraged,
    distance_threshold,
    export_model,
    file_md5,
    fit_feature_gaussians,
    fit_temperature,
    nearest_distance,
    penultimate_features,
    unknown_threshold,
)
from mrseq.layout import INDEX_CSV
from mrseq.params import stage_params
from mrseq.preprocess import load_spec
from mrseq.sequences import MODEL_CLASSES
from mrseq.training import load_classifier, synthetic_split


def forward_parts(net, parts: list[tuple[Path, pd.DataFrame]]):
    """(logits, penultimate features, labels) of the volumes: (folder, rows) per source."""
    logits, features, labels = [], [], []
    with torch.no_grad():
        for folder, rows in parts:
            for start in range(0, len(rows), 16):
                chunk = rows.iloc[start : start + 16]
                x = torch.from_numpy(
                    np.stack([np.load(folder / f).astype(np.float32) for f in chunk.array])
                )
                out, feats = penultimate_features(net.eval(), x)
                logits.append(out)
                features.append(feats)
            labels += [MODEL_CLASSES.index(c) for c in rows.label]
    if not labels:
        return (
            torch.zeros(0, len(MODEL_CLASSES)),
            torch.zeros(0, 1),
            torch.zeros(0, dtype=torch.long),
        )
    return torch.cat(logits), torch.cat(features), torch.tensor(labels)


def split_parts(index, folder: Path, ids, synthetic: str | None, train_cfg: dict, which: int):
    """A DICOM split plus the synthetic patients on the same side (which: 0 train, 1 the
    share training held out for validation, train.synthetic_val_fraction)."""
    parts = [(folder, index[index.volume_id.isin(set(ids))])]
    if synthetic:
        extra = pd.read_csv(Path(synthetic) / INDEX_CSV)
        fraction = float(train_cfg.get("synthetic_val_fraction", 0.0))
        parts.append(
            (Path(synthetic), synthetic_split(extra, fraction, int(train_cfg["seed"]))[which])
        )
    return parts


def distance_gate(net, train_parts, val_features, val_labels, rate: float) -> dict | None:
    """Class centres and covariance from the training volumes' features; the threshold from
    validation (features the fit never saw), like the confidence threshold."""
    if rate <= 0:  # no gate: skip the forward pass over every training volume
        return None
    _, features, labels = forward_parts(net, train_parts)
    if not len(labels):
        return None
    means, precision = fit_feature_gaussians(features.numpy(), labels.numpy())
    gate = {"means": means, "precision": precision, "fitted_on": len(labels)}
    as_t = torch.from_numpy
    distances = nearest_distance(val_features.double(), as_t(means), as_t(precision)).numpy()
    gate["unknown_beyond"] = distance_threshold(distances, val_labels, MODEL_CLASSES, rate)
    return gate if np.isfinite(gate["unknown_beyond"]) else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--config", required=True, help="config.json written by training")
    parser.add_argument("--train-metrics", required=True)
    parser.add_argument("--index", required=True, help="processed index.csv")
    parser.add_argument("--splits", required=True)
    parser.add_argument("--synthetic", help="synthesize-stage folder (its validation patients)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    setup()
    params = stage_params("export")
    spec = load_spec(Path(args.index).parent)  # what the arrays were made with, as it is
    config = json.loads(Path(args.config).read_text())
    net = load_classifier(args.checkpoint, config["model"]).net
    flip = bool(params["export"]["flip_average"])
    if flip:
        net = FlipAveraged(net)
    model_params = {**config["model"], "flip_average": flip}
    index = pd.read_csv(args.index)
    splits = json.loads(Path(args.splits).read_text())
    training = {
        "validation": json.loads(Path(args.train_metrics).read_text()),
        "counts": {
            s: index[index.volume_id.isin(ids)].label.value_counts().to_dict()
            for s, ids in splits.items()
        },
        "vendors": index.manufacturer.value_counts().to_dict(),
    }
    fingerprints = {
        "processed_index_md5": file_md5(args.index),
        "splits_md5": file_md5(args.splits),
    }
    cfg = config["train"]
    folder = Path(args.index).parent
    val_parts = split_parts(index, folder, splits["val"], args.synthetic, cfg, 1)
    logits, features, labels = forward_parts(net, val_parts)
    temperature = fit_temperature(logits, labels) if len(labels) else 1.0
    probs = torch.softmax(logits / temperature, dim=1).numpy()
    rate = float(params["other"]["target_rejection"])
    threshold = unknown_threshold(probs, labels.numpy(), MODEL_CLASSES, rate)
    train_parts = split_parts(index, folder, splits["train"], args.synthetic, cfg, 0)
    distance_rate = float(params["other"]["distance_rejection"])
    gate = distance_gate(net, train_parts, features, labels.numpy(), distance_rate)
    export_model(
        net, spec, args.out, model_params, training, fingerprints, temperature, threshold, gate
    )
    beyond = f"{gate['unknown_beyond']:.2f}" if gate else "no gate"
    print(
        f"exported to {args.out}: softmax temperature {temperature:.3f}, unknown below "
        f"{threshold:.3f} (target series rejected on validation <= {rate:g}) or beyond feature "
        f"distance {beyond} (<= {distance_rate:g}), fitted on {len(labels)} validation volumes"
    )


if __name__ == "__main__":
    main()
