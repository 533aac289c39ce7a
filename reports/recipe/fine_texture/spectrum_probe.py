"""How much the in-plane spectrum of a volume on the model grid says about DWI_Low vs T2WI_fs.

Ad hoc probe (2026-12-07, eleventh session), no model: for axial DWI_Low and T2WI_fs volumes of
a cohort folder (index.csv + arrays, as the synthesize stage and bench/recipe.py write them),
the log share of in-plane spectral power in eight bands up to the 1.25 mm grid's Nyquist
(0.4 cycles/mm), and the 5-fold cross-validated accuracy of a logistic regression on them.
A 0.6 mm TSE fills the top bands and a 2.5 mm EPI cannot, so if resolution were visible in the
volumes the top bands would separate the two.

Usage: python reports/recipe/fine_texture/spectrum_probe.py FOLDER [FOLDER ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

EDGES = np.array([0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.41])  # cycles/mm, 1.25 mm grid


def bands(volume: np.ndarray) -> np.ndarray:
    """Log share of in-plane (axes 0, 1) spectral power per band, summed over slices."""
    f = np.fft.fftfreq(volume.shape[0], 1.25)
    radius = np.hypot(*np.meshgrid(f, f, indexing="ij"))
    centred = volume - volume.mean(axis=(0, 1))
    power = (np.abs(np.fft.fft2(centred, axes=(0, 1))) ** 2).sum(axis=2)
    per_band = np.array(
        [
            power[(radius >= lo) & (radius < hi)].mean()
            for lo, hi in zip(EDGES[:-1], EDGES[1:], strict=True)
        ]
    )
    return np.log(per_band / per_band.sum() + 1e-12)


def features(folder: Path, n: int = 1500) -> tuple[np.ndarray, np.ndarray]:
    index = pd.read_csv(folder / "index.csv")
    index = index[index.label.isin(["T2WI_fs", "DWI_Low"]) & (index.plane == "axial")]
    index = index.sample(min(n, len(index)), random_state=0)
    x = np.stack([bands(np.load(folder / a)[0].astype(np.float64)) for a in index.array])
    return x, (index.label == "DWI_Low").to_numpy().astype(int)


def main() -> None:
    for name in sys.argv[1:]:
        x, y = features(Path(name))
        accuracy = cross_val_score(LogisticRegression(max_iter=2000), x, y, cv=5).mean()
        print(f"{name}: {len(y)} axial volumes, cross-validated accuracy {accuracy:.3f}")
        for label, flag in (("T2WI_fs", 0), ("DWI_Low", 1)):
            print(f"  {label:8} mean log band share", np.round(x[y == flag].mean(0), 2))


if __name__ == "__main__":
    main()
