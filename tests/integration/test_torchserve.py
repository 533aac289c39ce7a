"""The real TorchServe (Java) serving a tiny exported model: inputs, errors, metrics, load."""

from __future__ import annotations

import io
import json
import random
import subprocess
import urllib.request
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from conftest import make_series
from helpers import tiny_model_dir
from mrseq.serving import archive, client, process
from mrseq.simulate import simulate_cohort

pytestmark = pytest.mark.integration
CONFIG = Path(__file__).resolve().parents[2] / "serve" / "config.properties"
SERVE = {"batch_size": 4, "max_batch_delay_ms": 20, "workers": 2, "response_timeout_s": 60}


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    root = tmp_path_factory.mktemp("ts")
    model = tiny_model_dir(root / "model")
    archive.build_mar(model, root / "store", SERVE)
    base = random.randint(20000, 40000)
    ports = (base, base + 1, base + 2)
    state = root / "state"
    process.start(root / "store", state, CONFIG, ports=ports)
    try:
        process.wait_ready(f"http://127.0.0.1:{ports[1]}", timeout=180)
        yield root, f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[2]}", state
    finally:
        process.stop(state)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    labels = simulate_cohort(root, n_patients=1, seed=4, resolution_scale=0.3, progress=False)
    return root, labels


def study_zip(root: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n, f in enumerate(sorted(root.rglob("*.dcm"))):
            z.write(f, f"{n}.dcm")
    return buf.getvalue()


def test_the_archive_carries_the_whole_package_and_the_handler(running):
    root, _, _, _ = running
    names = set(zipfile.ZipFile(root / "store" / "mrseq.mar").namelist())
    expected = {"handler.py", "mrseq/records.py", "mrseq/serving/decode.py", "mrseq/predict.py"}
    assert expected <= names, sorted(names)[:20]


def test_study_zip_nifti_and_npy(running, study):
    _, url, _, _ = running
    root, labels = study
    status, records = client.post(url, study_zip(root))
    assert status == 200 and len([r for r in records if r["label"]]) == len(labels)
    image = nib.Nifti1Image(np.random.rand(24, 24, 8).astype(np.float32), np.diag([2, 2, 4, 1]))
    status, records = client.post(url, image.to_bytes())
    assert status == 200 and records[0]["label"]
    npy = io.BytesIO()
    np.save(npy, np.random.rand(24, 24, 8).astype(np.float32))
    status, records = client.post(url, npy.getvalue(), {"X-Spacing": "2,2,4"})
    assert status == 200 and records[0]["label"]


@pytest.mark.parametrize(
    "body, status, words",
    [
        (b"", 400, "empty"),
        (b"not an image" * 50, 415, "unrecognised"),
        (b"PK\x03\x04" + b"\x00" * 400, 400, "corrupt"),
    ],
)
def test_bad_input_gets_4xx_and_the_server_keeps_answering(running, study, body, status, words):
    _, url, _, _ = running
    got, answer = client.post(url, body)
    assert got == status and words in str(answer), answer
    ok, _ = client.post(url, study_zip(study[0]))
    assert ok == 200


def test_classify_client_and_custom_metrics(running, study, capsys):
    _, url, metrics_url, _ = running
    from mrseq.cli import main

    assert main(["classify", str(study[0]), "--url", url, "--format", "json"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == len(study[1])
    text = urllib.request.urlopen(f"{metrics_url}/metrics", timeout=10).read().decode()
    assert "MrseqPredictions" in text and 'Label="' in text


def test_fifty_concurrent_requests_all_answered(running, study):
    _, url, _, _ = running
    image = nib.Nifti1Image(np.random.rand(24, 24, 8).astype(np.float32), np.diag([2, 2, 4, 1]))
    body = image.to_bytes()
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _: client.post(url, body)[0], range(50)))
    assert answers == [200] * 50


def test_a_valid_request_does_not_wait_behind_a_slow_one(running):
    """Two workers (serve.workers): while one decodes a 256 MB volume for seconds, small
    requests sent meanwhile are answered by the other in well under 2 s each."""
    import threading
    import time

    _, url, _, _ = running
    big = io.BytesIO()
    np.save(big, np.random.default_rng(0).random((400, 400, 400), dtype=np.float32))
    small = nib.Nifti1Image(np.random.rand(24, 24, 8).astype(np.float32), np.diag([2, 2, 4, 1]))
    slow: dict = {}

    def send_slow():
        start = time.monotonic()
        slow["status"] = client.post(url, big.getvalue(), {"X-Spacing": "0.5,0.5,0.5"})[0]
        slow["seconds"] = time.monotonic() - start

    thread = threading.Thread(target=send_slow)
    thread.start()
    time.sleep(1.0)  # the slow request is in its worker
    waits = []
    while thread.is_alive() and len(waits) < 20:
        start = time.monotonic()
        assert client.post(url, small.to_bytes())[0] == 200
        waits.append(time.monotonic() - start)
    thread.join()
    assert slow["status"] == 200 and slow["seconds"] > 3, slow  # it was slow enough to test
    assert waits and max(waits) < 2.0, waits


def test_ready_once_the_worker_serves(running):
    from mrseq.cli import main

    _, url, _, _ = running
    port = int(url.rsplit(":", 1)[1])
    assert main(["ready", "--management", f"http://127.0.0.1:{port + 1}"]) == 0


def test_unreachable_server_exit_code(study, capsys):
    from mrseq.cli import main

    assert main(["classify", str(study[0]), "--url", "http://127.0.0.1:9"]) == 3


def test_classify_a_study_from_a_pacs_through_the_server(running, study, orthanc, capsys):
    """mrseq classify --dicomweb: Orthanc -> TorchServe -> a results SR back in Orthanc."""
    import pydicom

    from mrseq.cli import main
    from mrseq.pacs import connect

    _, url, _, _ = running
    _, web = orthanc
    root, labels = study
    connect(web).store_instances([pydicom.dcmread(p) for p in sorted(root.rglob("*.dcm"))])
    argv = ["classify", "--dicomweb", web, "--url", url, "--format", "json", "--write-back"]
    assert main(argv) == 0
    out = capsys.readouterr()
    assert len(out.out.strip().splitlines()) == len(labels)
    assert "stored 1 results SR" in out.err


def test_a_second_instance_on_other_ports_serves_beside_the_first(running, study, capsys):
    """gRPC and the worker sockets follow the inference port: no collision with the first.

    The second serves a model with a feature-distance gate no volume passes (one more output
    column through TorchServe), so `mrseq classify` shows `unknown` (with the reason) and, for a
    3-slice localiser, `other`."""
    from mrseq.cli import main

    root, url, _, _ = running
    gated = tiny_model_dir(root / "gated", unknown_beyond=0.0)
    archive.build_mar(gated, root / "store2", SERVE)
    base = int(url.rsplit(":", 1)[1]) + 1000
    ports = (base, base + 1, base + 2)
    state = root / "state2"
    process.start(root / "store2", state, CONFIG, ports=ports)
    try:
        process.wait_ready(f"http://127.0.0.1:{ports[1]}", timeout=180)
        body = study_zip(study[0])
        assert client.post(f"http://127.0.0.1:{base}", body)[0] == 200
        assert client.post(url, body)[0] == 200  # the first one still serves
        sockets = {p.name for p in Path("/tmp").glob(".ts.sock.*") if not p.name.endswith("lock")}
        first = int(url.rsplit(":", 1)[1])
        assert f".ts.sock.{first + 100}" in sockets and f".ts.sock.{base + 100}" in sockets
        _classify_shows_other_and_unknown(root, study[0], f"http://127.0.0.1:{base}", capsys, main)
    finally:
        process.stop(state)


def _classify_shows_other_and_unknown(root: Path, study_root: Path, url: str, capsys, main):
    import shutil

    folder = root / "with_localiser"
    shutil.copytree(study_root, folder / "study")
    make_series(folder / "loc", stacks=[np.ones((40, 40, 3), dtype=np.uint16)])
    assert main(["classify", str(folder), "--url", url, "--format", "json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    labels = {r["label"] for r in records}
    assert labels == {"unknown", "other"}, labels
    unknown = [r for r in records if r["label"] == "unknown"]
    assert all("feature distance" in r["warnings"][-1] for r in unknown)
    # the added 3-slice series and any thin localiser of the simulated study itself
    others = [r for r in records if r["label"] == "other"]
    assert others and {r["subtype"] for r in others} == {"localiser"}
    assert all(r["confidence"] is None and "slices" in r["warnings"][0] for r in others)
    assert main(["classify", str(folder), "--url", url]) == 0
    table = capsys.readouterr().out
    assert "UNKNOWN: unlike the training series" in table
    assert "NOT A TARGET SERIES (localiser)" in table


def test_the_frontend_heap_is_bounded(running):
    import psutil

    root, _, _, _ = running
    java = [
        p.info["cmdline"]
        for p in psutil.process_iter(["name", "cmdline"])
        if p.info["name"] == "java" and any(str(root) in a for a in p.info["cmdline"] or [])
    ]
    assert java and all("-Xmx1536m" in cmd for cmd in java), java


def test_stop_leaves_no_process(tmp_path_factory, running):
    root, _, _, state = running
    process.stop(state)
    left = subprocess.run(["pgrep", "-f", str(root / "store")], capture_output=True, text=True)
    assert left.stdout.strip() == ""
