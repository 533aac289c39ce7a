import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mrseq.dicom import MIN_SLICES, is_localiser
from mrseq.ingest import ingest
from mrseq.labels import attach_labels
from mrseq.simulate import simulate_cohort
from mrseq.simulate.anatomy import T, fractions, make_patient
from mrseq.simulate.physics import Tissues
from mrseq.simulate.protocol import VENDORS, SeriesPlan, StudyPlan, dwi_grid, plan_study, t2_grid
from mrseq.simulate.render import render_dwi, render_t2

SCALE = 0.3  # tiny matrices: same physics, fraction of the time


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    out = tmp_path_factory.mktemp("cohort")
    labels = simulate_cohort(
        out / "raw", n_patients=6, seed=7, workers=2, resolution_scale=SCALE, progress=False
    )
    table, summary = ingest(out / "raw", out / "interim", workers=1, progress=False)
    return out, labels, table, summary


def tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.dcm")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_same_seed_same_cohort(cohort, tmp_path):
    out, labels, _, _ = cohort
    again = simulate_cohort(
        tmp_path, n_patients=2, seed=7, workers=1, resolution_scale=SCALE, progress=False
    )
    first_two = labels[labels.patient_id.isin(again.patient_id)].reset_index(drop=True)
    pd.testing.assert_frame_equal(again, first_two)
    for pid in again.patient_id.unique():
        assert tree_digest(tmp_path / pid) == tree_digest(out / "raw" / pid)


def test_labels_agree_with_what_ingest_reads(cohort):
    _, labels, table, summary = cohort
    # localisers of 1-4 slices are rejected with their reason; every other labelled row is read
    assert all(is_localiser(why) for why in summary.rejected.values()) and not summary.skipped
    volumes = labels[labels.n_slices >= MIN_SLICES]
    assert len(summary.rejected) == len(labels) - len(volumes)
    assert set(labels.subtype[labels.n_slices < MIN_SLICES]) == {"localiser"}
    assert len(table) == len(volumes)
    joined = attach_labels(table, labels)
    assert len(joined) == len(volumes)
    assert Counter(joined.label) == Counter(volumes.label)
    dce = joined[joined.phase.notna() & (joined.phase.astype(str) != "")]
    assert (dce.subtype == "dce").all()
    dwi = joined[joined.label.isin(["DWI_Low", "DWI_High"]) & joined.b_value.notna()]
    assert ((dwi.b_value >= 500) == (dwi.label == "DWI_High")).all()
    planes = labels.drop_duplicates("series_uid").set_index("series_uid").plane
    assert (joined.plane == planes.loc[joined.series_uid].values).all()


def test_folder_and_file_names_carry_no_label(cohort):
    out, _, _, _ = cohort
    names = " ".join(str(p.relative_to(out)) for p in (out / "raw").rglob("*.dcm")).lower()
    for word in ("t2", "dwi", "adc", "fs", "high", "low"):
        assert word not in names


def test_protocols_cover_every_class_vendor_plane_and_layout():
    rng = np.random.default_rng(0)
    studies = [plan_study(rng) for _ in range(300)]
    assert {s.vendor for s in studies} == set(VENDORS)
    t2 = [p for s in studies for p in s.series if p.kind == "t2"]
    dwi = [p for s in studies for p in s.series if p.kind == "dwi"]
    assert (
        {p.grid.plane for p in t2 if p.fs}
        == {p.grid.plane for p in t2 if not p.fs}
        == {"axial", "sagittal", "coronal"}
    )
    assert {p.fs for p in t2} == {None, "spair", "spir", "stir", "dixon"}
    assert any(p.interleave and len(p.export_b) > 1 for p in dwi)
    assert any(not p.interleave for p in dwi)
    assert any(p.calc_b for p in dwi) and any(p.adc for p in dwi)
    assert any(s.strip_private for s in studies)


def test_class_mix_follows_the_paper():
    rng = np.random.default_rng(1)
    counts = Counter()
    for _ in range(2000):
        for p in plan_study(rng).series:
            if p.kind == "t2":
                counts["T2WI_fs" if p.fs else "T2WI_nan"] += 1
            else:
                counts["DWI_Low"] += sum(b < 500 for b in p.export_b)
                counts["DWI_High"] += sum(b >= 500 for b in p.export_b) + (p.calc_b is not None)
                counts["ADC"] += p.adc
    per_patient = {k: v / 2000 for k, v in counts.items()}
    paper = {"T2WI_nan": 0.92, "T2WI_fs": 1.09, "DWI_Low": 0.93, "DWI_High": 0.96, "ADC": 0.83}
    for label, expected in paper.items():
        assert per_patient[label] == pytest.approx(expected, abs=0.06), label


# ---------------------------------------------------------------- physics sanity with masks


@pytest.fixture(scope="module")
def phantom():
    rng = np.random.default_rng(11)
    patient = make_patient(rng)
    tissues = Tissues(rng, 3.0)
    return rng, patient, tissues


def _masks(patient, grid):
    frac = fractions(patient, grid.points(0.0).reshape(-1, 3), 0.5)
    shape = (grid.acq, grid.acq, grid.n_slices)
    return {name: (frac[:, i] > 0.95).reshape(shape) for name, i in T.items()}


def _study(fs=None):
    return StudyPlan("SIEMENS", 3.0, [], strip_private=False, endorectal=False)


def _t2(rng, patient, tissues, fs):
    grid = t2_grid(rng, "axial", 0.35)
    grid.recon = grid.acq  # compare on the acquired grid (same voxels as the masks)
    plan = SeriesPlan("t2", grid, fs=fs, tr=5000, te=100)
    return render_t2(rng, _study(), patient, tissues, plan), _masks(patient, grid)


def test_t2_contrasts(phantom):
    rng, patient, tissues = phantom
    image, m = _t2(rng, patient, tissues, None)
    mean = {k: image[v].mean() for k, v in m.items() if v.sum() > 20}
    assert mean["urine"] == max(mean.values())  # urine brightest on T2
    assert mean["fat"] > 2 * mean["muscle"]  # fat bright on TSE
    fs_image, m2 = _t2(rng, patient, tissues, "stir")
    assert fs_image[m2["fat"]].mean() < 0.3 * fs_image[m2["urine"]].mean()  # fat dark on fs


def test_dwi_and_adc_physics(phantom, monkeypatch):
    from scipy.ndimage import binary_erosion

    from mrseq.simulate import ranges

    # The physics, not the noise floor: a high-SNR draw (very low SNR biases ADC, as on scanners).
    monkeypatch.setitem(ranges.RANGES, "dwi_snr", ranges.Range(40, 60, "lin", "", ""))
    rng, patient, tissues = phantom
    grid = dwi_grid(rng, 1.0)
    grid.recon = grid.acq
    grid.centre = np.zeros(3)
    plan = SeriesPlan("dwi", grid, tr=5000, te=70, acquired_b=[50.0, 800.0])
    result = render_dwi(rng, _study(), patient, tissues, plan)
    # Masks one voxel in from each edge: EPI shifts and partial volume blur the borders.
    m = {k: binary_erosion(v, np.ones((3, 3, 1))) for k, v in _masks(patient, grid).items()}
    low, high, adc = result["images"][50.0], result["images"][800.0], result["adc"]
    prostate = m["pz"] | m["tz"]
    assert high[prostate].mean() < low[prostate].mean()  # darker at high b
    # Fat suppressed on DWI; medians, since the Rician noise floor of a low-SNR draw lifts means.
    assert np.median(low[m["fat"]]) < 0.4 * np.median(low[prostate])
    median = {k: np.median(adc[m[k]]) for k in ("pz", "tz", "urine") if m[k].sum() > 5}
    assert median["urine"] > max(median["pz"], median["tz"])  # fluid brightest on ADC
    # fitted from noisy DWI, near the patient's drawn value
    assert median["pz"] == pytest.approx(tissues.adc[T["pz"]], rel=0.3)


def test_fluid_keeps_the_highest_adc_whatever_the_draw():
    fluids = [T[n] for n in ("urine", "sv_fluid")]
    solid = [T[n] for n in ("muscle", "pz", "tz", "lesion", "stool", "rectal_wall")]
    for seed in range(50):
        adc = Tissues(np.random.default_rng(seed), 3.0).adc
        assert adc[fluids].min() > adc[solid].max()


def test_shortcut_audit_runs_and_returns_numbers(cohort):
    from mrseq.audit import audit_shortcuts

    out, labels, _, _ = cohort
    result = audit_shortcuts(out / "interim", out / "raw" / "labels.csv")
    targets = labels[labels.label != "other"]
    assert result["volumes"] == len(targets) and result["patients"] == 6
    share = targets.label.value_counts(normalize=True).iloc[0]
    assert result["majority_class_accuracy"] == pytest.approx(share, abs=1e-3)
    for key in ("geometry_only_accuracy", "histogram_only_accuracy"):  # cross-validated scores
        assert 0 <= result[key] <= 1


def test_readme_lists_every_randomised_factor():
    from pathlib import Path

    from mrseq.simulate.ranges import markdown_table

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert markdown_table() in readme


def test_every_range_is_drawn_somewhere_in_the_simulator():
    from pathlib import Path

    from mrseq.simulate import ranges

    folder = Path(ranges.__file__).parent
    code = "".join(p.read_text() for p in folder.glob("*.py") if p.name != "ranges.py")
    unused = [name for name in ranges.RANGES if f'"{name}"' not in code]
    assert unused == []
