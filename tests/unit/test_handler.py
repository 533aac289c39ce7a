"""The TorchServe handler called directly through a mock context (no server)."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from collections import Counter
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from conftest import make_series
from helpers import Context, tiny_model_dir
from mrseq.dicom import MIN_SLICES
from mrseq.predict import ONE_PER_SERIES
from mrseq.records import FIELDS
from mrseq.serving.handler import HANDLER_MS, MrseqHandler
from mrseq.simulate import simulate_cohort

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def handler(tmp_path_factory):
    model = tiny_model_dir(tmp_path_factory.mktemp("model"))
    h = MrseqHandler()
    h.initialize(Context(model))
    return h, model


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("sim")
    labels = simulate_cohort(root, n_patients=1, seed=2, resolution_scale=0.3, progress=False)
    return root, labels


def zip_folder(folder: Path, names=None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for n, f in enumerate(sorted(p for p in folder.rglob("*") if p.is_file())):
            z.write(f, names(n) if names else f.relative_to(folder).as_posix())
    return buf.getvalue()


def call(handler, body, headers=None, model=None):
    h, model_dir = handler
    ctx = Context(model_dir, [headers or {}])
    out = h.handle([{"body": body}], ctx)
    return out[0], ctx


def test_study_zip_gives_one_record_per_volume(handler, study):
    root, labels = study
    body = zip_folder(root, lambda n: f"{n}.dcm")
    records, ctx = call(handler, body)
    assert not ctx.status
    good = [r for r in records if r["confidence"] is not None]
    volumes = labels[labels.n_slices >= MIN_SLICES]  # multi-b and DCE series split per volume
    assert len(good) == len(volumes)
    localisers = [r for r in records if r["label"] == "other" and r["confidence"] is None]
    assert len(localisers) == len(labels) - len(volumes)  # few slices: other, with the reason
    assert all(r["subtype"] == "localiser" and "slices" in r["warnings"][0] for r in localisers)
    assert all(r["series_uid"] and r["path"] is None for r in localisers)  # no server paths
    for r in good:
        assert tuple(r) == FIELDS  # the one schema (mrseq.records), what predict answers
        assert r["model_version"] and r["series_uid"] and r["label"] in r["probabilities"]
        assert sum(r["probabilities"].values()) == pytest.approx(1, abs=1e-3)
    assert [c for c in ctx.metrics.counts if c[0] == "MrseqPredictions"]
    assert ctx.metrics.totals[HANDLER_MS] > 0  # what the frontend adds is read against it


def test_the_series_context_applies_over_http(handler, tmp_path):
    """Volumes of one series (multi-b DWI, DCE phases) are never T2WI or ADC over HTTP either;
    single-volume series keep every class (mrseq.predict.in_series_context)."""
    simulate_cohort(tmp_path, n_patients=1, seed=7, resolution_scale=0.3, progress=False)
    records, _ = call(handler, zip_folder(tmp_path, lambda n: f"{n}.dcm"))
    good = [r for r in records if r["confidence"] is not None]
    per_series = Counter(r["series_uid"] for r in good)
    several = [r for r in good if per_series[r["series_uid"]] > 1]
    alone = [r for r in good if per_series[r["series_uid"]] == 1]
    assert several and alone
    assert all(r["probabilities"][c] == 0 for r in several for c in ONE_PER_SERIES)
    assert sum(r["probabilities"][c] for r in alone for c in ONE_PER_SERIES) > 0


def test_tar_gz_single_dicom_nifti_and_npy(handler, study, tmp_path):
    root, _ = study
    series = next(p for p in root.rglob("*") if p.is_dir() and any(p.glob("*.dcm")))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        t.add(series, arcname="s")
    assert call(handler, buf.getvalue())[0][0]["label"]
    image = nib.Nifti1Image(np.random.rand(20, 20, 8).astype(np.float32), np.diag([2, 2, 4, 1]))
    assert call(handler, image.to_bytes())[0][0]["label"]
    npy = io.BytesIO()
    np.save(npy, np.random.rand(20, 20, 8).astype(np.float32))
    assert call(handler, npy.getvalue(), {"X-Spacing": "2,2,4"})[0][0]["label"]
    records, ctx = call(handler, npy.getvalue())
    assert ctx.status[0][0] == 400 and "X-Spacing" in records["error"]


@pytest.mark.parametrize(
    "name, make, status, words",
    [
        ("empty", lambda d: b"", 400, "empty"),
        ("junk", lambda d: b"hello world" * 100, 415, "unrecognised"),
        ("corrupt zip", lambda d: b"PK\x03\x04" + b"\x00" * 300, 400, "corrupt zip"),
        (
            "ct",
            lambda d: zip_folder(make_series(d / "ct", Modality="CT")[0][0] and d / "ct"),
            422,
            "CT",
        ),
    ],
)
def test_bad_inputs_get_4xx_and_a_message(handler, tmp_path, name, make, status, words):
    records, ctx = call(handler, make(tmp_path))
    assert ctx.status[0][0] == status and words in records["error"], records


def test_no_pixel_data_is_422_and_a_4d_series_gives_one_record_per_phase(handler, tmp_path):
    paths, _, _ = make_series(tmp_path / "nopix")
    for p in paths:
        ds = pydicom.dcmread(p)
        del ds.PixelData
        ds.save_as(p)
    records, ctx = call(handler, zip_folder(tmp_path / "nopix"))
    assert ctx.status[0][0] == 422 and "pixel" in records["error"].lower()
    uid = "1.2.3.9"
    make_series(tmp_path / "dce" / "t1", SeriesInstanceUID=uid, TemporalPositionIdentifier=1)
    make_series(tmp_path / "dce" / "t2", SeriesInstanceUID=uid, TemporalPositionIdentifier=2)
    records, ctx = call(handler, zip_folder(tmp_path / "dce"))
    assert not ctx.status
    assert sorted(r["volume_id"] for r in records) == [f"{uid}_t1", f"{uid}_t2"]


def test_member_names_cannot_escape(handler, tmp_path):
    paths, _, _ = make_series(tmp_path / "s")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n, p in enumerate(paths):
            z.write(p, f"../../../../tmp/escape_{n}.dcm" if n % 2 else f"/etc/evil_{n}")
    records, ctx = call(handler, buf.getvalue())
    assert not ctx.status and records[0]["label"]
    assert not list(Path("/tmp").glob("escape_*.dcm")) and not Path("/etc/evil_0").exists()


def test_zip_bomb_is_refused(handler):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("bomb.dcm", b"\x00" * (50 * 1024**2))
    records, ctx = call(handler, buf.getvalue())
    assert ctx.status[0][0] == 413 and "zip bomb" in records["error"]


def test_a_bad_request_in_a_batch_does_not_spoil_the_others(handler, study):
    h, model_dir = handler
    root, _ = study
    ctx = Context(model_dir, [{}, {}])
    out = h.handle([{"body": b"nonsense"}, {"data": zip_folder(root, lambda n: f"{n}")}], ctx)
    assert ctx.status[0][0] == 415 and 1 not in ctx.status
    assert out[1][0]["label"]


def npy_body(array) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(array, dtype=np.float32))
    return buf.getvalue()


GOOD = np.random.default_rng(0).random((24, 24, 8))


@pytest.mark.parametrize(
    "array, spacing, words",
    [
        (GOOD, "nan,2,4", "spacing"),
        (GOOD, "1000,1000,1000", "spacing"),
        (GOOD, "0.01,0.01,4", "spacing"),
        (np.where(np.arange(GOOD.size).reshape(GOOD.shape) == 5, np.nan, GOOD), "2,2,4", "NaN"),
        (np.ones((1, 1, 1)), "2,2,4", "too small"),
        (np.zeros((24, 24, 8)), "2,2,4", "blank"),
        (np.zeros((80, 80, 8)), "9,9,4", "spans"),
    ],
)
def test_hostile_volumes_get_422_naming_the_problem(handler, array, spacing, words):
    records, ctx = call(handler, npy_body(array), {"X-Spacing": spacing})
    assert ctx.status[0][0] == 422 and words in records["error"], records


def test_a_header_claiming_a_huge_volume_is_refused_before_decoding(handler):
    image = nib.Nifti1Image(np.zeros((8, 8, 8), dtype=np.uint8), np.diag([0.5, 0.5, 0.5, 1]))
    image.header.set_data_shape((700, 700, 700))  # the body stays tiny: no pixels to read
    body = image.header.binaryblock + b"\x00" * 4 + b"\x00" * 512
    records, ctx = call(handler, body)
    assert ctx.status[0][0] == 422 and "voxels" in records["error"], records


def test_one_bad_spacing_in_a_batch_leaves_the_rest_served(handler):
    h, model_dir = handler
    headers = [{"X-Spacing": "2,2,4"}] * 3 + [{"X-Spacing": "nan,nan,nan"}]
    ctx = Context(model_dir, headers)
    out = h.handle([{"body": npy_body(GOOD)}] * 4, ctx)
    assert list(ctx.status) == [3] and ctx.status[3][0] == 422
    assert all(out[i][0]["label"] for i in range(3))
    for i in range(3):
        assert all(np.isfinite(list(out[i][0]["probabilities"].values())))


def test_a_series_with_absurd_pixel_spacing_is_a_problem_record(handler, tmp_path, monkeypatch):
    from mrseq import dicom

    def no_decoding(*_):
        raise AssertionError("pixels decoded before the geometry check")

    monkeypatch.setattr(dicom, "_pixels", no_decoding)  # refused from the headers alone
    make_series(tmp_path / "wide", spacing=(1000.0, 1000.0, 3.0))
    records, ctx = call(handler, zip_folder(tmp_path / "wide"))
    assert ctx.status[0][0] == 422 and "spacing" in records["error"], records


def test_request_folders_of_dead_workers_are_swept(tmp_path):
    import os
    import subprocess
    import sys

    from mrseq.serving.decode import REQUEST_PREFIX, sweep_stale_requests

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    stale = tmp_path / f"{REQUEST_PREFIX}{dead.stdout.strip()}-abc"
    mine = tmp_path / f"{REQUEST_PREFIX}{os.getpid()}-def"
    for folder in (stale, mine):
        (folder / "sub").mkdir(parents=True)
        (folder / "sub" / "00000").write_bytes(b"x" * 100)
    assert sweep_stale_requests(str(tmp_path)) == [str(stale)]
    assert not stale.exists() and mine.exists()


def test_errors_name_archive_members_never_server_paths(handler, tmp_path):
    paths, _, _ = make_series(tmp_path / "s")
    (tmp_path / "s" / "junk.dcm").write_bytes(Path(paths[0]).read_bytes()[:300])
    records, ctx = call(handler, zip_folder(tmp_path / "s"))
    assert not ctx.status and records[0]["label"]
    text = json.dumps(records)
    assert "/tmp" not in text and "mrseq-req-" not in text
    problem = next(r for r in records if r["label"] is None)
    assert problem["path"].startswith("archive member ") and problem["warnings"]


def test_a_zip_of_jpeg_ls_files_and_an_enhanced_multi_frame_file_are_served(
    handler, study, tmp_path
):
    from pydicom.uid import JPEGLSLossless
    from test_codecs import enhanced_dwi

    root, labels = study
    series = next(p for p in root.rglob("*") if p.is_dir() and any(p.glob("*.dcm")))
    plain, _ = call(handler, zip_folder(series))
    (tmp_path / "jls").mkdir()
    for n, path in enumerate(sorted(series.glob("*.dcm"))):
        ds = pydicom.dcmread(path)
        ds.compress(JPEGLSLossless)
        ds.save_as(tmp_path / "jls" / f"{n}")
    compressed, ctx = call(handler, zip_folder(tmp_path / "jls"))
    assert not ctx.status
    assert [r["label"] for r in compressed] == [r["label"] for r in plain]
    assert [r["probabilities"] for r in compressed] == [r["probabilities"] for r in plain]
    enhanced_dwi(tmp_path / "dwi.dcm")
    records, ctx = call(handler, (tmp_path / "dwi.dcm").read_bytes())
    assert not ctx.status and [r["b_value_header"] for r in records] == [0.0, 800.0]
    assert all(r["label"] for r in records)


def test_a_request_over_its_time_budget_answers_503_and_the_worker_goes_on(handler, study):
    h, model_dir = handler
    root, labels = study
    body = zip_folder(root, lambda n: f"{n}.dcm")
    saved, h.budget_s = h.budget_s, 0.0
    try:
        records, ctx = call(handler, body)
    finally:
        h.budget_s = saved
    assert ctx.status[0][0] == 503 and "time budget" in records["error"]
    assert "fewer series" in records["error"]
    records, ctx = call(handler, body)  # the next request is served as usual
    assert not ctx.status and len([r for r in records if r["label"]]) == len(labels)


def test_the_budget_comes_from_the_models_response_timeout(tmp_path):
    model = tiny_model_dir(tmp_path / "model")
    h = MrseqHandler()
    ctx = Context(model)
    ctx.model_yaml_config = {"responseTimeout": 120}
    h.initialize(ctx)
    assert h.budget_s == 90


CAPPED_WORKER = """
import io, json, sys
import numpy as np
from mrseq.serving.handler import MrseqHandler

def vm_data_mb():
    line = next(l for l in open("/proc/self/status") if l.startswith("VmData"))
    return int(line.split()[1]) // 1024

class Context:
    system_properties = {"model_dir": sys.argv[2]}
    metrics = None
    def __init__(self, config=None):
        self.model_yaml_config = config or {}
        self.status = {}
    def get_request_header(self, idx, key):
        return None
    def set_response_status(self, code=200, phrase="", idx=0):
        self.status[idx] = code

def npy(shape):
    buf = io.BytesIO()
    np.save(buf, np.random.default_rng(0).random(shape, dtype=np.float32))
    return {"body": buf.getvalue(), "spacing": b"0.5,0.5,0.5"}

handler = MrseqHandler()
probe = Context()
import torch  # load what the worker loads before measuring its baseline
from mrseq.predict import Predictor
Predictor.from_dir(sys.argv[2])
bodies = [npy(shape) for shape in [(64, 64, 20), (400, 400, 400), (64, 64, 20)]]
cap = vm_data_mb() + 400  # the bodies are already in memory, as a worker's would be
handler.initialize(Context({"handler": {"memory_mb": cap}}))
answers = []
for body in bodies:
    ctx = Context()
    out = handler.handle([body], ctx)
    error = out[0].get("error", "") if isinstance(out[0], dict) else ""
    answers.append([ctx.status.get(0, 200), error])
print(json.dumps(answers))
"""


def test_a_request_beyond_the_memory_cap_fails_alone_and_the_worker_serves_on(tmp_path):
    """serve.worker_memory_mb caps the worker's heap: a 256 MB volume that needs ~1 GB more
    than the worker holds answers 507 with the reason, and the next request is served."""
    import subprocess
    import sys

    model = tiny_model_dir(tmp_path / "model")
    script = tmp_path / "worker.py"
    script.write_text(CAPPED_WORKER)
    run = subprocess.run(
        [sys.executable, str(script), "-", str(model)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    answers = json.loads(run.stdout.strip().splitlines()[-1])
    assert [a[0] for a in answers] == [200, 507, 200], answers
    assert "memory" in answers[1][1] and "MB" in answers[1][1]
