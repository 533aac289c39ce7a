"""TorchScript + model_spec.json: a model folder that describes itself.

The spec carries the classes, the exact preprocessing, the input contract, a summary of the
training data, validation metrics, package versions and data/code revisions, so a Predictor
(and the TorchServe handler) rebuilds everything from the folder alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import torch

from mrseq.preprocess import PreprocessSpec
from mrseq.sequences import CLASSES, HIGH_B_THRESHOLD

SPEC_VERSION = 1
MODEL_FILE = "model.ts"
SPEC_FILE = "model_spec.json"


def _versions() -> dict:
    import monai
    import pydicom

    import mrseq

    return {
        "torch": torch.__version__,
        "monai": monai.__version__,
        "pydicom": pydicom.__version__,
        "mrseq": mrseq.__version__,
    }


def _git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def file_md5(path: str | os.PathLike) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Temperature scaling (Guo et al., 2017): the T minimising validation NLL of logits / T.

    One number, so it cannot change which class wins; it only makes confidence honest."""
    log_t = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200)
    loss_fn = torch.nn.CrossEntropyLoss()

    def closure():
        opt.zero_grad()
        loss = loss_fn(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    opt.step(closure)
    return float(torch.clamp(log_t.exp(), 0.05, 20.0))


def export_model(
    net: torch.nn.Module,
    preprocess: PreprocessSpec,
    out_dir: str | os.PathLike,
    model_params: dict,
    training: dict,
    data_fingerprints: dict,
    temperature: float = 1.0,
) -> dict:
    """Trace the net, check the trace reproduces it, write model.ts and model_spec.json."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    net = net.eval().cpu()
    example = torch.rand(2, preprocess.channels, *preprocess.shape)
    with torch.no_grad():
        traced = torch.jit.trace(net, example[:1])
        expected, got = net(example), traced(example)
    if not torch.allclose(expected, got, atol=1e-4):
        raise RuntimeError("TorchScript trace does not reproduce the network's outputs")
    traced.save(str(out / MODEL_FILE))
    spec = {
        "spec_version": SPEC_VERSION,
        "name": "mrseq",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "classes": list(CLASSES),
        "class_definitions": {
            "DWI_Low": f"b < {HIGH_B_THRESHOLD:g} s/mm2",
            "DWI_High": f"b >= {HIGH_B_THRESHOLD:g} s/mm2",
        },
        "preprocessing": preprocess.to_dict(),
        "input": {
            "shape": [-1, preprocess.channels, *preprocess.shape],
            "dtype": "float32",
            "range": [0, 1],
            "axes": "N, C, X (R), Y (A), Z (S) in RAS+ after reorientation",
        },
        # probabilities = softmax(logits / temperature), temperature fitted on validation
        "output": {"logits": len(CLASSES), "activation": "softmax", "temperature": temperature},
        "model": {"file": MODEL_FILE, "format": "torchscript", **model_params},
        "training": training,
        "data": data_fingerprints,
        "versions": _versions(),
        "git_revision": _git_revision(),
    }
    (out / SPEC_FILE).write_text(json.dumps(spec, indent=2))
    return spec
