"""Write MR Image Storage series with full geometry and vendor-style b-value tags."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

from mrseq.sequences import GE_B_OFFSET, PRIVATE_B_TAGS, STANDARD_B_TAG

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"


@dataclass
class Geometry:
    """Where a stack sits: LPS origin of voxel (0,0,0), direction cosines, spacing in mm."""

    origin: np.ndarray
    row_dir: np.ndarray  # direction of increasing column index
    col_dir: np.ndarray  # direction of increasing row index
    spacing: tuple[float, float, float]  # (along row, along column, between slices)
    thickness: float | None = None

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.row_dir, self.col_dir)

    def position(self, k: int) -> np.ndarray:
        return self.origin + k * self.spacing[2] * self.normal

    def ras_affine(self) -> np.ndarray:
        """The voxel -> RAS affine that reading the written series back gives (dicom.affine_of),
        for a (columns, rows, slices) stack: lets the simulator skip the DICOM round trip."""
        lps = np.eye(4)
        lps[:3, 0] = self.row_dir * self.spacing[0]
        lps[:3, 1] = self.col_dir * self.spacing[1]
        lps[:3, 2] = self.normal * self.spacing[2]
        lps[:3, 3] = self.origin
        return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


@dataclass
class SeriesToWrite:
    """Stored integer stacks (columns, rows, slices) of one series, one stack per b-value."""

    stacks: list[np.ndarray]
    geometry: Geometry
    tags: dict  # DICOM keywords -> values shared by every instance
    b_values: list[float | None] = field(default_factory=lambda: [None])
    b_style: str | None = None  # "standard", "siemens", "ge", "philips" or None (no tag)
    slope: float = 1.0
    intercept: float = 0.0
    deterministic: bool = True  # SOP Instance UIDs derived from the series UID
    temporal: list[int] | None = None  # TemporalPositionIdentifier per stack (a 4D series)

    def sop_uid(self, k: int, b, t: int | None = None) -> str:
        if not self.deterministic:
            return generate_uid()
        parts = [str(self.tags["SeriesInstanceUID"]), str(k), str(b)]
        return generate_uid(entropy_srcs=parts if t is None else [*parts, f"t{t}"])


def _set_b_value(ds: Dataset, b: float, style: str) -> None:
    if style == "standard":
        ds.add_new(STANDARD_B_TAG, "FD", float(b))
        return
    group, offset, creator = PRIVATE_B_TAGS[style]
    block = ds.private_block(group, creator, create=True)
    if style == "siemens":
        block.add_new(offset, "IS", str(int(round(b))))
    elif style == "ge":
        block.add_new(offset, "IS", [str(int(round(b)) + GE_B_OFFSET), "8", "0", "0"])
    else:
        block.add_new(offset, "FL", float(b))


def _base_dataset(series: SeriesToWrite, sop_uid: str) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MR_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = MR_IMAGE_STORAGE
    ds.SOPInstanceUID = sop_uid
    ds.Modality = "MR"
    for keyword, value in series.tags.items():
        if value is not None:
            setattr(ds, keyword, value)
    return ds


def _set_geometry(ds: Dataset, geo: Geometry, k: int) -> None:
    position = geo.position(k)
    ds.ImagePositionPatient = [f"{v:.4f}" for v in position]
    ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*geo.row_dir, *geo.col_dir)]
    ds.PixelSpacing = [f"{geo.spacing[1]:.5f}", f"{geo.spacing[0]:.5f}"]  # row, column
    ds.SliceThickness = f"{geo.thickness or geo.spacing[2]:.3f}"
    ds.SpacingBetweenSlices = f"{geo.spacing[2]:.3f}"
    ds.SliceLocation = f"{float(np.dot(position, geo.normal)):.4f}"


def _set_pixels(ds: Dataset, plane: np.ndarray) -> None:
    pixels = np.ascontiguousarray(plane.T)  # (columns, rows) -> (rows, columns)
    signed = pixels.min() < 0
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = int(signed)
    ds.PixelData = pixels.astype(np.int16 if signed else np.uint16).tobytes()


def write_series(
    folder: str | os.PathLike, series: SeriesToWrite, start_number: int = 1
) -> list[str]:
    """Write one file per slice (and per b-value, interleaved by slice); return the paths."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    n_slices = series.stacks[0].shape[2]
    number = start_number
    temporal = series.temporal or [None] * len(series.stacks)
    for k in range(n_slices):
        for stack, b, t in zip(series.stacks, series.b_values, temporal, strict=True):
            sop_uid = series.sop_uid(k, b, t)
            ds = _base_dataset(series, sop_uid)
            ds.InstanceNumber = number
            ds.RescaleSlope = f"{series.slope:g}"
            ds.RescaleIntercept = f"{series.intercept:g}"
            _set_geometry(ds, series.geometry, k)
            _set_pixels(ds, stack[:, :, k])
            if b is not None and series.b_style:
                _set_b_value(ds, b, series.b_style)
            if t is not None:
                ds.TemporalPositionIdentifier = t
                ds.NumberOfTemporalPositions = len(temporal)
            path = os.path.join(folder, f"IM{number:05d}.dcm")
            ds.save_as(path, enforce_file_format=True)
            paths.append(path)
            number += 1
    return paths


def new_uid() -> str:
    return generate_uid()
