"""Training volumes synthesised straight to the model grid match the DICOM path."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mrseq.dicom import MIN_SLICES
from mrseq.ingest import ingest, load_saved_volume
from mrseq.labels import attach_labels
from mrseq.preprocess import PreprocessSpec, preprocess_volume
from mrseq.sequences import MODEL_CLASSES
from mrseq.simulate import simulate_cohort
from mrseq.simulate.protocol import coarsen, plan_study
from mrseq.simulate.synth import synthesize_cohort, synthesize_patient

SCALE = 0.3
SPEC = PreprocessSpec(spacing=(5.0, 5.0, 8.0), shape=(24, 24, 10))


def b_key(value) -> str:
    return "" if value is None or value == "" or pd.isna(value) else f"{float(value):g}"


@pytest.fixture(scope="module")
def dicom_patient(tmp_path_factory):
    out = tmp_path_factory.mktemp("dicom")
    labels = simulate_cohort(out / "raw", 1, seed=11, resolution_scale=SCALE, progress=False)
    table, _ = ingest(out / "raw", out / "interim", workers=1, progress=False)
    return out, labels, attach_labels(table, labels)


def test_synthesised_arrays_equal_the_dicom_round_trip(dicom_patient):
    """Same pixels, and the affine the reader gives within DICOM's decimal strings. (Compared
    through the synthesised affine: a 1e-5 mm affine change can move MONAI's resampling grid
    by half a voxel, which would hide what this test is about.)"""
    out, labels, joined = dicom_patient
    done = synthesize_patient(11, 0, SPEC, scale=SCALE)
    rows, arrays = done.rows, done.arrays
    labels = labels[labels.n_slices >= MIN_SLICES]  # localisers ingest rejects: synth skips them
    assert [r["label"] for r in rows] == list(labels.label)
    pairs = zip(labels.itertuples(), rows, arrays, done.affines, strict=True)
    for label_row, row, array, synth_affine in pairs:
        b = b_key(label_row.b_value)
        match = joined[
            (joined.series_uid == label_row.series_uid) & (joined.true_b_value.map(b_key) == b)
        ]
        assert len(match) == 1
        volume, affine = load_saved_volume(out / "interim" / match.file.iloc[0])
        np.testing.assert_allclose(synth_affine, affine, atol=1e-3)
        expected = preprocess_volume(volume, synth_affine, SPEC).numpy()
        assert row["true_b_value"] == b
        np.testing.assert_allclose(array.astype(np.float32), expected, atol=2e-3)


def test_coarsen_caps_the_matrix_and_keeps_the_noise_of_averaging():
    study = plan_study(np.random.default_rng(3))
    before = [p.grid.acq for p in study.series]
    coarsen(study, 1.0, 2.0)
    for plan, acq in zip(study.series, before, strict=True):
        g = plan.grid
        assert g.recon <= max(16, g.fov / 1.0) and g.acq <= g.recon
        assert g.snr_gain == pytest.approx(acq / g.acq)
        assert g.anatomy_step == 2.0


def test_cohort_is_written_in_the_preprocess_layout_and_reproducible(tmp_path):
    kw = dict(n_patients=2, seed=5, spec=SPEC, min_pixel=1.0, anatomy_step=2.0, scale=SCALE)
    index = synthesize_cohort(tmp_path / "a", progress=False, **kw)
    again = synthesize_cohort(tmp_path / "b", workers=2, progress=False, **kw)
    pd.testing.assert_frame_equal(index, again)
    assert set(index.label) <= set(MODEL_CLASSES)
    for path in index.array:
        a, b = np.load(tmp_path / "a" / path), np.load(tmp_path / "b" / path)
        assert a.shape == (1, 24, 24, 10) and a.dtype == np.float16
        np.testing.assert_array_equal(a, b)
    assert (pd.read_csv(tmp_path / "a" / "index.csv").volume_id == index.volume_id).all()


def test_zero_patients_gives_an_empty_index_training_can_take(tmp_path):
    """synthesize.patients: 0 (your own data alone): the stage writes an empty index."""
    import shutil
    import subprocess
    import sys

    import yaml

    root = Path(__file__).resolve().parents[2]
    shutil.copy(root / "dvc.yaml", tmp_path)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["synthesize"]["patients"] = 0
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    script = root / "pipelines" / "synthesize.py"
    done = subprocess.run(
        [sys.executable, str(script), "--out", "syn"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    index = pd.read_csv(tmp_path / "syn" / "index.csv")
    assert index.empty and {"label", "array"} <= set(index.columns)
