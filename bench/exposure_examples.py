"""Model-grid mid-slices of outlier-exposure series beside the target classes and a T2 map.

What the net sees (after the shared preprocessing): one example of each target class, then
random-contrast `other` series of the same synthesised patients (magnitude and map styles).
Usage: python bench/exposure_examples.py [--out docs/exposure.png] [--patients 6]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import yaml

from mrseq.preprocess import PreprocessSpec
from mrseq.sequences import MODEL_CLASSES
from mrseq.simulate.exposure import SUBTYPE
from mrseq.simulate.synth import synthesize_patient


def collect(n_patients: int, spec: PreprocessSpec, seed: int) -> dict[str, list[np.ndarray]]:
    """Mid-slices by label (targets), by exposure style, and of any T2 map drawn."""
    out: dict[str, list[np.ndarray]] = {}
    for index in range(n_patients):
        c = synthesize_patient(seed, index, spec, 1.25, 2.0, 1.0, random_contrast=2.0)
        for row, array in zip(c.rows, c.arrays, strict=True):
            key = row["subtype"] if row["subtype"] in (SUBTYPE, "t2_map") else row["label"]
            out.setdefault(key, []).append(array[0, :, :, array.shape[-1] // 2].T)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="docs/exposure.png")
    parser.add_argument("--patients", type=int, default=6)
    parser.add_argument("--seed", type=int, default=2000)
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    params = yaml.safe_load(Path("params.yaml").read_text())
    slices = collect(args.patients, PreprocessSpec.from_dict(params["preprocess"]), args.seed)
    rows = [
        [(k, slices[k][0]) for k in (*MODEL_CLASSES[:5], "t2_map") if k in slices],
        [(SUBTYPE, s) for s in slices.get(SUBTYPE, [])[:6]],
        [(SUBTYPE, s) for s in slices.get(SUBTYPE, [])[6:12]],
    ]
    rows = [r for r in rows if r]
    fig, axes = plt.subplots(len(rows), 6, figsize=(12, 2.2 * len(rows)), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for r, row in enumerate(rows):
        for c, (name, image) in enumerate(row[:6]):
            axes[r, c].imshow(image.astype(np.float32), cmap="gray", vmin=0, vmax=1)
            axes[r, c].set_title(name, fontsize=8)
    fig.suptitle("targets and a T2 map (top); random-contrast outlier exposure (below)")
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out}: " + ", ".join(f"{k} {len(v)}" for k, v in slices.items()))


if __name__ == "__main__":
    main()
