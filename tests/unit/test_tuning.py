import pytest

from mrseq.tuning import apply_overrides, parse_space, sweep_fingerprint, trial_resources

PARAMS = {
    "model": {"depth": 10, "widths": [4, 8, 8, 8]},
    "train": {"lr": 0.001, "epochs": 3},
    "preprocess": {"shape": [8, 8, 8]},
}


def test_space_parses_every_distribution():
    space = parse_space(
        {
            "train.lr": {"loguniform": [1e-4, 1e-2]},
            "train.epochs": {"randint": [1, 5]},
            "model.depth": {"choice": [10, 18]},
            "model.widths": {"choice": [[4, 8, 8, 8], [8, 8, 16, 16]]},
        },
        PARAMS,
    )
    assert set(space) == {"train.lr", "train.epochs", "model.depth", "model.widths"}
    assert 1e-4 <= space["train.lr"].sample() <= 1e-2


@pytest.mark.parametrize(
    "space, message",
    [
        ({"train.lr": {"gaussian": [0, 1]}}, "unknown distribution"),
        ({"train.nope": {"uniform": [0, 1]}}, "no such key"),
        ({"preprocess.shape": {"choice": [[8, 8, 8]]}}, "only model"),
        ({"train.lr": {"uniform": [0]}}, "takes 2 numbers"),
        ({"train.lr": {"choice": []}}, "non-empty"),
        ({}, "empty"),
    ],
)
def test_space_rejects_bad_entries_clearly(space, message):
    with pytest.raises(ValueError, match=message):
        parse_space(space, PARAMS)


def test_overrides_are_deep_and_leave_the_base_alone():
    merged = apply_overrides(PARAMS, {"train.lr": 0.5, "model.widths": [1, 2, 3, 4]})
    assert merged["train"]["lr"] == 0.5 and merged["model"]["widths"] == [1, 2, 3, 4]
    assert PARAMS["train"]["lr"] == 0.001


def test_one_gpu_per_trial_only_when_the_cluster_has_gpus():
    assert trial_resources({"CPU": 16, "GPU": 4}, {"cpus_per_trial": 4}) == {"cpu": 4, "gpu": 1}
    assert trial_resources({"CPU": 2}, {"cpus_per_trial": 1}) == {"cpu": 1}
    assert trial_resources({"CPU": 2, "GPU": 1}, {"resources": {"cpu": 2, "gpu": 0.5}}) == {
        "cpu": 2,
        "gpu": 0.5,
    }


def test_trials_table_reads_the_best_by_tune_mode_not_by_the_metric_name():
    from types import SimpleNamespace

    import pandas as pd

    from mrseq.tuning import trials_table

    history = pd.DataFrame({"val/loss": [0.9, 0.4, 0.6], "training_iteration": [1, 2, 3]})
    result = SimpleNamespace(
        metrics={"trial_id": "t1"}, error=None, config={"train.lr": 0.01}, metrics_dataframe=history
    )
    lowest = trials_table([result], ["train.lr"], "val/loss", "min")
    highest = trials_table([result], ["train.lr"], "val/loss", "max")
    assert lowest["best_val/loss"].iloc[0] == 0.4 and highest["best_val/loss"].iloc[0] == 0.9
    assert lowest.epochs_run.iloc[0] == 3 and lowest["train.lr"].iloc[0] == 0.01
    with pytest.raises(ValueError, match="tune.mode"):
        trials_table([result], ["train.lr"], "val/loss", "lowest")


def test_sweep_fingerprint_follows_settings_and_every_file(tmp_path):
    code, index = tmp_path / "training.py", tmp_path / "index.csv"
    code.write_text("augment = 1\n")
    index.write_text("volume_id\na\n")
    first = sweep_fingerprint(PARAMS, [code, index])
    assert sweep_fingerprint(PARAMS, [index, code]) == first  # order does not matter
    code.write_text("augment = 2\n")  # a code change makes the stored sweep stale
    assert sweep_fingerprint(PARAMS, [code, index]) != first
    code.write_text("augment = 1\n")
    assert sweep_fingerprint(PARAMS, [code, index]) == first
    changed = {**PARAMS, "train": {**PARAMS["train"], "lr": 0.01}}
    assert sweep_fingerprint(changed, [code, index]) != first
