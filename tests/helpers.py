"""Tiny synthetic processed datasets and a tiny exported model, for fast tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from mrseq.export import export_model
from mrseq.nets import build_net
from mrseq.preprocess import PreprocessSpec
from mrseq.sequences import MODEL_CLASSES

BENCH = Path(__file__).parents[1] / "bench"


def bench_script(name: str):
    """bench/<name>.py imported as a module (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TINY_SHAPE = (16, 16, 8)
TINY_MODEL = {"depth": 10, "widths": [4, 8, 8, 8], "conv1_stride": 2}


def tiny_processed(root: Path, per_class: int = 6, seed: int = 0) -> tuple[Path, dict]:
    """Class c = a bright cube at a class-specific place: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    (root / "arrays").mkdir(parents=True, exist_ok=True)
    rows = []
    for c, label in enumerate(MODEL_CLASSES):
        for i in range(per_class):
            x = rng.random((1, *TINY_SHAPE)).astype(np.float16) * 0.2
            x[0, 2 * c : 2 * c + 4, 4:10, 2:6] = 1.0
            vid = f"{label}_{i}"
            np.save(root / "arrays" / f"{vid}.npy", x)
            rows.append(
                {
                    "volume_id": vid,
                    "patient_id": f"p{i}",
                    "label": label,
                    "manufacturer": "SIEMENS",
                    "array": f"arrays/{vid}.npy",
                }
            )
    index = pd.DataFrame(rows)
    index.to_csv(root / "index.csv", index=False)
    ids = index.volume_id.tolist()
    splits = {"train": ids[::2] + ids[1::4], "val": ids[1::2], "test": []}
    return root, splits


def real_params() -> dict:
    """The project's params.yaml: tests shrink it rather than copy sections of it."""
    return yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())


def tiny_train_cfg(**over) -> dict:
    """params.yaml's model and train sections, shrunk to seconds on CPU (new keys come along)."""
    params = real_params()
    shrink = {
        "epochs": 1,
        "batch_size": 8,
        "lr": 0.003,
        "weight_decay": 0.0,
        "label_smoothing": 0.0,
        "patience": 3,
        "augment_strength": 0.5,
        "num_workers": 0,
        "accelerator": "cpu",
        "mixed_precision": False,
        "wandb": False,
        "progress_bar": False,
    }
    return {
        "model": {**params["model"], **TINY_MODEL},
        "train": {**params["train"], **shrink, **over},
    }


def tiny_model_dir(
    root: Path, seed: int = 0, unknown_below: float = 0.0, unknown_beyond: float | None = None
) -> Path:
    """An untrained six-output model; `unknown_below` near 1 makes every answer `unknown`, so
    does `unknown_beyond` 0 (a feature-distance gate with unit covariance around 0)."""
    torch.manual_seed(seed)
    net = build_net(**TINY_MODEL)
    spec = PreprocessSpec(spacing=(12.0, 12.0, 10.0), shape=TINY_SHAPE)
    note = {"note": "untrained test model"}
    gate = None
    if unknown_beyond is not None:
        dim = TINY_MODEL["widths"][-1]
        means, precision = np.zeros((len(MODEL_CLASSES), dim)), np.eye(dim)
        gate = {"means": means, "precision": precision, "fitted_on": 0}
        gate["unknown_beyond"] = unknown_beyond
    export_model(net, spec, root, TINY_MODEL, note, {}, unknown_below=unknown_below, distance=gate)
    return root


class Context:
    """Enough of ts.context.Context to call the handler without a server: properties,
    headers, statuses, metrics."""

    def __init__(self, model_dir: Path, headers: list[dict] | None = None):
        self.system_properties = {"model_dir": str(model_dir)}
        self.headers = headers or [{}]
        self.status: dict[int, tuple[int, str]] = {}
        self.metrics = Metrics()

    def get_request_header(self, idx, key):
        return self.headers[idx].get(key) if idx < len(self.headers) else None

    def set_response_status(self, code=200, phrase="", idx=0):
        self.status[idx] = (code, phrase)


class Metrics:
    def __init__(self):
        self.counts: list[tuple[str, dict]] = []
        self.totals: dict[str, float] = {}  # each counter's summed increments

    def add_counter(self, name, value, idx=None, dimensions=()):
        self.counts.append((name, {d.name: d.value for d in dimensions}))
        self.totals[name] = self.totals.get(name, 0.0) + value
