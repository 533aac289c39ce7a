"""DICOM tree -> one compact volume file per series/b-value + series.csv."""

from __future__ import annotations

import logging
import os
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.lib import format as npy_format

from mrseq.dicom import (
    Volume,
    VolumeGroup,
    load_volume,
    plane_of,
    rescaled,
    scan,
)
from mrseq.layout import SERIES_CSV, VOLUMES_DIR
from mrseq.pool import run_all, worker_pool
from mrseq.sequences import header_hint

log = logging.getLogger(__name__)

SERIES_COLUMNS = [
    "volume_id",
    "patient_id",
    "study_uid",
    "series_uid",
    "series_number",
    "series_description",
    "manufacturer",
    "field_strength",
    "b_value",
    "b_value_tag",
    "phase",
    "image_type",
    "plane",
    "shape",
    "spacing",
    "header_hint",
    "hint_reason",
    "warnings",
    "file",
]


@dataclass
class IngestSummary:
    series: int
    volumes: int
    rejected: dict[str, str]  # volume id -> why
    skipped: dict[str, str]  # file -> why
    ignored: int

    def line(self) -> str:
        return (
            f"{self.series} series read, {self.volumes} volumes written, "
            f"{len(self.rejected)} volumes rejected, {len(self.skipped)} files skipped, "
            f"{self.ignored} non-DICOM files ignored"
        )


def save_volume(
    path: str | os.PathLike,
    array: np.ndarray,
    affine: np.ndarray,
    rescale: tuple[float, float] = (1.0, 0.0),
) -> None:
    """Integers that fit stay int16 (compact); rescaled values are float32, or the stored
    integers plus a `rescale` (slope, intercept) member that `load_saved_volume` applies (half
    the bytes to write). The file is what np.savez writes, byte for byte, without its copy of
    every array into a bytes object."""
    if array.dtype.kind in "iu" and array.min() >= -32768 and array.max() <= 32767:
        if array.dtype == np.uint16:  # in range, its bits are int16's: a view, not a copy
            array = array.view(np.int16)
        else:
            array = array.astype(np.int16, copy=array.dtype != np.int16)
    elif array.dtype.kind == "u" and array.dtype.itemsize == 2:
        pass  # uint16 above int16's range: keep as stored
    else:
        array = array.astype(np.float32)
    members = [("array", array), ("affine", affine.astype(np.float64))]
    if tuple(rescale) != (1.0, 0.0):
        members.append(("rescale", np.array(rescale, np.float64)))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, values in members:
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                header = npy_format.header_data_from_array_1_0(values)
                npy_format.write_array_header_1_0(member, header)
                # a Fortran-ordered array (the loader's transposed view) is its .T in C order
                in_order = values.T if header["fortran_order"] else np.ascontiguousarray(values)
                member.write(memoryview(in_order).cast("B"))


def load_saved_volume(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(float32 array, affine) of a saved volume, its rescale applied."""
    with np.load(path) as data:
        array, affine = data["array"], data["affine"]
        if "rescale" in data:
            # Python floats, as the DICOM reader uses: float32 arithmetic, the same values
            array = rescaled(array, *(float(v) for v in data["rescale"]))
    return np.ascontiguousarray(array, dtype=np.float32), affine


def describe(volume: Volume) -> dict:
    """The series.csv row of a loaded volume (without its file)."""
    group, ds = volume.group, volume.group.first
    hint = header_hint(ds, group.b_value)
    return {
        "volume_id": group.volume_id,
        "patient_id": str(ds.get("PatientID", "")),
        "study_uid": str(ds.get("StudyInstanceUID", "")),
        "series_uid": group.instances[0].series_uid,
        "series_number": ds.get("SeriesNumber", ""),
        "series_description": str(ds.get("SeriesDescription", "")),
        "manufacturer": str(ds.get("Manufacturer", "")),
        "field_strength": ds.get("MagneticFieldStrength", ""),
        "b_value": group.b_value,
        "b_value_tag": group.instances[0].b_tag,
        "phase": group.instances[0].temporal,  # a DCE temporal position ("" for most series)
        "image_type": "\\".join(group.instances[0].image_type),
        "plane": plane_of(group.instances[0].orientation),
        "shape": "x".join(str(s) for s in volume.array.shape),
        "spacing": "x".join(f"{s:.3f}" for s in volume.spacing),
        "header_hint": hint.label,
        "hint_reason": hint.reason,
        "warnings": "; ".join(volume.warnings),
    }


def _for_pixels(group: VolumeGroup) -> VolumeGroup:
    """The group as the pixel pass needs it: the header elements of its first instance only
    (what the volume's row and affine read), so the workers are sent a tenth of the bytes."""
    rest = [replace(i, ds={}) for i in group.instances[1:]]
    return replace(group, instances=[group.instances[0], *rest])


def _ingest_one(args: tuple[VolumeGroup, str]) -> dict | str:
    group, out_dir = args
    try:
        volume = load_volume(group, stored=True)
    except Exception as exc:  # one bad series never stops the rest
        return f"{type(exc).__name__}: {exc}"
    name = f"{group.volume_id}.npz"
    save_volume(Path(out_dir) / VOLUMES_DIR / name, volume.array, volume.affine, volume.rescale)
    return {**describe(volume), "file": f"{VOLUMES_DIR}/{name}"}


def ingest(
    dicom_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    workers: int = 1,
    progress: bool = True,
) -> tuple[pd.DataFrame, IngestSummary]:
    """Scan, check and convert a DICOM tree; write volumes and series.csv under out_dir."""
    out = Path(out_dir)
    (out / VOLUMES_DIR).mkdir(parents=True, exist_ok=True)
    # one pool for both passes: headers, then pixels
    with worker_pool(workers) as pool:
        result = scan([dicom_dir], progress=progress, pool=pool)
        good = [g for g in result.groups if not g.error]
        jobs = [(_for_pixels(g), str(out)) for g in good]
        done = run_all(
            _ingest_one, jobs, desc="volumes", unit="vol", progress=progress, pool=pool, min_jobs=4
        )
    rejected = {g.volume_id: g.error for g in result.groups if g.error}
    rows = []
    for group, row in zip(good, done, strict=True):
        if isinstance(row, str):
            rejected[group.volume_id] = row
        else:
            rows.append(row)
    for volume_id, why in rejected.items():
        log.warning("volume %s rejected: %s", volume_id, why)
    table = pd.DataFrame(rows, columns=SERIES_COLUMNS)
    table.to_csv(out / SERIES_CSV, index=False)
    series = len({g.instances[0].series_uid for g in result.groups})
    summary = IngestSummary(series, len(rows), rejected, result.skipped, result.ignored)
    return table, summary
