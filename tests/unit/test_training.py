import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from helpers import tiny_processed, tiny_train_cfg
from mrseq.sequences import MODEL_CLASSES
from mrseq.training import build_augment, load_classifier, train_model


def test_train_model_writes_checkpoint_history_and_metrics(tmp_path):
    processed, splits = tiny_processed(tmp_path / "processed")
    result = train_model(tiny_train_cfg(epochs=2), processed, splits, tmp_path / "out")
    assert Path(result["best_checkpoint"]).is_file()
    assert result["epochs_run"] == 2 and result["best"]["val_loss"] > 0
    assert (tmp_path / "out" / "history.csv").read_text().count("\n") == 3
    model = load_classifier(result["best_checkpoint"], tiny_train_cfg()["model"])
    assert model(torch.rand(1, 1, 16, 16, 8)).shape == (1, len(MODEL_CLASSES))
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


def test_coverage_window_only_when_asked():
    names = [type(t).__name__ for t in build_augment(1.0).transforms]
    assert "OneOf" not in names
    assert [type(t).__name__ for t in build_augment(1.0, 0.5).transforms] == ["OneOf", *names]


def test_train_model_reads_every_train_and_model_key(tmp_path):
    """What the train stage's params audit relies on (tune hands these sections to trials)."""
    from mrseq.params import Tracked

    processed, splits = tiny_processed(tmp_path / "processed", per_class=2)
    extra, _ = tiny_processed(tmp_path / "synthetic", per_class=2)  # as the stage has
    cfg = Tracked(tiny_train_cfg(epochs=1))
    train_model(cfg, processed, splits, tmp_path / "out", synthetic=extra)
    keys = {f"{s}.{k}" for s in ("train", "model") for k in cfg[s]}
    assert keys - cfg.seen == set()


def test_coverage_window_keeps_one_slab_along_one_axis():
    from mrseq.training import SLAB_MIN_VOXELS, coverage_window

    window = coverage_window(1.0)
    window.set_random_state(seed=0)
    x = torch.rand(1, 40, 40, 20) + 0.1  # no zeros of its own
    cut_axes = set()
    for _ in range(40):
        y = torch.as_tensor(window(x))
        kept = y != 0
        assert torch.equal(y[kept], x[kept])  # inside the slab nothing changes
        for axis in range(3):
            others = tuple(d for d in (1, 2, 3) if d != axis + 1)
            along = kept.any(dim=others)[0]
            idx = torch.nonzero(along).flatten()
            assert len(idx) == int(idx[-1] - idx[0]) + 1  # one contiguous run
            if len(idx) < x.shape[axis + 1]:
                cut_axes.add(axis)
                assert len(idx) >= SLAB_MIN_VOXELS[axis]
                assert kept.sum() == len(idx) * x[0].numel() // x.shape[axis + 1]
    assert cut_axes == {0, 1, 2}


@pytest.mark.parametrize("mode", ["disabled"])
def test_wandb_disabled_gives_no_logger(monkeypatch, mode, tmp_path):
    from mrseq.training import _loggers

    monkeypatch.setenv("WANDB_MODE", mode)
    assert _loggers({"wandb": True}, tmp_path, None) is False


def test_same_config_same_weights(tmp_path):
    """Augmentation on: MONAI transforms draw from their own generators, seeded by train.seed."""
    processed, splits = tiny_processed(tmp_path / "processed")
    cfg = tiny_train_cfg(epochs=2, augment_strength=1.0)
    weights = []
    for run in ("a", "b"):
        result = train_model(cfg, processed, splits, tmp_path / run)
        weights.append(torch.load(result["best_checkpoint"], weights_only=False)["state_dict"])
    assert weights[0].keys() == weights[1].keys()
    for name in weights[0]:
        assert torch.equal(weights[0][name], weights[1][name]), name


def test_augment_draws_differ_between_calls_but_not_between_seeded_runs():
    x = torch.rand(1, 16, 16, 8)
    first, second = build_augment(1.0), build_augment(1.0)
    first.set_random_state(seed=3)
    second.set_random_state(seed=3)
    a, b = first(x), first(x)
    assert not torch.equal(torch.as_tensor(a), torch.as_tensor(b))
    assert torch.equal(torch.as_tensor(a), torch.as_tensor(second(x)))


def test_synthetic_volumes_join_the_training_set_only(tmp_path):
    from mrseq.training import VolumeDataModule

    processed, splits = tiny_processed(tmp_path / "processed")
    extra, _ = tiny_processed(tmp_path / "synthetic", per_class=2)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "index.csv").write_text("volume_id,label,array\n")
    cfg = tiny_train_cfg(synthetic_val_fraction=0.0)["train"]
    sizes = {}
    for name, folder in (("none", None), ("extra", extra), ("empty", tmp_path / "empty")):
        data = VolumeDataModule(processed, splits, cfg, folder)
        data.setup()
        sizes[name] = (len(data.train_set), len(data.val_set))
    n_extra = len((Path(extra) / "index.csv").read_text().splitlines()) - 1
    assert sizes["extra"] == (sizes["none"][0] + n_extra, sizes["none"][1])
    assert sizes["empty"] == sizes["none"]


def test_a_share_of_synthetic_patients_validates_and_never_trains(tmp_path):
    from mrseq.training import VolumeDataModule, synthetic_split

    index = pd.DataFrame({"patient_id": [f"P{i // 3}" for i in range(30)], "volume_id": range(30)})
    train, val = synthetic_split(index, 0.2, seed=0)
    assert val.patient_id.nunique() == 2 and len(train) + len(val) == 30
    assert not set(train.patient_id) & set(val.patient_id)
    assert synthetic_split(index, 0.2, seed=0)[1].equals(val)  # same seed, same patients
    processed, splits = tiny_processed(tmp_path / "processed")
    extra, _ = tiny_processed(tmp_path / "synthetic", per_class=2)
    cfg = {**tiny_train_cfg()["train"], "synthetic_val_fraction": 0.5}
    base = VolumeDataModule(processed, splits, cfg)
    base.setup()
    data = VolumeDataModule(processed, splits, cfg, extra)
    data.setup()
    n_extra = len(pd.read_csv(Path(extra) / "index.csv"))
    added_val = len(data.val_set) - len(base.val_set)
    assert 0 < added_val < n_extra
    assert len(data.train_set) - len(base.train_set) == n_extra - added_val


def test_class_weights_lift_the_rare_classes_and_zero_power_is_none():
    from mrseq.sequences import MODEL_CLASSES, OTHER
    from mrseq.training import class_weights

    labels = [OTHER] * 30 + ["ADC"] * 10 + ["DWI_Low"] * 10
    assert class_weights(labels, 0) is None
    full = dict(zip(MODEL_CLASSES, class_weights(labels, 1.0), strict=True))
    assert full["ADC"] == pytest.approx(50 / 30) and full[OTHER] == pytest.approx(50 / 90)
    assert full["T2WI_nan"] == 1.0  # absent from training: left alone
    half = dict(zip(MODEL_CLASSES, class_weights(labels, 0.5), strict=True))
    assert half["ADC"] == pytest.approx((50 / 30) ** 0.5)


def test_sweep_trials_can_train_on_the_first_synthetic_patients_only(tmp_path):
    from mrseq.training import VolumeDataModule

    processed, splits = tiny_processed(tmp_path / "processed")
    extra, _ = tiny_processed(tmp_path / "synthetic", per_class=3)  # patients p0, p1, p2
    sizes = {}
    for limit in (None, 1):
        cfg = tiny_train_cfg(synthetic_val_fraction=0.0, max_synthetic_patients=limit)["train"]
        data = VolumeDataModule(processed, splits, cfg, extra)
        data.setup()
        sizes[limit] = len(data.train_set.datasets[1])
    assert sizes == {None: 18, 1: 6}  # 6 classes x 3 patients, then only p0's six


def test_loader_workers_draw_their_own_augmentations(tmp_path):
    """Forked loader workers inherit MONAI's RandomState: without seeding each one, worker 1's
    first volume got worker 0's augmentation. Same torch seed, same draws."""
    from mrseq.training import VolumeDataModule

    processed, splits = tiny_processed(tmp_path / "processed")
    cfg = tiny_train_cfg(num_workers=2, batch_size=1, augment_strength=1.0)["train"]
    data = VolumeDataModule(processed, splits, cfg)
    data.setup()
    data.train_set.x = [data.train_set.x[0]] * 4  # one volume four times
    data.train_set.y = [0] * 4

    def draws():
        torch.manual_seed(0)
        return [x for x, _ in data._loader(data.train_set, shuffle=False)]

    first = draws()  # items 0 and 2 from worker 0, 1 and 3 from worker 1
    assert not torch.equal(first[0], first[1])
    assert all(torch.equal(a, b) for a, b in zip(first, draws(), strict=True))
