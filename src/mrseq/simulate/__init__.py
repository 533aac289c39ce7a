"""Physics-based prostate mpMRI simulator: the embedded default dataset.

`simulate_cohort` writes OUT/<patient>/<study>/<series>/*.dcm and OUT/labels.csv. Each patient
is simulated from its own seed (seed, index), so a cohort is the same whatever the number of
worker processes, and a larger cohort extends a smaller one.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from pydicom.uid import generate_uid

from mrseq.dicom_write import SeriesToWrite, write_series
from mrseq.layout import LABELS_CSV
from mrseq.pool import run_all
from mrseq.sequences import label_for_b_value
from mrseq.simulate import headers
from mrseq.simulate.anatomy import make_patient
from mrseq.simulate.other import plan_others, render_t1, render_t2_map
from mrseq.simulate.physics import Tissues
from mrseq.simulate.protocol import B_STYLE, SeriesPlan, StudyPlan, plan_study
from mrseq.simulate.ranges import draw
from mrseq.simulate.render import render_dwi, render_t2

LABEL_COLUMNS = [
    "patient_id",
    "study_uid",
    "series_uid",
    "b_value",
    "label",
    "vendor",
    "field_strength",
    "plane",
    "series_description",
    "fs_method",
    "calculated",
    "private_stripped",
    "matrix",
    "n_slices",
    "prostate_volume_ml",
    "snr",
    "fat_residual",
    "subtype",
    "phase",
]


class _Writer:
    """Writes one study's series; hands out deterministic UIDs and collects label rows."""

    def __init__(self, out: Path, rng, study: StudyPlan, patient_id: str, seed: int, volume: float):
        self.out, self.rng, self.study, self.patient_id = out, rng, study, patient_id
        # Headers draw from their own generator, so the images (drawn from `rng`) are the same
        # whether a series is written as DICOM or synthesised straight to the model grid.
        self.header_rng = np.random.default_rng([seed, int(patient_id.rsplit("-", 1)[1]), 1])
        self.entropy = [str(seed), patient_id]
        self.study_tags = {
            "PatientID": patient_id,
            "PatientName": f"SIM^{patient_id}",
            "PatientSex": "M",
            "StudyInstanceUID": self.uid("study"),
            "FrameOfReferenceUID": self.uid("frame"),
            "StudyDate": "20260101",
            "StudyDescription": "MR PROSTATE MPMRI",
        }
        self.number, self.rows, self.volume = 1, [], volume

    def uid(self, *parts) -> str:
        return generate_uid(entropy_srcs=[*self.entropy, *map(str, parts)])

    def write(
        self,
        plan: SeriesPlan,
        kind: str,
        stacks: list[np.ndarray],
        b_values: list,
        labels: list[str],
        slope: float,
        b_style: str | None,
        temporal: list[int] | None = None,
        subtype: str = "",
    ) -> None:
        vendor = self.study.vendor
        uid = self.uid("series", self.number)
        text = headers.b_text([b for b in b_values if b is not None])
        desc = headers.description(self.header_rng, vendor, kind, plan.grid.plane, plan.fs, text)
        tags = headers.series_tags(
            self.header_rng,
            self.study_tags,
            vendor,
            self.study.field,
            kind,
            plan.fs,
            plan.tr,
            plan.te,
        )
        tags.update(SeriesInstanceUID=uid, SeriesNumber=self.number, SeriesDescription=desc)
        folder = self.out / self.patient_id / self.study_tags["StudyInstanceUID"] / uid
        series = SeriesToWrite(stacks, plan.grid.geometry(), tags, b_values, b_style, slope)
        series.temporal = temporal
        write_series(folder, series)
        phases = temporal or [None] * len(stacks)
        for b, label, phase in zip(b_values, labels, phases, strict=True):
            row = self._row(plan, uid, b, label, desc, kind, b_style)
            self.rows.append(row | {"subtype": subtype, "phase": "" if phase is None else phase})
        self.number += 1

    def _row(self, plan, uid, b, label, desc, kind, b_style) -> dict:
        return {
            "patient_id": self.patient_id,
            "study_uid": self.study_tags["StudyInstanceUID"],
            "series_uid": uid,
            "b_value": "" if b is None else f"{b:g}",
            "label": label,
            "vendor": self.study.vendor,
            "field_strength": self.study.field,
            "plane": plan.grid.plane,
            "series_description": desc,
            "fs_method": plan.fs or "",
            "calculated": kind == "calc",
            "private_stripped": b is not None and b_style is None,
            "matrix": plan.grid.recon,
            "n_slices": plan.grid.n_slices,
            "prostate_volume_ml": round(self.volume, 1),
            "snr": round(plan.drawn.get("snr", float("nan")), 2),
            "fat_residual": round(plan.drawn.get("fat_residual", float("nan")), 4),
        }


def _magnitude_storage(rng, vendor: str) -> tuple[float, float]:
    """(stored 99.9th-percentile value, RescaleSlope): bit depth, scale and slope vary per series,
    for every vendor (Philips always rescales)."""
    bit_max = 4095.0 if rng.random() < 0.5 else 65535.0
    peak = min(float(draw(rng, "stored_peak")), 0.9 * bit_max)
    rescaled = vendor == "Philips Medical Systems" or rng.random() < 0.35
    return peak, float(draw(rng, "slope")) if rescaled else 1.0


def _stored(rng, image: np.ndarray, vendor: str) -> tuple[np.ndarray, float]:
    peak, slope = _magnitude_storage(rng, vendor)
    scale = peak / max(float(np.percentile(image, 99.9)), 1e-6)
    return np.clip(np.round(image * scale), 0, 65535), slope


def _write_t2(w: _Writer, plan: SeriesPlan, image: np.ndarray) -> None:
    stored, slope = _stored(w.rng, image, w.study.vendor)
    label = "T2WI_fs" if plan.fs else "T2WI_nan"
    w.write(plan, "t2", [stored], [None], [label], slope, None)


def _write_dwi(w: _Writer, plan: SeriesPlan, result: dict) -> None:
    vendor, images = w.study.vendor, result["images"]
    style = B_STYLE[vendor]
    exported = [b for b in plan.acquired_b if b in plan.export_b]
    if exported:
        peak, slope = _magnitude_storage(w.rng, vendor)  # one scale for the whole series
        top = max(float(np.percentile(images[b], 99.9)) for b in exported)
        stacks = [np.clip(np.round(images[b] * peak / top), 0, 65535) for b in exported]
        labels = [label_for_b_value(b) for b in exported]
        if plan.interleave:
            w.write(plan, "dwi", stacks, exported, labels, slope, style)
        else:  # de-identification may strip private tags; only single-b series lose them
            strip = w.study.strip_private and style != "standard"
            for stack, b, label in zip(stacks, exported, labels, strict=True):
                w.write(plan, "dwi", [stack], [b], [label], slope, None if strip else style)
    if plan.calc_b is not None:
        stored, slope = _stored(w.rng, result["calc"], vendor)
        w.write(plan, "calc", [stored], [plan.calc_b], ["DWI_High"], slope, style)
    if plan.adc:
        stored, slope = _adc_stored(w.rng, result)
        w.write(plan, "adc", [stored], [None], ["ADC"], slope, None)


# (stored units in mm2/s, RescaleSlope): integers in 1e-6 or 1e-5 mm2/s, or 1e-6 integers
# rescaled to 1e-3 mm2/s (Philips) or to mm2/s.
ADC_UNITS = ((1e-6, 1.0), (1e-5, 1.0), (1e-6, 1e-3), (1e-6, 1e-6))
ADC_UNITS_P = (0.6, 0.1, 0.2, 0.1)


def _adc_stored(rng, result: dict) -> tuple[np.ndarray, float]:
    """ADC as scanners store it: clipped, in one of several units, background zeroed, left
    noisy or filled with the clip value (conventions drawn per series, not per vendor)."""
    top = float(draw(rng, "adc_max")) * 1e-6
    adc = np.clip(result["adc"], 0, top)
    fill = rng.choice(["zero", "noise", "max"], p=[0.5, 0.35, 0.15])
    if fill != "noise":
        s0 = result["s0"]
        background = s0 < float(draw(rng, "adc_background")) * np.percentile(s0, 99)
        adc[background] = 0.0 if fill == "zero" else top
    unit, slope = ADC_UNITS[int(rng.choice(len(ADC_UNITS), p=ADC_UNITS_P))]
    return np.round(adc / unit), slope


def other_rng(seed: int, index: int) -> np.random.Generator:
    """The non-target series' own generator: they leave the target images unchanged."""
    return np.random.default_rng([seed, index, 2])


def simulate_patient(args: tuple[str, int, int, float]) -> list[dict]:
    """Simulate and write one patient's study; returns its label rows."""
    out, seed, index, scale = args
    rng = np.random.default_rng([seed, index])
    patient_id = f"SIM{seed:03d}-{index:05d}"
    study = plan_study(rng, scale)
    anatomy = make_patient(rng)
    tissues = Tissues(rng, study.field)
    writer = _Writer(Path(out), rng, study, patient_id, seed, anatomy.prostate_volume_ml)
    extra = other_rng(seed, index)
    others = plan_others(extra, study, scale)
    render_study(rng, study, anatomy, tissues, writer)
    render_others(extra, study, others, anatomy, tissues, writer)
    return writer.rows


def render_study(rng, study: StudyPlan, anatomy, tissues: Tissues, writer) -> list[dict]:
    """Render every planned series into `writer` (DICOM, or synth's model-grid collector)."""
    for plan in study.series:
        if plan.kind == "t2":
            _write_t2(writer, plan, render_t2(rng, study, anatomy, tissues, plan))
        else:
            result = render_dwi(rng, study, anatomy, tissues, plan)
            _write_dwi(writer, plan, result)
            plan.drawn["fit"] = {k: result[k] for k in ("adc", "s0")} if plan.eadc else None
    return writer.rows


def render_others(rng, study, plans, anatomy, tissues: Tissues, writer) -> list[dict]:
    """Render the non-target series (and the eADC of a diffusion series) after the targets,
    from their own generator; returns only their label rows."""
    start = len(writer.rows)
    for plan in study.series:
        if plan.kind == "dwi" and plan.eadc and plan.drawn.get("fit"):
            _write_eadc(writer, rng, plan, plan.drawn.pop("fit"))
    for plan in plans:
        if plan.kind == "t2_map":
            image = render_t2_map(rng, study, anatomy, tissues, plan)
            _write_other(writer, rng, plan, "t2_map", [image], quantitative=True)
            continue
        images = render_t1(rng, study, anatomy, tissues, plan)
        _write_other(writer, rng, plan, plan.kind, images)
        if plan.kind == "dce" and plan.drawn.get("subtraction"):
            late = np.clip(images[-1] - images[0], 0, None)
            _write_other(writer, rng, plan, "subtraction", [late])
    return writer.rows[start:]


def _write_other(w: _Writer, rng, plan: SeriesPlan, kind: str, images, quantitative=False):
    """One series of a non-target kind; DCE phases in one series (temporal positions) or one
    series per phase, each stack stored with the series' scale."""
    peak, slope = (1.0, 1.0) if quantitative else _magnitude_storage(rng, w.study.vendor)
    top = 1.0 if quantitative else max(float(np.percentile(im, 99.9)) for im in images)
    stacks = [np.clip(np.round(im * peak / max(top, 1e-6)), 0, 65535) for im in images]
    if kind == "dce" and not plan.one_series:
        for stack in stacks:
            w.write(plan, kind, [stack], [None], ["other"], slope, None, None, kind)
        return
    temporal = list(range(1, len(stacks) + 1)) if len(stacks) > 1 else None
    w.write(
        plan,
        kind,
        stacks,
        [None] * len(stacks),
        ["other"] * len(stacks),
        slope,
        None,
        temporal,
        kind,
    )


def _write_eadc(w: _Writer, rng, plan: SeriesPlan, fit: dict) -> None:
    """exp(-b ADC) x 1000 over the tissue, background zeroed: bright where diffusion is
    restricted, like a high-b image, but with no T2 weighting and no noise floor."""
    eadc = np.exp(-plan.eadc * fit["adc"]) * 1000.0
    s0 = fit["s0"]
    eadc[s0 < float(draw(rng, "adc_background")) * np.percentile(s0, 99)] = 0.0
    w.write(plan, "eadc", [np.round(eadc)], [None], ["other"], 1.0, None, None, "eadc")


def single_threaded() -> None:
    """One BLAS/FFT thread per worker process: processes already fill the cores, and
    oversubscribed threads made two workers no faster than one."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    import torch

    torch.set_num_threads(1)


def simulate_cohort(
    out_dir: str | os.PathLike,
    n_patients: int = 60,
    seed: int = 0,
    workers: int = 1,
    resolution_scale: float = 1.0,
    progress: bool = True,
) -> pd.DataFrame:
    """Write a cohort and its labels.csv; returns the labels table."""
    if n_patients < 1:
        raise ValueError("need at least one patient")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(str(out), seed, i, resolution_scale) for i in range(n_patients)]
    results = run_all(
        simulate_patient,
        jobs,
        desc="patients",
        unit="pt",
        progress=progress,
        workers=workers,
        initializer=single_threaded,
    )
    labels = pd.DataFrame([row for rows in results for row in rows], columns=LABEL_COLUMNS)
    labels.to_csv(out / LABELS_CSV, index=False)
    return labels
