"""The HTTP client of a running server: post a body, classify every series under a path."""

from __future__ import annotations

import io
import json
import logging
import os
import urllib.error
import urllib.request
import zipfile

from mrseq import records as schema
from mrseq.serving.archive import MODEL_NAME

NOT_DICOM = "not a DICOM file"  # mrseq.dicom.read_instance's reason (a test pins the two)
log = logging.getLogger(__name__)


def series_zips(path: str | os.PathLike) -> tuple[list[tuple[str, bytes]], dict[str, str]]:
    """(series description, in-memory zip of its files) for each series under path, and the
    files that could not be used with the reason (nothing is dropped silently).

    Series of one study on exactly one grid (per-b-value DWI series, their ADC and eADC) go in
    one zip, so the server reads them together (mrseq.predict's grid context and ADC evidence);
    every other series is a request of its own, small and failing alone."""
    from mrseq.dicom import list_files, read_instance

    files, _ = list_files([path])
    by_series: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    grids: dict[str, set] = {}
    skipped: dict[str, str] = {}
    for f in files:
        inst = read_instance(f)
        if isinstance(inst, str):
            skipped[os.path.relpath(f, path) if os.path.isdir(path) else f] = inst
            continue
        frames = inst if isinstance(inst, list) else [inst]  # a multi-frame file: one series
        inst = frames[0]
        by_series.setdefault(inst.series_uid, []).append(f)
        names[inst.series_uid] = str(inst.ds.get("SeriesDescription", ""))
        grids.setdefault(inst.series_uid, set()).update(_slice_key(i) for i in frames)
    out = []
    for uids in _same_grid(grids):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            members = [f for uid in uids for f in by_series[uid]]
            for n, f in enumerate(members):
                z.write(f, f"{n:05d}.dcm")
        out.append((" + ".join(names[uid] or uid for uid in uids), buf.getvalue()))
    return out, skipped


def _slice_key(inst) -> tuple:
    """What one image says about its series' grid: study, matrix, pixel size, orientation and
    slice position (to 0.1 mm); an image without them keys its series alone."""
    study = str(inst.ds.get("StudyInstanceUID", ""))
    if not study or inst.position is None or inst.orientation is None:
        return ("series", inst.series_uid)

    def rounded(values):
        return None if values is None else tuple(round(float(v), 1) + 0.0 for v in values)

    return (
        study,
        tuple(inst.shape),
        rounded(inst.ds.get("PixelSpacing")),
        rounded(inst.orientation),
        rounded(inst.position),
    )


def _same_grid(grids: dict[str, set]) -> list[list[str]]:
    """Series UIDs grouped where their sets of slice keys are equal (sorted, deterministic)."""
    groups: dict[frozenset, list[str]] = {}
    for uid in sorted(grids):
        groups.setdefault(frozenset(grids[uid]), []).append(uid)
    return sorted(groups.values())


def post(
    url: str, body: bytes, headers: dict | None = None, timeout: float = 120
) -> tuple[int, object]:
    request = urllib.request.Request(
        f"{url.rstrip('/')}/predictions/{MODEL_NAME}",
        data=body,
        method="POST",
        headers={"Content-Type": "application/octet-stream", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        try:
            return exc.code, json.loads(text)
        except ValueError:
            return exc.code, {"error": text}


def classify(path: str | os.PathLike, url: str, timeout: float = 120) -> list[dict]:
    """Send each series under path to the server; one record per volume back, and one
    record (label None, with the reason) per series the server refused or file not sent.

    Raises urllib.error.URLError, ConnectionError or TimeoutError when the server cannot be
    reached or does not answer within `timeout` seconds."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file or folder: {path}")
    series, skipped = series_zips(path)
    records = []
    for name, body in series:
        status, answer = post(url, body, timeout=timeout)
        if status != 200:
            why = answer.get("error", answer) if isinstance(answer, dict) else answer
            records.append(schema.problem(f"HTTP {status}: {why}", series_description=name))
            continue
        records += answer if isinstance(answer, list) else [answer]
    for f, why in skipped.items():
        if why == NOT_DICOM:  # a README or labels.csv beside the series: said, not a failure
            log.warning("skipped %s: %s", f, why)
        else:  # a DICOM file that cannot be read is a failure the user must see
            records.append(schema.problem(why, path=f))
    return records
