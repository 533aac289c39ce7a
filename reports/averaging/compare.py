"""Old model against new on the same benchmark volumes, by reports/averaging/decision_rule.txt.

Usage: python reports/averaging/compare.py OLD_METRICS_DIR NEW_METRICS_DIR > comparison.txt
(each holds benchmark.json, benchmark_predictions.csv, test.json, test_predictions.csv)
"""

import json
import sys
from pathlib import Path

import pandas as pd
from scipy.stats import binomtest

SNR_TOP = 26.452  # the committed benchmark's top SNR quartile of DWI_High (decision rule 4)


def load(folder: Path) -> tuple[dict, pd.DataFrame]:
    return json.loads((folder / "benchmark.json").read_text()), pd.read_csv(
        folder / "benchmark_predictions.csv"
    )


def dwi_high(p: pd.DataFrame) -> dict:
    h = p[p.label == "DWI_High"]
    right = h.answer == "DWI_High"
    bands = pd.cut(h.true_b_value, [499, 700, 1000, 1500, 2000, 5000])
    out = {f"b {k}": round(v, 3) for k, v in right.groupby(bands, observed=True).mean().items()}
    out["SNR > 26.45"] = round(right[h.snr > SNR_TOP].mean(), 3)
    out["SNR <= 26.45"] = round(right[h.snr <= SNR_TOP].mean(), 3)
    return out


def summary(m: dict, p: pd.DataFrame) -> dict:
    r = m["routing"]
    return {
        "six-class accuracy": m["overall"]["accuracy"]["value"],
        "ECE": m["ece"],
        "confidence AUROC": m["confidence_auroc"],
        "band 300-700": m["bands"]["b300-700"]["accuracy"]["value"],
        "outside the band": m["bands"]["rest"]["accuracy"]["value"],
        "targets to other/unknown": r["target_sent_to_other_or_unknown"]["value"],
        "non-targets kept out": r["non_target_kept_out"]["value"],
        "held-out T2 maps kept out": r["by_subtype"]["t2_map"]["value"],
        "DWI_High -> DWI_Low": int(((p.label == "DWI_High") & (p.answer == "DWI_Low")).sum()),
        "DWI_Low -> DWI_High": int(((p.label == "DWI_Low") & (p.answer == "DWI_High")).sum()),
        "T2WI_fs -> DWI_Low": int(((p.label == "T2WI_fs") & (p.answer == "DWI_Low")).sum()),
        "T2 -> other": int((p.label.str.startswith("T2") & (p.answer == "other")).sum()),
        **{f"DWI_High {k}": v for k, v in dwi_high(p).items()},
    }


def main() -> None:
    old_dir, new_dir = Path(sys.argv[1]), Path(sys.argv[2])
    (om, op), (nm, np_) = load(old_dir), load(new_dir)
    assert list(op.volume_id) == list(np_.volume_id), "not the same benchmark volumes"
    table = pd.DataFrame({"old": summary(om, op), "new": summary(nm, np_)})
    print(table.to_string())
    old_right, new_right = op.answer == op.label, np_.answer == np_.label
    only_new, only_old = int((new_right & ~old_right).sum()), int((old_right & ~new_right).sum())
    p = binomtest(only_new, only_new + only_old).pvalue if only_new + only_old else 1.0
    print(f"right only under new {only_new}, only under old {only_old} (exact McNemar p={p:.3f})")
    for name in ("test.json",):
        o, n = (json.loads((d / name).read_text()) for d in (old_dir, new_dir))
        print(
            f"{name}: accuracy {o['overall']['accuracy']['value']} -> "
            f"{n['overall']['accuracy']['value']}, ECE {o.get('ece')} -> {n.get('ece')}"
        )


if __name__ == "__main__":
    main()
