"""Fit the ADC evidence (mrseq.predict.ADC_EVIDENCE) on a labelled DICOM cohort.

An ADC map is the fit of its own DWI images, so voxel by voxel it rises with log(S_low / S_high)
of the low- and high-b images on its grid (`mrseq.predict.adc_correlations`). This script reads
a cohort through the exported Predictor with the series and grid context and the diffusion
pairs (the ADC evidence's own input), computes each eligible volume's rank correlation, and fits
logit P(ADC | rho) = intercept + slope * rho (scikit-learn, unregularised). The printed dict is
what ADC_EVIDENCE holds; `base_log_odds` is the log odds of ADC among the eligible volumes,
so the ratio the Predictor applies is odds(ADC | rho) / odds(ADC). Fit it on a cohort of its
own (the committed constants: seed 9100, `reports/grid_context/unread_cohort.py 9100`), never
on the benchmark.

Usage: python bench/adc_evidence.py --interim DIR [--model models/mrseq] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from mrseq.evaluate import _context_key, _pixels, read_outputs
from mrseq.layout import LABELLED_CSV
from mrseq.predict import Predictor, adc_correlations, in_contexts


def correlations(predictor: Predictor, interim: Path) -> pd.DataFrame:
    """One row per eligible volume: its label, the answer before the ADC evidence, and rho."""
    table = pd.read_csv(interim / LABELLED_CSV)
    rows = list(table.itertuples())
    alone, _, grids = read_outputs(predictor, interim, rows)
    series = [_context_key(r) for r in rows]
    pixels = _pixels(interim, rows)
    probs = in_contexts(predictor.classes, alone, series, grids, pixels)[2]  # its input
    rhos = adc_correlations(probs, predictor.classes, grids, pixels)
    picked = sorted(rhos)
    return table.iloc[picked][["volume_id", "label", "subtype"]].assign(
        predicted=[predictor.classes[int(probs[i].argmax())] for i in picked],
        rho=[rhos[i] for i in picked],
    )


def fit(rows: pd.DataFrame) -> dict:
    is_adc = (rows.label == "ADC").to_numpy()
    model = LogisticRegression(C=1e6).fit(rows[["rho"]].to_numpy(), is_adc)
    return {
        "intercept": round(float(model.intercept_[0]), 3),
        "slope": round(float(model.coef_[0, 0]), 3),
        "base_log_odds": round(float(np.log(is_adc.mean() / (1 - is_adc.mean()))), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--interim", required=True, type=Path)
    parser.add_argument("--model", default="models/mrseq")
    parser.add_argument("--out", type=Path, help="also write rows and fit here (json)")
    args = parser.parse_args()
    rows = correlations(Predictor.from_dir(args.model), args.interim)
    summary = rows.assign(
        kind=np.where(rows.label == "other", "other:" + rows.subtype.astype(str), rows.label)
    )
    print(summary.groupby("kind").rho.describe().round(3).to_string())
    result = fit(rows)
    print("ADC_EVIDENCE =", json.dumps(result))
    if args.out:
        args.out.write_text(json.dumps({"fit": result, "rows": rows.to_dict("records")}, indent=1))


if __name__ == "__main__":
    main()
