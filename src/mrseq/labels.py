"""Join ground-truth labels (labels.csv) to ingested volumes (series.csv).

A labels row names a series and, for diffusion series holding several b-values, the b-value.
Real users supply the same CSV (series_uid, b_value optional, label) for their own archive.
"""

from __future__ import annotations

import pandas as pd

from mrseq.sequences import CLASSES


def _b_key(value) -> str:
    if value is None or value == "" or (isinstance(value, float) and pd.isna(value)):
        return ""
    return f"{float(value):g}"


def attach_labels(series: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """series.csv rows with a `label` column; rows without a label are dropped, loudly.

    Matches on (series_uid, b_value) first, then on series_uid alone when the labels file has
    exactly one row for that series (b-value absent or stripped from the headers).
    """
    bad = sorted(set(labels["label"]) - set(CLASSES))
    if bad:
        raise ValueError(f"labels file has unknown classes {bad}; expected {list(CLASSES)}")
    labels = labels.assign(
        series_uid=labels["series_uid"].astype(str),
        b_key=labels.get("b_value", pd.Series([""] * len(labels))).map(_b_key),
    )
    exact = {(r.series_uid, r.b_key): r.label for r in labels.itertuples()}
    per_series = labels.groupby("series_uid")["label"].agg(list)
    single = {uid: labs[0] for uid, labs in per_series.items() if len(labs) == 1}

    def find(row) -> str | None:
        key = (str(row.series_uid), _b_key(row.b_value))
        return exact.get(key) or single.get(str(row.series_uid))

    out = series.copy()
    out["label"] = [find(r) for r in series.itertuples()]
    missing = out["label"].isna()
    if missing.any():
        import logging

        logging.getLogger(__name__).warning(
            "%d volumes have no label and are left out, e.g. %s",
            int(missing.sum()),
            out.loc[missing, "volume_id"].iloc[0],
        )
    return out[~missing].reset_index(drop=True)
