"""Markdown tables for the README from metrics/*.json (what `make run` wrote).

Usage: python bench/tables.py metrics/test.json [metrics/benchmark.json ...]
"""

from __future__ import annotations

import json
import sys

KEYS = ("accuracy", "sensitivity", "specificity", "ppv", "npv", "f1", "kappa")


def cell(entry: dict) -> str:
    low, high = entry["ci95"]
    return f"{entry['value']:.3f} ({low:.2f}–{high:.2f})"


def per_class(result: dict) -> str:
    lines = ["| class | n | " + " | ".join(KEYS) + " |", "|---" * (len(KEYS) + 2) + "|"]
    for name, row in result["per_class"].items():
        cells = [cell(row[k]) for k in KEYS]
        lines.append(f"| {name} | {row['support']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(result: dict) -> str:
    o = result["overall"]
    lines = [
        f"Overall (n={o['n']}): accuracy {cell(o['accuracy'])}, Cohen's kappa "
        f"{cell(o['kappa'])}; ECE {result['ece']:.3f}; confidence AUROC right-vs-wrong "
        f"{result.get('confidence_auroc')}.",
    ]
    for band, row in result.get("bands", {}).items():
        classes = ", ".join(
            f"{c} {cell(v['sensitivity'])} (n={v['n']})" for c, v in row["per_class"].items()
        )
        lines.append(f"- band {band}: accuracy {cell(row['accuracy'])}, n={row['n']}; {classes}")
    for column, parts in result["breakdown"].items():
        text = ", ".join(f"{k} {v['accuracy']:.3f} (n={v['n']})" for k, v in parts.items())
        lines.append(f"- by {column}: {text}")
    return "\n".join(lines)


def routing(result: dict) -> str:
    """The router's view: what reaches a downstream model, per target and non-target subtype."""
    r = result.get("routing")
    if not r:
        return ""
    rows = [
        ("target series answered right (unknown counts as wrong)", r["target_answered_right"]),
        (
            "target series sent to other or unknown (goal <= 0.01)",
            r["target_sent_to_other_or_unknown"],
        ),
        ("non-target series kept out of the five (goal >= 0.98)", r["non_target_kept_out"]),
    ]
    lines = ["| figure | n | value (95 % CI) |", "|---|---|---|"]
    lines += [f"| {name} | {e['n']} | {cell(e)} |" for name, e in rows]
    lines += [
        "",
        f"Detection AUROC of P(other), non-target vs target: {r.get('detection_auroc')}; "
        f"target series answered unknown: {r['target_unknown']}; rejected by ingest with a "
        f"reason: {r['non_target_rejected_by_ingest']} non-target, "
        f"{r['target_rejected_by_ingest']} target.",
        "",
        "| non-target subtype | n | kept out of the five | answers |",
        "|---|---|---|---|",
    ]
    for name, row in r["by_subtype"].items():
        tag = " (held out: never trained)" if row["held_out"] else ""
        answers = ", ".join(f"{k} {v}" for k, v in sorted(row["answers"].items()))
        lines.append(f"| {name}{tag} | {row['n']} | {cell(row)} | {answers} |")
    return "\n".join(lines)


if __name__ == "__main__":
    for path in sys.argv[1:]:
        with open(path) as f:
            result = json.load(f)
        print(f"\n{path}\n\n{per_class(result)}\n\n{summary(result)}\n\n{routing(result)}")
