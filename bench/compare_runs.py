"""Two pipeline runs on the same benchmark volumes, compared volume by volume.

Why: a 2-core session affords one `make run` per recipe, and the benchmark's intervals (about
±0.02) describe one fixed model's sampling of volumes, not how far a second training run of the
same recipe lands. Earlier sessions judged recipe changes by the sign test over the volumes
answered right under only one of two runs; run with two seeds of one recipe, this script says
how large that count and that p-value are when nothing but the seed differs.

Prints each run's headline figures (`mrseq.evaluate.report` on its predictions), the paired
counts with the sign test, how often the two answers agree, and the figures of the two runs'
averaged probabilities (an ensemble of two: argmax of the mean of the `p_*` columns, which hold
the series context already; the `unknown` gates are not refitted for it, so its answers are the
six-class argmax). Non-target series rejected by ingest are the same for both runs and are not
counted here (`metrics/benchmark.json` counts them as kept out).

Usage: python bench/compare_runs.py A_predictions.csv B_predictions.csv [--names a,b]
       [--out bench/out/compare_runs.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
from scipy.stats import binomtest

from mrseq.evaluate import report
from mrseq.params import load_yaml
from mrseq.sequences import MODEL_CLASSES, OTHER, UNKNOWN


def headline(pred: pd.DataFrame, held_out: list[str]) -> dict:
    r = report(pred, list(MODEL_CLASSES), bootstrap=0, seed=0, held_out=held_out)
    routing = r["routing"]
    sens = {c: r["per_class"][c]["sensitivity"]["value"] for c in MODEL_CLASSES}
    target = pred.label != OTHER
    return {
        "accuracy": r["overall"]["accuracy"]["value"],
        "ece": r["ece"],
        "confidence_auroc": r["confidence_auroc"],
        "band_accuracy": {b: v["accuracy"]["value"] for b, v in r["bands"].items()},
        "target_sent_to_other_or_unknown": routing["target_sent_to_other_or_unknown"]["value"],
        # without the unknown gates, comparable with the ensemble's
        "target_argmax_other": round(float((pred.predicted[target] == OTHER).mean()), 4),
        "non_target_kept_out": routing["non_target_kept_out"]["value"],
        "held_out_kept_out": {
            s: routing["by_subtype"][s]["value"] for s in held_out if s in routing["by_subtype"]
        },
        "sensitivity": sens,
    }


def averaged(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """The two runs' mean probabilities as one prediction table (no unknown gates)."""
    cols = [f"p_{c}" for c in MODEL_CLASSES]
    out = a.copy()
    probs = (a[cols].to_numpy() + b[cols].to_numpy()) / 2
    out[cols] = probs
    out["predicted"] = [MODEL_CLASSES[i] for i in probs.argmax(1)]
    out["confidence"] = probs.max(1)
    out["answer"] = out["predicted"]
    out["unknown_by"] = ""
    return out


def paired(a: pd.DataFrame, b: pd.DataFrame) -> dict:
    right_a, right_b = a.predicted == a.label, b.predicted == b.label
    only_a, only_b = int((right_a & ~right_b).sum()), int((right_b & ~right_a).sum())
    test = binomtest(only_a, only_a + only_b) if only_a + only_b else None
    kept = a.answer.isin([OTHER, UNKNOWN]) == b.answer.isin([OTHER, UNKNOWN])
    return {
        "right_only_under_a": only_a,
        "right_only_under_b": only_b,
        "sign_test_p": round(float(test.pvalue), 4) if test else None,
        "answers_agree": round(float((a.answer == b.answer).mean()), 4),
        "argmax_agree": round(float((a.predicted == b.predicted).mean()), 4),
        "kept_out_decision_agrees": round(float(kept.mean()), 4),
    }


def aligned(path_a: Path, path_b: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    a = pd.read_csv(path_a).set_index("volume_id").sort_index()
    b = pd.read_csv(path_b).set_index("volume_id").sort_index()
    if not a.index.equals(b.index) or not (a.label == b.label).all():
        raise SystemExit("the two tables do not hold the same labelled volumes")
    return a.reset_index(), b.reset_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--names", default="a,b")
    parser.add_argument("--out", type=Path, default=Path("bench/out/compare_runs.json"))
    args = parser.parse_args()
    name_a, name_b = args.names.split(",")
    held_out = list(load_yaml("params.yaml")["other"]["held_out"])
    a, b = aligned(args.a, args.b)
    result = {
        name_a: headline(a, held_out),
        name_b: headline(b, held_out),
        "paired": paired(a, b),
        "mean_of_both": headline(averaged(a, b), held_out),
        "n": len(a),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    for name in (name_a, name_b, "mean_of_both"):
        row = result[name]
        print(
            f"{name:<14} acc {row['accuracy']:.3f}  ECE {row['ece']:.3f}  "
            f"AUROC {row['confidence_auroc']}  targets->other/unknown "
            f"{row['target_sent_to_other_or_unknown']:.3f} (argmax other "
            f"{row['target_argmax_other']:.3f})  non-targets kept out "
            f"{row['non_target_kept_out']:.3f}  held out kept out {row['held_out_kept_out']}"
        )
        print(" " * 15 + "  ".join(f"{c} {v:.3f}" for c, v in row["sensitivity"].items()))
    print(json.dumps(result["paired"]))


if __name__ == "__main__":
    main()
