"""A grid of mid-slices per class, across patients and vendors, to judge realism at a glance."""

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
from mrseq.sequences import MODEL_CLASSES


def _mid_slice(path: Path) -> np.ndarray:
    array, _ = load_saved_volume(path)
    plane = array[:, :, array.shape[2] // 2].T  # rows down, columns across, as on a viewer
    return normalise(torch.from_numpy(np.asarray(plane, np.float32)), 1, 99.5).numpy()


def _pick(table: pd.DataFrame, label: str, n: int) -> pd.DataFrame:
    rows = table[table.label == label]
    # Spread over vendors first, then patients.
    rows = rows.sort_values(["manufacturer", "patient_id"]).groupby("manufacturer").head(n)
    return rows.sample(min(n, len(rows)), random_state=0).sort_values("manufacturer")


def montage(
    interim_dir: str | os.PathLike,
    labels_csv: str | os.PathLike,
    out_png: str | os.PathLike,
    per_class: int = 6,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    interim = Path(interim_dir)
    table = attach_labels(pd.read_csv(interim / SERIES_CSV), pd.read_csv(labels_csv))
    fig, axes = plt.subplots(
        len(MODEL_CLASSES), per_class, figsize=(2.2 * per_class, 2.4 * len(MODEL_CLASSES))
    )
    for r, label in enumerate(MODEL_CLASSES):
        rows = list(_pick(table, label, per_class).itertuples())
        for c in range(per_class):
            ax = axes[r, c]
            ax.axis("off")
            if c < len(rows):
                row = rows[c]
                ax.imshow(_mid_slice(interim / row.file), cmap="gray")
                b = f" b{row.b_value:g}" if pd.notna(row.b_value) and row.b_value != "" else ""
                ax.set_title(f"{row.manufacturer.split()[0]} {row.plane[:3]}{b}", fontsize=7)
        axes[r, 0].text(
            -0.08,
            0.5,
            label,
            transform=axes[r, 0].transAxes,
            rotation=90,
            ha="right",
            va="center",
            fontsize=10,
        )
    fig.tight_layout()
    Path(out_png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=90)
    plt.close(fig)
