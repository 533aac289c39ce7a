"""Ad hoc probe (2026-12-07, eleventh session), no model change: can pixels give the b-value?

In each benchmark grid group holding one ADC map and two or more DWI volumes, for every DWI
volume m and the group's lowest-b DWI: delta-b = median over bright tissue voxels of
log(S_low / S_m) / ADC, the ADC map brought to mm2/s by the decade that puts its median near
1.3e-3 (vendor units differ by factors of 10). Prints the error against the true delta-b by b,
and what it says for the DWI_High volumes the committed net reads as DWI_Low. Reads
metrics/benchmark_predictions.csv and data/benchmark/interim (true labels: a diagnostic only).

Usage: PYTHONPATH=src python reports/grid_context/b_probe.py
"""

import numpy as np
import pandas as pd

from mrseq.ingest import load_saved_volume


def main() -> None:
    root = "data/benchmark/interim/"
    p = pd.read_csv("metrics/benchmark_predictions.csv")
    p["key"] = p.study_uid + p["shape"] + p.spacing
    rows = []
    for _key, g in p.groupby("key"):
        adc = g[g.label == "ADC"]
        dwi = g[g.label.isin(["DWI_Low", "DWI_High"])]
        if len(adc) != 1 or len(dwi) < 2:
            continue
        A = load_saved_volume(root + adc.iloc[0].file)[0]
        lo = dwi.loc[dwi.true_b_value.idxmin()]
        S_lo = load_saved_volume(root + lo.file)[0]
        bright = (S_lo > np.percentile(S_lo, 60)) & (A > 0)
        a = A[bright]
        unit = 10.0 ** np.round(
            np.log10(1.3e-3 / np.median(a))
        )  # decade that puts tissue near 1.3e-3
        a = a * unit
        for r in dwi.itertuples():
            if r.volume_id == lo.volume_id:
                continue
            S = load_saved_volume(root + r.file)[0][bright]
            ratio = np.log(np.maximum(S_lo[bright], 1e-6) / np.maximum(S, 1e-6))
            ok = (a > 0.3e-3) & (a < 2.5e-3)
            db = float(np.median(ratio[ok] / a[ok])) if ok.sum() > 50 else np.nan
            rows.append(
                dict(
                    b=r.true_b_value,
                    b_lo=lo.true_b_value,
                    db_true=r.true_b_value - lo.true_b_value,
                    db_est=db,
                    label=r.label,
                    pred=r.predicted,
                )
            )
    d = pd.DataFrame(rows)
    d["err"] = d.db_est - d.db_true
    print(len(d))
    print(
        d.groupby(pd.cut(d.b, [0, 400, 499, 600, 800, 1200, 5000])).agg(
            n=("err", "size"),
            med_err=("err", "median"),
            q10=("err", lambda x: x.quantile(0.1)),
            q90=("err", lambda x: x.quantile(0.9)),
        )
    )
    print(
        "DWI_High read DWI_Low:",
        d[(d.label == "DWI_High") & (d.pred == "DWI_Low")][["b", "b_lo", "db_est"]].to_string(),
    )
    print(
        "est >= 500 among true DWI_Low:",
        ((d.label == "DWI_Low") & (d.db_est >= 500)).sum(),
        "of",
        (d.label == "DWI_Low").sum(),
    )


if __name__ == "__main__":
    main()
