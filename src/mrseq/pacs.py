"""A PACS as source and sink over DICOMweb: QIDO-RS to find studies, WADO-RS to fetch series,
STOW-RS to store the results back (dicomweb-client does the protocol).

Results go back as a DICOM Basic Text SR, one per classified study, in the study itself: any
PACS and viewer shows it next to the images, it survives migrations and needs no vendor API
(Orthanc's user metadata would be Orthanc-only, and a Key Object Selection can flag series but
carry no label). The SR lists every series with its label and confidence and references each
image it judged (Current Requested Procedure Evidence), so a router can act on it.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import defaultdict
from pathlib import Path

from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from tqdm import tqdm

BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
SR_TITLE = ("MRSEQ001", "99MRSEQ", "MR sequence classification (mrseq)")
SR_ITEM = ("MRSEQ002", "99MRSEQ", "Series sequence class")
SR_SERIES_DESCRIPTION = "mrseq sequence classification"


def connect(url: str):
    from dicomweb_client.api import DICOMwebClient

    client = DICOMwebClient(url=url.rstrip("/"))
    # The library's default (5 attempts, exponential from 1 s) kept a user with a mistyped URL
    # waiting 31 s for "cannot reach the PACS"; 3 attempts still ride out a busy server.
    client.set_http_retry_params(max_attempts=3, wait_exponential_multiplier=500)
    return client


def _value(record: dict, tag: str):
    values = record.get(tag, {}).get("Value") or [None]
    return values[0]


def study_uids(client, studies: list[str] | None = None) -> list[str]:
    """The studies asked for, or every study the PACS holds (QIDO-RS)."""
    if studies:
        return list(studies)
    return sorted(str(_value(s, "0020000D")) for s in client.search_for_studies())


def fetch(
    url: str, out_dir: str | os.PathLike, studies: list[str] | None = None, progress: bool = True
) -> list[str]:
    """Every image series of the studies into OUT/<study>/<series>/<sop>.dcm (WADO-RS);
    SR and other non-image series are left on the server. Returns the study UIDs."""
    client, out = connect(url), Path(out_dir)
    uids = study_uids(client, studies)
    if not uids:
        raise ValueError(f"the PACS at {url} holds no studies")
    for study in tqdm(uids, desc="studies", unit="study", disable=not progress):
        for series in client.search_for_series(study):
            if str(_value(series, "00080060") or "") in ("SR", "KO", "PR", "DOC"):
                continue
            uid = str(_value(series, "0020000E"))
            folder = out / study / uid
            folder.mkdir(parents=True, exist_ok=True)
            for ds in client.retrieve_series(study, uid):
                ds.save_as(folder / f"{ds.SOPInstanceUID}.dcm", enforce_file_format=True)
    return uids


def results_report(
    records: list[dict], images: dict[str, list[tuple[str, str]]], study: Dataset
) -> Dataset:
    """A Basic Text SR for one study: one TEXT item per classified volume.

    `images` maps a series UID to its (SOP class, SOP instance) pairs; `study` carries the
    patient and study attributes to copy (from any of the study's images)."""
    now = dt.datetime.now()
    sr = Dataset()
    for keyword in (
        "PatientID",
        "PatientName",
        "PatientBirthDate",
        "PatientSex",
        "StudyInstanceUID",
        "StudyDate",
        "StudyTime",
        "StudyID",
        "AccessionNumber",
        "ReferringPhysicianName",
    ):
        setattr(sr, keyword, study.get(keyword, ""))
    sr.SOPClassUID, sr.SOPInstanceUID = BASIC_TEXT_SR, generate_uid()
    sr.Modality, sr.SeriesInstanceUID, sr.SeriesNumber = "SR", generate_uid(), 9901
    sr.SeriesDescription, sr.InstanceNumber = SR_SERIES_DESCRIPTION, 1
    sr.Manufacturer = "mrseq"
    sr.ContentDate, sr.ContentTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    sr.CompletionFlag, sr.VerificationFlag = "COMPLETE", "UNVERIFIED"
    sr.ValueType, sr.ContinuityOfContent = "CONTAINER", "SEPARATE"
    sr.ConceptNameCodeSequence = _code(*SR_TITLE)
    sr.PerformedProcedureCodeSequence = Sequence()
    sr.CurrentRequestedProcedureEvidenceSequence = _evidence(sr.StudyInstanceUID, images)
    sr.ContentSequence = Sequence([_text_item(r) for r in records])
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = BASIC_TEXT_SR
    meta.MediaStorageSOPInstanceUID = sr.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    # A file dataset with its preamble: what STOW-RS sends is stored and served back as is,
    # and readers (pydicom among them) expect the 'DICM' prefix.
    return FileDataset(None, sr, file_meta=meta, preamble=b"\0" * 128)


def _code(value: str, scheme: str, meaning: str) -> Sequence:
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = value, scheme, meaning
    return Sequence([code])


def _text_item(record: dict) -> Dataset:
    item = Dataset()
    item.RelationshipType, item.ValueType = "CONTAINS", "TEXT"
    item.ConceptNameCodeSequence = _code(*SR_ITEM)
    b, confidence = record.get("b_value_header"), record.get("confidence")
    # a series the model never saw (a localiser) says why instead of a confidence
    why = record["warnings"][0] if record.get("warnings") else "no reason given"
    detail = f"confidence {confidence:.2f}" if confidence is not None else why
    if record.get("subtype"):
        detail = f"{record['subtype']}, {detail}"
    item.TextValue = (
        f"series {record['series_uid']}"
        + ("" if b is None else f" b={b:g}")
        + f": {record['label']} ({detail})"
        + f" [{record.get('series_description') or 'no description'}]"
    )[:1024]
    return item


def _evidence(study_uid: str, images: dict[str, list[tuple[str, str]]]) -> Sequence:
    series_items = []
    for series_uid, refs in sorted(images.items()):
        series = Dataset()
        series.SeriesInstanceUID = series_uid
        series.ReferencedSOPSequence = Sequence([_sop(c, i) for c, i in refs])
        series_items.append(series)
    study = Dataset()
    study.StudyInstanceUID = study_uid
    study.ReferencedSeriesSequence = Sequence(series_items)
    return Sequence([study])


def _sop(sop_class: str, sop_instance: str) -> Dataset:
    ref = Dataset()
    ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = sop_class, sop_instance
    return ref


def write_back(url: str, fetched: str | os.PathLike, records: list[dict]) -> list[str]:
    """Store one results SR per study in `fetched` (fetch's layout) that has classified
    volumes (STOW-RS); returns the SR SOP Instance UIDs."""
    import pydicom

    study_of = {s.name: s.parent.name for s in Path(fetched).glob("*/*") if s.is_dir()}
    by_study: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        if r.get("label") and r.get("series_uid") in study_of:
            by_study[study_of[r["series_uid"]]].append(r)
    client, stored = connect(url), []
    for study, rows in sorted(by_study.items()):
        images: dict[str, list[tuple[str, str]]] = defaultdict(list)
        first = None
        for path in sorted(Path(fetched, study).rglob("*.dcm")):
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            first = first or ds
            if ds.SeriesInstanceUID in {r["series_uid"] for r in rows}:
                images[ds.SeriesInstanceUID].append((ds.SOPClassUID, ds.SOPInstanceUID))
        sr = results_report(rows, images, first)
        client.store_instances([sr])
        stored.append(str(sr.SOPInstanceUID))
    return stored
