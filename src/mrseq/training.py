"""LightningModule, DataModule and `train_model(cfg)`: the one training loop.

The train stage and every Ray Tune trial call `train_model`; a trial passes its reporting
callback in `callbacks`. Augmentation (train only) targets what differs between sites:
orientation and position, coverage, bias fields, noise, contrast, resolution.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from mrseq.layout import CHECKPOINT, CONFIG_JSON, HISTORY_CSV, INDEX_CSV, SPEC_JSON
from mrseq.nets import build_net_from_params
from mrseq.params import as_plain
from mrseq.sequences import MODEL_CLASSES

log = logging.getLogger(__name__)


# ------------------------------------------------------------------ data


def build_augment(strength: float, coverage: float = 0.0):
    """MONAI random transforms on one (C, X, Y, Z) volume, run by the data loader; `strength`
    scales ranges and odds; `coverage` is the odds of the coverage window (0 leaves it out).

    MRI physics in k-space (MONAI's own: Gibbs ringing from k-space truncation, k-space
    spikes, resolution loss) and contrast, so that no two epochs see the same nuisance. Pose,
    flip, bias field and Rician noise follow on the whole batch (`build_batch_augment`): as
    MONAI transforms per volume they cost more than the net's own forward and backward pass.
    MONAI rather than TorchIO: it is already the network's library, works on the same tensors,
    and adds no dependency to the serving image.
    """
    from monai.transforms import (
        Compose,
        RandAdjustContrast,
        RandGaussianSmooth,
        RandGibbsNoise,
        RandKSpaceSpikeNoise,
        RandScaleIntensity,
        RandSimulateLowResolution,
    )

    s = float(strength)
    if s <= 0:
        return None
    p = min(1.0, 0.5 * s)
    window = [coverage_window(min(1.0, float(coverage)))] if coverage > 0 else []
    return Compose(
        [
            *window,
            RandSimulateLowResolution(prob=p * 0.4, zoom_range=(max(0.3, 1 - 0.5 * s), 1.0)),
            RandGaussianSmooth(
                prob=p * 0.4, sigma_x=(0.2, 1.2 * s), sigma_y=(0.2, 1.2 * s), sigma_z=(0.1, 0.6 * s)
            ),  # resolution degradation
            RandGibbsNoise(prob=p * 0.4, alpha=(0.0, min(0.9, 0.5 * s))),
            RandKSpaceSpikeNoise(prob=0.05 * s, intensity_range=(7.0, 9.5)),
            RandAdjustContrast(prob=p, gamma=(max(0.3, 1 - 0.4 * s), 1 + 0.6 * s)),
            RandScaleIntensity(prob=p * 0.5, factors=0.1 * s),
        ]
    )


def build_batch_augment(strength: float, seed: int):
    """The batch stage after `build_augment`'s: random pose (rotation up to 0.26 * strength rad
    about each axis, scaling by up to 15 % * strength, shifts up to 6, 6, 2 voxels, with odds
    0.8 * strength), a left-right flip (odds 0.5: the pelvis is near-symmetric), a polynomial
    bias field and Rician noise, then the clamp to [0, 1]; None at strength 0."""
    from mrseq.augment import BatchAugment

    return BatchAugment(strength, seed) if float(strength) > 0 else None


# Axes of the (C, X, Y, Z) RAS arrays that are the slice direction of sagittal, coronal and
# axial series (axial most often), and the fewest voxels a slab keeps (about 20 mm).
SLAB_AXES = {0: 0.2, 1: 0.2, 2: 0.6}
SLAB_MIN_VOXELS = {0: 16, 1: 16, 2: 5}


def coverage_window(prob: float):
    """Zero everything outside one random slab along a slice axis, as the preprocessing's
    zero padding looks for a series with few or thin slices.

    Why tried (benchmark of 2026-12-05): targets covering <= 60 mm were sent to `other` 3-4
    times as often as those covering more, and most non-target series (localisers, DCE) cover
    little. Measured the same day: it cost 0.03-0.05 of test accuracy and did not lower that
    share, so `train.coverage_window` is 0 (off); it stays for ablations (bench/recipe.py).
    MONAI's RandCoarseDropout with `dropout_holes=False` keeps one box and fills the rest.
    """
    from monai.transforms import OneOf, RandCoarseDropout

    def slab(axis: int):
        least = [-1, -1, -1]  # non-positive: the whole axis
        least[axis] = SLAB_MIN_VOXELS[axis]
        return RandCoarseDropout(
            holes=1,
            spatial_size=least,
            max_spatial_size=-1,
            dropout_holes=False,
            fill_value=0.0,
            prob=prob,
        )

    return OneOf([slab(a) for a in SLAB_AXES], weights=list(SLAB_AXES.values()))


class VolumeDataset(Dataset):
    """Preprocessed arrays held in memory (they are small: float16, fixed shape)."""

    def __init__(self, processed: Path, table: pd.DataFrame, augment=None):
        self.x = [np.load(processed / f) for f in table["array"]]
        self.y = [MODEL_CLASSES.index(label) for label in table["label"]]
        self.augment = augment

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        x = torch.from_numpy(self.x[i].astype(np.float32))
        if self.augment is not None:  # unclamped: the batch stage follows and clamps
            x = torch.as_tensor(self.augment(x), dtype=torch.float32)
        return x, self.y[i]


def seed_worker(worker_id: int) -> None:
    """Loader process start: Lightning's seeding (numpy, torch, random) and then MONAI's.

    MONAI's transforms draw from their own RandomState, which forked workers inherit as it is:
    without this every worker repeats the others' augmentations. Setting a worker_init_fn
    also stops Lightning adding its own, hence both here."""
    from lightning_fabric.utilities.seed import pl_worker_init_function
    from monai.data.utils import worker_init_fn as monai_worker_init_fn

    pl_worker_init_function(worker_id)
    monai_worker_init_fn(worker_id)


def synthetic_split(index: pd.DataFrame, fraction: float, seed: int):
    """Synthetic volumes -> (train, val) by patient: `fraction` of the synthetic patients join
    validation, so early stopping and the sweep read a few hundred volumes, not the DICOM
    split's few dozen (whose noise stopped 30-epoch fits at epoch 12)."""
    if fraction <= 0 or index.empty:
        return index, index.iloc[:0]
    patients = sorted(index.patient_id.unique())
    n_val = int(round(len(patients) * fraction))
    rng = np.random.default_rng(seed)
    val = set(rng.choice(patients, n_val, replace=False)) if n_val else set()
    held = index.patient_id.isin(val)
    return index[~held], index[held]


class VolumeDataModule(pl.LightningDataModule):
    """The split's train and val volumes; `synthetic` (a synthesize stage folder, same layout)
    adds training volumes only, so validation, temperature and test stay on the DICOM path."""

    def __init__(
        self,
        processed: str | os.PathLike,
        splits: dict,
        train_cfg: dict,
        synthetic: str | os.PathLike | None = None,
    ):
        super().__init__()
        self.processed = Path(processed)
        self.index = pd.read_csv(self.processed / INDEX_CSV)
        self.splits = splits
        self.cfg = train_cfg
        self.synthetic = Path(synthetic) if synthetic else None

    @property
    def channels(self) -> int:
        """Input channels of the stored arrays (the preprocessing decides, the net follows)."""
        return int(np.load(self.processed / self.index["array"].iloc[0], mmap_mode="r").shape[0])

    def table(self, split: str) -> pd.DataFrame:
        return self.index[self.index.volume_id.isin(set(self.splits[split]))]

    def setup(self, stage: str | None = None) -> None:
        if self.synthetic is not None:
            check_same_grid(self.processed, self.synthetic)
        augment = build_augment(self.cfg["augment_strength"], self.cfg["coverage_window"])
        if augment is not None:  # MONAI's transforms draw from their own generators
            augment.set_random_state(seed=int(self.cfg["seed"]))
        self.train_set = VolumeDataset(self.processed, self.table("train"), augment)
        self.val_set = VolumeDataset(self.processed, self.table("val"))
        if self.synthetic is not None:
            extra_train, extra_val = self._synthetic_tables()
            self.train_set = ConcatDataset(
                [self.train_set, VolumeDataset(self.synthetic, extra_train, augment)]
            )
            if len(extra_val):
                self.val_set = ConcatDataset(
                    [self.val_set, VolumeDataset(self.synthetic, extra_val)]
                )

    def _synthetic_tables(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        extra = pd.read_csv(self.synthetic / INDEX_CSV)
        limit = self.cfg.get("max_synthetic_patients")
        if limit:  # the sweep's short trials: the first patients (the same for every trial)
            extra = extra[extra.patient_id.isin(sorted(extra.patient_id.unique())[: int(limit)])]
        fraction = float(self.cfg.get("synthetic_val_fraction", 0.0))
        return synthetic_split(extra, fraction, int(self.cfg["seed"]))

    def train_labels(self) -> list[str]:
        """The training volumes' labels, read from the indexes (no arrays loaded)."""
        labels = list(self.table("train").label)
        if self.synthetic is not None:
            labels += list(self._synthetic_tables()[0].label)
        return labels

    def _loader(self, data, shuffle: bool) -> DataLoader:
        workers = resolve_workers(self.cfg["num_workers"])
        batch = int(self.cfg["batch_size"])
        # Training drops a ragged last batch: a batch of one breaks BatchNorm on small inputs.
        drop_last = shuffle and len(data) > batch
        return DataLoader(
            data,
            batch_size=batch,
            shuffle=shuffle,
            drop_last=drop_last,
            num_workers=workers,
            worker_init_fn=seed_worker if workers > 0 else None,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, False)


def check_same_grid(*folders: Path) -> None:
    """Arrays from two stages train one net only if one spec made them (a params change that
    reran one stage and not the other would otherwise mix two grids or intensity scales)."""
    found = [Path(f) / SPEC_JSON for f in folders]
    specs = {str(p.parent): p.read_text() for p in found if p.exists()}
    if len(set(specs.values())) > 1:
        raise ValueError(f"arrays made with different preprocessing: {', '.join(specs)}")


def resolve_workers(setting) -> int:
    """'auto': worker processes on GPU machines, none on CPU (they would steal its cores)."""
    if setting == "auto":
        return min(8, os.cpu_count() or 1) if torch.cuda.is_available() else 0
    return int(setting)


# ------------------------------------------------------------------ model


def class_weights(labels: list[str], power: float) -> list[float] | None:
    """Loss weights (n / (k n_c)) ** power over the model's classes; None when power is 0.

    `other` holds several series types (DCE phases, T1, maps...) and outnumbers each target
    class about 3:1; unweighted, the loss pays for that share by sending target series to
    `other`. power 1 balances fully, 0.5 halfway (in log terms). Absent classes weigh 1."""
    if not power:
        return None
    from sklearn.utils.class_weight import compute_class_weight

    present = np.array([c for c in MODEL_CLASSES if c in set(labels)])
    weights = compute_class_weight("balanced", classes=present, y=labels)
    balanced = dict(zip(present, weights, strict=True))
    return [round(float(balanced.get(c, 1.0)) ** float(power), 6) for c in MODEL_CLASSES]


class SequenceClassifier(pl.LightningModule):
    """Cross-entropy classifier; the network is injected (built by mrseq.nets)."""

    def __init__(
        self,
        net: nn.Module,
        lr: float,
        weight_decay: float,
        epochs: int,
        label_smoothing: float = 0.0,
        class_weights: list[float] | None = None,
        batch_augment=None,
    ):
        super().__init__()
        self.net = net
        self.batch_augment = batch_augment  # training batches only (mrseq.augment)
        self.save_hyperparameters(ignore=["net", "batch_augment"])
        weight = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
        self.loss = nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """The whole-batch augmentation, on the batch's device (a GPU when training on one)."""
        if self.batch_augment is not None and self.trainer.training:
            x, y = batch
            return self.batch_augment(x), y
        return batch

    def _step(self, batch, stage: str):
        x, y = batch
        logits = self(x)
        loss = self.loss(logits, y)
        acc = (logits.argmax(1) == y).float().mean()
        on_step = stage == "train"
        self.log(f"{stage}/loss", loss, prog_bar=True, on_step=False, on_epoch=True)
        self.log(f"{stage}/acc", acc, prog_bar=not on_step, on_step=False, on_epoch=True)
        return loss

    def training_step(self, batch, _):
        return self._step(batch, "train")

    def validation_step(self, batch, _):
        self._step(batch, "val")

    def configure_optimizers(self):
        opt = torch.optim.AdamW(
            self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay
        )
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, self.hparams.epochs))
        return {"optimizer": opt, "lr_scheduler": sched}


# ------------------------------------------------------------------ the loop


class History(pl.Callback):
    """Per-epoch validation and training metrics (for the best-epoch report and a plot)."""

    def __init__(self):
        self.rows: list[dict] = []

    def on_validation_epoch_end(self, trainer, module) -> None:
        if trainer.sanity_checking:
            return
        row = {"epoch": trainer.current_epoch}
        row.update({k.replace("/", "_"): float(v) for k, v in trainer.callback_metrics.items()})
        self.rows.append(row)

    def best(self) -> dict:
        rows = [r for r in self.rows if "val_loss" in r]
        if not rows:
            return {}
        top = min(rows, key=lambda r: r["val_loss"])
        return {k: top[k] for k in ("epoch", "val_loss", "val_acc") if k in top}


def _loggers(cfg: dict, out_dir: Path, group: str | None, record: dict | None = None):
    """wandb, offline unless WANDB_MODE says otherwise; none when disabled. `record` is the
    run's configuration as wandb stores it."""
    mode = os.environ.setdefault("WANDB_MODE", "offline")
    if not cfg.get("wandb", True) or mode == "disabled":  # the key first: always read
        return False
    from pytorch_lightning.loggers import WandbLogger

    root = Path(os.environ.get("MRSEQ_WANDB_DIR", ".wandb")).resolve()
    for var in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
        os.environ.setdefault(var, str(root))
    root.mkdir(parents=True, exist_ok=True)
    return WandbLogger(project="mrseq", save_dir=str(root), group=group, config=record)


def train_model(
    cfg: dict,
    processed: str | os.PathLike,
    splits: dict,
    out_dir: str | os.PathLike,
    callbacks: list | None = None,
    group: str | None = None,
    synthetic: str | os.PathLike | None = None,
) -> dict:
    """Fit a model; returns the best validation metrics and the checkpoint path.

    cfg has `model` (depth, widths, conv1_stride) and `train` (epochs, batch_size, lr, ...);
    `synthetic` is an extra folder of training-only volumes (the synthesize stage).
    """
    from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

    t = cfg["train"]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = VolumeDataModule(processed, splits, t, synthetic)
    channels = data.channels
    # The effective configuration (params plus any sweep overrides) travels with the weights;
    # `as_plain` copies without counting as reads, so the params audit sees what is used.
    record = as_plain(cfg)
    record["model"]["in_channels"] = channels
    (out / CONFIG_JSON).write_text(json.dumps(record, indent=2))
    pl.seed_everything(int(t["seed"]), workers=True)
    # Both read on every machine (the params audit runs on CPUs).
    mixed, wants_gpu = bool(t["mixed_precision"]), t["accelerator"] in ("auto", "gpu")
    gpu = wants_gpu and torch.cuda.is_available()
    model = SequenceClassifier(
        build_net_from_params(cfg["model"], in_channels=channels),
        float(t["lr"]),
        float(t["weight_decay"]),
        int(t["epochs"]),
        float(t["label_smoothing"]),
        class_weights(data.train_labels(), float(t.get("class_balance", 0.0))),
        build_batch_augment(float(t["augment_strength"]), int(t["seed"])),
    )
    best = ModelCheckpoint(
        dirpath=out,
        filename=Path(CHECKPOINT).stem,
        monitor="val/loss",
        mode="min",
        save_top_k=1,
        auto_insert_metric_name=False,
    )
    stop = EarlyStopping(monitor="val/loss", mode="min", patience=int(t["patience"]))
    history = History()
    trainer = pl.Trainer(
        max_epochs=int(t["epochs"]),
        accelerator="gpu" if gpu else "cpu",
        devices=1,
        precision="16-mixed" if gpu and mixed else "32-true",
        deterministic="warn",
        callbacks=[best, stop, history, *(callbacks or [])],
        logger=_loggers(t, out, group, record),
        default_root_dir=str(out),
        enable_progress_bar=bool(t.get("progress_bar", True)),
        log_every_n_steps=1,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=data)
    pd.DataFrame(history.rows).to_csv(out / HISTORY_CSV, index=False)
    metrics = {
        "best_checkpoint": str(best.best_model_path),
        "best_val_loss": float(best.best_model_score)
        if best.best_model_score is not None
        else None,
        "best": history.best(),
        "epochs_run": len(history.rows),
        "stopped_early": bool(stop.stopped_epoch),
    }
    (out / "train_metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def load_classifier(checkpoint: str | os.PathLike, model_params: dict) -> SequenceClassifier:
    net = build_net_from_params(model_params)
    model = SequenceClassifier.load_from_checkpoint(checkpoint, net=net, map_location="cpu")
    return model.eval()
