import json

import numpy as np
import pandas as pd
import pytest

from helpers import tiny_model_dir
from mrseq.cli import main
from mrseq.evaluate import predict_table
from mrseq.ingest import ingest
from mrseq.predict import (
    ONE_PER_SERIES,
    Predictor,
    adc_correlations,
    adc_likelihood_ratio,
    adc_note,
    context_note,
    diffusion_pairs,
    grid_key,
    grid_note,
    in_adc_context,
    in_grid_context,
    in_pair_context,
    in_series_context,
    pair_note,
)
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
    # both paths apply the series context: a multi-b DWI series is never T2WI or ADC
    repeated = evaluated[evaluated.in_repeated_series]
    assert repeated.b_value.nunique() >= 2  # multi-b DWI series
    assert (repeated[[f"p_{c}" for c in ONE_PER_SERIES]].to_numpy() == 0).all()
    alone = evaluated[~evaluated.in_repeated_series]
    assert (alone[[f"p_{c}" for c in ONE_PER_SERIES]].to_numpy() > 0).all()


def test_both_paths_key_the_grid_context_alike(study):
    """The grid key from the DICOM headers (predict, HTTP, classify) equals the one evaluation
    makes from the ingested table and saved volume, and an ADC map shares its DWI's grid."""
    from mrseq.dicom import load_volume, scan
    from mrseq.evaluate import _grid_key
    from mrseq.ingest import load_saved_volume
    from mrseq.predict import volume_grid_key

    root, table, _, _ = study
    from_headers = {
        g.volume_id: volume_grid_key(load_volume(g))
        for g in scan([root / "raw"]).groups
        if not g.error
    }
    rows = list(table.itertuples())
    saved = [load_saved_volume(root / "interim" / r.file) for r in rows]
    keys = [_grid_key(r, a.shape, m) for r, (a, m) in zip(rows, saved, strict=True)]
    assert keys == [from_headers[r.volume_id] for r in rows]
    adc = [k for k, r in zip(keys, rows, strict=True) if r.header_hint == "ADC"]
    dwi = {k for k, r in zip(keys, rows, strict=True) if str(r.header_hint).startswith("DWI")}
    assert any(k in dwi for k in adc)  # (another map may carry an ADC-like description)


def test_series_context_rules_out_one_volume_classes_for_repeated_slabs():
    classes = ["T2WI_nan", "T2WI_fs", "DWI_Low", "DWI_High", "ADC", "other"]
    probs = np.array(
        [
            [0.1, 0.5, 0.3, 0.05, 0.05, 0.0],  # b=50 of a two-b series: T2WI_fs alone
            [0.0, 0.1, 0.2, 0.6, 0.1, 0.0],  # b=800 of the same series
            [0.1, 0.5, 0.3, 0.05, 0.05, 0.0],  # the same pixels, a series of its own
            [0.1, 0.5, 0.3, 0.05, 0.05, 0.0],  # same series, another image type (Dixon)
            [0.1, 0.5, 0.3, 0.05, 0.05, 0.0],  # no headers (a NIfTI upload)
        ]
    )
    keys = [("s1", ("DIFFUSION",)), ("s1", ("DIFFUSION",)), ("s2", ()), ("s1", ("W",)), None]
    out = in_series_context(classes, probs, keys)
    np.testing.assert_allclose(out[0], [0, 0, 0.3 / 0.35, 0.05 / 0.35, 0, 0])
    np.testing.assert_allclose(out[1].sum(), 1.0)
    assert out[1][[0, 1, 4]].sum() == 0
    np.testing.assert_array_equal(out[2:], probs[2:])
    assert (
        context_note(classes, probs[0], out[0])
        and "T2WI_fs" in context_note(classes, probs[0], out[0])[0]
    )
    assert context_note(classes, probs[1], out[1]) == []


def test_a_repeated_series_is_one_family_decided_by_all_its_volumes():
    """Diffusion or other is the series' answer, from its volumes together; each volume keeps
    its own b-value class. A series of one volume, or one without headers, is left alone."""
    classes = ["T2WI_nan", "T2WI_fs", "DWI_Low", "DWI_High", "ADC", "other"]
    probs = np.array(
        [
            [0.0, 0.0, 0.30, 0.05, 0.0, 0.65],  # b=300 alone looks "other" ...
            [0.0, 0.0, 0.05, 0.90, 0.0, 0.05],  # ... beside a clear b=1400 of its series
            [0.0, 0.0, 0.10, 0.50, 0.0, 0.40],  # a dynamic phase that alone looks diffusion
            [0.0, 0.0, 0.02, 0.03, 0.0, 0.95],  # ... beside two clear phases of its series
            [0.0, 0.0, 0.03, 0.02, 0.0, 0.95],
            [0.0, 0.0, 0.30, 0.05, 0.0, 0.65],  # the first row's pixels, a series of its own
        ]
    )
    keys = [("dwi", ("M",)), ("dwi", ("M",)), ("dce", ("M",)), ("dce", ("M",))]
    keys += [("dce", ("M",)), ("t1", ("M",))]
    out = in_series_context(classes, probs, keys)
    diffusion = 0.35 * 0.95 / (0.35 * 0.95 + 0.65 * 0.05)  # the series' posterior
    np.testing.assert_allclose(
        out[0], [0, 0, 0.30 / 0.35 * diffusion, 0.05 / 0.35 * diffusion, 0, 1 - diffusion]
    )
    np.testing.assert_allclose(
        out[1], [0, 0, 0.05 / 0.95 * diffusion, 0.90 / 0.95 * diffusion, 0, 1 - diffusion]
    )
    other = 0.40 * 0.95 * 0.95 / (0.40 * 0.95 * 0.95 + 0.60 * 0.05 * 0.05)
    np.testing.assert_allclose(out[2:5, 5], other)
    np.testing.assert_allclose(out[2, 2:4], np.array([0.10, 0.50]) / 0.60 * (1 - other))
    np.testing.assert_array_equal(out[5], probs[5])
    assert (out[:5].argmax(1) == [2, 3, 5, 5, 5]).all()
    note = context_note(classes, probs[0], out[0])
    assert note and "DWI_Low" in note[0] and "other" in note[0]


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


def test_the_report_says_what_the_series_context_changed():
    from mrseq.evaluate import series_context

    pred = pd.DataFrame(
        {
            "label": ["DWI_Low", "DWI_High", "T2WI_fs", "other"],
            "predicted": ["DWI_Low", "DWI_High", "T2WI_fs", "DWI_High"],
            "predicted_alone": ["T2WI_fs", "DWI_High", "T2WI_fs", "T2WI_nan"],
            "in_repeated_series": [True, True, False, True],
        }
    )
    assert series_context(pred) == {
        "volumes_in_repeated_series": 3,
        "answers_changed": 2,
        "changed_to_right": 1,
        "changed_to_wrong": 0,
        "accuracy": 0.75,
        "accuracy_series_context": 0.75,
        "accuracy_volume_alone": 0.5,
        "grid_context": {"answers_changed": 0, "changed_to_right": 0, "changed_to_wrong": 0},
        "diffusion_pairs": {"answers_changed": 0, "changed_to_right": 0, "changed_to_wrong": 0},
        "adc_evidence": {"answers_changed": 0, "changed_to_right": 0, "changed_to_wrong": 0},
    }
    # the grid context's changes are counted apart from the series context's
    pred["predicted_in_series"] = ["T2WI_fs", "DWI_High", "T2WI_fs", "DWI_High"]
    report = series_context(pred)
    assert report["answers_changed"] == 1 and report["changed_to_right"] == 0
    assert report["accuracy_series_context"] == 0.5
    assert report["grid_context"] == {
        "answers_changed": 1,
        "changed_to_right": 1,
        "changed_to_wrong": 0,
    }


CLASSES = ["T2WI_nan", "T2WI_fs", "DWI_Low", "DWI_High", "ADC", "other"]


def test_a_series_on_the_grid_of_a_diffusion_series_is_decided_with_it():
    """b=50 stored as its own series looks like T2WI_fs alone; its b=1400 and ADC twins on the
    very same grid make it diffusion. Twins with no diffusion reading (Dixon water beside
    in-phase, T1 beside T2), one series alone, and volumes without a study are left alone."""
    probs = np.array(
        [
            [0.05, 0.55, 0.35, 0.0, 0.0, 0.05],  # b=50, a series of its own
            [0.0, 0.02, 0.08, 0.85, 0.0, 0.05],  # b=1400, another series, the same grid
            [0.0, 0.02, 0.0, 0.03, 0.9, 0.05],  # the ADC map, a third series, the same grid
            [0.1, 0.8, 0.05, 0.0, 0.0, 0.05],  # Dixon water ...
            [0.85, 0.1, 0.0, 0.0, 0.0, 0.05],  # ... and in-phase, on one grid
            [0.05, 0.55, 0.35, 0.0, 0.0, 0.05],  # the b=50 pixels on a grid of their own
            [0.05, 0.55, 0.35, 0.0, 0.0, 0.05],  # ... and without a study (NIfTI)
        ]
    )
    grids = ["dwi", "dwi", "dwi", "dixon", "dixon", "t2", None]
    series = ["b50", "b1400", "adc", "water", "in_phase", "t2", None]
    out = in_grid_context(CLASSES, probs, grids, series)
    t2 = 0.60 * 0.02 * 0.02
    rest = 0.40 * 0.98 * 0.98
    np.testing.assert_allclose(out[0, :2], probs[0, :2] / 0.60 * t2 / (t2 + rest))
    np.testing.assert_allclose(out[0, 2:], probs[0, 2:] / 0.40 * rest / (t2 + rest))
    assert CLASSES[out[0].argmax()] == "DWI_Low"
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    np.testing.assert_array_equal(out[3:], probs[3:])
    assert grid_note(CLASSES, probs[0], out[0]) and grid_note(CLASSES, probs[1], out[1]) == []


def test_volumes_of_one_series_alone_on_a_grid_are_the_series_context_s_business():
    probs = np.array([[0.05, 0.55, 0.35, 0.0, 0.0, 0.05], [0.0, 0.02, 0.08, 0.85, 0.0, 0.05]])
    out = in_grid_context(CLASSES, probs, ["g", "g"], [("s", "M"), ("s", "M")])
    np.testing.assert_array_equal(out, probs)


def test_grid_key_is_equal_only_for_one_study_matrix_and_placement():
    affine = np.diag([1.2, 1.2, 4.0, 1.0])
    affine[:3, 3] = [-100.04, -80.0, 12.0]
    moved = affine.copy()
    moved[2, 3] = 16.0  # the next slab
    assert grid_key("s", (96, 96, 20), affine) == grid_key("s", (96, 96, 20), affine + 1e-3)
    assert grid_key("s", (96, 96, 20), affine) != grid_key("s", (96, 96, 20), moved)
    assert grid_key("s", (96, 96, 20), affine) != grid_key("t", (96, 96, 20), affine)
    assert grid_key("s", (96, 96, 20), affine) != grid_key("s", (96, 96, 19), affine)
    assert grid_key(None, (96, 96, 20), affine) is None and grid_key("", (96, 96), affine) is None


def _diffusion_group(seed: int = 0):
    """Pixels of one acquisition on one grid: b=50 and b=1000 images, its ADC map (vendor
    units), an eADC (exp(-b ADC)) and an unrelated T1-like image."""
    rng = np.random.default_rng(seed)
    adc = rng.uniform(0.5e-3, 3e-3, (24, 24, 6)).astype(np.float32)
    s0 = rng.uniform(200, 1000, adc.shape).astype(np.float32)
    low, high = s0 * np.exp(-50 * adc), s0 * np.exp(-1000 * adc)
    noise = rng.normal(0, 2, (5, *adc.shape)).astype(np.float32)
    arrays = [low, high, adc * 1e6, np.exp(-1000 * adc) * 4095, rng.uniform(0, 1, adc.shape)]
    return [a + n for a, n in zip(arrays, noise, strict=True)]


def test_an_adc_map_rises_with_the_log_ratio_of_its_own_dwi_images():
    arrays = _diffusion_group()
    probs = np.array(
        [
            [0.0, 0.1, 0.8, 0.1, 0.0, 0.0],  # b=50
            [0.0, 0.0, 0.1, 0.8, 0.1, 0.0],  # b=1000
            [0.0, 0.0, 0.0, 0.1, 0.3, 0.6],  # the ADC map, read "other"
            [0.0, 0.0, 0.0, 0.1, 0.6, 0.3],  # the eADC, read "ADC"
            [0.0, 0.0, 0.0, 0.0, 0.2, 0.8],  # a T1 on the same grid
        ]
    )
    rho = adc_correlations(probs, CLASSES, ["g"] * 5, lambda i: arrays[i])
    assert set(rho) == {2, 3, 4}  # the low-b image is the reference, the high-b has no other
    assert rho[2] > 0.95 and rho[3] < -0.95 and abs(rho[4]) < 0.2
    # nothing to compare with: no low-b reading, or another grid
    assert adc_correlations(probs[1:], CLASSES, ["g"] * 4, lambda i: arrays[i + 1]) == {}
    assert adc_correlations(probs, CLASSES, ["a", "a", "b", "b", "b"], lambda i: arrays[i]) == {}


def test_the_adc_evidence_moves_only_the_adc_odds(monkeypatch):
    from mrseq import predict

    monkeypatch.setattr(
        predict, "ADC_EVIDENCE", {"intercept": -3.0, "slope": 8.0, "base_log_odds": -1.0}
    )
    arrays = _diffusion_group()
    probs = np.array(
        [
            [0.0, 0.1, 0.8, 0.1, 0.0, 0.0],
            [0.0, 0.0, 0.1, 0.8, 0.1, 0.0],
            [0.0, 0.0, 0.0, 0.1, 0.3, 0.6],
            [0.0, 0.0, 0.0, 0.1, 0.6, 0.3],
            [0.0, 0.0, 0.0, 0.0, 0.2, 0.8],
        ]
    )
    rho = adc_correlations(probs, CLASSES, ["g"] * 5, lambda i: arrays[i])
    out = in_adc_context(CLASSES, probs, ["g"] * 5, lambda i: arrays[i])
    np.testing.assert_array_equal(out[:2], probs[:2])  # the references are left as they were
    for i in (2, 3, 4):
        ratio = np.exp(-3.0 + 8.0 * rho[i] + 1.0)
        weights = np.where(np.arange(6) == 4, ratio, 1.0)
        np.testing.assert_allclose(out[i], probs[i] * weights / (probs[i] * weights).sum())
    assert [CLASSES[i] for i in out[2:].argmax(1)] == ["ADC", "other", "other"]
    assert adc_note(CLASSES, probs[2], out[2]) and adc_note(CLASSES, probs[4], out[4]) == []


def test_the_committed_adc_evidence_has_the_physics_sign():
    assert adc_likelihood_ratio(0.95) > 3 and adc_likelihood_ratio(-0.9) < 0.3


def test_a_t2_on_the_grid_of_a_clear_diffusion_series_loses_confidence_not_its_answer():
    """The known limit, pinned: beside one clear twin the readings tie and the T2 keeps its
    argmax at a much lower confidence; beside several clear twins it is outvoted."""
    t2 = [0.95, 0.01, 0.01, 0.01, 0.01, 0.01]
    adc = [0.01, 0.01, 0.01, 0.01, 0.95, 0.01]
    high = [0.01, 0.01, 0.01, 0.95, 0.01, 0.01]
    one = in_grid_context(CLASSES, np.array([t2, adc]), ["g", "g"], ["t2", "adc"])
    assert one[0].argmax() == 0 and one[0].max() < 0.5
    several = np.array([t2, adc, high, high])
    out = in_grid_context(CLASSES, several, ["g"] * 4, ["t2", "adc", "b1", "b2"])
    assert out[0].argmax() != 0


def _acquisition_read_other():
    """`_diffusion_group`'s images as a net that never saw this acquisition reads them: b=50 and
    b=1000 look `other`, the ADC map reads ADC, the eADC and the T1-like image `other`."""
    return np.array(
        [
            [0.0, 0.05, 0.25, 0.05, 0.0, 0.65],  # b=50
            [0.0, 0.0, 0.05, 0.3, 0.05, 0.6],  # b=1000
            [0.0, 0.0, 0.0, 0.1, 0.8, 0.1],  # the ADC map
            [0.0, 0.0, 0.0, 0.2, 0.1, 0.7],  # the eADC: keeps S0's share, no pair
            [0.1, 0.1, 0.1, 0.0, 0.0, 0.7],  # an unrelated image on the grid
        ]
    )


def test_two_b_values_of_one_acquisition_pair_through_their_adc_map():
    arrays = _diffusion_group()
    probs = _acquisition_read_other()
    assert diffusion_pairs(probs, CLASSES, ["g"] * 5, lambda i: arrays[i]) == {0, 1}
    out = in_pair_context(CLASSES, probs, ["g"] * 5, lambda i: arrays[i])
    assert [CLASSES[i] for i in out.argmax(1)] == ["DWI_Low", "DWI_High", "ADC", "other", "other"]
    np.testing.assert_allclose(out[0], [0, 0, 0.25 / 0.3, 0.05 / 0.3, 0, 0])
    np.testing.assert_array_equal(out[2:], probs[2:])
    assert pair_note(CLASSES, probs[0], out[0]) and pair_note(CLASSES, probs[3], out[3]) == []
    # with no volume read as ADC every member is tried as the map (stricter): the same pair
    no_map = probs.copy()
    no_map[2] = [0.0, 0.0, 0.0, 0.1, 0.1, 0.8]
    assert diffusion_pairs(no_map, CLASSES, ["g"] * 5, lambda i: arrays[i]) == {0, 1}
    # the map on another grid: nothing pairs
    grids = ["a", "b", "a", "b", "a"]
    assert diffusion_pairs(probs, CLASSES, grids, lambda i: arrays[i]) == set()


def test_with_no_map_on_the_grid_nothing_pairs():
    arrays = _diffusion_group()
    probs = _acquisition_read_other()
    keep = [0, 1, 3, 4]  # b=50, b=1000, the eADC and the unrelated image: the ADC map is absent
    found = diffusion_pairs(probs[keep], CLASSES, ["g"] * 4, lambda i: arrays[keep[i]])
    assert found <= {0, 1}  # an eADC may stand in as the map; it is never paired itself


def test_two_phases_of_a_contrast_series_do_not_pair_through_an_adc_map():
    """A DCE pre- and post-contrast pair on a DWI grid: its log ratio follows enhancement, not
    diffusion, so the pair is not two b-values even beside a real ADC map."""
    from mrseq.predict import _dwi_pair

    arrays = _diffusion_group()
    rng = np.random.default_rng(1)
    pre = rng.uniform(200, 1000, arrays[0].shape).astype(np.float32)
    post = pre * (1 + rng.uniform(0, 2, pre.shape)).astype(np.float32)
    assert not _dwi_pair(arrays[2].ravel(), pre, post)
    assert not _dwi_pair(arrays[2].ravel(), post, pre)
    assert _dwi_pair(arrays[2].ravel(), arrays[0], arrays[1])


@pytest.mark.parametrize("unit", [1e-6, 1e-5, 1e-3, 1.0])
def test_a_dwi_pair_passes_whatever_the_storage_scale_and_the_map_s_unit(unit):
    """Vendors store each series with its own scale (the intercept of the line) and the ADC map
    in 1e-6, 1e-5 or 1e-3 mm2/s or in mm2/s (the decade the test guesses)."""
    from mrseq.predict import _dwi_pair

    low, high, adc_map = _diffusion_group()[:3]
    adc_map = adc_map * 1e-6 / unit  # _diffusion_group stores it in 1e-6 mm2/s
    assert _dwi_pair(adc_map.ravel(), low * 0.3, high * 7.0)
    assert _dwi_pair(adc_map.ravel(), high * 7.0, low * 0.3)
