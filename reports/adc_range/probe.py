"""Probe: how far apart are the brightest and the typical values of a volume read as a map?

For every volume of one interim cohort: the spread of its positive values, p99 / p50 (unit-free,
so vendor scaling cannot matter; zeros are the maps' masked background). Prints the spread per
label/subtype and, for ADC maps, its upper percentiles. No model is involved.

Usage: PYTHONPATH=src python reports/adc_range/probe.py INTERIM [SPLIT_JSON SPLIT...] > out.txt
(probe_train_val.txt: data/interim data/splits.json train val; the held-out type is in no split)
"""

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from mrseq.ingest import load_saved_volume


def spread(array: np.ndarray, high: float = 99.0) -> float:
    values = array[array > 0]
    if len(values) < 100:
        return float("nan")
    return float(np.percentile(values, high) / np.percentile(values, 50))


def main() -> None:
    interim = Path(sys.argv[1])
    table = pd.read_csv(interim / "labelled.csv")
    if len(sys.argv) > 2:
        splits = json.loads(Path(sys.argv[2]).read_text())
        keep = set().union(*(splits[s] for s in sys.argv[3:]))
        table = table[table.volume_id.isin(keep)]
    table = table[table.file.notna() & table.file.astype(str).str.len().gt(0)]
    table["kind"] = table.subtype.fillna(table.label).where(table.label == "other", table.label)
    rows = []
    for _, r in table.iterrows():
        array, _ = load_saved_volume(interim / r.file)
        rows.append((r.kind, spread(array), spread(array, 95), float((array <= 0).mean())))
    out = pd.DataFrame(rows, columns=["kind", "p99_p50", "p95_p50", "zero_share"])
    print(out.groupby("kind").describe(percentiles=[0.01, 0.5, 0.99]).T.round(2).to_string())
    adc = out[out.kind == "ADC"].p99_p50
    print(
        "ADC p99/p50: max",
        round(adc.max(), 3),
        "99.5%",
        round(adc.quantile(0.995), 3),
        "n",
        len(adc),
    )


if __name__ == "__main__":
    main()
