"""Label-free probe behind mrseq.predict.DWI_PAIR (2026-12-07, twelfth session).

In every grid group holding a volume read as ADC, for every ordered pair (a, m) of its other
members: regress log(S_a / S_m) on [1, ADC, log S_a] over a's bright tissue voxels (as
`mrseq.predict._dwi_pair` does) and print, by the true kinds of a and m, the coefficient of
log S_a (beta: 0 for two DWI images, 1 for a DWI beside an eADC), the R2 of the line in ADC
alone and the b gap. The thresholds in DWI_PAIR were read off this table for the seed 9100
cohort (`dwi_pairs_seed9100.csv`); the labels are a diagnostic only, never an input.

Usage: PYTHONPATH=src python reports/grid_context/dwi_pairs_probe.py PREDICTIONS.csv INTERIM OUT.csv
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from mrseq.evaluate import _grid_key, _pixels
from mrseq.ingest import load_saved_volume
from mrseq.predict import _bright_voxels, _groups, _log_ratio

CLASSES = ["T2WI_nan", "T2WI_fs", "DWI_Low", "DWI_High", "ADC", "other"]
ADC = CLASSES.index("ADC")


def kind(d: pd.DataFrame, i: int) -> str:
    return d.label[i] if d.label[i] != "other" else f"o:{d.subtype[i]}"


def fit(adc_map: np.ndarray, a: np.ndarray, m: np.ndarray) -> dict | None:
    bright = _bright_voxels(a)
    x = adc_map[bright].astype(float)
    positive = x[x > 0]
    if len(positive) < 100:
        return None
    x = x * 10.0 ** np.round(np.log10(2e-3 / np.percentile(positive, 90)))
    tissue = (x > 0.3e-3) & (x < 2.5e-3)
    if tissue.sum() < 100:
        return None
    y = _log_ratio(a, m, bright)[tissue]
    floor = 1e-3 * max(float(np.abs(a).max()), 1e-6)
    log_a = np.log(np.maximum(a.ravel()[bright][tissue], floor))
    line = np.column_stack([np.ones(len(y)), x[tissue] * 1e3])
    both = np.column_stack([line, log_a])
    coef = np.linalg.lstsq(both, y, rcond=None)[0]
    residual = y - line @ np.linalg.lstsq(line, y, rcond=None)[0]
    r2 = 1 - (residual**2).sum() / max(((y - y.mean()) ** 2).sum(), 1e-12)
    return dict(gap=coef[1] * 1e3, beta=coef[2], r2_adc=r2)


def main() -> None:
    d = pd.read_csv(sys.argv[1])
    interim = Path(sys.argv[2])
    probs = d[[f"p_{c}" for c in CLASSES]].to_numpy()
    reads, rows = probs.argmax(1), list(d.itertuples())
    pixels, grids = _pixels(interim, rows), []
    for r in rows:
        array, affine = load_saved_volume(interim / r.file)
        grids.append(_grid_key(r, array.shape, affine))
    out = []
    for members in _groups(grids):
        maps = [i for i in members if reads[i] == ADC]
        rest = [i for i in members if reads[i] != ADC]
        if not maps:
            continue
        adc_map = pixels(max(maps, key=lambda i: probs[i, ADC])).ravel()
        for a in rest:
            for m in (m for m in rest if m != a):
                stats = fit(adc_map, pixels(a), pixels(m))
                if stats:
                    reading = {"read_a": CLASSES[reads[a]], "read_m": CLASSES[reads[m]]}
                    out.append(dict(a=kind(d, a), m=kind(d, m), **reading, **stats))
    o = pd.DataFrame(out)
    o.to_csv(sys.argv[3], index=False)
    pair = (
        o.a.str.replace("DWI_.*", "DWI", regex=True)
        + "/"
        + o.m.str.replace("DWI_.*", "DWI", regex=True)
    )
    summary = o.groupby(pair)[["beta", "r2_adc", "gap"]].describe(percentiles=[0.05, 0.5, 0.95])
    pd.set_option("display.width", 200)
    print(summary.round(2).T.to_string())


if __name__ == "__main__":
    main()
