"""Ad hoc probe (2026-12-07, twelfth session), no model change: the b-value gap from pixels.

An ADC map is the fit of its own DWI images, so voxel by voxel
log(S_ref / S_m) = c + (b_m - b_ref) * ADC: the slope of the log ratio against the ADC map is how
much more diffusion weighting image m has than a reference image, whatever scale each series was
stored with (the intercept c). With the reference the group's surest low-b reading (b_ref >= 0)
the gap is a lower bound on b_m, so a gap of 500 or more would prove DWI_High. This probe
measures the gap in every grid group that holds a volume read as ADC and two or more read as
DWI, against the truth, and what a one-sided rule (gap >= threshold: DWI_High) would change.

The estimator: the ADC map's unit is the decade that puts the 90th percentile of the reference's
bright voxels (the brighter 40 %) at 2e-3 mm2/s (the median failed: fat, ADC near 0, fills the
lower half where fat suppression is poor); the slope is fitted through the medians of 10 ADC
bins over 0.3-2.5e-3 mm2/s. Reads a predictions CSV (`pipelines/benchmark.py`'s) and its
interim folder; the true labels and b-values are a diagnostic only.

Usage: PYTHONPATH=src python reports/grid_context/b_gap_probe.py PREDICTIONS.csv INTERIM
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from mrseq.evaluate import _grid_key, _pixels
from mrseq.ingest import load_saved_volume
from mrseq.predict import _bright_voxels, _groups, _log_ratio

CLASSES = ["T2WI_nan", "T2WI_fs", "DWI_Low", "DWI_High", "ADC", "other"]
LOW, HIGH, ADC = 2, 3, 4


def gap(adc: np.ndarray, ratio: np.ndarray) -> float:
    positive = adc[adc > 0]
    if len(positive) < 100:
        return float("nan")
    adc = adc * 10.0 ** np.round(np.log10(2e-3 / np.percentile(positive, 90)))
    tissue = (adc > 0.3e-3) & (adc < 2.5e-3)
    if tissue.sum() < 100:
        return float("nan")
    x, y = adc[tissue], ratio[tissue]
    edges = np.quantile(x, np.linspace(0, 1, 11))
    bins = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, 9)
    xm = np.array([np.median(x[bins == k]) for k in range(10) if (bins == k).any()])
    ym = np.array([np.median(y[bins == k]) for k in range(10) if (bins == k).any()])
    return float(np.polyfit(xm, ym, 1)[0]) if len(xm) >= 3 and np.ptp(xm) > 0 else float("nan")


def measure(d: pd.DataFrame, interim: Path) -> pd.DataFrame:
    probs = d[[f"p_{c}" for c in CLASSES]].to_numpy()
    reads, rows = probs.argmax(1), list(d.itertuples())
    pixels = _pixels(interim, rows)
    grids = []
    for r in rows:
        array, affine = load_saved_volume(interim / r.file)
        grids.append(_grid_key(r, array.shape, affine))
    out = []
    for members in _groups(grids):
        dwi = [i for i in members if reads[i] in (LOW, HIGH)]
        maps = [i for i in members if reads[i] == ADC]
        if len(dwi) < 2 or not maps:
            continue
        ref = max(dwi, key=lambda i: probs[i, LOW])
        adc = pixels(max(maps, key=lambda i: probs[i, ADC])).ravel()
        bright = _bright_voxels(pixels(ref))
        for m in dwi:
            if m != ref:
                g = gap(adc[bright], _log_ratio(pixels(ref), pixels(m), bright))
                b, b_ref = d.true_b_value[m], d.true_b_value[ref]
                out.append(
                    dict(label=d.label[m], predicted=d.predicted[m], b=b, gap=g, true_gap=b - b_ref)
                )
    return pd.DataFrame(out).dropna(subset=["gap"])


def main() -> None:
    d = pd.read_csv(sys.argv[1])
    o = measure(d, Path(sys.argv[2]))
    o["error"] = o.gap - o.true_gap
    pd.set_option("display.width", 200)
    print(f"{len(o)} DWI volumes measured; DWI_Low among them {int((o.label == 'DWI_Low').sum())}")
    print("gap minus true gap, by true b:")
    by_b = pd.cut(o.b, [0, 499, 700, 1200, 5000])
    print(o.error.groupby(by_b, observed=True).describe(percentiles=[0.1, 0.5, 0.9]).round(0))
    print(
        "overestimate quantiles 0.9 / 0.95 / 0.99 / max:",
        [round(o.error.quantile(q)) for q in (0.9, 0.95, 0.99)],
        round(o.error.max()),
    )
    print("largest gap of a true DWI_Low:", round(o.gap[o.label == "DWI_Low"].max()))
    for threshold in (500, 600, 700, 750):
        flip = (o.gap >= threshold) & (o.predicted == "DWI_Low")
        right = int((flip & (o.label == "DWI_High")).sum())
        print(
            f"rule gap >= {threshold}: {int(flip.sum())} answers DWI_Low -> DWI_High, "
            f"{right} to right, {int(flip.sum()) - right} to wrong"
        )
    errors = (o.label == "DWI_High") & (o.predicted == "DWI_Low")
    print(f"DWI_High read DWI_Low among them: {int(errors.sum())}")


if __name__ == "__main__":
    main()
