"""The whole pipeline under `dvc repro`, on a mini profile, in a temporary copy of the repo."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mrseq.params import covers, declared_keys

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
MINI = {
    "simulate": {"patients": 12, "resolution_scale": 0.35, "workers": 2},
    "preprocess": {"shape": [24, 24, 10], "spacing": [5.0, 5.0, 8.0]},
    "model": {"widths": [4, 8, 8, 16]},
    "train": {"epochs": 2, "batch_size": 8, "wandb": False, "progress_bar": False},
    "evaluate": {"bootstrap": 20},
    "other": {"distance_rejection": 0.005},  # the gate is off by default; keep its path tested
    "benchmark": {"patients": 3, "workers": 2},
    "synthesize": {"patients": 3, "workers": 2},
    "tune": {
        "num_samples": 2,
        "epochs": 1,
        "grace_period": 1,
        "max_concurrent_trials": 2,
        "space": {"train.lr": {"loguniform": [0.001, 0.01]}},
    },
}


def run(args, cwd, env) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    work = tmp_path_factory.mktemp("repo")
    for item in ("dvc.yaml", "pipelines", "src", "serve"):
        copy = shutil.copytree if (ROOT / item).is_dir() else shutil.copy
        copy(ROOT / item, work / item)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for section, values in MINI.items():
        params[section].update(values)
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "WANDB_MODE": "disabled",
        "RAY_USAGE_STATS_ENABLED": "0",
        "MRSEQ_PARAMS_AUDIT": str(work / "audit"),
    }
    run(["git", "init", "-q"], work, env)
    run(["dvc", "init", "-q"], work, env)
    first = run(["dvc", "repro"], work, env)
    return work, env, first


def test_pipeline_produces_metrics_model_and_plots(repo):
    work, _, _ = repo
    result = json.loads((work / "metrics" / "test.json").read_text())
    # the headline figure is the one the predictions file gives, with the series context in it
    pred = pd.read_csv(work / "metrics" / "test_predictions.csv")
    right = float((pred.label == pred.predicted).mean())
    assert result["overall"]["accuracy"]["value"] == pytest.approx(right, abs=1e-3)
    assert result["series_context"]["accuracy"] == pytest.approx(right, abs=1e-3)
    alone = float((pred.label == pred.predicted_alone).mean())
    assert result["series_context"]["accuracy_volume_alone"] == pytest.approx(alone, abs=1e-3)
    assert set(result["per_class"]) == {
        "T2WI_nan",
        "T2WI_fs",
        "DWI_Low",
        "DWI_High",
        "ADC",
        "other",
    }
    routing = result["routing"]  # the router's view: right, wrongly rejected, kept out
    assert routing["non_target_kept_out"]["n"] > 0 and routing["target_answered_right"]["n"] > 0
    bench = json.loads((work / "metrics" / "benchmark.json").read_text())
    assert bench.keys() == result.keys()  # the same structure as the test split's
    assert bench["overall"]["n"] == sum(b["n"] for b in bench["bands"].values())
    assert bench["routing"]["non_target_rejected_by_ingest"] > 0  # 1-3 slice localisers, counted
    assert bench["routing"]["by_subtype"]["t2_map"]["held_out"]
    predictions = (work / "metrics" / "benchmark_predictions.csv").read_text()
    assert "SIM1000-" in predictions and "SIM000-" not in predictions  # its own cohort
    spec = json.loads((work / "models" / "mrseq" / "model_spec.json").read_text())
    assert spec["preprocessing"]["shape"] == [24, 24, 10]
    assert spec["classes"][-1] == "other" and 0 <= spec["output"]["unknown_below"] <= 1
    assert 0.05 <= spec["output"]["temperature"] <= 20
    # the feature-distance gate: fitted on training features, threshold from validation
    assert spec["output"]["distance_column"] and spec["output"]["unknown_beyond"] > 0
    assert set(bench["routing"]["unknown_by_gate"]) == {"confidence", "distance"}
    for path in (
        "plots/confusion.png",
        "plots/reliability.png",
        "plots/confusion.csv",
        "metrics/misclassified.csv",
        "models/mrseq/model.ts",
        "data/splits.json",
        "reports/tune/trials.csv",
        "reports/tune/sweep.png",
        "models/store/mrseq.mar",
    ):
        assert (work / path).is_file(), path


def test_each_stage_reads_exactly_what_it_declares(repo):
    work, _, _ = repo
    stages = yaml.safe_load((work / "dvc.yaml").read_text())["stages"]
    for stage in stages:
        read = json.loads((work / "audit" / f"{stage}.json").read_text())
        undeclared, unread = covers(declared_keys(stage, work / "dvc.yaml"), read)
        assert (undeclared, unread) == ([], []), stage


def test_nothing_changed_nothing_reruns(repo):
    work, env, _ = repo
    again = run(["dvc", "repro"], work, env)
    assert "Running stage" not in again


def test_the_sweeps_winner_reaches_train(repo):
    work, _, first = repo
    best = json.loads((work / "reports" / "tune" / "best.json").read_text())
    assert "using the sweep's best config" in first and str(best["config"]) in first


def test_a_train_param_reruns_only_train_and_what_follows(repo):
    work, env, _ = repo
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["train"]["epochs"] = 1
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = run(["dvc", "repro"], work, env)
    ran = re.findall(r"Running stage '(\w+)'", out)
    assert ran[:2] == ["train", "export"]
    assert sorted(ran[2:]) == ["benchmark", "evaluate", "package"]
