"""Join ground-truth labels (labels.csv) to ingested volumes (series.csv).

A labels row names a series and, for diffusion series holding several b-values, the b-value.
Real users supply the same CSV (series_uid, b_value optional, label) for their own archive.
"""

from __future__ import annotations

import pandas as pd

from mrseq.sequences import MODEL_CLASSES


def _b_key(value) -> str:
    if value is None or value == "" or (isinstance(value, float) and pd.isna(value)):
        return ""
    return f"{float(value):g}"


def _column(table: pd.DataFrame, name: str) -> pd.Series:
    return table.get(name, pd.Series([""] * len(table), index=table.index))


def attach_labels(series: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """series.csv rows with a `label` column; rows without a label are dropped, loudly.

    Matches on (series_uid, b_value, phase) first, then on series_uid alone when the labels file
    has exactly one row for that series (b-value absent or stripped from the headers). `phase`
    (a DCE temporal position) is optional in the labels file, as is `b_value`.
    """
    bad = sorted(set(labels["label"]) - set(MODEL_CLASSES))
    if bad:
        raise ValueError(f"labels file has unknown classes {bad}; expected {list(MODEL_CLASSES)}")
    labels = labels.assign(
        series_uid=labels["series_uid"].astype(str),
        b_key=_column(labels, "b_value").map(_b_key),
        phase_key=_column(labels, "phase").map(_b_key),
    )
    exact = {(r.series_uid, r.b_key, r.phase_key): i for i, r in enumerate(labels.itertuples())}
    per_series = labels.groupby("series_uid").indices
    single = {uid: rows[0] for uid, rows in per_series.items() if len(rows) == 1}
    phases = _column(series, "phase")

    def find(row, phase) -> int | None:
        key = (str(row.series_uid), _b_key(row.b_value), _b_key(phase))
        found = exact.get(key)
        return found if found is not None else single.get(str(row.series_uid))

    rows = [find(r, phase) for r, phase in zip(series.itertuples(), phases, strict=True)]
    out = series.copy()
    out["label"] = [None if i is None else labels["label"].iloc[i] for i in rows]
    # Whatever else the labels file knows (the simulator's true b-value, SNR, fat residual...)
    # travels along, so evaluations can report by condition; series.csv columns win.
    skip = {*series.columns, "label", "b_key", "phase_key", "phase"} - {"b_value"}
    extra = [c for c in labels.columns if c not in skip]
    for column in extra:
        name = "true_b_value" if column == "b_value" else column
        out[name] = [None if i is None else labels[column].iloc[i] for i in rows]
    missing = out["label"].isna()
    if missing.any():
        import logging

        logging.getLogger(__name__).warning(
            "%d volumes have no label and are left out, e.g. %s",
            int(missing.sum()),
            out.loc[missing, "volume_id"].iloc[0],
        )
    return out[~missing].reset_index(drop=True)


REJECTED_COLUMNS = ["volume_id", "series_uid", "patient_id", "label", "subtype", "reason"]


def rejected_rows(rejected: dict[str, str], labels: pd.DataFrame) -> pd.DataFrame:
    """The labelled series ingest could not turn into a volume, with the reason (a localiser
    of 1-3 slices is one): nothing is dropped silently, and evaluation counts them."""
    labels = labels.assign(series_uid=labels["series_uid"].astype(str))
    first = labels.drop_duplicates("series_uid").set_index("series_uid")
    rows = []
    for volume_id, why in sorted(rejected.items()):
        uid = volume_id.split("_")[0]  # volume ids are the series UID plus a suffix
        if uid in first.index:
            row = first.loc[uid]
            subtype = row.get("subtype", "")
            rows.append(
                [
                    volume_id,
                    uid,
                    row.get("patient_id", ""),
                    row["label"],
                    "" if pd.isna(subtype) else subtype,
                    why,
                ]
            )
    return pd.DataFrame(rows, columns=REJECTED_COLUMNS)
