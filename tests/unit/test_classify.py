"""`mrseq classify` against servers that misbehave: exit codes and nothing dropped silently."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from conftest import make_series
from mrseq.cli import main
from mrseq.records import FIELDS


class Refuses(BaseHTTPRequestHandler):
    """Answers every prediction with a 422, as the server does for an unusable series."""

    def do_POST(self):  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"error": "volume is blank", "status": 422}).encode()
        self.send_response(422)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def refusing_server():
    server = HTTPServer(("127.0.0.1", 0), Refuses)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def silent_server():
    """Accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def test_a_server_that_never_answers_is_exit_3_with_a_message(tmp_path, silent_server, capsys):
    make_series(tmp_path / "s")
    assert main(["classify", str(tmp_path), "--url", silent_server, "--timeout", "1"]) == 3
    assert "cannot reach" in capsys.readouterr().err


def test_refused_series_and_corrupt_files_are_listed_and_exit_4(tmp_path, refusing_server, capsys):
    paths, _, _ = make_series(tmp_path / "s")
    (tmp_path / "broken.dcm").write_bytes(Path(paths[0]).read_bytes()[:300])  # truncated
    (tmp_path / "README.txt").write_text("not DICOM: skipped with a warning, not a failure")
    code = main(["classify", str(tmp_path), "--url", refusing_server, "--format", "json"])
    out = capsys.readouterr()
    records = [json.loads(line) for line in out.out.splitlines()]
    assert code == 4
    assert any("HTTP 422" in r["warnings"][0] and "blank" in r["warnings"][0] for r in records)
    assert any(r.get("path") == "broken.dcm" for r in records)
    assert all(tuple(r) == FIELDS for r in records)  # the schema of predict and the HTTP API
    assert "2 of 2 not classified" in out.err and "broken.dcm" in out.err


def test_nothing_to_classify_is_exit_1(tmp_path, refusing_server):
    assert main(["classify", str(tmp_path), "--url", refusing_server]) == 1


def test_the_not_dicom_reason_is_the_one_the_reader_gives(tmp_path):
    from mrseq.dicom import read_instance
    from mrseq.serving.client import NOT_DICOM

    (tmp_path / "notes.txt").write_text("hello")
    assert read_instance(str(tmp_path / "notes.txt")) == NOT_DICOM


def test_series_on_one_grid_travel_in_one_request(tmp_path):
    """Per-b-value DWI series and their ADC share a grid: one zip, so the server reads them
    together (grid context, ADC evidence); a series on another grid is a request of its own."""
    import io
    import zipfile

    from mrseq.serving.client import series_zips
    from mrseq.simulate import simulate_cohort

    simulate_cohort(tmp_path, n_patients=2, seed=5, resolution_scale=0.3, progress=False)
    zips, _ = series_zips(tmp_path)
    series_per_zip = [
        len({pydicom_series(z, name) for name in z.namelist()})
        for z in (zipfile.ZipFile(io.BytesIO(body)) for _, body in zips)
    ]
    assert max(series_per_zip) >= 2  # patient 0: a b=200 series and its ADC on one grid
    merged = [name for (name, _), n in zip(zips, series_per_zip, strict=True) if n > 1]
    assert any("ADC" in name and "DWI" in name for name in merged)
    assert sum(series_per_zip) == len(
        {pydicom_series_of(f) for f in tmp_path.rglob("*.dcm")}
    )  # every series sent exactly once


def pydicom_series(archive, name: str) -> str:
    import pydicom

    with archive.open(name) as f:
        return pydicom.dcmread(f, stop_before_pixels=True).SeriesInstanceUID


def pydicom_series_of(path) -> str:
    import pydicom

    return pydicom.dcmread(path, stop_before_pixels=True).SeriesInstanceUID
