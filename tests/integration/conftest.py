"""A real Orthanc PACS with its DICOMweb plugin, on 127.0.0.1 with its own storage."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    """(REST root, DICOMweb root) of a fresh Orthanc; skipped where Orthanc is not installed
    (.ci/run installs the Debian packages orthanc and orthanc-dicomweb)."""
    if shutil.which("Orthanc") is None or not PLUGIN.exists():
        pytest.skip("Orthanc with its DICOMweb plugin is not installed")
    root = tmp_path_factory.mktemp("orthanc")
    port = random.randint(20000, 40000)
    config = {
        "Name": "mrseq-test",
        "StorageDirectory": str(root / "db"),
        "IndexDirectory": str(root / "db"),
        "HttpPort": port,
        "DicomServerEnabled": False,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "Plugins": [str(PLUGIN)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }
    (root / "orthanc.json").write_text(json.dumps(config))
    with open(root / "orthanc.log", "w") as log:
        process = subprocess.Popen(["Orthanc", str(root / "orthanc.json")], stdout=log, stderr=log)
    rest = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{rest}/system", timeout=2):
                break
        except OSError:
            if process.poll() is not None:
                raise RuntimeError((root / "orthanc.log").read_text()[-2000:]) from None
            time.sleep(0.5)
    else:
        process.kill()
        raise TimeoutError("Orthanc did not start")
    yield rest, f"{rest}/dicom-web"
    process.terminate()
    process.wait(timeout=30)
