"""Evaluate an exported model on the test split through the Predictor: the paper's table with
CIs, breakdowns by vendor, field strength and plane, confusion matrix, calibration, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from mrseq import metrics
from mrseq.ingest import load_saved_volume
from mrseq.predict import Predictor


def predict_table(
    predictor: Predictor, interim: Path, table: pd.DataFrame, progress: bool = True
) -> pd.DataFrame:
    """Probabilities for each row of an ingested table (volumes read from interim/)."""
    probs = []
    for row in tqdm(list(table.itertuples()), desc="evaluate", unit="vol", disable=not progress):
        array, affine = load_saved_volume(interim / row.file)
        probs.append(predictor.predict_arrays([(array, affine)])[0])
    probs = np.array(probs).reshape(len(table), len(predictor.classes))
    out = table.copy()
    for i, name in enumerate(predictor.classes):
        out[f"p_{name}"] = probs[:, i]
    out["predicted"] = [predictor.classes[i] for i in probs.argmax(1)]
    out["confidence"] = probs.max(1)
    return out


def report(pred: pd.DataFrame, classes: list[str], bootstrap: int, seed: int) -> dict:
    y = np.array([classes.index(c) for c in pred["label"]])
    yhat = np.array([classes.index(c) for c in pred["predicted"]])
    ece, _ = metrics.expected_calibration_error(pred["confidence"], y == yhat)
    out = {
        "overall": metrics.overall(y, yhat, len(classes), bootstrap, seed),
        "per_class": metrics.per_class(y, yhat, classes, bootstrap, seed),
        "ece": round(ece, 4),
        "breakdown": {},
    }
    for column in ("manufacturer", "field_strength", "plane"):
        out["breakdown"][column] = {
            str(key): {
                "n": len(part),
                "accuracy": round(float((part.label == part.predicted).mean()), 4),
            }
            for key, part in pred.groupby(column)
        }
    return out


def write_outputs(
    pred: pd.DataFrame, result: dict, classes: list[str], metrics_dir: Path, plots_dir: Path
) -> None:
    metrics_dir.mkdir(parents=True, exist_ok=True)
    plots_dir.mkdir(parents=True, exist_ok=True)
    (metrics_dir / "test.json").write_text(json.dumps(result, indent=2))
    pred.to_csv(metrics_dir / "test_predictions.csv", index=False)
    wrong = pred[pred.label != pred.predicted]
    keep = [
        "volume_id",
        "patient_id",
        "manufacturer",
        "plane",
        "b_value",
        "series_description",
        "label",
        "predicted",
        "confidence",
        *[f"p_{c}" for c in classes],
    ]
    wrong[keep].to_csv(metrics_dir / "misclassified.csv", index=False)
    pred[["label", "predicted"]].rename(columns={"label": "actual"}).to_csv(
        plots_dir / "confusion.csv", index=False
    )
    _confusion_png(pred, classes, plots_dir / "confusion.png")
    _reliability_png(pred, classes, plots_dir / "reliability.png")


def _confusion_png(pred: pd.DataFrame, classes: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y = [classes.index(c) for c in pred.label]
    yhat = [classes.index(c) for c in pred.predicted]
    m = metrics.confusion(np.array(y), np.array(yhat), len(classes))
    fig, ax = plt.subplots(figsize=(5.5, 4.8))
    ax.imshow(m, cmap="Blues")
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(
                j,
                i,
                m[i, j],
                ha="center",
                va="center",
                color="white" if m[i, j] > m.max() / 2 else "black",
            )
    ax.set_xticks(range(len(classes)), classes, rotation=30)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("truth")
    ax.set_title(f"test split, n={len(pred)}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _reliability_png(pred: pd.DataFrame, classes: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ece, table = metrics.expected_calibration_error(pred.confidence, pred.label == pred.predicted)
    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect")
    if table:
        ax.plot(
            [t["confidence"] for t in table],
            [t["accuracy"] for t in table],
            "o-",
            label=f"model (ECE {ece:.3f})",
        )
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower right")
    ax.set_title("reliability, test split")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
