"""The TorchServe model archive: models/mrseq + the handler + the mrseq package -> mrseq.mar."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

import mrseq
from mrseq.export import MODEL_FILE, SPEC_FILE

MODEL_NAME = "mrseq"
HANDLER = Path(__file__).with_name("handler.py")  # shipped in the package, found through it


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
    handler: str | os.PathLike = HANDLER,
    version: str = "1.0",
) -> Path:
    """models/mrseq (model.ts + model_spec.json) + the mrseq package + handler -> mrseq.mar."""
    model_dir, out = Path(model_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        code = Path(tmp) / "code"
        shutil.copytree(
            Path(mrseq.__file__).parent,  # the whole package, whichever way it was installed
            code / "mrseq",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
        config = Path(tmp) / "model-config.yaml"
        config.write_text(yaml.safe_dump(model_config(serve)))
        cmd = [
            tool("torch-model-archiver"),
            "--model-name",
            MODEL_NAME,
            "--version",
            version,
            "--serialized-file",
            str(model_dir / MODEL_FILE),
            "--handler",
            str(handler),
            "--extra-files",
            f"{model_dir / SPEC_FILE},{code}",
            "--config-file",
            str(config),
            "--export-path",
            str(out),
            "--force",
        ]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out / f"{MODEL_NAME}.mar"


def tool(name: str) -> str:
    """A console script of this environment (its bin/ may not be on PATH), else from PATH."""
    return shutil.which(name, path=f"{Path(sys.executable).parent}:{os.environ['PATH']}") or name
