"""The class vocabulary and what DICOM headers say about it.

This is the only place the five classes and the b-value boundary live. Header hints are for
reporting and for disagreement checks: the model never sees them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydicom.dataset import Dataset

CLASSES: tuple[str, ...] = ("T2WI_nan", "T2WI_fs", "DWI_Low", "DWI_High", "ADC")
# Non-target series (localisers, T1, DCE, post-contrast, subtraction, derived maps) form a
# sixth model output, so a router is told "other" instead of a confident wrong target label.
OTHER = "other"
MODEL_CLASSES: tuple[str, ...] = (*CLASSES, OTHER)
UNKNOWN = "unknown"  # the model's confidence is below its validated threshold
HIGH_B_THRESHOLD = 500.0  # s/mm2: b >= 500 is DWI_High, as in the paper

# GE stores b-values in (0043,1039) with 1e9 added to flag a "user defined" b-value.
GE_B_OFFSET = 1_000_000_000

# (group, element offset in the private block, private creator) per vendor.
PRIVATE_B_TAGS = {
    "siemens": (0x0019, 0x0C, "SIEMENS CSA HEADER"),
    "ge": (0x0043, 0x39, "GEMS_PARM_01"),
    "philips": (0x2001, 0x03, "Philips Imaging DD 001"),
}
STANDARD_B_TAG = (0x0018, 0x9087)

_FS_WORDS = re.compile(
    r"(?<![a-z])(fs|spair|spir|stir|fatsat|fat[ _-]?sat|fat[ _-]?sup\w*|dixon[ _-]?w\w*|"
    r"water)(?![a-z])",
    re.IGNORECASE,
)
_ADC_WORDS = re.compile(r"(?<![a-z])(d?adc(_?map)?|apparent diffusion)(?![a-z])", re.I)
_EADC_WORDS = re.compile(r"(?<![a-z])(eadc|exp(onential)?[ _-]?adc)(?![a-z])", re.I)
_DWI_WORDS = re.compile(r"(?<![a-z])(dwi|diff\w*|ep2d|b\d{2,4}|trace)(?![a-z])", re.I)
_OTHER_WORDS = (  # (subtype, pattern) in the order they are tried
    ("subtraction", re.compile(r"(?<![a-z])(sub\w*)(?![a-z])", re.I)),
    ("dce", re.compile(r"(?<![a-z])(dce|dyn\w*|vibe|lava|thrive|twist|perfusion)(?![a-z])", re.I)),
    (
        "localiser",
        re.compile(r"(?<![a-z])(locali[sz]\w*|scout|survey|3[ _-]?plane)(?![a-z])", re.I),
    ),
    ("t2_map", re.compile(r"(?<![a-z])(t2[ _-]?map\w*|t2star[ _-]?map|mapit)(?![a-z])", re.I)),
    ("eadc", _EADC_WORDS),
    ("t1", re.compile(r"(?<![a-z])(t1\w*)(?![a-z])", re.I)),
)
_T2_WORDS = re.compile(r"(?<![a-z])(t2\w*|tse|frfse|fse|haste|space|cube)(?![a-z])", re.I)


@dataclass(frozen=True)
class Hint:
    """What the headers suggest, and why."""

    label: str
    reason: str


def label_for_b_value(b_value: float) -> str:
    """DWI_Low below 500 s/mm2, DWI_High from 500 on."""
    return "DWI_High" if b_value >= HIGH_B_THRESHOLD else "DWI_Low"


def _private_value(ds: Dataset, group: int, offset: int, creator: str):
    """Value of a private element, wherever its creator's block sits in the group."""
    slots = [t for t in ds.keys() if t.group == group and 0x10 <= t.element <= 0xFF]  # noqa: SIM118
    for tag in slots:  # the group's private creator slots (gggg,0010-00FF)
        if str(ds[tag].value).strip() == creator:
            element = (group << 16) | (tag.element << 8) | offset
            return ds[element].value if element in ds else None
    return None


def _first_number(value) -> float | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("ascii", "ignore").strip("\x00 ").split("\\")
    if isinstance(value, str):
        value = value.split("\\")
    if isinstance(value, list | tuple) or hasattr(value, "__iter__"):
        value = list(value)
        if not value:
            return None
        value = value[0]
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def b_value(ds: Dataset) -> tuple[float | None, str]:
    """The diffusion b-value in s/mm2 and the tag it came from, or (None, "")."""
    if STANDARD_B_TAG in ds:
        value = _first_number(ds[STANDARD_B_TAG].value)
        if value is not None:
            return value, "(0018,9087)"
    for vendor, (group, offset, creator) in PRIVATE_B_TAGS.items():
        value = _first_number(_private_value(ds, group, offset, creator))
        if value is None:
            continue
        if vendor == "ge" and value >= GE_B_OFFSET:
            value -= GE_B_OFFSET
        return value, f"{vendor} ({group:04X},{0x1000 + offset:04X})"
    return None, ""


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword, "")
    if isinstance(value, list | tuple) or (
        hasattr(value, "__iter__") and not isinstance(value, str)
    ):
        return "\\".join(str(v) for v in value)
    return str(value or "")


def image_type(ds: Dataset) -> tuple[str, ...]:
    return tuple(str(v).upper() for v in (ds.get("ImageType") or ()))


def is_adc(ds: Dataset) -> tuple[bool, str]:
    """ADC from ImageType or description; an exponential ADC (EADC) is not an ADC map."""
    kinds = image_type(ds)
    description = _text(ds, "SeriesDescription")
    if "EADC" in kinds or _EADC_WORDS.search(description):
        return False, ""
    if "ADC" in kinds:
        return True, "ImageType contains ADC"
    if _ADC_WORDS.search(description):
        return True, f"description '{description}' names ADC"
    return False, ""


def fat_suppressed(ds: Dataset) -> tuple[bool, str]:
    options = _text(ds, "ScanOptions").upper().split("\\")
    if "FS" in options or "SFS" in options:
        return True, "ScanOptions has FS"
    if "IR" in _text(ds, "ScanningSequence").upper().split("\\"):
        return True, "ScanningSequence IR (STIR)"
    description = _text(ds, "SeriesDescription")
    match = _FS_WORDS.search(description)
    if match:
        return True, f"description '{description}' has '{match.group(0)}'"
    return False, ""


def other_subtype(ds: Dataset, phase: str = "") -> str:
    """What kind of non-target series the headers suggest ("" when they say nothing): reported
    beside a model answer of `other`, never used to decide it."""
    description = _text(ds, "SeriesDescription")
    for subtype, words in _OTHER_WORDS:
        if words.search(description):
            return subtype
    return "dce" if phase else ""


_LOOK_UP = object()  # header_hint's default: find the b-value in `ds` itself


def header_hint(ds: Dataset | dict, b=_LOOK_UP) -> Hint:
    """Guess the class from headers alone.

    Args:
        ds: any instance of the volume (headers only are needed): a Dataset, or the plain dict
            of kept elements that `mrseq.dicom` holds per instance.
        b: the volume's b-value, None for none, when the caller looked it up already (the dict
            holds no private tags); by default it is looked up in `ds`.
    """
    adc, why = is_adc(ds)
    if adc:
        return Hint("ADC", why)
    if b is _LOOK_UP:
        b, _ = b_value(ds)
    if b is not None:
        return Hint(label_for_b_value(b), f"b-value {b:g}")
    subtype = other_subtype(ds, str(ds.get("TemporalPositionIdentifier", "") or ""))
    if subtype:
        return Hint(OTHER, f"headers suggest {subtype}")
    description = _text(ds, "SeriesDescription")
    sequence = _text(ds, "ScanningSequence").upper()
    if _DWI_WORDS.search(description) or "EP" in sequence.split("\\"):
        return Hint(UNKNOWN, "diffusion-weighted but no b-value in any known tag")
    if _T2_WORDS.search(description) or "SE" in sequence.split("\\"):
        fs, why = fat_suppressed(ds)
        if fs:
            return Hint("T2WI_fs", why)
        return Hint("T2WI_nan", "T2/TSE with no fat-suppression marker")
    fs, why = fat_suppressed(ds)
    if fs and "IR" in sequence:
        return Hint("T2WI_fs", why)
    return Hint(UNKNOWN, "no b-value, ADC, or T2 marker in the headers")
