"""Preprocessing time with the partition percentiles against torch.quantile, in one run.

The same volumes (a 384 x 384 x 28 T2 and a 320 x 320 x 24 volume) through
`preprocess_volume` with the committed spec, alternating the two percentile functions; prints
the median ms of each and their ratio, and checks the outputs are identical.
Usage: python bench/preprocess_speed.py [--model models/mrseq] [--repeats 9]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

import mrseq.preprocess as pre


def sorted_quantiles(flat: torch.Tensor, qs) -> torch.Tensor:
    return torch.quantile(flat, torch.as_tensor(qs, dtype=flat.dtype))


def timed(volume, affine, spec, repeats: int) -> tuple[float, torch.Tensor]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = pre.preprocess_volume(volume, affine, spec)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times)), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="models/mrseq")
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as in a serving worker
    spec_dict = json.loads((Path(args.model) / "model_spec.json").read_text())["preprocessing"]
    spec = pre.PreprocessSpec.from_dict(spec_dict)
    rng = np.random.default_rng(0)
    cases = {
        "T2 384x384x28": (rng.random((384, 384, 28), dtype=np.float32) * 1000, (0.5, 0.5, 3.3)),
        "320x320x24": (rng.random((320, 320, 24), dtype=np.float32) * 1000, (0.55, 0.55, 3.3)),
    }
    fast = pre.quantiles
    for name, (volume, spacing) in cases.items():
        affine = np.diag([*spacing, 1.0])
        pre.preprocess_volume(volume, affine, spec)  # warm-up
        pre.quantiles = sorted_quantiles
        base_ms, base = timed(volume, affine, spec, args.repeats)
        pre.quantiles = fast
        new_ms, new = timed(volume, affine, spec, args.repeats)
        same = torch.equal(base, new)
        print(f"{name}: torch.quantile {base_ms:.1f} ms, partition {new_ms:.1f} ms, same {same}")
        print(f"ratio preprocess partition/torch.quantile {new_ms / base_ms:.2f}")


if __name__ == "__main__":
    main()
