import json
from pathlib import Path

import pytest
import torch

from helpers import tiny_processed, tiny_train_cfg
from mrseq.training import build_augment, load_classifier, train_model


def test_train_model_writes_checkpoint_history_and_metrics(tmp_path):
    processed, splits = tiny_processed(tmp_path / "processed")
    result = train_model(tiny_train_cfg(epochs=2), processed, splits, tmp_path / "out")
    assert Path(result["best_checkpoint"]).is_file()
    assert result["epochs_run"] == 2 and result["best"]["val_loss"] > 0
    assert (tmp_path / "out" / "history.csv").read_text().count("\n") == 3
    model = load_classifier(result["best_checkpoint"], tiny_train_cfg()["model"])
    assert model(torch.rand(1, 1, 16, 16, 8)).shape == (1, 5)
    assert json.loads((tmp_path / "out" / "train_metrics.json").read_text())["epochs_run"] == 2


def test_training_learns_a_separable_toy_problem(tmp_path):
    processed, splits = tiny_processed(tmp_path / "processed", per_class=8)
    result = train_model(
        tiny_train_cfg(epochs=12, augment_strength=0.0, lr=0.01),
        processed,
        splits,
        tmp_path / "out",
    )
    assert result["best"]["val_acc"] >= 0.8


def test_augment_keeps_shape_and_is_off_at_zero():
    assert build_augment(0) is None
    x = torch.rand(1, 16, 16, 8)
    y = build_augment(1.0)(x)
    assert tuple(y.shape) == (1, 16, 16, 8)


@pytest.mark.parametrize("mode", ["disabled"])
def test_wandb_disabled_gives_no_logger(monkeypatch, mode, tmp_path):
    from mrseq.training import _loggers

    monkeypatch.setenv("WANDB_MODE", mode)
    assert _loggers({"wandb": True}, tmp_path, None) is False
