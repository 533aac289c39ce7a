"""Read DICOM trees into volumes: group by series, split by b-value, order, check, load.

Conventions: a volume's array is indexed (i, j, k) = (column, row, slice), and its affine maps
those indices to RAS+ millimetres (DICOM's LPS with x and y negated), as NIfTI and MONAI expect.
"""

from __future__ import annotations

import logging
import os
import warnings as pywarnings
from collections import Counter, defaultdict
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from mrseq.sequences import b_value, image_type

log = logging.getLogger(__name__)

NOT_DICOM_SUFFIXES = {".csv", ".json", ".txt", ".md", ".yaml", ".yml", ".png", ".jpg", ".py"}
MIN_SLICES = 5  # fewer is a localiser or a single-slice survey, not a volume
PLANE_COSINE = 0.8  # the normal within ~37 degrees of an axis names the plane
# Beyond this many files or volumes, worker processes pay for their start-up.
PARALLEL_MIN_ITEMS = 64


@dataclass
class Instance:
    """Header facts about one DICOM file; `ds` is the header-only dataset."""

    path: str
    ds: Dataset
    series_uid: str
    b_value: float | None
    b_tag: str
    image_type: tuple[str, ...]
    position: tuple[float, ...] | None
    orientation: tuple[float, ...] | None
    shape: tuple[int, int]
    temporal: str
    pixels: PixelLayout | None = None  # where to read raw pixels without re-parsing


@dataclass(frozen=True)
class PixelLayout:
    """Byte offset of an uncompressed PixelData element and how to decode it."""

    offset: int  # start of the element (its tag)
    header: int  # bytes of tag + VR + length before the values
    dtype: str
    slope: float
    intercept: float


@dataclass
class VolumeGroup:
    """Instances that form one volume (one series, one b-value, one image type)."""

    volume_id: str
    instances: list[Instance]
    warnings: list[str] = field(default_factory=list)
    error: str = ""  # set when the group cannot become a volume

    @property
    def first(self) -> Dataset:
        return self.instances[0].ds

    @property
    def b_value(self) -> float | None:
        return self.instances[0].b_value


@dataclass
class Volume:
    array: np.ndarray  # (columns, rows, slices), rescaled
    affine: np.ndarray  # 4x4, voxel index -> RAS mm
    group: VolumeGroup
    warnings: list[str] = field(default_factory=list)

    @property
    def spacing(self) -> tuple[float, float, float]:
        return tuple(float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))


@dataclass
class ScanResult:
    groups: list[VolumeGroup]
    skipped: dict[str, str]  # path -> why
    ignored: int  # files that are plainly not DICOM (csv, json, ...)


# ---------------------------------------------------------------- reading headers


def list_files(paths: Iterable[str | os.PathLike]) -> tuple[list[str], int]:
    """Every file under the given files or folders, any layout, with or without .dcm."""
    found, ignored = [], 0
    for root in paths:
        root = os.fspath(root)
        if os.path.isfile(root):
            found.append(root)
            continue
        if not os.path.isdir(root):
            raise FileNotFoundError(f"no such file or folder: {root}")
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if name.startswith(".") or os.path.splitext(name)[1].lower() in NOT_DICOM_SUFFIXES:
                    ignored += 1
                    continue
                found.append(os.path.join(folder, name))
    return found, ignored


def _floats(value) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        return tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None


_RAW_SYNTAXES = {ExplicitVRLittleEndian: 12, ImplicitVRLittleEndian: 8}
# Header elements kept per instance (hints, series.csv, checks); the rest is dropped so that
# big archives fit in memory and worker processes send little back.
KEPT = (
    "PatientID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SeriesNumber",
    "SeriesDescription",
    "Manufacturer",
    "MagneticFieldStrength",
    "Modality",
    "ImageType",
    "ScanOptions",
    "ScanningSequence",
    "SequenceVariant",
    "PixelSpacing",
    "SliceThickness",
    "InstanceNumber",
    "EchoTime",
    "RepetitionTime",
    "InversionTime",
)


def _trim(ds: Dataset) -> Dataset:
    small = Dataset()
    for keyword in KEPT:
        if keyword in ds:
            element = ds.data_element(keyword)
            small[element.tag] = element
    return small


def read_instance(path: str) -> Instance | str:
    """Header facts of one file, or the reason it cannot be used."""
    try:
        with open(path, "rb") as f:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
            pixel_offset = f.tell()  # pydicom rewinds to the PixelData tag when it stops there
    except InvalidDicomError:
        return "not a DICOM file"
    except Exception as exc:  # pydicom raises many types on truncated or corrupt files
        return f"unreadable DICOM ({type(exc).__name__}: {exc})"
    series_uid = str(ds.get("SeriesInstanceUID", ""))
    if not series_uid:
        return "no SeriesInstanceUID"
    if "Rows" not in ds or "Columns" not in ds:
        return "no image (Rows/Columns missing)"
    b, b_tag = b_value(ds)
    temporal = ds.get("TemporalPositionIdentifier", ds.get("TriggerTime", ""))
    return Instance(
        path=path,
        ds=_trim(ds),
        series_uid=series_uid,
        b_value=b,
        b_tag=b_tag,
        image_type=image_type(ds),
        position=_floats(ds.get("ImagePositionPatient")),
        orientation=_floats(ds.get("ImageOrientationPatient")),
        shape=(int(ds.Rows), int(ds.Columns)),
        temporal=str(temporal or ""),
        pixels=_layout(ds, pixel_offset),
    )


def _layout(ds: Dataset, offset: int) -> PixelLayout | None:
    """Raw-read plan for plain little-endian greyscale pixels; None means 'use pydicom'."""
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    bits = int(ds.get("BitsAllocated", 0) or 0)
    if syntax not in _RAW_SYNTAXES or bits not in (8, 16) or int(ds.get("SamplesPerPixel", 1)) != 1:
        return None
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    dtype = ("<i" if signed else "<u") + str(bits // 8)
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    return PixelLayout(offset, _RAW_SYNTAXES[syntax], dtype, slope, intercept)


def _read_many(paths: list[str], workers: int, progress: bool) -> list[Instance | str]:
    from tqdm import tqdm

    bar = dict(total=len(paths), desc="headers", unit="file", disable=not progress)
    if workers > 1 and len(paths) >= PARALLEL_MIN_ITEMS:
        with ProcessPoolExecutor(workers) as pool:
            return list(tqdm(pool.map(read_instance, paths, chunksize=64), **bar))
    return [read_instance(p) for p in tqdm(paths, **bar)]


def scan(
    paths: Iterable[str | os.PathLike], workers: int = 1, progress: bool = False
) -> ScanResult:
    """Read every header under `paths` and group the instances into candidate volumes."""
    files, ignored = list_files(paths)
    by_series: dict[str, list[Instance]] = defaultdict(list)
    skipped: dict[str, str] = {}
    for path, result in zip(files, _read_many(files, workers, progress), strict=True):
        if isinstance(result, str):
            skipped[path] = result
            log.warning("skipped %s: %s", path, result)
        else:
            by_series[result.series_uid].append(result)
    groups = [g for uid in sorted(by_series) for g in split_series(by_series[uid])]
    return ScanResult(groups=groups, skipped=skipped, ignored=ignored)


# ---------------------------------------------------------------- grouping and checks


def _volume_key(inst: Instance) -> tuple:
    b = None if inst.b_value is None else round(inst.b_value, 1)
    derived = inst.image_type[2:] if len(inst.image_type) > 2 else inst.image_type
    return (b, derived)


def split_series(instances: list[Instance]) -> list[VolumeGroup]:
    """One group per distinct b-value and image type within a series, each checked."""
    parts: dict[tuple, list[Instance]] = defaultdict(list)
    for inst in instances:
        parts[_volume_key(inst)].append(inst)
    uid = instances[0].series_uid
    groups = []
    for key in sorted(parts, key=lambda k: (k[0] is None, k[0] or 0, k[1])):
        suffix = _volume_suffix(key, parts)
        for group in _split_repeats(VolumeGroup(volume_id=uid + suffix, instances=parts[key])):
            check_group(group)
            groups.append(group)
    return groups


def _split_repeats(group: VolumeGroup) -> list[VolumeGroup]:
    """A series with no b-value tag we know but every position repeated m times (b-values in an
    unknown tag): m volumes in acquisition order, with a warning, rather than none."""
    insts = group.instances
    if group.b_value is not None or any(i.position is None or i.orientation is None for i in insts):
        return [group]
    if len({i.temporal for i in insts}) > 1:
        return [group]  # a 4D/DCE series: check_group rejects it
    keys = [tuple(np.round(i.position, 2)) for i in insts]
    counts = Counter(keys)
    m = min(counts.values())
    if m < 2 or any(c != m for c in counts.values()):
        return [group]
    order = sorted(range(len(insts)), key=lambda n: int(insts[n].ds.get("InstanceNumber", n) or n))
    seen: Counter = Counter()
    parts: list[list[Instance]] = [[] for _ in range(m)]
    for n in order:
        parts[seen[keys[n]]].append(insts[n])
        seen[keys[n]] += 1
    note = f"every slice position repeated {m} times and no known b-value tag: split by order"
    return [
        VolumeGroup(f"{group.volume_id}_part{r + 1}", part, [note]) for r, part in enumerate(parts)
    ]


def _volume_suffix(key: tuple, parts: dict) -> str:
    if len(parts) == 1:
        return ""
    b, kinds = key
    b_part = "" if b is None else f"_b{b:g}"
    kinds_differ = len({k[1] for k in parts}) > 1
    return b_part + ("_" + "-".join(kinds).lower() if kinds_differ and kinds else "")


def check_group(group: VolumeGroup) -> None:
    """Fill group.error for what cannot be stacked and group.warnings for what is suspicious."""
    ds, insts = group.first, group.instances
    modality = str(ds.get("Modality", ""))
    if modality != "MR":
        group.error = f"modality is {modality or 'missing'}, not MR"
        return
    missing = [i.path for i in insts if i.position is None or i.orientation is None]
    if missing:
        group.error = f"ImagePositionPatient/ImageOrientationPatient missing in {missing[0]}"
        return
    orientations = {tuple(round(v, 3) for v in i.orientation) for i in insts}
    if len(orientations) > 1:
        planes = sorted({plane_of(o) for o in orientations})
        kind = "mixed planes (localiser)" if len(planes) > 1 else "several orientations"
        group.error = f"{kind}: {len(orientations)} orientations in one series"
        return
    temporal = {i.temporal for i in insts}
    if len(temporal) > 1:
        group.error = f"{len(temporal)} temporal positions (4D/DCE series), not one volume"
        return
    _drop_odd_shapes(group)
    positions = _slice_positions(group.instances)
    if len(set(np.round(positions, 2))) < len(positions):
        group.error = "several images at the same slice position"
        return
    if len(insts) < MIN_SLICES:
        group.error = f"only {len(insts)} slices (localiser or survey?)"
        return
    group.warnings += _spacing_warnings(np.sort(positions))


def _drop_odd_shapes(group: VolumeGroup) -> None:
    shapes = Counter(i.shape for i in group.instances)
    if len(shapes) == 1:
        return
    main = shapes.most_common(1)[0][0]
    odd = [i for i in group.instances if i.shape != main]
    group.instances = [i for i in group.instances if i.shape == main]
    group.warnings.append(
        f"{len(odd)} images with Rows/Columns other than {main} dropped, e.g. {odd[0].path}"
    )


def _normal(orientation: tuple[float, ...]) -> np.ndarray:
    row, col = np.array(orientation[:3]), np.array(orientation[3:])
    return np.cross(row, col)


def _slice_positions(instances: list[Instance]) -> np.ndarray:
    normal = _normal(instances[0].orientation)
    return np.array([np.dot(normal, i.position) for i in instances])


def _spacing_warnings(sorted_positions: np.ndarray) -> list[str]:
    gaps = np.diff(sorted_positions)
    if len(gaps) == 0:
        return []
    step = float(np.median(gaps))
    out = []
    missing = int(np.sum(np.round(gaps / step) - 1))
    if missing > 0:
        out.append(f"{missing} missing slices (gaps in slice positions)")
    elif np.max(np.abs(gaps - step)) > max(0.1 * step, 0.05):
        out.append(f"uneven slice spacing ({gaps.min():.2f}-{gaps.max():.2f} mm)")
    return out


def plane_of(orientation: tuple[float, ...]) -> str:
    normal = np.abs(_normal(orientation))
    axis = int(np.argmax(normal))
    if normal[axis] < PLANE_COSINE:
        return "oblique"
    return ("sagittal", "coronal", "axial")[axis]


# ---------------------------------------------------------------- loading pixels


def _pixels(inst: Instance) -> np.ndarray:
    """Rescaled pixels (rows, columns): raw bytes at the recorded offset, else via pydicom."""
    layout, (rows, cols) = inst.pixels, inst.shape
    if layout is not None:
        count = rows * cols
        with open(inst.path, "rb") as f:
            f.seek(layout.offset)
            head = f.read(layout.header)
            if head[:4] == b"\xe0\x7f\x10\x00":  # (7FE0,0010) where the header pass left us
                raw = np.frombuffer(f.read(count * np.dtype(layout.dtype).itemsize), layout.dtype)
                if raw.size == count:
                    return _rescale(raw.reshape(rows, cols), layout.slope, layout.intercept)
    ds = pydicom.dcmread(inst.path)
    with pywarnings.catch_warnings():
        pywarnings.simplefilter("ignore")
        pixels = ds.pixel_array
    slope = float(ds.get("RescaleSlope", 1) or 1)
    return _rescale(pixels, slope, float(ds.get("RescaleIntercept", 0) or 0))


def _rescale(pixels: np.ndarray, slope: float, intercept: float) -> np.ndarray:
    if slope == 1 and intercept == 0:
        return pixels  # native integers: compact and exact
    if slope == 1 and intercept == int(intercept):
        return pixels.astype(np.int32) + int(intercept)
    return pixels.astype(np.float32) * slope + intercept


def affine_of(group: VolumeGroup, sorted_positions: np.ndarray, first_position) -> np.ndarray:
    ds = group.first
    orientation = group.instances[0].orientation
    row_dir, col_dir = np.array(orientation[:3]), np.array(orientation[3:])
    row_spacing, col_spacing = (float(v) for v in ds.PixelSpacing)
    if len(sorted_positions) > 1:
        step = float(np.median(np.diff(sorted_positions)))
    else:
        step = float(ds.get("SliceThickness", 1.0) or 1.0)
    lps = np.eye(4)
    lps[:3, 0] = row_dir * col_spacing  # column index moves along a row
    lps[:3, 1] = col_dir * row_spacing
    lps[:3, 2] = _normal(orientation) * step
    lps[:3, 3] = first_position
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def load_volume(group: VolumeGroup) -> Volume:
    """Read the pixels of a checked group, ordered along the slice normal."""
    if group.error:
        raise ValueError(f"{group.volume_id}: {group.error}")
    positions = _slice_positions(group.instances)
    order = np.argsort(positions)
    insts = [group.instances[i] for i in order]
    # Stack contiguous (slice, row, column) and expose the (column, row, slice) view: no copy.
    array = np.stack([_pixels(i) for i in insts]).transpose(2, 1, 0)
    affine = affine_of(group, positions[order], np.array(insts[0].position))
    return Volume(array=array, affine=affine, group=group, warnings=list(group.warnings))
