"""Build the serve image with podman and classify a DICOM study through it.

Runs when podman is installed (.ci/run installs it); the first build (Debian base via
debootstrap, wheelhouse, image) takes minutes, later ones hit the caches.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from helpers import tiny_model_dir
from mrseq.serving import archive, client
from mrseq.simulate import simulate_cohort

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed"),
]
ROOT = Path(__file__).resolve().parents[2]
IMAGE = "localhost/mrseq-serve:0.1.0"
PODMAN = ["podman", "--runtime", "runc"]


def sh(*args, timeout=1800) -> str:
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def image():
    for step in ("base", "wheelhouse", "serve"):
        sh("bash", "docker/build.sh", step)
    return IMAGE


def wait_healthy(url: str, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=3) as r:
                if b"Healthy" in r.read():
                    return
        except OSError:
            pass
        time.sleep(1)
    raise TimeoutError("container never became healthy")


def wait_ready_inside(name: str, timeout: float = 180) -> None:
    """The probes' command, run inside the container, until a worker is READY."""
    deadline, last = time.time() + timeout, None
    while time.time() < deadline:
        last = subprocess.run([*PODMAN, "exec", name, "mrseq", "ready"], capture_output=True)
        if last.returncode == 0:
            return
        time.sleep(1)
    raise TimeoutError(f"never ready: {last.stderr.decode()[-500:] if last else ''}")


def test_serve_image_classifies_a_study(image, tmp_path):
    store = tmp_path / "store"
    archive.build_mar(
        tiny_model_dir(tmp_path / "model"),
        store,
        {"batch_size": 1, "max_batch_delay_ms": 10, "workers": 1, "response_timeout_s": 60},
    )
    store.chmod(0o755)
    (store / "mrseq.mar").chmod(0o644)
    labels = simulate_cohort(
        tmp_path / "study", n_patients=1, seed=8, resolution_scale=0.3, progress=False
    )
    port = random.randint(20000, 40000)
    name = f"mrseq-test-{port}"
    sh(
        *PODMAN,
        "run",
        "-d",
        "--name",
        name,
        "--read-only",
        "--tmpfs",
        "/tmp",
        "--ulimit",
        "nofile=20000:20000",
        "--ulimit",
        "nproc=32768:32768",
        "-p",
        f"127.0.0.1:{port}:8080",
        "-v",
        f"{store}:/models:ro",
        image,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url)
        wait_ready_inside(name)
        records = client.classify(tmp_path / "study", url)
        assert len([r for r in records if r.get("label")]) == len(labels)
        user = sh(*PODMAN, "exec", name, "id", "-u").strip()
        assert user == "10001"
    finally:
        subprocess.run([*PODMAN, "rm", "-f", name], capture_output=True)
