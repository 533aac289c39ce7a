"""Ray Tune sweep over the same `train_model()` the train stage runs.

The search space lives in params.yaml under `tune.space` as dotted paths into the params tree
(`train.lr: {loguniform: [1e-4, 3e-3]}`); each trial gets the base params with its sample
merged in. Only `model.*` and `train.*` can be swept: preprocessing is a cached DVC stage, and
sweeping it would mean preprocessing per trial.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any

import pandas as pd

from mrseq.params import get_dotted, set_dotted

log = logging.getLogger(__name__)
SWEEPABLE = ("model.", "train.")
DISTRIBUTIONS = {"uniform": 2, "loguniform": 2, "quniform": 3, "randint": 2, "choice": 1}
SWEEP_NAME = "sweep"


class SweepInterrupted(RuntimeError):
    """The sweep stopped before every trial finished; its state is saved for a resume."""


# ------------------------------------------------------------------ search space


def sweep_fingerprint(params: dict, files: list[Path]) -> str:
    """A stored sweep is resumed only when this is unchanged: the settings and the bytes of
    every file it depends on (code included: a sweep of yesterday's training code is stale)."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    for path in sorted(Path(f) for f in files):
        digest.update(str(path).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def parse_space(space: dict, params: dict) -> dict[str, Any]:
    """{dotted key: Ray Tune domain}; unknown distributions and keys fail with a clear error."""
    from ray import tune

    domains = {}
    for key, spec in (space or {}).items():
        if not key.startswith(SWEEPABLE):
            raise ValueError(f"tune.space.{key}: only model.* and train.* keys can be swept")
        try:
            get_dotted(params, key)
        except KeyError:
            raise ValueError(f"tune.space.{key}: no such key in params.yaml") from None
        if not isinstance(spec, dict) or len(spec) != 1:
            raise ValueError(
                f"tune.space.{key}: expected one distribution, e.g. {{uniform: [a, b]}}"
            )
        ((name, args),) = spec.items()
        if name not in DISTRIBUTIONS:
            raise ValueError(
                f"tune.space.{key}: unknown distribution {name!r}; "
                f"use one of {sorted(DISTRIBUTIONS)}"
            )
        if name == "choice":
            if not isinstance(args, list) or not args:
                raise ValueError(f"tune.space.{key}: choice needs a non-empty list")
            domains[key] = tune.choice(args)
            continue
        if not isinstance(args, list) or len(args) != DISTRIBUTIONS[name]:
            raise ValueError(f"tune.space.{key}: {name} takes {DISTRIBUTIONS[name]} numbers")
        domains[key] = getattr(tune, name)(*args)
    if not domains:
        raise ValueError("tune.space is empty: nothing to sweep")
    return domains


def apply_overrides(params: dict, overrides: dict) -> dict:
    """A deep copy of params with dotted-key overrides applied (a trial's or the winner's)."""
    merged = copy.deepcopy(params)
    for key, value in overrides.items():
        set_dotted(merged, key, value)
    return merged


# ------------------------------------------------------------------ resources and cluster


def trial_resources(cluster: dict, tune_cfg: dict) -> dict:
    """One GPU per trial when the cluster has GPUs, CPUs only otherwise; params can override."""
    override = tune_cfg.get("resources") or {}
    gpus = float(cluster.get("GPU", 0))
    cpus = int(override.get("cpu", tune_cfg.get("cpus_per_trial", 1)))
    gpu = float(override.get("gpu", 1 if gpus >= 1 else 0))
    return {"cpu": cpus, "gpu": gpu} if gpu else {"cpu": cpus}


def connect(address: str | None = None, num_cpus: int | None = None) -> None:
    """Attach to RAY_ADDRESS (or `address`), else start a local Ray with dashboard and usage
    stats off and token auth disabled for local use."""
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=False)
        return
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(
        num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, configure_logging=False
    )


# ------------------------------------------------------------------ trials


def make_trainable(
    base: dict, processed: str, splits: dict, work_dir: str, synthetic: str | None = None
):
    """The per-trial function: base params + the trial's sample -> train_model()."""

    def trial(config: dict) -> None:
        import pytorch_lightning as pl
        import ray
        from ray import tune

        from mrseq.training import train_model

        class Report(pl.Callback):
            def on_validation_epoch_end(self, trainer, module) -> None:
                if trainer.sanity_checking:
                    return
                metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
                metrics["epoch"] = trainer.current_epoch + 1
                metrics["node_id"] = ray.get_runtime_context().get_node_id()
                tune.report(metrics)

        cfg = apply_overrides(base, config)
        cfg["train"]["progress_bar"] = False
        out = Path(work_dir) / tune.get_context().get_trial_id()
        train_model(cfg, processed, splits, out, [Report()], group=SWEEP_NAME, synthetic=synthetic)

    return trial


def build_tuner(
    params: dict,
    processed: str,
    splits: dict,
    storage: str,
    resources: dict,
    synthetic: str | None = None,
):
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    t = params["tune"]
    space = parse_space(t["space"], params)
    base = {"model": params["model"], "train": params["train"]}
    trainable = tune.with_resources(
        make_trainable(base, processed, splits, storage + "/runs", synthetic), resources
    )
    metric, mode = t["metric"], t["mode"]
    grace, factor = int(t["grace_period"]), float(t["reduction_factor"])  # read with fifo too
    if t["scheduler"] == "asha":
        scheduler = ASHAScheduler(
            time_attr="training_iteration",
            max_t=int(t["epochs"]),
            grace_period=grace,
            reduction_factor=factor,
        )
    elif t["scheduler"] == "fifo":
        scheduler = FIFOScheduler()
    else:
        raise ValueError(f"tune.scheduler must be asha or fifo, got {t['scheduler']!r}")
    if t["search"] == "random":  # seeded, so a rerun (or a FIFO/ASHA comparison) samples alike
        from ray.tune.search import BasicVariantGenerator

        search = BasicVariantGenerator(random_state=int(t["seed"]))
    elif t["search"] == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        search = OptunaSearch(seed=int(t["seed"]))
    else:
        raise ValueError(f"tune.search must be random or optuna, got {t['search']!r}")
    tune_config = tune.TuneConfig(
        metric=metric,
        mode=mode,
        scheduler=scheduler,
        search_alg=search,
        num_samples=int(t["num_samples"]),
        max_concurrent_trials=int(t["max_concurrent_trials"]) or None,
    )
    run_config = tune.RunConfig(
        name=SWEEP_NAME,
        storage_path=storage,
        failure_config=tune.FailureConfig(max_failures=int(t["max_failures"])),
        verbose=1,
    )
    return trainable, space, tune_config, run_config


def run_sweep(
    params: dict,
    processed: str | os.PathLike,
    splits: dict,
    storage: str | os.PathLike,
    num_cpus: int | None = None,
    synthetic: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Run (or resume) the sweep; returns one row per trial."""
    import ray
    from ray import tune

    storage = str(Path(storage).resolve())
    connect(params["tune"].get("address") or None, num_cpus)
    resources = trial_resources(ray.cluster_resources(), params["tune"])
    log.warning("tune: each trial gets %s", resources)
    extra = str(Path(synthetic).resolve()) if synthetic else None
    trainable, space, tune_config, run_config = build_tuner(
        params, str(Path(processed).resolve()), splits, storage, resources, extra
    )
    path = os.path.join(storage, SWEEP_NAME)
    if tune.Tuner.can_restore(path):
        log.warning("tune: resuming the sweep in %s", path)
        tuner = tune.Tuner.restore(path, trainable, resume_errored=True, param_space=space)
    else:
        tuner = tune.Tuner(
            trainable, param_space=space, tune_config=tune_config, run_config=run_config
        )
    with _graceful_stop() as interrupted:
        grid = tuner.fit()
    if interrupted.is_set():
        # Ray returns normally after a stop, with its state saved (and never-started trials
        # marked TERMINATED): a partial sweep must not look finished, or DVC would record it.
        raise SweepInterrupted(f"sweep interrupted; rerun the stage to resume from {path}")
    return trials_table(grid, list(space), params["tune"]["metric"], params["tune"]["mode"])


@contextlib.contextmanager
def _graceful_stop():
    """Ctrl-C or SIGTERM: remember it, and ask Ray Tune for its graceful stop (SIGUSR1, which
    saves the experiment state one last time) instead of Ray's own SIGINT handling."""
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    interrupted = threading.Event()

    def on_signal(sig, frame):
        interrupted.set()
        os.kill(os.getpid(), signal.SIGUSR1)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield interrupted
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def trials_table(grid, keys: list[str], metric: str, mode: str) -> pd.DataFrame:
    """One row per trial (a Ray ResultGrid in): its sample, its best `metric` by `mode`."""
    if mode not in ("min", "max"):
        raise ValueError(f"tune.mode must be min or max, got {mode!r}")
    rows = []
    for result in grid:
        row = {
            "trial_id": result.metrics.get("trial_id") if result.metrics else None,
            "status": "ERROR" if result.error else "TERMINATED",
        }
        row.update({k: result.config.get(k) for k in keys})
        history = result.metrics_dataframe
        if history is not None and len(history) and metric in history:
            row["best_" + metric] = float(getattr(history[metric], mode)())
            row["epochs_run"] = int(history["training_iteration"].max())
            row["node_id"] = history["node_id"].iloc[-1] if "node_id" in history else None
        row["error"] = str(result.error)[:200] if result.error else ""
        rows.append(row)
    return pd.DataFrame(rows)


def best_overrides(table: pd.DataFrame, keys: list[str], metric: str, mode: str) -> dict:
    done = table.dropna(subset=["best_" + metric])
    if done.empty:
        raise RuntimeError("no trial reported the metric: the sweep produced no winner")
    row = done.sort_values("best_" + metric, ascending=mode == "min").iloc[0]
    return {
        "config": {k: _plain(row[k]) for k in keys},
        "metric": metric,
        "mode": mode,
        "value": float(row["best_" + metric]),
        "trial_id": row["trial_id"],
    }


def _plain(value):
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    return value


def save_best(path: str | os.PathLike, best: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(best, indent=2) + "\n")


def sweep_plot(
    table: pd.DataFrame, keys: list[str], metric: str, out_png: str | os.PathLike
) -> None:
    """Metric against each swept hyper-parameter (log axis for ranges spanning decades)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    column = "best_" + metric
    data = table.dropna(subset=[column])
    fig, axes = plt.subplots(1, len(keys), figsize=(3.6 * len(keys), 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        values = data[key].map(lambda v: str(v) if isinstance(v, list | tuple) else v)
        ax.scatter(values, data[column], c=data.get("epochs_run", 1), cmap="viridis")
        numeric = pd.to_numeric(values, errors="coerce")
        if numeric.notna().all() and numeric.min() > 0 and numeric.max() / numeric.min() > 20:
            ax.set_xscale("log")
        ax.set_xlabel(key)
        ax.set_ylabel(metric)
    fig.suptitle(f"{len(data)} trials (colour: epochs run; ASHA stops the weak early)")
    fig.tight_layout()
    fig.savefig(out_png, dpi=90)
    plt.close(fig)
