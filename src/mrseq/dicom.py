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
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pydicom.valuerep import PersonName

from mrseq.pool import run_all
from mrseq.sequences import b_value, image_type

log = logging.getLogger(__name__)

NOT_DICOM_SUFFIXES = {".csv", ".json", ".txt", ".md", ".yaml", ".yml", ".png", ".jpg", ".py"}
MIN_SLICES = 5  # fewer is a localiser or a single-slice survey, not a volume
LOCALISER = "(localiser"  # marks the reasons that say a series is a localiser


def is_localiser(why: str) -> bool:
    """Whether a group's error says it is a localiser (few slices or mixed planes)."""
    return LOCALISER in why


PLANE_COSINE = 0.8  # the normal within ~37 degrees of an axis names the plane
# Beyond this many files or volumes, worker processes pay for their start-up.
PARALLEL_MIN_ITEMS = 64


@dataclass
class Instance:
    """Header facts about one DICOM image: a file, or one frame of a multi-frame file (`frame`
    set; `ds` then holds the frame's functional groups flattened, see `_frame_datasets`)."""

    path: str
    ds: dict  # the KEPT header elements by keyword, plain values: cheap to pickle and keep
    series_uid: str
    b_value: float | None
    b_tag: str
    image_type: tuple[str, ...]
    position: tuple[float, ...] | None
    orientation: tuple[float, ...] | None
    shape: tuple[int, int]
    temporal: str
    pixels: PixelLayout | None = None  # where to read raw pixels without re-parsing
    frame: int | None = None  # index into a multi-frame file's frames
    rescale: tuple[float, float] = (1.0, 0.0)  # a frame's slope and intercept


@dataclass(frozen=True)
class PixelLayout:
    """Byte offset of an uncompressed PixelData element and how to decode it."""

    offset: int  # start of the element (its tag)
    header: int  # bytes of tag + VR + length before the values
    dtype: str


@dataclass
class VolumeGroup:
    """Instances that form one volume (one series, one b-value, one image type)."""

    volume_id: str
    instances: list[Instance]
    warnings: list[str] = field(default_factory=list)
    error: str = ""  # set when the group cannot become a volume

    @property
    def first(self) -> dict:
        return self.instances[0].ds

    @property
    def b_value(self) -> float | None:
        return self.instances[0].b_value


@dataclass
class Volume:
    array: np.ndarray  # (columns, rows, slices), rescaled unless `rescale` says otherwise
    affine: np.ndarray  # 4x4, voxel index -> RAS mm
    group: VolumeGroup
    warnings: list[str] = field(default_factory=list)
    rescale: tuple[float, float] = (1.0, 0.0)  # slope, intercept still to apply to `array`

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


def _plain(value):
    """A header value without pydicom's containers: multi-values become tuples, names str.
    Numbers keep pydicom's DS/IS types, whose str() is the file's own text."""
    if isinstance(value, MultiValue | list | tuple):
        return tuple(_plain(v) for v in value)
    return str(value) if isinstance(value, PersonName) else value


# What read_instance itself reads besides KEPT: validity, geometry, pixel layout, phase.
_READ = (
    "SOPClassUID",
    "Rows",
    "Columns",
    "NumberOfFrames",
    "BitsAllocated",
    "SamplesPerPixel",
    "PixelRepresentation",
    "RescaleSlope",
    "RescaleIntercept",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "TemporalPositionIdentifier",
)
_READ_TAGS = tuple((keyword, tag_for_keyword(keyword)) for keyword in KEPT + _READ)
_META_TAGS = tuple(
    (keyword, tag_for_keyword(keyword))
    for keyword in ("MediaStorageSOPClassUID", "TransferSyntaxUID")
)

# Most header values repeat file after file (a series' description, protocol, spacing,
# orientation): converting the same bytes again, through pydicom's Dataset item access, was
# most of a header read's cost. Each distinct raw value is converted once per process.
_VALUES: dict = {}
_VALUES_MAX = 20_000  # entries; cleared when full, so a huge archive cannot grow it unbounded
_VALUE_BYTES_MAX = 1024  # longer values (curves, private blobs) are rare repeats


def _header_values(ds: Dataset) -> dict:
    """The elements read_instance needs, by keyword, as plain values (see `_plain`): the
    file meta's and the dataset's."""
    meta = getattr(ds, "file_meta", None)
    values = _converted(meta, _META_TAGS) if meta is not None else {}
    values.update(_converted(ds, _READ_TAGS))
    return values


def _converted(ds: Dataset, tags: tuple) -> dict:
    """Raw elements are converted by pydicom, remembered by (tag, VR, bytes, byte order,
    character set): the same bytes give the same value, and plain values are never modified."""
    charset = ds.original_character_set
    values = {}
    for keyword, tag in tags:
        element = ds.get_item(tag)
        if element is None:
            continue
        if not isinstance(element, RawDataElement):  # built in memory (multi-frame flattening)
            values[keyword] = _plain(element.value)
            continue
        raw = element.value
        if not isinstance(raw, bytes) or len(raw) > _VALUE_BYTES_MAX:
            values[keyword] = _plain(convert_raw_data_element(element, encoding=charset).value)
            continue
        key = (tag, element.VR, raw, element.is_little_endian, str(charset))
        if key not in _VALUES:
            if len(_VALUES) >= _VALUES_MAX:
                _VALUES.clear()
            _VALUES[key] = _plain(convert_raw_data_element(element, encoding=charset).value)
        values[keyword] = _VALUES[key]
    return values


MEDIA_DIRECTORY = "1.2.840.10008.1.3.10"  # DICOMDIR


def read_instance(path: str) -> Instance | list[Instance] | str:
    """Header facts of one file (a list for a multi-frame file), or why it cannot be used."""
    try:
        with open(path, "rb") as f:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
            pixel_offset = f.tell()  # pydicom rewinds to the PixelData tag when it stops there
    except InvalidDicomError:
        return "not a DICOM file"
    except Exception as exc:  # pydicom raises many types on truncated or corrupt files
        return f"unreadable DICOM ({type(exc).__name__}: {exc})"
    values = _header_values(ds)
    problem = _not_usable(values)
    if problem:
        return problem
    if int(values.get("NumberOfFrames", 1) or 1) > 1 or "PerFrameFunctionalGroupsSequence" in ds:
        return [
            _instance(path, flat, _header_values(flat), None, frame)
            for frame, flat in _frame_datasets(ds)
        ]
    return _instance(path, ds, values, _layout(values, pixel_offset))


def _not_usable(values: dict) -> str:
    """Why a parsed file (`values`: its `_header_values`) holds no image we can read ('' if
    it does)."""
    if str(values.get("MediaStorageSOPClassUID", "")) == MEDIA_DIRECTORY:
        return "a DICOMDIR (media directory): the files it lists are read directly"
    if not str(values.get("SeriesInstanceUID", "")):
        return "no SeriesInstanceUID"
    if "Rows" not in values or "Columns" not in values:
        sop = values.get("SOPClassUID")
        kind = getattr(sop, "name", "") or str(sop or "unknown SOP class")
        return f"not an image ({kind})"
    syntax = values.get("TransferSyntaxUID")
    if syntax is not None and syntax.is_compressed:
        from pydicom.pixels import get_decoder

        try:
            available = get_decoder(syntax).is_available
        except NotImplementedError:
            available = False
        if not available:
            return f"cannot decode pixels: no decoder installed for {syntax.name} ({syntax})"
    return ""


def _instance(path: str, ds: Dataset, values: dict, layout, frame: int | None = None) -> Instance:
    b, b_tag = b_value(ds)  # the Dataset: vendors' private tags are found by their creator
    # Not TriggerTime: respiratory-triggered DWI sets it per slice, it does not mark a phase.
    temporal = values.get("TemporalPositionIdentifier", "")
    return Instance(
        path=path,
        # the KEPT elements only: big archives fit in memory, workers send little back
        ds={keyword: values[keyword] for keyword in KEPT if keyword in values},
        series_uid=str(values["SeriesInstanceUID"]),
        b_value=b,
        b_tag=b_tag,
        image_type=image_type(values),
        position=_floats(values.get("ImagePositionPatient")),
        orientation=_floats(values.get("ImageOrientationPatient")),
        shape=(int(values["Rows"]), int(values["Columns"])),
        temporal=str(temporal or ""),
        pixels=layout,
        frame=frame,
        rescale=_rescale_of(values),
    )


def _rescale_of(values: dict | Dataset) -> tuple[float, float]:
    """(slope, intercept) from header values or a Dataset; DICOM's defaults where absent."""
    slope, intercept = values.get("RescaleSlope", 1), values.get("RescaleIntercept", 0)
    return float(slope or 1), float(intercept or 0)


def _frame_datasets(ds: Dataset):
    """(frame index, flat dataset) per frame of an enhanced or legacy-converted multi-frame file.

    The shared and then the frame's own functional groups are flattened onto the top-level
    header (plane position and orientation, pixel measures, pixel value transformation, MR
    diffusion b-value, frame content, unassigned converted attributes), so every per-frame fact
    sits where a single-frame file has it and the rest of the reader treats frames as files.
    """
    shared = ds.get("SharedFunctionalGroupsSequence") or [Dataset()]
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    count = int(ds.get("NumberOfFrames", len(per_frame)) or len(per_frame))
    base = Dataset()
    for element in ds:
        if element.keyword not in (
            "SharedFunctionalGroupsSequence",
            "PerFrameFunctionalGroupsSequence",
        ):
            base[element.tag] = element
    base.file_meta = getattr(ds, "file_meta", Dataset())
    _flatten_into(base, shared[0])
    for frame in range(count):
        flat = Dataset()
        flat.update(base)
        flat.file_meta = base.file_meta
        if frame < len(per_frame):
            _flatten_into(flat, per_frame[frame])
        if (
            "InstanceNumber" not in flat
            or frame < len(per_frame)
            and not _has_number(per_frame[frame])
        ):
            flat.InstanceNumber = frame + 1
        if "FrameType" in flat:
            flat.ImageType = flat.FrameType
        temporal = flat.get("TemporalPositionIndex")
        if temporal is not None and "TemporalPositionIdentifier" not in flat:
            flat.TemporalPositionIdentifier = temporal
        yield frame, flat


def _flatten_into(target: Dataset, groups: Dataset) -> None:
    """Copy the plain elements of each functional-group sequence's first item onto `target`."""
    for element in groups:
        if element.VR != "SQ" or not element.value:
            continue
        for inner in element.value[0]:
            if inner.VR != "SQ":
                target[inner.tag] = inner


def _has_number(frame_groups: Dataset) -> bool:
    unassigned = frame_groups.get("UnassignedPerFrameConvertedAttributesSequence") or []
    return bool(unassigned) and "InstanceNumber" in unassigned[0]


def _layout(values: dict, offset: int) -> PixelLayout | None:
    """Raw-read plan for plain little-endian greyscale pixels; None means 'use pydicom'."""
    syntax = values.get("TransferSyntaxUID")
    bits = int(values.get("BitsAllocated", 0) or 0)
    samples = int(values.get("SamplesPerPixel", 1) or 1)
    if syntax not in _RAW_SYNTAXES or bits not in (8, 16) or samples != 1:
        return None
    signed = int(values.get("PixelRepresentation", 0) or 0) == 1
    dtype = ("<i" if signed else "<u") + str(bits // 8)
    return PixelLayout(offset, _RAW_SYNTAXES[syntax], dtype)


def _read_many(paths: list[str], progress: bool, pool, workers: int) -> list[Instance | str]:
    return run_all(
        read_instance,
        paths,
        desc="headers",
        unit="file",
        progress=progress,
        pool=pool,
        workers=workers,
        min_jobs=PARALLEL_MIN_ITEMS,
        chunksize=64,
    )


def scan(
    paths: Iterable[str | os.PathLike],
    workers: int = 1,
    progress: bool = False,
    pool: ProcessPoolExecutor | None = None,
) -> ScanResult:
    """Read every header under `paths` and group the instances into candidate volumes (on
    `pool` when the caller has one to share, else on `workers` processes)."""
    files, ignored = list_files(paths)
    by_series: dict[str, list[Instance]] = defaultdict(list)
    skipped: dict[str, str] = {}
    results = _read_many(files, progress, pool, workers)
    for path, result in zip(files, results, strict=True):
        if isinstance(result, str):
            skipped[path] = result
            log.warning("skipped %s: %s", path, result)
        else:
            for inst in result if isinstance(result, list) else [result]:
                by_series[inst.series_uid].append(inst)
    groups = [g for uid in sorted(by_series) for g in split_series(by_series[uid])]
    return ScanResult(groups=groups, skipped=skipped, ignored=ignored)


# ---------------------------------------------------------------- grouping and checks


def _volume_key(inst: Instance) -> tuple:
    b = None if inst.b_value is None else round(inst.b_value, 1)
    derived = inst.image_type[2:] if len(inst.image_type) > 2 else inst.image_type
    return (b, derived, inst.temporal)


def _sort_key(key: tuple) -> tuple:
    b, derived, temporal = key
    number = _first_float(temporal)
    return (b is None, b or 0, derived, number is None, number or 0, temporal)


def _first_float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def split_series(instances: list[Instance]) -> list[VolumeGroup]:
    """One group per distinct b-value, image type and temporal position (a DCE phase) within a
    series, each checked."""
    parts: dict[tuple, list[Instance]] = defaultdict(list)
    for inst in instances:
        parts[_volume_key(inst)].append(inst)
    uid = instances[0].series_uid
    groups = []
    for key in sorted(parts, key=_sort_key):
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
    b, kinds, temporal = key
    b_part = "" if b is None else f"_b{b:g}"
    kinds_differ = len({k[1] for k in parts}) > 1
    kind_part = "_" + "-".join(kinds).lower() if kinds_differ and kinds else ""
    phases_differ = len({k[2] for k in parts}) > 1
    safe = "".join(c if c.isalnum() or c in ".-" else "-" for c in temporal)
    return b_part + kind_part + (f"_t{safe}" if phases_differ and temporal else "")


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
        kind = f"mixed planes {LOCALISER})" if len(planes) > 1 else "several orientations"
        group.error = f"{kind}: {len(orientations)} orientations in one series"
        return
    _drop_odd_shapes(group)
    positions = _slice_positions(group.instances)
    if len(set(np.round(positions, 2))) < len(positions):
        group.error = "several images at the same slice position"
        return
    if len(insts) < MIN_SLICES:
        group.error = f"only {len(insts)} slices {LOCALISER} or survey?)"
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
    layout = inst.pixels
    if layout is not None:
        plane = np.empty(inst.shape, layout.dtype)
        if _read_into(inst, plane):
            return rescaled(plane, *inst.rescale)
    ds = pydicom.dcmread(inst.path)  # the file as it is now, its rescale too
    return rescaled(_decode(ds), *_rescale_of(ds))


def _raw_stack(insts: list[Instance]) -> tuple[np.ndarray, float, float] | None:
    """Every slice's stored values read straight into one (slice, row, column) array, with the
    slope and intercept they share: when all slices are plain pixels of one layout and rescale
    (most series). None when they are not, or a file is not as its header pass found it."""
    kinds = {
        (i.pixels.dtype, i.shape, *i.rescale) if i.pixels is not None and i.frame is None else None
        for i in insts
    }
    if len(kinds) != 1 or None in kinds:
        return None
    dtype, shape, slope, intercept = kinds.pop()
    stack = np.empty((len(insts), *shape), dtype)
    for inst, plane in zip(insts, stack, strict=True):
        if not _read_into(inst, plane):
            return None
    return stack, slope, intercept


def _read_into(inst: Instance, plane: np.ndarray) -> bool:
    """Read the raw pixels of `inst` into `plane`; False if they are not where expected."""
    layout = inst.pixels
    with open(inst.path, "rb", buffering=0) as f:
        f.seek(layout.offset)
        if f.read(layout.header)[:4] != b"\xe0\x7f\x10\x00":  # (7FE0,0010) PixelData, where
            return False  # the header pass left it
        return f.readinto(memoryview(plane).cast("B")) == plane.nbytes


def _decode(ds: Dataset) -> np.ndarray:
    """Every frame's stored values; a decoding failure names the transfer syntax."""
    try:
        with pywarnings.catch_warnings():
            pywarnings.simplefilter("ignore")
            return ds.pixel_array
    except Exception as exc:  # the decoder's own words go to the log, not to the user
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(syntax, "name", "unknown transfer syntax")
        log.warning("decoding %s pixels failed: %s: %s", name, type(exc).__name__, exc)
        raise ValueError(
            f"cannot decode {name} pixels ({syntax}): the decoder refused them"
        ) from exc


class _Frames:
    """Decodes each multi-frame file once per volume, however many of its frames it holds."""

    def __init__(self):
        self.files: dict[str, np.ndarray] = {}

    def pixels(self, inst: Instance) -> np.ndarray:
        if inst.frame is None:
            return _pixels(inst)
        if inst.path not in self.files:
            frames = _decode(pydicom.dcmread(inst.path))
            self.files[inst.path] = frames.reshape(-1, *inst.shape)
        return rescaled(self.files[inst.path][inst.frame], *inst.rescale)


def rescaled(pixels: np.ndarray, slope: float, intercept: float) -> np.ndarray:
    """Stored values to real ones, as DICOM's rescale defines them; one rule wherever pixels are
    rescaled (here and when ingest's stored volumes are loaded), so both give the same floats."""
    if slope == 1 and intercept == 0:
        return pixels  # native integers: compact and exact
    # in place on the one converted copy: a whole volume is tens of MB
    if slope == 1 and intercept == int(intercept):
        values = pixels.astype(np.int32)
        values += int(intercept)
        return values
    values = pixels.astype(np.float32)
    values *= slope
    values += intercept
    return values


def affine_of(group: VolumeGroup, sorted_positions: np.ndarray, first_position) -> np.ndarray:
    ds = group.first
    orientation = group.instances[0].orientation
    row_dir, col_dir = np.array(orientation[:3]), np.array(orientation[3:])
    row_spacing, col_spacing = (float(v) for v in ds["PixelSpacing"])
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


def header_geometry(group: VolumeGroup) -> tuple[tuple[int, int, int], np.ndarray]:
    """(shape, affine) the volume will have, from the headers alone: lets callers refuse an
    absurd geometry before a single pixel is decoded."""
    positions = _slice_positions(group.instances)
    order = np.argsort(positions)
    first = group.instances[order[0]]
    rows, cols = first.shape
    affine = affine_of(group, positions[order], np.array(first.position))
    return (cols, rows, len(group.instances)), affine


def load_volume(group: VolumeGroup, stored: bool = False) -> Volume:
    """Read the pixels of a checked group, ordered along the slice normal. With `stored`, a
    series whose slices share one rescale keeps its stored integers (half the bytes of float32
    for a fractional one) and the volume's `rescale` says what to apply."""
    if group.error:
        raise ValueError(f"{group.volume_id}: {group.error}")
    positions = _slice_positions(group.instances)
    order = np.argsort(positions)
    insts = [group.instances[i] for i in order]
    stack, rescale = _raw_stack(insts), (1.0, 0.0)
    if stack is None:
        frames = _Frames()
        stack = np.stack([frames.pixels(i) for i in insts])
    else:
        stack, slope, intercept = stack
        if stored:
            rescale = (slope, intercept)
        else:
            stack = rescaled(stack, slope, intercept)
    # Stacked contiguous (slice, row, column); the (column, row, slice) view costs no copy.
    array = stack.transpose(2, 1, 0)
    affine = affine_of(group, positions[order], np.array(insts[0].position))
    warnings = list(group.warnings)
    return Volume(array=array, affine=affine, group=group, warnings=warnings, rescale=rescale)
