"""TorchServe as a process: start, stop, readiness; every port of an instance configurable.

The server's state (pid file, unpacked models, logs) lives in one folder per server, so start
and stop always agree on TMPDIR and nothing is written to the working directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from mrseq.serving.archive import MODEL_NAME, tool


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


def _torchserve() -> str:
    return tool("torchserve")


def start(
    model_store: str | os.PathLike,
    state: str | os.PathLike,
    config: str | os.PathLike,
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
            psutil.Process(p).kill()


def _children(pid: int) -> list[int]:
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _alive(pid: int) -> bool:
    try:  # a zombie is dead for our purposes
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
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
