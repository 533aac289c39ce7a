"""Training-recipe ablation: what buys accuracy on patients the net never saw, per CPU-minute.

Synthesises a training set and a separately seeded test set straight to the model grid (the
synthesize stage's code and settings from params.yaml), then trains the params.yaml net with
each variant for the same epochs, testing on the held-out patients after every epoch (the
outlier-exposure series are left out of the test: no DICOM cohort has them). Prints one row per
variant: mean test accuracy over the last five epochs, final training accuracy, seconds per
epoch. Results land in bench/out/recipe.json.

Also per variant (mean of the last five epochs): the share of target test series answered
`other` (all of them, and those covering <= 60 mm: short coverage is a learned cue for `other`)
and the share of DWI_Low answered T2WI_fs, the largest error blocks of the benchmark.

A representation is tried with `--set preprocess.detail_spacing=[0.625,0.625,4.0]` (any
params.yaml key, YAML value): both cohorts are synthesised in it (their folders are named after
the preprocess settings), and the `coarse` variant trains on channel 0 alone of the very same
volumes, so `aug` against `coarse` is the second channel's worth and nothing else.

Usage: python bench/recipe.py [--train-patients 320] [--test-patients 60] [--epochs 20]
       [--variants aug,noaug,half,noaffine,cover,noblur,swa,coarse] [--train-from data/synthetic]
       [--set preprocess.detail_spacing=[0.625,0.625,4.0]] [--name recipe]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from torch import nn

# bench/heldout.py, this script's neighbour (python puts bench/ first on the path)
from heldout import synthesized
from mrseq import layout
from mrseq.augment import REPLACED, BatchAugment
from mrseq.nets import build_net_from_params
from mrseq.params import get_dotted
from mrseq.preprocess import PreprocessSpec
from mrseq.sequences import MODEL_CLASSES
from mrseq.training import build_augment, class_weights
from mrseq.tuning import apply_overrides

OUT = Path("bench/out")
# name: (transforms left out of build_augment's set, None for no augmentation; share of data);
# "+coverage" adds the coverage window instead (off in the default recipe since 2026-12-05)
VARIANTS = {
    "noaug": (None, 1.0),
    "half": (None, 0.5),
    "aug": ((), 1.0),
    "cover": (("+coverage",), 1.0),  # with the coverage window (train.coverage_window: 0.5)
    "noaffine": (("RandAffine",), 1.0),
    "noblur": (("RandSimulateLowResolution", "RandGaussianSmooth"), 1.0),
    "swa": ((), 1.0),  # the default augmentation, weights averaged over the last epochs
    "coarse": ((), 1.0),  # the default augmentation on channel 0 (the model grid) alone
}
# Stochastic weight averaging (Izmailov et al., 2018; torch.optim.swa_utils): the same schedule,
# the weights averaged every SWA_EVERY steps over the last SWA_EPOCHS epochs, batch-norm
# statistics recomputed on the unaugmented training volumes; the average is what is tested.
SWA_EPOCHS, SWA_EVERY = 3, 50


def cohort(folder: Path, patients: int, seed: int, params: dict) -> Path:
    """The synthesize stage's volumes for `patients` patients from `seed` (made once, reused)."""
    if not (folder / layout.INDEX_CSV).exists():
        synthesized(PreprocessSpec.from_dict(params["preprocess"]), folder, patients, seed)
    return folder


def override(params: dict, settings: list[str]) -> dict:
    """A copy of params with each `section.key=value` (value parsed as YAML) applied."""
    pairs = dict(setting.partition("=")[::2] for setting in settings)
    for key in pairs:
        get_dotted(params, key)  # an unknown key is a KeyError, not a silent new setting
    return apply_overrides(params, {k: yaml.safe_load(v) for k, v in pairs.items()})


def spec_tag(params: dict, base: dict) -> str:
    """'' for params.yaml's own preprocessing, else a short digest of the settings used."""
    if params["preprocess"] == base["preprocess"]:
        return ""
    text = json.dumps(params["preprocess"], sort_keys=True)
    return "_" + hashlib.sha1(text.encode()).hexdigest()[:8]


def load(folder: Path, test: bool, share: float = 1.0, patients: int | None = None):
    """`patients`: the first that many of the folder (a synthesize stage output made with the
    same seed and settings holds the very volumes `cohort` would make)."""
    index = pd.read_csv(folder / layout.INDEX_CSV)
    if patients is not None:
        index = index[index.patient_id.isin(sorted(index.patient_id.unique())[:patients])]
    if test:
        index = index[index.subtype.fillna("") != "random_contrast"]
    index = index.iloc[: int(len(index) * share)]
    x = np.stack([np.load(folder / f) for f in index.array])
    return index, x, np.array([MODEL_CLASSES.index(v) for v in index.label])


def augmenter(drop: tuple[str, ...] | None, strength: float):
    """(per-volume MONAI Compose, whole-batch stage) without the transforms named in `drop`;
    (None, None) for no augmentation."""
    from monai.transforms import Compose

    if drop is None:
        return None, None
    full = build_augment(strength, coverage=0.5 if "+coverage" in drop else 0.0)
    per_volume = Compose([t for t in full.transforms if type(t).__name__ not in drop])
    per_volume.set_random_state(seed=0)
    return per_volume, BatchAugment(strength, seed=0, skip=tuple(set(drop) & set(REPLACED)))


SCORES = ("test_acc", "target_to_other", "short_to_other", "dwi_low_as_t2_fs")
SHORT_MM = 60.0  # a series covering no more than this along some axis counts as short


def short(x: np.ndarray, spacing: list[float]) -> np.ndarray:
    """Volumes whose series covers <= 60 mm along some axis of the model grid (beyond it is
    the preprocessing's zero padding): most non-target series are short, few targets are."""
    signal = np.abs(x[:, 0].astype(np.float32)) > 0
    extent = [
        signal.any(axis=tuple(a for a in (1, 2, 3) if a != axis)).sum(axis=1) * mm
        for axis, mm in zip((1, 2, 3), spacing, strict=True)
    ]
    return np.min(extent, axis=0) <= SHORT_MM


def scores(net, x, y, is_short) -> dict:
    """Accuracy, targets answered `other` (all, and those covering <= 60 mm), DWI_Low answered
    T2WI_fs."""
    net.eval()
    with torch.no_grad():
        pred = np.concatenate(
            [
                net(torch.from_numpy(x[i : i + 32].astype(np.float32))).argmax(1)
                for i in range(0, len(y), 32)
            ]
        )
    net.train()
    other, low, fs = (MODEL_CLASSES.index(c) for c in ("other", "DWI_Low", "T2WI_fs"))
    target_short = (y != other) & is_short
    return {
        "test_acc": float((pred == y).mean()),
        "target_to_other": float((pred[y != other] == other).mean()),
        "short_to_other": float((pred[target_short] == other).mean()),
        "dwi_low_as_t2_fs": float((pred[y == low] == fs).mean()),
    }


def tested(net, averaged, x) -> nn.Module:
    """The net, or once weights have been averaged the average with its batch-norm statistics
    recomputed on the (unaugmented) training volumes."""
    if averaged is None or int(averaged.n_averaged) == 0:
        return net
    batches = (torch.from_numpy(x[i : i + 32].astype(np.float32)) for i in range(0, len(x), 32))
    torch.optim.swa_utils.update_bn(batches, averaged)
    return averaged


def run(name: str, params: dict, train, test, epochs: int) -> dict:
    drop, share = VARIANTS[name]
    index, x, y = train
    if name == "coarse":
        x, test = x[:, :1], (test[0], test[1][:, :1], *test[2:])
    n = int(len(y) * share)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    t = params["train"]
    net = build_net_from_params(params["model"], in_channels=x.shape[1])
    aug, batch_aug = augmenter(drop, float(t["augment_strength"]))
    weight = torch.tensor(class_weights(list(index.label[:n]), float(t["class_balance"])))
    loss_fn = nn.CrossEntropyLoss(weight=weight, label_smoothing=float(t["label_smoothing"]))
    batch = int(t["batch_size"])
    opt = torch.optim.AdamW(
        net.parameters(), lr=float(t["lr"]), weight_decay=float(t["weight_decay"])
    )
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, float(t["lr"]), total_steps=epochs * (n // batch)
    )
    averaged = torch.optim.swa_utils.AveragedModel(net) if name == "swa" else None
    log = []
    for epoch in range(epochs):
        start, right = time.perf_counter(), 0
        order = rng.permutation(n)
        for step in range(n // batch):
            ids = order[step * batch : (step + 1) * batch]
            xs = [torch.from_numpy(x[i].astype(np.float32)) for i in ids]
            if aug is not None:
                xs = [torch.as_tensor(aug(v), dtype=torch.float32) for v in xs]
            inputs = torch.stack(xs)
            out = net(batch_aug(inputs) if batch_aug is not None else inputs)
            loss = loss_fn(out, torch.from_numpy(y[ids]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            right += int((out.argmax(1).numpy() == y[ids]).sum())
            if averaged is not None and epoch >= epochs - SWA_EPOCHS and step % SWA_EVERY == 0:
                averaged.update_parameters(net)
        seconds = time.perf_counter() - start
        row = {"epoch": epoch, "train_acc": right / (n // batch * batch), "seconds": seconds}
        row |= scores(tested(net, averaged, x[:n]), *test[1:])
        log.append(row)
        print(name, json.dumps({k: round(v, 3) for k, v in row.items()}), flush=True)
    last5 = {k: round(float(np.mean([r[k] for r in log[-5:]])), 4) for k in SCORES}
    return {
        "variant": name,
        "train_volumes": n,
        "test_acc_last5": last5["test_acc"],
        "last5": last5,
        "train_acc_final": round(log[-1]["train_acc"], 4),
        "seconds_per_epoch": round(float(np.median([r["seconds"] for r in log])), 1),
        "log": log,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train-patients", type=int, default=320)
    parser.add_argument("--test-patients", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--variants", default="aug,noaug,half,noaffine")
    parser.add_argument(
        "--train-from", help="a synthesize stage folder made with params.yaml: no re-synthesis"
    )
    parser.add_argument("--set", action="append", default=[], help="section.key=YAML value")
    parser.add_argument("--name", default="recipe", help="results land in bench/out/NAME.json")
    args = parser.parse_args()
    torch.set_num_threads(2)
    base = yaml.safe_load(Path("params.yaml").read_text())
    params = override(base, args.set)
    tag = spec_tag(params, base)
    if args.train_from and tag:
        raise SystemExit("--train-from holds params.yaml's preprocessing: drop it with --set")
    seed = int(params["synthesize"]["seed"])
    n = args.train_patients
    if args.train_from:
        train = load(Path(args.train_from), False, patients=n)
    else:
        train = load(cohort(OUT / f"recipe_train_{n}{tag}", n, seed, params), False)
    test = load(
        cohort(
            OUT / f"recipe_test_{args.test_patients}{tag}", args.test_patients, seed + 1000, params
        ),
        True,
    )
    test = (*test, short(test[1], params["preprocess"]["spacing"]))
    print(f"{len(train[2])} training volumes, {len(test[2])} test volumes")
    rows = [run(v, params, train, test, args.epochs) for v in args.variants.split(",")]
    OUT.mkdir(exist_ok=True)
    (OUT / f"{args.name}.json").write_text(json.dumps(rows, indent=2))
    print(
        f"{'variant':10} {'train vols':>10} {'test acc':>9} {'->other':>8} {'short->o':>8} "
        f"{'Low->fs':>8} {'train acc':>10} {'s/epoch':>8}"
    )
    for r in rows:
        print(
            f"{r['variant']:10} {r['train_volumes']:>10} {r['test_acc_last5']:>9.3f} "
            f"{r['last5']['target_to_other']:>8.3f} {r['last5']['short_to_other']:>8.3f} "
            f"{r['last5']['dwi_low_as_t2_fs']:>8.3f} "
            f"{r['train_acc_final']:>10.3f} {r['seconds_per_epoch']:>8.1f}"
        )


if __name__ == "__main__":
    main()
