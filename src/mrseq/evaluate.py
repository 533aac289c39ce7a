"""Evaluate an exported model on the test split through the Predictor: the paper's table with
CIs, breakdowns by vendor, field strength and plane, confusion matrix, calibration, errors."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from mrseq import metrics
from mrseq.ingest import load_saved_volume
from mrseq.predict import Predictor, grid_key, in_contexts, repeated
from mrseq.sequences import CLASSES, OTHER, UNKNOWN

BAND = (300.0, 700.0)  # DWI b-values near the 500 boundary, reported apart
BATCH = 8
GATES = ("confidence", "distance")  # the two reasons for `unknown` (mrseq.records.Gates)


def predict_table(
    predictor: Predictor, interim: Path, table: pd.DataFrame, progress: bool = True
) -> pd.DataFrame:
    """Probabilities for each row of an ingested table (volumes read from interim/)."""
    rows = list(table.itertuples())
    alone, distances, grids = read_outputs(predictor, interim, rows, progress)
    keys = [_context_key(r) for r in rows]
    in_series, in_grid, in_pairs, probs = in_contexts(
        predictor.classes, alone, keys, grids, _pixels(interim, rows)
    )
    out = table.copy()
    for i, name in enumerate(predictor.classes):
        out[f"p_{name}"] = probs[:, i]
    out["predicted"] = [predictor.classes[i] for i in probs.argmax(1)]
    out["in_repeated_series"] = repeated(keys)
    out["predicted_alone"] = [predictor.classes[i] for i in alone.argmax(1)]
    out["predicted_in_series"] = [predictor.classes[i] for i in in_series.argmax(1)]
    out["predicted_in_grid"] = [predictor.classes[i] for i in in_grid.argmax(1)]
    out["predicted_in_pairs"] = [predictor.classes[i] for i in in_pairs.argmax(1)]
    out["confidence"] = probs.max(1)
    out["distance"] = distances
    # what a user is told: the unknown gates applied (evaluation of the six outputs uses argmax),
    # and which gate closed, so the report can show what each one adds
    gates = predictor.gates()
    out["unknown_by"] = [
        gates.closed_by(c, d) for c, d in zip(out["confidence"], distances, strict=True)
    ]
    out["answer"] = np.where(out["unknown_by"] != "", UNKNOWN, out["predicted"])
    return out


def read_outputs(predictor: Predictor, interim: Path, rows: list, progress: bool = True):
    """(probabilities of each volume alone, feature distances, `grid_key`s) for ingested rows,
    each volume read once from interim/."""
    probs, distances, grids = [np.zeros((0, len(predictor.classes)))], [np.zeros(0)], []
    with tqdm(total=len(rows), desc="evaluate", unit="vol", disable=not progress) as bar:
        for start in range(0, len(rows), BATCH):
            part = rows[start : start + BATCH]
            chunk = [load_saved_volume(interim / r.file) for r in part]
            p, d = predictor.predict_outputs(chunk, batch_size=BATCH)
            probs.append(p)
            distances.append(d)
            grids += [_grid_key(r, a.shape, m) for r, (a, m) in zip(part, chunk, strict=True)]
            bar.update(len(chunk))
    return np.concatenate(probs), np.concatenate(distances), grids


def _pixels(interim: Path, rows: list):
    """i -> volume i's pixels, read again from interim/ (a grid group at a time: a small cache)."""

    @lru_cache(maxsize=8)
    def pixels(i: int) -> np.ndarray:
        return load_saved_volume(interim / rows[i].file)[0]

    return pixels


def _grid_key(row, shape, affine):
    """`grid_key` as Predictor.in_context makes it from the DICOM headers."""
    study = getattr(row, "study_uid", None)
    return grid_key(None if pd.isna(study) else str(study), shape, affine)


def _context_key(row):
    """(series UID, image type) as Predictor.in_context groups volumes; None without them."""
    uid = getattr(row, "series_uid", None)
    return None if pd.isna(uid) else (uid, str(getattr(row, "image_type", "")))


def band_of(pred: pd.DataFrame) -> pd.Series:
    """'b300-700' for DWI volumes whose (true) b-value lies in BAND, else 'rest'."""
    b = pred["true_b_value"] if "true_b_value" in pred else pred["b_value"]
    b = pd.to_numeric(b, errors="coerce")
    dwi = pred["label"].isin(["DWI_Low", "DWI_High"])
    inside = dwi & (b >= BAND[0]) & (b <= BAND[1])
    return inside.map({True: f"b{BAND[0]:g}-{BAND[1]:g}", False: "rest"})


def _bands(pred: pd.DataFrame, classes: list[str]) -> dict:
    out = {}
    for band, part in pred.groupby(band_of(pred)):
        est, low, high = metrics.wilson(int((part.label == part.predicted).sum()), len(part))
        per_class = {}
        for name, rows in part.groupby("label"):
            right = int((rows.predicted == name).sum())
            e, lo, hi = metrics.wilson(right, len(rows))
            per_class[name] = {"n": len(rows), "sensitivity": metrics.entry(e, (lo, hi))}
        out[band] = {
            "n": len(part),
            "accuracy": metrics.entry(est, (low, high)),
            "per_class": per_class,
        }
    return out


def _share(hits: pd.Series) -> dict:
    est, low, high = metrics.wilson(int(hits.sum()), len(hits))
    return {"n": len(hits), **metrics.entry(est, (low, high))}


def routing(pred: pd.DataFrame, rejected: pd.DataFrame | None = None, held_out=()) -> dict:
    """What a router fed by the model sees: target series answered right, target series sent
    to other/unknown, non-target series kept out of the five (ingest rejections with a reason
    count as kept out), per subtype, and how well P(other) separates the two."""
    from sklearn.metrics import roc_auc_score

    answer = pred["answer"] if "answer" in pred else pred["predicted"]
    target = pred["label"].isin(CLASSES)
    kept_out = answer.isin([OTHER, UNKNOWN])
    rejected = rejected if rejected is not None else pd.DataFrame(columns=["label", "subtype"])
    other_rejected = rejected[rejected["label"] == OTHER]
    out = {
        "target_answered_right": _share((answer == pred["label"])[target]),
        "target_sent_to_other_or_unknown": _share(kept_out[target]),
        "target_unknown": int((answer[target] == UNKNOWN).sum()),
        "unknown_by_gate": _gate_counts(pred, target),
        "non_target_kept_out": _share(
            pd.concat([kept_out[~target], pd.Series([True] * len(other_rejected))])
        ),
        "non_target_rejected_by_ingest": len(other_rejected),
        "target_rejected_by_ingest": int((rejected["label"] != OTHER).sum()),
        "by_subtype": {},
    }
    if target.any() and (~target).any() and f"p_{OTHER}" in pred:
        out["detection_auroc"] = round(float(roc_auc_score(~target, pred[f"p_{OTHER}"])), 4)
    subtypes = pred["subtype"].fillna("") if "subtype" in pred else pd.Series("", pred.index)
    for name in sorted(set(subtypes[~target]) | set(other_rejected.get("subtype", []))):
        rows = ~target & (subtypes == name)
        n_rej = int((other_rejected["subtype"] == name).sum())
        hits = pd.concat([kept_out[rows], pd.Series([True] * n_rej)])
        answers = answer[rows].value_counts().to_dict()
        if n_rej:
            answers["rejected by ingest"] = n_rej
        out["by_subtype"][name or "?"] = {
            **_share(hits),
            "held_out": name in held_out,
            "answers": answers,
        }
    return out


def _gate_counts(pred: pd.DataFrame, target: pd.Series) -> dict:
    """How many target and non-target series each unknown gate stopped."""
    by = pred["unknown_by"] if "unknown_by" in pred else pd.Series("", pred.index)
    return {
        gate: {
            "target": int((by[target] == gate).sum()),
            "non_target": int((by[~target] == gate).sum()),
        }
        for gate in GATES
    }


def print_routing(r: dict) -> None:
    for key in ("target_answered_right", "target_sent_to_other_or_unknown", "non_target_kept_out"):
        print(f"{key:<32} {r[key]['value']:.3f} {r[key]['ci95']} n={r[key]['n']}")
    print(
        f"detection AUROC {r.get('detection_auroc')}; ingest rejected "
        f"{r['non_target_rejected_by_ingest']} non-target, {r['target_rejected_by_ingest']} target"
    )
    print(f"unknown by gate: {r.get('unknown_by_gate')}")
    for name, row in r["by_subtype"].items():
        tag = " (held out)" if row["held_out"] else ""
        print(f"  {name + tag:<22} kept out {row['value']:.3f} n={row['n']} {row['answers']}")


def report(
    pred: pd.DataFrame,
    classes: list[str],
    bootstrap: int,
    seed: int,
    rejected: pd.DataFrame | None = None,
    held_out=(),
) -> dict:
    y = np.array([classes.index(c) for c in pred["label"]])
    yhat = np.array([classes.index(c) for c in pred["predicted"]])
    ece, _ = metrics.expected_calibration_error(pred["confidence"], y == yhat)
    out = {
        "overall": metrics.overall(y, yhat, len(classes), bootstrap, seed),
        "per_class": metrics.per_class(y, yhat, classes, bootstrap, seed),
        "ece": round(ece, 4),
        "confidence_auroc": metrics.confidence_auroc(pred["confidence"], y == yhat),
        "bands": _bands(pred, classes),
        "routing": routing(pred, rejected, tuple(held_out)),
        "series_context": series_context(pred),
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


def series_context(pred: pd.DataFrame) -> dict:
    """What the series context (mrseq.predict.in_series_context), then the grid context
    (in_grid_context), then the diffusion pairs (in_pair_context), then the ADC evidence
    (in_adc_context) did: six-class accuracy of the argmax with all, with the series context
    alone and of each volume alone, and the answers each changed."""
    if "predicted_alone" not in pred:
        return {}
    in_series = pred.get("predicted_in_series", pred.predicted)
    in_grid = pred.get("predicted_in_grid", pred.predicted)
    in_pairs = pred.get("predicted_in_pairs", in_grid)
    return {
        "volumes_in_repeated_series": int(pred.in_repeated_series.sum()),
        **_changed(pred.label, pred.predicted_alone, in_series),
        "accuracy": round(float((pred.predicted == pred.label).mean()), 4),
        "accuracy_series_context": round(float((in_series == pred.label).mean()), 4),
        "accuracy_volume_alone": round(float((pred.predicted_alone == pred.label).mean()), 4),
        "grid_context": _changed(pred.label, in_series, in_grid),
        "diffusion_pairs": _changed(pred.label, in_grid, in_pairs),
        "adc_evidence": _changed(pred.label, in_pairs, pred.predicted),
    }


def _changed(label: pd.Series, before: pd.Series, after: pd.Series) -> dict:
    changed = before != after
    return {
        "answers_changed": int(changed.sum()),
        "changed_to_right": int((changed & (after == label)).sum()),
        "changed_to_wrong": int((changed & (before == label)).sum()),
    }


def evaluate_cohort(
    predictor,
    interim: Path,
    table: pd.DataFrame,
    rejected: pd.DataFrame,
    params: dict,
    out: tuple[Path, Path],
    name: str = "test",
) -> dict:
    """One cohort (labelled volumes + the series ingest turned down) through the Predictor:
    the report, written to (metrics folder, plots folder) as NAME.*; the routing printed."""
    pred = predict_table(predictor, interim, table)
    p = params["evaluate"]
    held_out = params["other"]["held_out"]
    args = (int(p["bootstrap"]), int(p["seed"]), rejected, held_out)
    result = report(pred, predictor.classes, *args)
    write_outputs(pred, result, predictor.classes, *out, name)
    print_routing(result["routing"])
    return result


def write_outputs(
    pred: pd.DataFrame,
    result: dict,
    classes: list[str],
    metrics_dir: Path,
    plots_dir: Path,
    name: str = "test",
) -> None:
    """NAME.json, NAME_predictions.csv, misclassified and plots (test: the historic names)."""
    metrics_dir.mkdir(parents=True, exist_ok=True)
    plots_dir.mkdir(parents=True, exist_ok=True)
    prefix = "" if name == "test" else f"{name}_"
    (metrics_dir / f"{name}.json").write_text(json.dumps(result, indent=2))
    pred.to_csv(metrics_dir / f"{name}_predictions.csv", index=False)
    wrong = pred[pred.label != pred.predicted]
    keep = [
        "volume_id",
        "patient_id",
        "manufacturer",
        "plane",
        "b_value",
        "series_description",
        "label",
        "subtype",
        "predicted",
        "answer",
        "confidence",
        *[f"p_{c}" for c in classes],
    ]
    keep = [c for c in keep if c in pred]  # subtype: only where the labels file has one
    wrong[keep].to_csv(metrics_dir / f"{prefix}misclassified.csv", index=False)
    pred[["label", "predicted"]].rename(columns={"label": "actual"}).to_csv(
        plots_dir / f"{prefix}confusion.csv", index=False
    )
    _confusion_png(pred, classes, plots_dir / f"{prefix}confusion.png", name)
    _reliability_png(pred, classes, plots_dir / f"{prefix}reliability.png", name)


def _confusion_png(pred: pd.DataFrame, classes: list[str], path: Path, name: str) -> None:
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
    ax.set_title(f"{name}, n={len(pred)}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _reliability_png(pred: pd.DataFrame, classes: list[str], path: Path, name: str) -> None:
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
    ax.set_title(f"reliability, {name}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
