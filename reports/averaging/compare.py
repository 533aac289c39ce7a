"""Old model against new on the same benchmark volumes, by reports/averaging/decision_rule.txt.

The headline figures and the paired counts are bench/compare_runs.py's; this adds what the
rule asks about DWI_High (by b range and by series SNR) and the error blocks it aims at. The
paired counts are over answers (the unknown gate applied), as the rule says.

Usage: PYTHONPATH=src python reports/averaging/compare.py OLD_PREDICTIONS NEW_PREDICTIONS
(comparison.txt: the committed metrics/benchmark_predictions.csv against this folder's). Non-targets
rejected by ingest are not counted (benchmark.json counts them kept out: 0.935 and 0.934).
"""

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from compare_runs import aligned, headline, paired  # noqa: E402

SNR_TOP = 26.452  # the committed benchmark's top SNR quartile of DWI_High (decision rule 4)
BLOCKS = [("DWI_High", "DWI_Low"), ("DWI_Low", "DWI_High"), ("T2WI_fs", "DWI_Low")]


def dwi_high(p: pd.DataFrame) -> dict:
    h = p[p.label == "DWI_High"]
    right = h.answer == "DWI_High"
    bands = pd.cut(h.true_b_value, [499, 700, 1000, 1500, 2000, 5000])
    out = {f"b {k}": v for k, v in right.groupby(bands, observed=True).mean().items()}
    out["SNR > 26.45"] = right[h.snr > SNR_TOP].mean()
    out["SNR <= 26.45"] = right[h.snr <= SNR_TOP].mean()
    return {f"DWI_High {k}": round(float(v), 3) for k, v in out.items()}


def summary(p: pd.DataFrame) -> dict:
    h = headline(p, ["t2_map"])
    blocks = {f"{t} -> {a}": int(((p.label == t) & (p.answer == a)).sum()) for t, a in BLOCKS}
    t2_other = int((p.label.str.startswith("T2") & (p.answer == "other")).sum())
    return {
        "six-class accuracy": h["accuracy"],
        "ECE": h["ece"],
        "confidence AUROC": h["confidence_auroc"],
        **{f"band {b}": v for b, v in h["band_accuracy"].items()},
        "targets to other/unknown": h["target_sent_to_other_or_unknown"],
        "non-targets kept out (reaching the model)": h["non_target_kept_out"],
        "held-out T2 maps kept out": h["held_out_kept_out"].get("t2_map"),
        **blocks,
        "T2 -> other": t2_other,
        **dwi_high(p),
    }


def main() -> None:
    old, new = aligned(Path(sys.argv[1]), Path(sys.argv[2]))
    print(pd.DataFrame({"old": summary(old), "new": summary(new)}).to_string())
    counts = paired(old.assign(predicted=old.answer), new.assign(predicted=new.answer))
    print(
        f"right only under new {counts['right_only_under_b']}, only under old "
        f"{counts['right_only_under_a']} (sign test p={counts['sign_test_p']})"
    )


if __name__ == "__main__":
    main()
