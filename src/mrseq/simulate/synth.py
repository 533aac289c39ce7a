"""Training volumes synthesised straight to the model grid: more data per CPU-minute.

The same plan, anatomy, tissues, nuisances and rendering as `simulate_patient`, but each
stored stack goes through the shared `preprocess_volume` in memory instead of being written
as DICOM, read back, ingested and preprocessed, and series are rendered no finer than
`min_pixel` mm (protocol.coarsen). With `min_pixel=None` the arrays equal those of the
DICOM path for the same (seed, patient) up to float16 rounding; a test holds them to it.

Generated once by the `synthesize` stage and shared by every Tune trial and the final fit:
on 2 cores, generating inside each trial's data loader would pay the cost once per trial.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from mrseq import layout
from mrseq.dicom import MIN_SLICES
from mrseq.pool import run_all
from mrseq.preprocess import PreprocessSpec, preprocess_volume, save_spec
from mrseq.simulate import other_rng, render_others, render_study, single_threaded
from mrseq.simulate.anatomy import make_patient
from mrseq.simulate.exposure import exposure_rng, plan_random, render_exposure
from mrseq.simulate.other import plan_others
from mrseq.simulate.physics import Tissues
from mrseq.simulate.protocol import StudyPlan, coarsen, plan_study

INDEX_COLUMNS = [
    "volume_id",
    "patient_id",
    "label",
    "true_b_value",
    "kind",
    "vendor",
    "field_strength",
    "plane",
    "fs_method",
    "snr",
    "fat_residual",
    "subtype",
    "array",
]


class Collector:
    """Takes the DICOM writer's place: each stored stack becomes one model-grid array."""

    def __init__(self, rng, study: StudyPlan, patient_id: str, spec: PreprocessSpec):
        self.rng, self.study, self.patient_id, self.spec = rng, study, patient_id, spec
        self.rows: list[dict] = []
        self.arrays: list[np.ndarray] = []
        self.affines: list[np.ndarray] = []  # RAS, as the DICOM reader would give them

    def write(
        self, plan, kind, stacks, b_values, labels, slope, b_style, temporal=None, subtype=""
    ) -> None:
        affine = plan.grid.geometry().ras_affine()
        if stacks[0].shape[2] < MIN_SLICES:
            return  # ingest rejects it (a localiser): the DICOM path never trains on it either
        for stack, b, label in zip(stacks, b_values, labels, strict=True):
            # What the DICOM reader returns: stored integers times RescaleSlope.
            pixels = stack.astype(np.float32) * np.float32(slope)
            tensor = preprocess_volume(pixels, affine, self.spec)
            self.arrays.append(tensor.numpy().astype(np.float16))
            self.affines.append(affine)
            self.rows.append(self._row(plan, kind, b, label) | {"subtype": subtype})

    def _row(self, plan, kind, b, label) -> dict:
        n = len(self.rows)
        return {
            "volume_id": f"{self.patient_id}-{n:02d}",
            "patient_id": self.patient_id,
            "label": label,
            "true_b_value": "" if b is None else f"{b:g}",
            "kind": kind,
            "vendor": self.study.vendor,
            "field_strength": self.study.field,
            "plane": plan.grid.plane,
            "fs_method": plan.fs or "",
            "snr": round(plan.drawn.get("snr", float("nan")), 2),
            "fat_residual": round(plan.drawn.get("fat_residual", float("nan")), 4),
        }


def synthesize_patient(
    seed: int,
    index: int,
    spec: PreprocessSpec,
    min_pixel: float | None = None,
    anatomy_step: float = 0.0,
    scale: float = 1.0,
    skip: tuple[str, ...] = (),
    random_contrast: float = 0.0,
) -> Collector:
    """One patient's volumes on the model grid (.rows, float16 .arrays, .affines).

    (seed, index, scale) with no min_pixel is simulate_patient's patient, image for image;
    `skip` leaves non-target subtypes out (the held-out type never reaches training);
    `random_contrast` adds that many (Poisson mean) outlier-exposure series, last, from their
    own generator (exposure.py), so every other volume stays the same."""
    rng = np.random.default_rng([seed, index])
    patient_id = f"SYN{seed:03d}-{index:05d}"
    study = plan_study(rng, scale)
    extra = other_rng(seed, index)
    others = plan_others(extra, study, scale, skip)
    exposure = exposure_rng(seed, index)
    randoms = plan_random(exposure, scale, random_contrast) if random_contrast else []
    if min_pixel:
        coarsen([*study.series, *others, *randoms], float(min_pixel), anatomy_step)
    anatomy = make_patient(rng)
    collector = Collector(rng, study, patient_id, spec)
    tissues = Tissues(rng, study.field)
    render_study(rng, study, anatomy, tissues, collector)
    render_others(extra, study, others, anatomy, tissues, collector)
    render_exposure(exposure, study, randoms, anatomy, tissues, collector)
    return collector


def _job(args: tuple) -> list[dict]:
    out, seed, index, spec, coarse, skip, random_contrast = args
    spec = PreprocessSpec.from_dict(spec)
    done = synthesize_patient(seed, index, spec, *coarse, skip, random_contrast)
    rows = done.rows
    for row, array in zip(rows, done.arrays, strict=True):
        row["array"] = layout.array_file(row["volume_id"])
        np.save(Path(out) / row["array"], array)
    return rows


def synthesize_cohort(
    out_dir: str | os.PathLike,
    n_patients: int,
    seed: int,
    spec: PreprocessSpec,
    min_pixel: float | None = None,
    anatomy_step: float = 0.0,
    scale: float = 1.0,
    workers: int = 1,
    progress: bool = True,
    skip: tuple[str, ...] = (),
    random_contrast: float = 0.0,
) -> pd.DataFrame:
    """Write out/arrays/<volume_id>.npy, out/index.csv and out/preprocess_spec.json (the
    preprocess stage's layout)."""
    if n_patients < 1:
        raise ValueError("need at least one patient")
    out = Path(out_dir)
    (out / layout.ARRAYS_DIR).mkdir(parents=True, exist_ok=True)
    save_spec(out, spec)
    coarse = (min_pixel, anatomy_step, scale)
    args = (spec.to_dict(), coarse, tuple(skip), float(random_contrast))
    jobs = [(str(out), seed, i, *args) for i in range(n_patients)]
    results = run_all(
        _job,
        jobs,
        desc="synthesize",
        unit="pt",
        progress=progress,
        workers=workers,
        initializer=single_threaded,
    )
    index = pd.DataFrame([r for rows in results for r in rows], columns=INDEX_COLUMNS)
    index.to_csv(out / layout.INDEX_CSV, index=False)
    return index
