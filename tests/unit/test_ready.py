"""`mrseq ready`: ready only when a worker of the model is READY, whatever /ping says."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from mrseq.cli import main


def management(states: list[str]):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            body = json.dumps([{"modelName": "mrseq", "workers": [{"status": s} for s in states]}])
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    return Handler


@pytest.mark.parametrize(
    "states, code", [(["READY"], 0), (["UNLOADING", "READY"], 0), (["STARTED"], 1), ([], 1)]
)
def test_ready_needs_a_ready_worker(states, code, capsys):
    server = HTTPServer(("127.0.0.1", 0), management(states))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert main(["ready", "--management", url]) == code
    finally:
        server.shutdown()
    if code:
        assert "not ready" in capsys.readouterr().err


def test_ready_without_a_server_is_not_ready(capsys):
    assert main(["ready", "--management", "http://127.0.0.1:9", "--timeout", "1"]) == 1
    assert "management API" in capsys.readouterr().err
