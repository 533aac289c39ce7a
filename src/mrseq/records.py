"""The one record schema: what `mrseq predict`, the HTTP API and `mrseq classify` answer.

Every record has every field, in this order: a classified volume fills them, a problem (a file,
series or request that could not be classified) has `label` None and the reason in `warnings`;
a series that is no volume because it is a localiser (1-4 slices, or mixed planes) is a problem
with `label` "other" and `subtype` "localiser": not a target series, said so, with the reason.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from mrseq.dicom import is_localiser, plane_of
from mrseq.sequences import OTHER, UNKNOWN, header_hint, other_subtype

FIELDS = (
    "path",
    "series_uid",
    "volume_id",
    "series_description",
    "b_value_header",
    "plane",
    "label",
    "subtype",
    "confidence",
    "probabilities",
    "header_hint",
    "agrees_with_header",
    "warnings",
    "model_version",
)


def _empty() -> dict:
    return dict.fromkeys(FIELDS) | {"warnings": []}


@dataclass(frozen=True)
class Gates:
    """When a model answers `unknown`: confidence below `unknown_below`, or feature distance
    beyond `unknown_beyond` (both chosen on validation at export)."""

    unknown_below: float = 0.0
    unknown_beyond: float = float("inf")

    def closed_by(self, confidence: float, distance: float) -> str:
        """'confidence', 'distance' or '' (answered): the gate that turns this into unknown."""
        if confidence < self.unknown_below:
            return "confidence"
        return "distance" if distance > self.unknown_beyond else ""  # NaN is never beyond

    def why_unknown(self, best: str, confidence: float, distance: float) -> str:
        gate = self.closed_by(confidence, distance)
        if gate == "confidence":
            return (
                f"confidence {confidence:.2f} is below the model's threshold "
                f"{self.unknown_below:.2f} (best guess {best})"
            )
        if gate == "distance":
            return (
                f"unlike the training series of every class: feature distance {distance:.1f} "
                f"beyond the model's threshold {self.unknown_beyond:.1f} (best guess {best})"
            )
        return ""


def prediction(
    classes,
    probs: np.ndarray,
    volume=None,
    warnings=None,
    model_version=None,
    gates: Gates = Gates(),
    distance: float = float("nan"),
) -> dict:
    """A classified volume; `volume` (mrseq.dicom.Volume) adds what its headers say.

    When a gate closes (low confidence, or far from every class) the label is `unknown` and a
    warning gives the reason and the best guess; a label of `other` carries the subtype its
    headers suggest, when they do."""
    best, confidence = classes[int(np.argmax(probs))], float(np.max(probs))
    why_unknown = gates.why_unknown(best, confidence, float(distance))
    label = UNKNOWN if why_unknown else best
    record = _empty() | {
        "label": label,
        "confidence": round(confidence, 4),
        "probabilities": {c: round(float(p), 4) for c, p in zip(classes, probs, strict=True)},
        "header_hint": UNKNOWN,
        "model_version": model_version,
    }
    if volume is not None:
        record |= _from_headers(volume, label)
    if warnings is None:
        warnings = volume.warnings if volume is not None else []
    record["warnings"] = list(warnings)
    if why_unknown:
        record["warnings"].append(why_unknown)
    return record


def _from_headers(volume, label: str) -> dict:
    group, ds = volume.group, volume.group.first
    hint = header_hint(ds, group.b_value)
    first = group.instances[0]
    known = UNKNOWN not in (hint.label, label)
    return {
        "path": os.path.dirname(first.path),
        "series_uid": first.series_uid,
        "volume_id": group.volume_id,
        "series_description": str(ds.get("SeriesDescription", "")),
        "b_value_header": group.b_value,
        "plane": plane_of(first.orientation),
        "subtype": (other_subtype(ds, first.temporal) or None) if label == OTHER else None,
        "header_hint": hint.label,
        "agrees_with_header": hint.label == label if known else None,
    }


def where(group, path: bool = True) -> dict:
    """The record fields that say which series a problem is about (`path`: a file of it)."""
    first = group.instances[0]
    fields = {
        "series_uid": first.series_uid,
        "volume_id": group.volume_id,
        "series_description": str(group.first.get("SeriesDescription", "")),
    }
    return ({"path": first.path} if path else {}) | fields


def problem(why: str, **where) -> dict:
    """What could not be classified (where: path, series_uid, volume_id, series_description)."""
    unknown = set(where) - set(FIELDS)
    if unknown:
        raise ValueError(f"not record fields: {sorted(unknown)}")
    record = (
        _empty() | {k: v for k, v in where.items() if v not in (None, "")} | {"warnings": [why]}
    )
    if is_localiser(why):
        record |= {"label": OTHER, "subtype": "localiser"}
    return record
