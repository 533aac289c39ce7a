"""How the answer depends on how much of the body a series covers along its slice axis.

Short coverage is a nuisance (localisers and DCE cover little, but so do many real DWI slabs),
so a model that sends short target series to other/unknown has learned coverage as a shortcut.
Reads one or more `*_predictions.csv` (what the evaluate and benchmark stages write) and prints a
markdown table: per coverage bin, the number of target series, the share answered right and the
share sent to other/unknown; and the share of non-target series kept out of the five.

Usage: python bench/coverage.py metrics/benchmark_predictions.csv [OLD.csv ...]
"""

from __future__ import annotations

import sys

import pandas as pd

from mrseq.sequences import CLASSES, OTHER, UNKNOWN

BINS_MM = (0, 40, 60, 80, 100, 1000)
REJECTED = (OTHER, UNKNOWN)


def coverage_mm(frame: pd.DataFrame) -> pd.Series:
    """Slice spacing × slice count: the extent along the slice axis."""
    spacing_z = frame["spacing"].str.split("x").str[2].astype(float)
    return spacing_z * frame["n_slices"].astype(float)


def by_bin(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.assign(
        bin=pd.cut(coverage_mm(frame), BINS_MM, right=False),
        target=frame["label"].isin(CLASSES),
        right=frame["answer"] == frame["label"],
        rejected=frame["answer"].isin(REJECTED),
    )
    targets = frame[frame["target"]].groupby("bin", observed=False)
    others = frame[~frame["target"]].groupby("bin", observed=False)
    return pd.DataFrame(
        {
            "targets": targets.size(),
            "right": targets["right"].mean(),
            "to other/unknown": targets["rejected"].mean(),
            "non-targets": others.size(),
            "kept out": others["rejected"].mean(),
        }
    )


def table(paths: list[str]) -> str:
    """One column group per file, numbered [1], [2], ... in the order given."""
    parts = [by_bin(pd.read_csv(path, dtype=str, keep_default_na=False)) for path in paths]
    legend = [f"[{i}] {path}" for i, path in enumerate(paths, 1)]
    names = [f"{c} [{i}]" for i, part in enumerate(parts, 1) for c in part]
    lines = ["| coverage (mm) | " + " | ".join(names) + " |", "|---" * (1 + len(names)) + "|"]
    for interval in parts[0].index:
        cells = [_cell(part.loc[interval, c]) for part in parts for c in part]
        lines.append(f"| {interval.left:g}–{interval.right:g} | " + " | ".join(cells) + " |")
    return "\n".join(legend + [""] + lines)


def _cell(value) -> str:
    if pd.isna(value):
        return "—"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    print(table(sys.argv[1:] or ["metrics/benchmark_predictions.csv"]))
