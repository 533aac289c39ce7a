"""Stage export: TorchScript + model_spec.json (preprocessing travels with the weights)."""

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from _common import setup
from mrseq.export import export_model, file_md5, fit_temperature, unknown_threshold
from mrseq.params import stage_params
from mrseq.preprocess import PreprocessSpec
from mrseq.sequences import MODEL_CLASSES
from mrseq.training import load_classifier, synthetic_split


def validation_logits(net, parts: list[tuple[Path, pd.DataFrame]]):
    """(logits, labels) of the validation volumes: (folder, rows) per source."""
    logits, labels = [], []
    with torch.no_grad():
        for folder, rows in parts:
            for start in range(0, len(rows), 16):
                chunk = rows.iloc[start : start + 16]
                x = np.stack([np.load(folder / f).astype(np.float32) for f in chunk.array])
                logits.append(net.eval()(torch.from_numpy(x)))
            labels += [MODEL_CLASSES.index(c) for c in rows.label]
    if not labels:
        return torch.zeros(0, len(MODEL_CLASSES)), torch.zeros(0, dtype=torch.long)
    return torch.cat(logits), torch.tensor(labels)


def validation_parts(index, folder: Path, val_ids, synthetic: str | None, train_cfg: dict):
    """The DICOM validation split plus the synthetic patients training held out for validation
    (train.synthetic_val_fraction): one scalar fitted on hundreds of volumes, not dozens."""
    parts = [(folder, index[index.volume_id.isin(set(val_ids))])]
    if synthetic:
        extra = pd.read_csv(Path(synthetic) / "index.csv")
        fraction = float(train_cfg.get("synthetic_val_fraction", 0.0))
        parts.append((Path(synthetic), synthetic_split(extra, fraction, int(train_cfg["seed"]))[1]))
    return parts


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
    spec = PreprocessSpec.from_dict(params["preprocess"])
    config = json.loads(Path(args.config).read_text())
    model_params = config["model"]
    net = load_classifier(args.checkpoint, model_params).net
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
    parts = validation_parts(
        index, Path(args.index).parent, splits["val"], args.synthetic, config["train"]
    )
    logits, labels = validation_logits(net, parts)
    temperature = fit_temperature(logits, labels) if len(labels) else 1.0
    probs = torch.softmax(logits / temperature, dim=1).numpy()
    rate = float(params["other"]["target_rejection"])
    threshold = unknown_threshold(probs, labels.numpy(), MODEL_CLASSES, rate)
    export_model(net, spec, args.out, model_params, training, fingerprints, temperature, threshold)
    print(
        f"exported to {args.out}: softmax temperature {temperature:.3f} and unknown below "
        f"{threshold:.3f} (target series rejected on validation <= {rate:g}), fitted on "
        f"{len(labels)} validation volumes"
    )


if __name__ == "__main__":
    main()
