"""The one record schema: what `mrseq predict`, the HTTP API and `mrseq classify` answer.

Every record has every field, in this order: a classified volume fills them, a problem (a file,
series or request that could not be classified) has `label` None and the reason in `warnings`.
"""

from __future__ import annotations

import os

import numpy as np

from mrseq.dicom import plane_of
from mrseq.sequences import UNKNOWN, header_hint

FIELDS = (
    "path",
    "series_uid",
    "volume_id",
    "series_description",
    "b_value_header",
    "plane",
    "label",
    "confidence",
    "probabilities",
    "header_hint",
    "agrees_with_header",
    "warnings",
    "model_version",
)


def _empty() -> dict:
    return dict.fromkeys(FIELDS) | {"warnings": []}


def prediction(classes, probs: np.ndarray, volume=None, warnings=None, model_version=None) -> dict:
    """A classified volume; `volume` (mrseq.dicom.Volume) adds what its headers say."""
    label = classes[int(np.argmax(probs))]
    record = _empty() | {
        "label": label,
        "confidence": round(float(np.max(probs)), 4),
        "probabilities": {c: round(float(p), 4) for c, p in zip(classes, probs, strict=True)},
        "header_hint": UNKNOWN,
        "model_version": model_version,
    }
    if volume is not None:
        record |= _from_headers(volume, label)
    if warnings is None:
        warnings = volume.warnings if volume is not None else []
    record["warnings"] = list(warnings)
    return record


def _from_headers(volume, label: str) -> dict:
    group, ds = volume.group, volume.group.first
    hint = header_hint(ds, group.b_value)
    return {
        "path": os.path.dirname(group.instances[0].path),
        "series_uid": group.instances[0].series_uid,
        "volume_id": group.volume_id,
        "series_description": str(ds.get("SeriesDescription", "")),
        "b_value_header": group.b_value,
        "plane": plane_of(group.instances[0].orientation),
        "header_hint": hint.label,
        "agrees_with_header": None if hint.label == UNKNOWN else hint.label == label,
    }


def problem(why: str, **where) -> dict:
    """What could not be classified (where: path, series_uid, volume_id, series_description)."""
    unknown = set(where) - set(FIELDS)
    if unknown:
        raise ValueError(f"not record fields: {sorted(unknown)}")
    return _empty() | {k: v for k, v in where.items() if v not in (None, "")} | {"warnings": [why]}
