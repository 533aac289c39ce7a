"""A real Orthanc as source and sink: store a study (STOW-RS), classify it over DICOMweb,
check the records and the results SR written back, pull studies for training."""

from __future__ import annotations

import json

import pydicom
import pytest

from helpers import tiny_model_dir
from mrseq.cli import main
from mrseq.dicom import MIN_SLICES
from mrseq.pacs import SR_SERIES_DESCRIPTION, connect
from mrseq.simulate import simulate_cohort

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stored(orthanc, tmp_path_factory):
    """One simulated study stored in Orthanc; (DICOMweb root, study UID, labels, model dir)."""
    root = tmp_path_factory.mktemp("pacs")
    labels = simulate_cohort(root / "raw", 1, seed=21, resolution_scale=0.3, progress=False)
    datasets = [pydicom.dcmread(p) for p in sorted((root / "raw").rglob("*.dcm"))]
    _, web = orthanc
    connect(web).store_instances(datasets)
    model = tiny_model_dir(root / "model")
    return web, str(labels.study_uid.iloc[0]), labels, model


def sr_texts(web: str, study: str) -> list[str]:
    client = connect(web)
    reports = client.search_for_series(study, search_filters={"Modality": "SR"})
    texts = []
    for series in reports:
        uid = series["0020000E"]["Value"][0]
        for ds in client.retrieve_series(study, uid):
            assert ds.SeriesDescription == SR_SERIES_DESCRIPTION
            texts += [item.TextValue for item in ds.ContentSequence]
    return texts


def test_predict_from_the_pacs_and_write_the_results_back(stored, capsys):
    web, study, labels, model = stored
    argv = ["predict", "--dicomweb", web, "--study", study, "--model", str(model)]
    assert main([*argv, "--write-back"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(records) == len(labels) and all(r["label"] for r in records)
    assert {r["series_uid"] for r in records} == set(labels.series_uid)
    texts = sr_texts(web, study)
    assert len(texts) == len(records)
    for r in records:  # every volume's answer is in the report, as the predictor gave it
        assert any(r["series_uid"] in t and f": {r['label']} " in t for t in texts)
    # the report is skipped when the study is fetched again: the same volumes, no SR among them
    assert main(argv) == 0
    again = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(r["volume_id"] for r in again) == sorted(r["volume_id"] for r in records)


def test_ingest_pulls_studies_for_training(stored, tmp_path):
    web, _, labels, _ = stored
    assert main(["ingest", "--dicomweb", web, str(tmp_path / "interim"), "--quiet"]) == 0
    series = (tmp_path / "interim" / "series.csv").read_text().splitlines()
    # every volume but the 1-4 slice localisers, which ingest turns down with the reason
    assert len(series) - 1 == (labels.n_slices >= MIN_SLICES).sum()
    assert any((tmp_path / "interim" / "dicom").rglob("*.dcm"))


def test_fetch_writes_a_dicom_tree(stored, tmp_path):
    web, study, labels, _ = stored
    assert main(["fetch", "--dicomweb", web, "--study", study, str(tmp_path), "--quiet"]) == 0
    series = {p.parent.name for p in tmp_path.rglob("*.dcm")}
    assert series == set(labels.series_uid)  # the image series, not the SR


def test_an_unreachable_pacs_is_exit_code_3(tmp_path, capsys):
    model = tiny_model_dir(tmp_path / "model")
    assert (
        main(["predict", "--dicomweb", "http://127.0.0.1:9/dicom-web", "--model", str(model)]) == 3
    )
    assert "cannot reach the PACS" in capsys.readouterr().err


def test_write_back_needs_a_pacs(stored, tmp_path, capsys):
    _, _, _, model = stored
    assert main(["predict", str(tmp_path), "--write-back", "--model", str(model)]) == 2
    assert "--write-back needs --dicomweb" in capsys.readouterr().err
