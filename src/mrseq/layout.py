"""File names inside the stage outputs: spelled here once.

dvc.yaml names the stage folders (its paths are arguments of the stage scripts); the files
each folder holds are named here, and a test checks that every file dvc.yaml points into a
stage folder is one of these names, so the two cannot drift apart.
"""

from __future__ import annotations

# simulate (data/raw) or your own DICOM tree
LABELS_CSV = "labels.csv"  # ground truth: series_uid, label (b_value, phase, subtype...)

# ingest (data/interim, data/benchmark/interim)
SERIES_CSV = "series.csv"  # every volume found, with its header fields
LABELLED_CSV = "labelled.csv"  # the volumes joined with their ground-truth labels
REJECTED_CSV = "rejected.csv"  # labelled series that became no volume, with the reason
VOLUMES_DIR = "volumes"

# preprocess and synthesize (data/processed, data/synthetic): the same layout
INDEX_CSV = "index.csv"  # one row per model-grid array: labels and the array's file
ARRAYS_DIR = "arrays"
SPEC_JSON = "preprocess_spec.json"  # the PreprocessSpec the arrays were made with

# train (models/train)
CONFIG_JSON = "config.json"  # params plus the sweep's winner: the trained architecture
CHECKPOINT = "best.ckpt"
HISTORY_CSV = "history.csv"

# tune (reports/tune)
TRIALS_CSV = "trials.csv"
BEST_JSON = "best.json"


def array_file(volume_id: str) -> str:
    """An array's path relative to its folder, as index.csv stores it."""
    return f"{ARRAYS_DIR}/{volume_id}.npy"
