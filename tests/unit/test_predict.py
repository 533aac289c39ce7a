import json

import numpy as np
import pandas as pd
import pytest

from helpers import tiny_model_dir
from mrseq.cli import main
from mrseq.evaluate import predict_table
from mrseq.ingest import ingest
from mrseq.predict import Predictor
from mrseq.simulate import simulate_cohort


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    simulate_cohort(root / "raw", n_patients=2, seed=5, resolution_scale=0.3, progress=False)
    table, summary = ingest(root / "raw", root / "interim", progress=False)
    # predict answers every volume, plus one `other` record per localiser ingest turns down
    localisers = len(summary.rejected)
    return root, table, tiny_model_dir(root / "model"), localisers


def test_predict_paths_one_record_per_volume_with_valid_probabilities(study):
    root, table, model, localisers = study
    records = Predictor.from_dir(model).predict_paths([root / "raw"])
    assert localisers and len(records) == len(table) + localisers
    rejected = [r for r in records if r["confidence"] is None]
    assert len(rejected) == localisers
    assert {(r["label"], r["subtype"]) for r in rejected} == {("other", "localiser")}
    # which series it was, so a router can act on the answer
    assert all(r["series_uid"] and r["volume_id"] and r["path"] for r in rejected)
    for r in records:
        if r["confidence"] is None:
            continue
        total = sum(r["probabilities"].values())
        assert total == pytest.approx(1.0, abs=1e-3)
        assert r["label"] in r["probabilities"] and 0 < r["confidence"] <= 1
        assert r["agrees_with_header"] in (True, False, None)


def test_predictor_equals_evaluate_for_the_same_volumes(study):
    root, table, model, localisers = study
    predictor = Predictor.from_dir(model)
    by_path = {r["volume_id"]: r for r in predictor.predict_paths([root / "raw"])}
    evaluated = predict_table(predictor, root / "interim", table, progress=False)
    for row in evaluated.itertuples():
        expected = by_path[row.volume_id]["probabilities"]
        got = {c: getattr(row, f"p_{c}") for c in predictor.classes}
        np.testing.assert_allclose(list(got.values()), list(expected.values()), atol=1e-3)


def test_bad_files_become_warnings_and_the_rest_goes_through(study, tmp_path):
    root, table, model, localisers = study
    (tmp_path / "junk.dcm").write_bytes(b"not dicom at all")
    first_patient = sorted(p for p in (root / "raw").iterdir() if p.is_dir())[0]
    records = Predictor.from_dir(model).predict_paths([first_patient, tmp_path / "junk.dcm"])
    bad = [r for r in records if r["label"] is None]
    assert len(bad) == 1 and "not a DICOM" in bad[0]["warnings"][0]
    assert len(records) > 1


def test_cli_predict_json_csv_table(study, capsys):
    root, table, model, localisers = study
    assert main(["predict", str(root / "raw"), "--model", str(model)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(table) + localisers and "probabilities" in json.loads(lines[0])
    assert main(["predict", str(root / "raw"), "--model", str(model), "--format", "csv"]) == 0
    rows = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out))
    assert len(rows) == len(table) + localisers
    assert main(["predict", str(root / "raw"), "--model", str(model), "--format", "table"]) == 0
    assert "label" in capsys.readouterr().out


def test_missing_model_folder_is_a_clear_error(tmp_path, capsys):
    assert main(["predict", str(tmp_path), "--model", str(tmp_path / "nope")]) == 2
    assert "model_spec.json" in capsys.readouterr().err


def test_cli_predict_defaults_to_the_model_make_run_exports(study, capsys, monkeypatch, tmp_path):
    import shutil

    root, table, model, localisers = study
    shutil.copytree(model, tmp_path / "models" / "mrseq")
    monkeypatch.chdir(tmp_path)
    assert main(["predict", str(root / "raw")]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == len(table) + localisers


def test_predict_refuses_what_serving_refuses(study, tmp_path):
    from conftest import make_series

    _, _, model, _ = study
    make_series(tmp_path / "wide", spacing=(1000.0, 1000.0, 3.0))
    records = Predictor.from_dir(model).predict_paths([tmp_path])
    assert len(records) == 1 and records[0]["label"] is None
    assert "spacing" in records[0]["warnings"][0]
