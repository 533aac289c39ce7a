"""Real Ray: a 2-node local cluster runs a tiny sweep; a killed sweep resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import tiny_processed, tiny_train_cfg

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def sweep_params(samples: int, concurrent: int, epochs: int = 2) -> dict:
    base = tiny_train_cfg(epochs=epochs, patience=epochs)
    base["tune"] = {
        "space": {"train.lr": {"loguniform": [0.001, 0.01]}},
        "num_samples": samples,
        "epochs": epochs,
        "scheduler": "fifo",
        "grace_period": 1,
        "reduction_factor": 2,
        "search": "random",
        "metric": "val/loss",
        "mode": "min",
        "max_concurrent_trials": concurrent,
        "cpus_per_trial": 1,
        "resources": {},
        "max_failures": 0,
        "address": "",
        "seed": 0,
    }
    return base


@pytest.fixture
def ray_env(tmp_path, monkeypatch):
    short = Path("/tmp") / f"ray{os.getpid()}"  # Ray's socket paths must stay short
    monkeypatch.setenv("RAY_TMPDIR", str(short))
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("WANDB_MODE", "disabled")
    yield short


def test_two_node_cluster_spreads_trials_and_writes_best(tmp_path, ray_env):
    import ray
    from ray.cluster_utils import Cluster

    from mrseq.tuning import best_overrides, run_sweep, save_best

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "num_gpus": 1})
    cluster.add_node(num_cpus=1, num_gpus=1)
    cluster.wait_for_nodes()
    try:
        ray.init(address=cluster.address)
        processed, splits = tiny_processed(tmp_path / "processed")
        table = run_sweep(sweep_params(2, 2), processed, splits, tmp_path / "ray")
        assert (table.status == "TERMINATED").all() and len(table) == 2
        assert table.node_id.nunique() == 2  # one GPU-declaring node per trial
        best = best_overrides(table, ["train.lr"], "val/loss", "min")
        save_best(tmp_path / "best.json", best)
        assert (
            0.001 <= json.loads((tmp_path / "best.json").read_text())["config"]["train.lr"] <= 0.01
        )
    finally:
        ray.shutdown()
        cluster.shutdown()


SCRIPT = """
import json, sys
sys.path.insert(0, {tests!r})
from test_tune import sweep_params
from mrseq.tuning import run_sweep
splits = json.load(open({splits!r}))
table = run_sweep(sweep_params(3, 1), {processed!r}, splits, {storage!r}, num_cpus=1)
table.to_csv({out!r}, index=False)
"""


def finished_trials(storage: Path) -> dict[str, int]:
    """trial folder -> number of reported epochs, for trials that reported both epochs."""
    done = {}
    for result in storage.glob("sweep/*/result.json"):
        lines = [json.loads(x) for x in result.read_text().splitlines() if x.strip()]
        if len(lines) >= 2:
            done[result.parent.name] = len(lines)
    return done


def test_killed_sweep_resumes_without_rerunning_finished_trials(tmp_path, ray_env):
    processed, splits = tiny_processed(tmp_path / "processed")
    (tmp_path / "splits.json").write_text(json.dumps(splits))
    storage = tmp_path / "ray"
    code = SCRIPT.format(
        tests=str(Path(__file__).parent),
        splits=str(tmp_path / "splits.json"),
        processed=str(processed),
        storage=str(storage),
        out=str(tmp_path / "t.csv"),
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    first = subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 240
    while not finished_trials(storage) and time.time() < deadline and first.poll() is None:
        time.sleep(1)
    assert finished_trials(storage), "no trial finished in time"
    os.killpg(first.pid, signal.SIGINT)  # Ctrl-C
    first.wait(timeout=120)
    before = finished_trials(storage)
    assert not (tmp_path / "t.csv").exists(), "the sweep finished before it could be killed"
    subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, timeout=600, capture_output=True
    )
    import pandas as pd

    table = pd.read_csv(tmp_path / "t.csv")
    assert len(table) == 3 and (table.status == "TERMINATED").all()
    after = finished_trials(storage)
    for trial, epochs in before.items():
        assert after[trial] == epochs, f"{trial} was rerun"
