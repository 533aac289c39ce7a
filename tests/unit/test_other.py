"""Non-target series: simulator physics, ingest of DCE phases, labels, hold-out, the unknown
gate, localisers and the routing figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import make_series
from mrseq.dicom import is_localiser, scan
from mrseq.evaluate import routing
from mrseq.export import unknown_threshold
from mrseq.ingest import ingest
from mrseq.labels import attach_labels, rejected_rows
from mrseq.preprocess import PreprocessSpec
from mrseq.records import Gates, prediction, problem
from mrseq.sequences import MODEL_CLASSES, OTHER, UNKNOWN, header_hint, other_subtype
from mrseq.simulate.anatomy import T, fractions, make_patient
from mrseq.simulate.other import SUBTYPES, render_t1
from mrseq.simulate.physics import Tissues
from mrseq.simulate.protocol import SeriesPlan, StudyPlan, t2_grid
from mrseq.simulate.synth import synthesize_patient
from mrseq.split import hold_out


@pytest.fixture(scope="module")
def phantom():
    rng = np.random.default_rng(5)
    return rng, make_patient(rng), Tissues(rng, 3.0)


def _render(phantom, kind, phases=(), fs=None, tr=5.0, te=2.0, around="pz"):
    rng, patient, tissues = phantom
    grid = t2_grid(rng, "axial", 0.4)
    grid.recon = grid.acq
    shape = next(s for s in patient.shapes if s.tissue == around)
    grid.centre = np.asarray(shape.centre, dtype=float) * patient.scale
    plan = SeriesPlan(kind, grid, fs=fs, tr=tr, te=te, flip=15.0, phases=list(phases))
    study = StudyPlan("SIEMENS", 3.0, [], strip_private=False, endorectal=False)
    images = render_t1(rng, study, patient, tissues, plan)
    frac = fractions(patient, grid.points(0.0).reshape(-1, 3), 0.5)
    shape = (grid.acq, grid.acq, grid.n_slices)
    masks = {name: (frac[:, i] > 0.95).reshape(shape) for name, i in T.items()}
    return images, masks


def _median(image, mask):
    return float(np.median(image[mask])) if mask.sum() > 10 else np.nan


def test_t1_tse_has_fat_bright_and_urine_dark(phantom):
    (image,), m = _render(phantom, "t1_tse", tr=600.0, te=10.0, around="urine")
    # the opposite of T2 (urine brightest there); 1.5x leaves room for a low-SNR noise floor
    assert _median(image, m["fat"]) > 1.5 * _median(image, m["urine"])


def test_dce_enhances_vessels_and_lesion_after_contrast(phantom):
    (pre, early), m = _render(phantom, "dce", phases=[-1.0, 60.0])
    seen = [t for t in ("vessel", "venous", "lesion", "pz", "tz") if m[t].sum() > 10]
    assert seen
    for tissue in seen:
        assert _median(early, m[tissue]) > 1.2 * _median(pre, m[tissue]), tissue
    assert _median(early, m["fat"]) == pytest.approx(_median(pre, m["fat"]), rel=0.3)


def test_non_target_series_leave_every_target_image_unchanged():
    spec = PreprocessSpec(spacing=(6.0, 6.0, 8.0), shape=(16, 16, 8))
    alone = synthesize_patient(4, 1, spec, 2.0, 3.0, 0.3, skip=SUBTYPES)
    both = synthesize_patient(4, 1, spec, 2.0, 3.0, 0.3)
    targets = [i for i, r in enumerate(both.rows) if r["label"] != OTHER]
    assert len(targets) == len(alone.rows) and len(both.rows) >= len(alone.rows)
    for i, j in enumerate(targets):
        np.testing.assert_array_equal(alone.arrays[i], both.arrays[j])


def test_synthesis_skips_the_held_out_subtype():
    spec = PreprocessSpec(spacing=(6.0, 6.0, 8.0), shape=(16, 16, 8))
    subtypes = set()
    for index in range(12):
        rows = synthesize_patient(4, index, spec, 2.0, 3.0, 0.3, skip=("dce",)).rows
        subtypes |= {r["subtype"] for r in rows if r["label"] == OTHER}
    assert subtypes and "dce" not in subtypes


def test_a_dce_series_becomes_one_volume_per_phase_and_labels_match_by_phase(tmp_path):
    uid = "1.2.3.4.5"
    rng = np.random.default_rng(0)
    stacks = [rng.integers(0, 3000, (12, 10, 6)) for _ in range(3)]
    paths, _, _ = make_series(
        tmp_path / "dce",
        stacks=stacks,
        b_values=(None,) * 3,
        SeriesInstanceUID=uid,
        SeriesDescription="t1_vibe_dyn",
    )
    assert len(paths) == 18
    # write_series gives each stack a temporal position only when told: do it by hand here
    import pydicom

    for n, path in enumerate(sorted(paths)):
        ds = pydicom.dcmread(path)
        ds.TemporalPositionIdentifier = n % 3 + 1
        ds.save_as(path)
    table, summary = ingest(tmp_path / "dce", tmp_path / "out", progress=False)
    assert not summary.rejected and len(table) == 3
    assert sorted(table.phase.astype(str)) == ["1", "2", "3"]
    assert all(v.endswith(f"_t{p}") for v, p in zip(table.volume_id, table.phase, strict=True))
    labels = pd.DataFrame(
        {
            "series_uid": [uid] * 3,
            "label": [OTHER] * 3,
            "phase": [1, 2, 3],
            "subtype": ["dce"] * 3,
            "marker": ["a", "b", "c"],
        }
    )
    joined = attach_labels(table, labels)
    assert len(joined) == 3
    assert dict(zip(joined.phase.astype(str), joined.marker, strict=True)) == {
        "1": "a",
        "2": "b",
        "3": "c",
    }


def test_respiratory_trigger_times_do_not_split_a_series(series_factory):
    paths, _, _ = series_factory()
    import pydicom

    for n, path in enumerate(paths):
        ds = pydicom.dcmread(path)
        ds.TriggerTime = 100.0 * n
        ds.save_as(path)
    groups = scan([str(p) for p in paths], progress=False).groups
    assert len(groups) == 1 and not groups[0].error


def test_few_slices_is_a_localiser_reported_as_other_with_the_reason(series_factory):
    paths, _, _ = series_factory(stacks=[np.ones((12, 10, 3), dtype=np.uint16)])
    (group,) = scan([str(p) for p in paths], progress=False).groups
    assert is_localiser(group.error)
    record = problem(group.error, volume_id=group.volume_id)
    assert record["label"] == OTHER and record["subtype"] == "localiser"
    assert record["confidence"] is None and "slices" in record["warnings"][0]
    assert problem("cannot decode pixels")["label"] is None


def test_rejected_rows_name_the_labelled_series_and_why():
    labels = pd.DataFrame(
        {
            "series_uid": ["1.2", "1.3"],
            "label": [OTHER, "ADC"],
            "subtype": ["localiser", ""],
            "patient_id": ["p", "p"],
        }
    )
    rows = rejected_rows({"1.2": "only 3 slices (localiser or survey?)", "9.9": "x"}, labels)
    assert rows.to_dict("records") == [
        {
            "volume_id": "1.2",
            "series_uid": "1.2",
            "patient_id": "p",
            "label": OTHER,
            "subtype": "localiser",
            "reason": "only 3 slices (localiser or survey?)",
        }
    ]


def test_unknown_below_threshold_with_the_reason_and_best_guess():
    probs = np.array([0.3, 0.25, 0.2, 0.1, 0.1, 0.05])
    record = prediction(MODEL_CLASSES, probs, gates=Gates(unknown_below=0.4))
    assert record["label"] == UNKNOWN
    assert "0.30" in record["warnings"][-1] and "T2WI_nan" in record["warnings"][-1]
    assert prediction(MODEL_CLASSES, probs, gates=Gates(0.2))["label"] == "T2WI_nan"


def test_far_from_every_class_is_unknown_with_the_distance_and_best_guess():
    probs = np.array([0.9, 0.02, 0.02, 0.02, 0.02, 0.02])
    gates = Gates(unknown_below=0.4, unknown_beyond=10.0)
    far = prediction(MODEL_CLASSES, probs, gates=gates, distance=12.5)
    assert far["label"] == UNKNOWN and "12.5" in far["warnings"][-1]
    assert "T2WI_nan" in far["warnings"][-1]
    assert prediction(MODEL_CLASSES, probs, gates=gates, distance=9.0)["label"] == "T2WI_nan"
    # a model without the distance column (NaN) is never stopped by it
    assert prediction(MODEL_CLASSES, probs, gates=gates)["label"] == "T2WI_nan"


def test_unknown_threshold_rejects_at_most_the_rate_of_validation_targets():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(6), 400)
    labels = rng.integers(0, 6, 400)
    for rate in (0.0, 0.01, 0.05, 0.2):
        t = unknown_threshold(probs, labels, MODEL_CLASSES, rate)
        target = labels != MODEL_CLASSES.index(OTHER)
        share = float((probs[target].max(1) < t).mean())
        assert share <= rate
        assert share > rate - 2 / target.sum()  # the largest such threshold, not any
    assert unknown_threshold(probs, labels, MODEL_CLASSES, 0.0) == 0.0


def test_held_out_subtype_stays_in_test_only():
    index = pd.DataFrame({"volume_id": list("abcd"), "subtype": ["", "t2_map", "dce", "t2_map"]})
    splits = {"train": ["a", "b"], "val": ["c", "d"], "test": ["b"]}
    assert hold_out(splits, index, ["t2_map"]) == {"train": ["a"], "val": ["c"], "test": ["b"]}
    assert hold_out(splits, index, []) == splits


def test_routing_counts_answers_and_ingest_rejections():
    pred = pd.DataFrame(
        {
            "label": ["ADC", "ADC", "T2WI_fs", OTHER, OTHER, OTHER],
            "subtype": ["", "", "", "dce", "dce", "t2_map"],
            "answer": ["ADC", UNKNOWN, "T2WI_fs", OTHER, "DWI_High", UNKNOWN],
            f"p_{OTHER}": [0.0, 0.2, 0.1, 0.9, 0.3, 0.4],
        }
    )
    rejected = pd.DataFrame({"label": [OTHER], "subtype": ["localiser"]})
    r = routing(pred, rejected, ("t2_map",))
    assert r["target_answered_right"]["value"] == pytest.approx(2 / 3, abs=1e-3)
    assert r["target_sent_to_other_or_unknown"]["value"] == pytest.approx(1 / 3, abs=1e-3)
    assert r["non_target_kept_out"]["n"] == 4 and r["non_target_kept_out"]["value"] == 0.75
    assert r["by_subtype"]["dce"]["value"] == 0.5 and r["by_subtype"]["t2_map"]["held_out"]
    assert r["by_subtype"]["localiser"]["answers"] == {"rejected by ingest": 1}
    assert r["detection_auroc"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("description", "subtype"),
    [
        ("t1_vibe_fs_tra_dyn", "dce"),
        ("Ax DCE SUB", "subtraction"),
        ("T1W_TSE_ax", "t1"),
        ("T2 map ax", "t2_map"),
        ("eADC", "eadc"),
        ("3-Plane Loc", "localiser"),
        ("t2_tse_tra", ""),
        ("ep2d_diff_b50_800_tra", ""),
    ],
)
def test_header_subtype(description, subtype):
    from pydicom import Dataset

    ds = Dataset()
    ds.SeriesDescription = description
    assert other_subtype(ds) == subtype
    hint = header_hint(ds)
    assert (hint.label == OTHER) == bool(subtype)


def test_the_results_report_names_a_localiser_and_why():
    from pydicom.dataset import Dataset

    from mrseq.pacs import results_report

    record = problem("only 3 slices (localiser or survey?)", series_uid="1.2.3")
    study = Dataset()
    study.StudyInstanceUID = "1.2"
    sr = results_report([record], {"1.2.3": []}, study)
    (text,) = [item.TextValue for item in sr.ContentSequence]
    assert text.startswith("series 1.2.3: other (localiser, only 3 slices")


def test_feature_distance_gate_exported_and_read_back(tmp_path):
    """A model exported with the gate answers its feature distance beside the logits; the
    Predictor turns a volume far from every training class into unknown, with the reason."""
    import torch

    from helpers import TINY_MODEL, TINY_SHAPE
    from mrseq.export import (
        distance_threshold,
        export_model,
        fit_feature_gaussians,
        nearest_distance,
        penultimate_features,
    )
    from mrseq.nets import build_net
    from mrseq.predict import Predictor
    from mrseq.preprocess import PreprocessSpec

    torch.manual_seed(0)
    net = build_net(**TINY_MODEL).eval()
    x = torch.rand(12, 1, *TINY_SHAPE)
    with torch.no_grad():
        _, features = penultimate_features(net, x)
        features = features.numpy()
    labels = np.arange(12) % len(MODEL_CLASSES)
    means, precision = fit_feature_gaussians(features, labels)
    assert means.shape == (len(MODEL_CLASSES), features.shape[1])
    as_t = torch.from_numpy
    distances = nearest_distance(as_t(features).double(), as_t(means), as_t(precision)).numpy()
    beyond = distance_threshold(distances, labels, MODEL_CLASSES, 0.25)
    targets = distances[np.isin(labels, range(5))]
    assert (targets > beyond).mean() <= 0.25 and (targets >= beyond).any()
    assert distance_threshold(distances, labels, MODEL_CLASSES, 0.0) == np.inf

    gate = {"means": means, "precision": precision, "unknown_beyond": beyond, "fitted_on": 12}
    spec = PreprocessSpec(spacing=(12.0, 12.0, 10.0), shape=TINY_SHAPE)
    export_model(net, spec, tmp_path, TINY_MODEL, {}, {}, distance=gate)
    predictor = Predictor.from_dir(tmp_path)
    assert predictor.unknown_beyond == pytest.approx(beyond, abs=1e-4)
    probs, got = predictor.outputs(x)
    assert probs.shape == (12, len(MODEL_CLASSES)) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert np.allclose(got, distances, rtol=1e-3, atol=1e-3)
    far = predictor.record(None, probs[0], distance=beyond + 1.0)
    assert far["label"] == UNKNOWN and "feature distance" in far["warnings"][-1]


def test_flip_averaged_net_reads_a_volume_and_its_mirror_alike(tmp_path):
    """Test-time flip: the mean of the two readings' logits (the head is linear), the same
    answer for a volume and its left-right mirror, and it traces and exports with the gate."""
    import torch

    from helpers import TINY_MODEL, TINY_SHAPE
    from mrseq.export import FlipAveraged, export_model, penultimate_features
    from mrseq.nets import build_net
    from mrseq.predict import Predictor
    from mrseq.preprocess import PreprocessSpec

    torch.manual_seed(0)
    net = build_net(**TINY_MODEL).eval()
    both = FlipAveraged(net).eval()
    x = torch.rand(4, 1, *TINY_SHAPE)
    mirrored = torch.flip(x, dims=[2])
    with torch.no_grad():
        expected = (net(x) + net(mirrored)) / 2
        assert torch.allclose(both(x), expected, atol=1e-5)
        assert torch.allclose(both(x), both(mirrored), atol=1e-5)
        assert not torch.allclose(net(x), net(mirrored), atol=1e-3)  # the bare net is not
        logits, features = penultimate_features(both, x)
    assert torch.allclose(logits, expected, atol=1e-5) and features.shape[0] == 4

    labels = np.arange(4) % len(MODEL_CLASSES)
    gate = {
        "means": features.numpy()[labels],
        "precision": np.eye(features.shape[1]),
        "unknown_beyond": 1e6,
        "fitted_on": 4,
    }
    spec = PreprocessSpec(spacing=(12.0, 12.0, 10.0), shape=TINY_SHAPE)
    export_model(both, spec, tmp_path, TINY_MODEL, {}, {}, distance=gate)
    probs, distances = Predictor.from_dir(tmp_path).outputs(mirrored)
    assert np.allclose(probs, torch.softmax(expected, 1).numpy(), atol=1e-4)
    assert np.allclose(distances, 0, atol=1e-2)  # its own averaged features are the centres
