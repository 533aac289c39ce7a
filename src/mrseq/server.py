"""TorchServe around an exported model: build the .mar, start/stop the server, classify.

The server's state (pid file, unpacked models, logs) lives in one folder per server, so start
and stop always agree on TMPDIR and nothing is written to the working directory.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import yaml

MODEL_NAME = "mrseq"
NOT_DICOM = "not a DICOM file"  # mrseq.dicom.read_instance's reason (a test pins the two)
log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = ROOT / "serve" / "config.properties"
DEFAULT_HANDLER = ROOT / "serve" / "handler.py"


# ------------------------------------------------------------------ packaging


def model_config(serve: dict) -> dict:
    """TorchServe per-model settings (batching, workers, timeout) from params.yaml `serve`."""
    return {
        "minWorkers": int(serve["workers"]),
        "maxWorkers": int(serve["workers"]),
        "batchSize": int(serve["batch_size"]),
        "maxBatchDelay": int(serve["max_batch_delay_ms"]),
        "responseTimeout": int(serve["response_timeout_s"]),
        # Read by the handler (context.model_yaml_config): the worker's heap cap.
        "handler": {"memory_mb": int(serve.get("worker_memory_mb") or 0)},
    }


def build_mar(
    model_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    serve: dict,
    handler: str | os.PathLike = DEFAULT_HANDLER,
    version: str = "1.0",
) -> Path:
    """models/mrseq (model.ts + model_spec.json) + the mrseq package + handler -> mrseq.mar."""
    model_dir, out = Path(model_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        code = Path(tmp) / "code"
        shutil.copytree(
            Path(__file__).parent,
            code / "mrseq",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
        config = Path(tmp) / "model-config.yaml"
        config.write_text(yaml.safe_dump(model_config(serve)))
        cmd = [
            _tool("torch-model-archiver"),
            "--model-name",
            MODEL_NAME,
            "--version",
            version,
            "--serialized-file",
            str(model_dir / "model.ts"),
            "--handler",
            str(handler),
            "--extra-files",
            f"{model_dir / 'model_spec.json'},{code}",
            "--config-file",
            str(config),
            "--export-path",
            str(out),
            "--force",
        ]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out / f"{MODEL_NAME}.mar"


# ------------------------------------------------------------------ the server


def _env(state: Path, ports: tuple[int, int, int] | None, host: str) -> dict:
    env = {
        **os.environ,
        "TMPDIR": str(state / "tmp"),
        "LOG_LOCATION": str(state / "logs"),
        "METRICS_LOCATION": str(state / "logs"),
    }
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    if ports:
        inference, management, metrics = ports
        env["TS_INFERENCE_ADDRESS"] = f"http://{host}:{inference}"
        env["TS_MANAGEMENT_ADDRESS"] = f"http://127.0.0.1:{management}"
        env["TS_METRICS_ADDRESS"] = f"http://{host}:{metrics}"
        env.update(instance_ports(inference))
    (state / "tmp").mkdir(parents=True, exist_ok=True)
    return env


def instance_ports(inference: int) -> dict[str, str]:
    """What else an instance binds, derived from its inference port so that two instances on
    one host never collide: gRPC (never used by mrseq; TorchServe always opens it, on 7070 and
    7071 by default) bound to localhost at inference+10 and +11, and the frontend-worker
    sockets (/tmp/.ts.sock.<port>, shared by every instance at the default 9000) from
    inference+100."""
    return {
        "TS_GRPC_INFERENCE_ADDRESS": "127.0.0.1",
        "TS_GRPC_MANAGEMENT_ADDRESS": "127.0.0.1",
        "TS_GRPC_INFERENCE_PORT": str(inference + 10),
        "TS_GRPC_MANAGEMENT_PORT": str(inference + 11),
        "TS_INITIAL_WORKER_PORT": str(inference + 100),
    }


def _tool(name: str) -> str:
    """A console script of this environment (its bin/ may not be on PATH), else from PATH."""
    return shutil.which(name, path=f"{Path(sys.executable).parent}:{os.environ['PATH']}") or name


def _torchserve() -> str:
    return _tool("torchserve")


def start(
    model_store: str | os.PathLike,
    state: str | os.PathLike,
    config: str | os.PathLike = DEFAULT_CONFIG,
    ports: tuple[int, int, int] | None = None,
    host: str = "127.0.0.1",
    foreground: bool = False,
) -> subprocess.Popen | None:
    """Start TorchServe on model_store/mrseq.mar. Foreground: returns the running process."""
    store = Path(model_store).resolve()
    if not (store / f"{MODEL_NAME}.mar").is_file():
        raise FileNotFoundError(f"no {MODEL_NAME}.mar in {store}: run `dvc repro package` first")
    state = Path(state).resolve()
    cmd = [
        _torchserve(),
        "--start",
        "--ncs",
        "--model-store",
        str(store),
        "--models",
        f"{MODEL_NAME}={MODEL_NAME}.mar",
        "--ts-config",
        str(Path(config).resolve()),
        "--disable-token-auth",
    ]
    env = _env(state, ports, host)
    if foreground:
        return subprocess.Popen([*cmd, "--foreground"], env=env, start_new_session=True)
    # Java inherits the wrapper's stdout: a pipe would never close, so log to a file.
    (state / "logs").mkdir(parents=True, exist_ok=True)
    with open(state / "logs" / "start.log", "ab") as log:
        subprocess.run(
            cmd,
            env=env,
            check=True,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=60,
            start_new_session=True,
        )
    return None


def stop(state: str | os.PathLike, timeout: float = 30) -> None:
    """`torchserve --stop`, then wait until Java and its Python workers are gone."""
    state = Path(state).resolve()
    pid_file = state / "tmp" / ".model_server.pid"
    pid = int(pid_file.read_text().strip()) if pid_file.is_file() else None
    workers = _children(pid) if pid else []
    subprocess.run(
        [_torchserve(), "--stop"],
        env=_env(state, None, ""),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=60,
    )
    deadline = time.time() + timeout
    for p in ([pid] if pid else []) + workers:
        while _alive(p) and time.time() < deadline:
            time.sleep(0.2)
        if _alive(p):
            os.kill(p, signal.SIGKILL)


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(v) for v in found.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def worker_status(management_url: str, timeout: float = 5) -> tuple[bool, str, dict]:
    """(a worker of the model is READY, why not, the model description): what readiness
    means; `/ping` answers Healthy even when no worker can serve."""
    try:
        with urllib.request.urlopen(f"{management_url}/models/{MODEL_NAME}", timeout=timeout) as r:
            description = json.loads(r.read())[0]
    except (urllib.error.URLError, OSError, ValueError, IndexError) as exc:
        return False, f"management API: {getattr(exc, 'reason', exc)}", {}
    states = [w.get("status") for w in description.get("workers", [])]
    return "READY" in states, f"workers: {states}", description


def wait_ready(management_url: str, timeout: float = 120) -> dict:
    """Until the model has a READY worker (not just /ping); returns the model description."""
    deadline, last = time.time() + timeout, "no answer"
    while time.time() < deadline:
        ready, last, description = worker_status(management_url)
        if ready:
            return description
        time.sleep(0.5)
    raise TimeoutError(f"model {MODEL_NAME} not READY after {timeout:.0f} s ({last})")


# ------------------------------------------------------------------ the client


def series_zips(path: str | os.PathLike) -> tuple[list[tuple[str, bytes]], dict[str, str]]:
    """(series description, in-memory zip of its files) for each series under path, and the
    files that could not be used with the reason (nothing is dropped silently)."""
    from mrseq.dicom import list_files, read_instance

    files, _ = list_files([path])
    by_series: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for f in files:
        inst = read_instance(f)
        if isinstance(inst, str):
            skipped[os.path.relpath(f, path) if os.path.isdir(path) else f] = inst
            continue
        inst = inst[0] if isinstance(inst, list) else inst  # a multi-frame file: one series
        by_series.setdefault(inst.series_uid, []).append(f)
        names[inst.series_uid] = str(inst.ds.get("SeriesDescription", ""))
    out = []
    for uid, members in sorted(by_series.items()):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for n, f in enumerate(members):
                z.write(f, f"{n:05d}.dcm")
        out.append((names[uid] or uid, buf.getvalue()))
    return out, skipped


def post(
    url: str, body: bytes, headers: dict | None = None, timeout: float = 120
) -> tuple[int, object]:
    request = urllib.request.Request(
        f"{url.rstrip('/')}/predictions/{MODEL_NAME}",
        data=body,
        method="POST",
        headers={"Content-Type": "application/octet-stream", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        try:
            return exc.code, json.loads(text)
        except ValueError:
            return exc.code, {"error": text}


def classify(path: str | os.PathLike, url: str, timeout: float = 120) -> list[dict]:
    """Send each series under path to the server; one record per volume back, and one
    record (label None, with the reason) per series the server refused or file not sent.

    Raises urllib.error.URLError, ConnectionError or TimeoutError when the server cannot be
    reached or does not answer within `timeout` seconds."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file or folder: {path}")
    series, skipped = series_zips(path)
    records = []
    for name, body in series:
        status, answer = post(url, body, timeout=timeout)
        if status != 200:
            why = answer.get("error", answer) if isinstance(answer, dict) else answer
            records.append(
                {"label": None, "series_description": name, "warnings": [f"HTTP {status}: {why}"]}
            )
            continue
        records += answer if isinstance(answer, list) else [answer]
    for f, why in skipped.items():
        if why == NOT_DICOM:  # a README or labels.csv beside the series: said, not a failure
            log.warning("skipped %s: %s", f, why)
        else:  # a DICOM file that cannot be read is a failure the user must see
            records.append({"label": None, "path": f, "warnings": [why]})
    return records
