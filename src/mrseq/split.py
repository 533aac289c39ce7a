"""Patient-level, class-stratified train/val/test split (no patient in two splits)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def split_patients(index: pd.DataFrame, fractions=(0.8, 0.1, 0.1), seed: int = 0) -> dict:
    """{'train'|'val'|'test': [volume_id, ...]} grouped by patient, stratified by class.

    StratifiedGroupKFold with 1/min(fraction) folds: whole folds go to val and test, the rest
    to train, so class proportions match across splits as closely as patients allow.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    train, val, test = fractions
    if not np.isclose(train + val + test, 1.0) or min(fractions) <= 0:
        raise ValueError(f"split fractions must be positive and sum to 1, got {fractions}")
    n_folds = int(round(1 / min(val, test)))
    patients = index["patient_id"].nunique()
    if patients < n_folds:
        raise ValueError(f"need at least {n_folds} patients to split, have {patients}")
    folds = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    parts = [idx for _, idx in folds.split(index, index["label"], groups=index["patient_id"])]
    n_val, n_test = max(1, round(val * n_folds)), max(1, round(test * n_folds))
    ids = index["volume_id"].to_numpy()
    pick = lambda fs: sorted(ids[np.concatenate(fs)].tolist())  # noqa: E731
    return {
        "test": pick(parts[:n_test]),
        "val": pick(parts[n_test : n_test + n_val]),
        "train": pick(parts[n_test + n_val :]),
    }


def hold_out(splits: dict, index: pd.DataFrame, subtypes) -> dict:
    """Volumes of the held-out non-target subtypes stay in test only: never trained, never
    used for early stopping, temperature or the unknown threshold."""
    if "subtype" not in index or not subtypes:
        return splits
    held = set(index.loc[index["subtype"].isin(list(subtypes)), "volume_id"])
    return {k: v if k == "test" else [i for i in v if i not in held] for k, v in splits.items()}
