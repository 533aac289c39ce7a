"""Shortcut audit: can anything but tissue contrast tell the classes apart?

Patient-grouped cross-validation of simple classifiers on (a) geometry alone and (b) the
intensity histogram after per-volume normalisation. Geometry may separate T2 from diffusion
(that is physics: DWI is acquired coarser) but must not separate fat-suppressed from not, nor
low b from high b from ADC; with the paper's class mix that caps geometry near 0.45-0.55.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mrseq.ingest import load_saved_volume
from mrseq.labels import attach_labels
from mrseq.layout import SERIES_CSV
from mrseq.preprocess import normalise
from mrseq.sequences import CLASSES

HISTOGRAM_BINS = 32
GEOMETRY_LIMIT = 0.55


def geometry_features(table: pd.DataFrame) -> np.ndarray:
    shape = np.array([[int(v) for v in s.split("x")] for s in table["shape"]], dtype=float)
    spacing = np.array([[float(v) for v in s.split("x")] for s in table["spacing"]])
    planes = pd.get_dummies(table["plane"]).reindex(
        columns=["axial", "sagittal", "coronal", "oblique"], fill_value=False
    )
    fov = shape * spacing
    return np.column_stack([shape, spacing, fov, planes.to_numpy(dtype=float)])


def histogram_features(interim: Path, table: pd.DataFrame) -> np.ndarray:
    rows = []
    for file in table["file"]:
        array, _ = load_saved_volume(interim / file)
        norm = normalise(torch.from_numpy(np.asarray(array, np.float32)), 0.5, 99.5).numpy()
        hist, _ = np.histogram(norm, bins=HISTOGRAM_BINS, range=(0, 1))
        rows.append(hist / hist.sum())
    return np.array(rows)


def grouped_accuracy(features: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> float:
    """Mean accuracy of a random forest over patient-grouped folds."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import GroupKFold, cross_val_score

    folds = min(5, len(np.unique(groups)))
    model = RandomForestClassifier(n_estimators=200, random_state=0, n_jobs=1)
    scores = cross_val_score(model, features, labels, groups=groups, cv=GroupKFold(folds))
    return float(np.mean(scores))


def audit_shortcuts(interim_dir: str | os.PathLike, labels_csv: str | os.PathLike) -> dict:
    interim = Path(interim_dir)
    table = attach_labels(pd.read_csv(interim / SERIES_CSV), pd.read_csv(labels_csv))
    # The five target classes only: a DCE or localiser may well differ in geometry (as on
    # scanners); what must not is T2 from DWI from ADC within the targets.
    table = table[table["label"].isin(CLASSES)].reset_index(drop=True)
    labels, groups = table["label"].to_numpy(), table["patient_id"].to_numpy()
    majority = float(table["label"].value_counts(normalize=True).iloc[0])
    geometry = grouped_accuracy(geometry_features(table), labels, groups)
    histogram = grouped_accuracy(histogram_features(interim, table), labels, groups)
    return {
        "volumes": len(table),
        "patients": int(table["patient_id"].nunique()),
        "majority_class_accuracy": round(majority, 3),
        "geometry_only_accuracy": round(geometry, 3),
        "geometry_limit": GEOMETRY_LIMIT,
        "geometry_ok": geometry <= GEOMETRY_LIMIT,
        "histogram_only_accuracy": round(histogram, 3),
    }
