"""Stage synthesize: extra training volumes rendered straight to the model grid (no DICOM)."""

import argparse
from pathlib import Path

import pandas as pd

from _common import setup, workers
from mrseq import layout
from mrseq.params import stage_params
from mrseq.preprocess import PreprocessSpec, save_spec
from mrseq.simulate.synth import INDEX_COLUMNS, synthesize_cohort


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    setup()
    p = stage_params("synthesize")
    s, seed = p["synthesize"], int(p["synthesize"]["seed"])
    if seed in (int(p["simulate"]["seed"]), int(p["benchmark"]["seed"])):
        raise SystemExit("synthesize.seed must differ from simulate.seed and benchmark.seed")
    pre = p["preprocess"]
    spec = PreprocessSpec.from_dict(pre)  # every spec field params.yaml sets
    if int(s["patients"]) == 0:  # your own data alone: an empty index training can take
        (Path(args.out) / layout.ARRAYS_DIR).mkdir(parents=True, exist_ok=True)
        save_spec(Path(args.out), spec)
        pd.DataFrame(columns=INDEX_COLUMNS).to_csv(Path(args.out) / layout.INDEX_CSV, index=False)
        print("synthesize.patients is 0: no synthetic training volumes")
        return
    index = synthesize_cohort(
        args.out,
        int(s["patients"]),
        seed,
        spec,
        min_pixel=min(float(s["min_pixel_mm"]), spec.finest_mm),  # no coarser than any input grid
        anatomy_step=float(s["anatomy_step_mm"]),
        scale=float(p["simulate"]["resolution_scale"]),
        workers=workers(s["workers"]),
        skip=tuple(p["other"]["held_out"]),
        random_contrast=float(s["random_contrast"]),
    )
    print(
        f"synthesized {index.patient_id.nunique()} patients, {len(index)} volumes",
        index.label.value_counts().to_dict(),
    )


if __name__ == "__main__":
    main()
