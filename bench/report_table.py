"""Print metrics/test.json as the paper's Markdown table (value and 95 % CI)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

KEYS = ["accuracy", "sensitivity", "specificity", "ppv", "npv", "f1", "kappa"]


def cell(entry: dict) -> str:
    low, high = entry["ci95"]
    return f"{entry['value']:.3f} ({low:.2f}–{high:.2f})"


def main(path: str = "metrics/test.json") -> None:
    result = json.loads(Path(path).read_text())
    print("| class | n | " + " | ".join(KEYS) + " |")
    print("|---|---|" + "---|" * len(KEYS))
    for name, row in result["per_class"].items():
        print(f"| {name} | {row['support']} | " + " | ".join(cell(row[k]) for k in KEYS) + " |")
    o = result["overall"]
    print(
        f"\nOverall (n={o['n']}): accuracy {cell(o['accuracy'])}, Cohen's kappa "
        f"{cell(o['kappa'])}; ECE {result['ece']:.3f}."
    )
    for column, groups in result["breakdown"].items():
        parts = ", ".join(f"{k} {v['accuracy']:.3f} (n={v['n']})" for k, v in groups.items())
        print(f"- by {column}: {parts}")


if __name__ == "__main__":
    main(*sys.argv[1:])
