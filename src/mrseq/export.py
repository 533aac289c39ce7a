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

import numpy as np
import torch

from mrseq.preprocess import PreprocessSpec
from mrseq.sequences import CLASSES, HIGH_B_THRESHOLD, MODEL_CLASSES, OTHER, UNKNOWN

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

    One number, so it cannot change which class wins; it only makes confidence honest. A bounded
    search over log T (0.05-20): an unbounded optimiser ran off to NaN where the logits carry
    no information (the NLL then keeps falling as T grows)."""
    from scipy.optimize import minimize_scalar

    logits, labels = logits.detach().double(), labels.long()

    def nll(log_t: float) -> float:
        return float(torch.nn.functional.cross_entropy(logits / np.exp(log_t), labels))

    best = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(best.x))


def unknown_threshold(probs, labels, classes, rate: float) -> float:
    """The confidence below which the answer is `unknown`: the largest threshold that sends at
    most `rate` of the validation target series (any of the five classes) to unknown.

    Non-target series are not used: the sixth output is what should catch them; the threshold
    catches what neither the five nor `other` claims with confidence."""
    target = np.isin(np.asarray(labels), [classes.index(c) for c in CLASSES])
    confidence = np.sort(np.asarray(probs)[target].max(axis=1))
    if confidence.size == 0 or rate <= 0:
        return 0.0
    k = int(np.floor(rate * confidence.size))  # this many may fall below
    return float(confidence[k]) if k < confidence.size else 1.0


def export_model(
    net: torch.nn.Module,
    preprocess: PreprocessSpec,
    out_dir: str | os.PathLike,
    model_params: dict,
    training: dict,
    data_fingerprints: dict,
    temperature: float = 1.0,
    unknown_below: float = 0.0,
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
        "classes": list(MODEL_CLASSES),
        "class_definitions": {
            "DWI_Low": f"b < {HIGH_B_THRESHOLD:g} s/mm2",
            "DWI_High": f"b >= {HIGH_B_THRESHOLD:g} s/mm2",
            OTHER: "none of the five (localiser, T1, DCE, post-contrast, subtraction, maps)",
            UNKNOWN: "answered when the calibrated confidence is below output.unknown_below",
        },
        "preprocessing": preprocess.to_dict(),
        "input": {
            "shape": [-1, preprocess.channels, *preprocess.shape],
            "dtype": "float32",
            "range": [0, 1],
            "axes": "N, C, X (R), Y (A), Z (S) in RAS+ after reorientation",
        },
        # probabilities = softmax(logits / temperature), temperature fitted on validation;
        # below `unknown_below` confidence the label is "unknown" (threshold from validation)
        "output": {
            "logits": len(MODEL_CLASSES),
            "activation": "softmax",
            "temperature": temperature,
            "unknown_below": round(unknown_below, 4),
        },
        "model": {"file": MODEL_FILE, "format": "torchscript", **model_params},
        "training": training,
        "data": data_fingerprints,
        "versions": _versions(),
        "git_revision": _git_revision(),
    }
    (out / SPEC_FILE).write_text(json.dumps(spec, indent=2))
    return spec
