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


if __name__ == "__main__":
    for path in sys.argv[1:]:
        with open(path) as f:
            result = json.load(f)
        print(f"\n{path}\n\n{per_class(result)}\n\n{summary(result)}")
