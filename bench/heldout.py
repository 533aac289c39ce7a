"""Leave-one-condition-out and representation ablation, on conditions held out of training.

For each condition (a vendor's conventions, 1.5 T, the extreme decile of fat-suppression
residual, the extreme decile of noise, b >= 2000), train without any volume of that condition
and test on that condition's volumes in the separately seeded benchmark cohort (patients never
trained on). For each representation variant (preprocess.intensity), train on everything and
test on the whole benchmark cohort. Every model is trained with the same reduced budget
(--epochs), so rows compare with each other, not with the full `make run` model.

Needs `make run` first (data/processed, data/interim, data/splits.json, data/benchmark).
Usage: python bench/heldout.py [--epochs 8] [--conditions all] [--variants percentile,log]
       [--synthetic data/synthetic --synthetic-patients 150]
Writes reports/heldout/heldout.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from mrseq import layout
from mrseq.evaluate import band_of, predict_table
from mrseq.export import export_model
from mrseq.metrics import confidence_auroc, wilson
from mrseq.predict import Predictor
from mrseq.preprocess import PreprocessSpec, preprocess_index
from mrseq.training import load_classifier, train_model

T2 = ("T2WI_nan", "T2WI_fs")
# Representation variants: overrides of the preprocess spec (see preprocess.PreprocessSpec).
VARIANTS = {
    "percentile": {"intensity": "percentile", "detail_spacing": None},
    "log": {"intensity": "log", "detail_spacing": None},
    "detail": {"intensity": "percentile", "detail_spacing": [0.625, 0.625, 4.0]},
}


def conditions(train: pd.DataFrame) -> dict:
    """name -> predicate over an index table; deciles come from the training cohort."""
    fs = train[train.label == "T2WI_fs"].fat_residual
    fs_cut = float(fs.quantile(0.9))
    t2 = train.label.isin(T2)
    snr_cut = {
        True: float(train[t2].snr.quantile(0.1)),
        False: float(train[~t2].snr.quantile(0.1)),
    }
    out = {
        f"vendor {v}": (lambda t, v=v: t.manufacturer == v)
        for v in sorted(train.manufacturer.unique())
    }
    out["1.5 T"] = lambda t: pd.to_numeric(t.field_strength) == 1.5
    out[f"fat residual >= {fs_cut:.2f} (T2WI_fs top decile)"] = lambda t: (
        (t.label == "T2WI_fs") & (t.fat_residual >= fs_cut)
    )
    out["noise: SNR in the lowest decile of its family"] = lambda t: (
        t.snr <= np.where(t.label.isin(T2), snr_cut[True], snr_cut[False])
    )
    out["b >= 2000"] = lambda t: pd.to_numeric(t.true_b_value, errors="coerce") >= 2000
    return out


def load_cfg(epochs: int) -> dict:
    effective = Path("models/train/config.json")  # params plus the sweep's winner
    if effective.is_file():
        cfg = json.loads(effective.read_text())
    else:
        params = yaml.safe_load(Path("params.yaml").read_text())
        cfg = {"model": params["model"], "train": params["train"]}
    cfg["train"].update(epochs=epochs, patience=epochs, wandb=False, progress_bar=False)
    return cfg


def fit_and_export(cfg, processed, splits, spec: PreprocessSpec, out: Path, synthetic=None) -> Path:
    result = train_model(cfg, processed, splits, out / "train", synthetic=synthetic)
    model_params = json.loads((out / "train" / layout.CONFIG_JSON).read_text())["model"]
    net = load_classifier(result["best_checkpoint"], model_params).net
    export_model(net, spec, out / "model", model_params, {}, {})
    return out / "model"


def score(pred: pd.DataFrame) -> dict:
    right = pred.label == pred.predicted
    est, low, high = wilson(int(right.sum()), len(pred))
    return {
        "n": len(pred),
        "accuracy": round(est, 4),
        "ci95": [round(low, 3), round(high, 3)],
        "confidence_auroc": confidence_auroc(pred.confidence, right),
    }


def without(synthetic: Path | None, keep, work: Path) -> tuple[Path | None, int]:
    """A synthetic folder (index + a link to the arrays) without the condition's volumes."""
    if synthetic is None:
        return None, 0
    index = pd.read_csv(synthetic / layout.INDEX_CSV)
    index["manufacturer"] = index["vendor"]  # what the condition predicates read
    out = work / "synthetic"
    out.mkdir(parents=True)
    (out / layout.ARRAYS_DIR).symlink_to((synthetic / layout.ARRAYS_DIR).resolve())
    shutil.copy(synthetic / layout.SPEC_JSON, out / layout.SPEC_JSON)
    held = keep(index)
    index[~held].drop(columns="manufacturer").to_csv(out / layout.INDEX_CSV, index=False)
    return out, int(held.sum())


def synthesized(
    spec: PreprocessSpec, out: Path, patients: int | None = None, seed: int | None = None
) -> Path:
    """A synthetic training set in `spec` with params.yaml's synthesize settings, as the
    synthesize stage makes it (this costs what the stage costs); `patients` and `seed` default
    to the stage's own (bench/recipe.py passes its own)."""
    from mrseq.simulate.synth import synthesize_cohort

    p = yaml.safe_load(Path("params.yaml").read_text())
    s = p["synthesize"]
    min_pixel = min(float(s["min_pixel_mm"]), spec.finest_mm)  # as the synthesize stage does
    synthesize_cohort(
        out,
        int(s["patients"]) if patients is None else patients,
        int(s["seed"]) if seed is None else seed,
        spec,
        min_pixel=min_pixel,
        anatomy_step=float(s["anatomy_step_mm"]),
        scale=float(p["simulate"]["resolution_scale"]),
        workers=os.cpu_count() or 1,
        progress=False,
        skip=tuple(p["other"]["held_out"]),  # as the stage: the held-out type never trains
        random_contrast=float(s["random_contrast"]),
    )
    return out


def run_condition(name, keep, cfg, processed, splits, spec, bench, work, synthetic) -> dict:
    index = pd.read_csv(processed / layout.INDEX_CSV)
    drop = set(index[keep(index)].volume_id)
    reduced = {s: [v for v in ids if v not in drop] for s, ids in splits.items()}
    synthetic, dropped_synthetic = without(synthetic, keep, work)
    model = fit_and_export(cfg, processed, reduced, spec, work, synthetic)
    test = bench[keep(bench)]
    pred = predict_table(Predictor.from_dir(model), Path("data/benchmark/interim"), test, False)
    return {
        "condition": name,
        "dropped_from_training": len(drop) + dropped_synthetic,
        **score(pred),
    }


def run_variant(name, cfg, splits, base: PreprocessSpec, bench, work, wanted, synthetic) -> dict:
    spec = PreprocessSpec.from_dict({**base.to_dict(), **VARIANTS[name]})
    processed = work / "processed"
    labelled = pd.read_csv("data/interim/labelled.csv")
    preprocess_index(labelled, Path("data/interim"), processed, spec, os.cpu_count() or 1, False)
    if synthetic is not None and spec != base:
        synthetic = synthesized(spec, work / "synthetic")
    model = fit_and_export(cfg, processed, splits, spec, work, synthetic)
    pred = predict_table(Predictor.from_dir(model), Path("data/benchmark/interim"), bench, False)
    band = band_of(pred)
    row = {"variant": name, "spec": VARIANTS[name], **score(pred)}
    row["outside 300-700"] = score(pred[band == "rest"])["accuracy"]
    row["b >= 2000"] = score(pred[pd.to_numeric(pred.true_b_value, errors="coerce") >= 2000])
    row["per_class_sensitivity"] = {
        c: round(float((g.predicted == c).mean()), 4) for c, g in pred.groupby("label")
    }
    # The control for leave-one-out: the same budget, trained WITH each condition.
    row["by_condition"] = {name: score(pred[keep(pred)]) for name, keep in wanted.items()}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument(
        "--conditions", default="all", help="'all', 'none' or names, comma-separated"
    )
    parser.add_argument(
        "--variants", default="percentile,log,detail", help=f"of {sorted(VARIANTS)}"
    )
    parser.add_argument("--out", default="reports/heldout")
    parser.add_argument(
        "--synthetic",
        default="",
        help="also train on this synthesize-stage folder (e.g. data/synthetic), dropping each "
        "held-out condition from it too; variants other than params.yaml's re-synthesise it",
    )
    parser.add_argument(
        "--synthetic-patients",
        type=int,
        default=0,
        help="train on only the first N synthetic patients (as the sweep's trials do; 0: all), "
        "so that the whole table fits a session: ~1.2 min an epoch for 150 on 2 cores",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    os.environ.setdefault("WANDB_MODE", "disabled")
    processed = Path("data/processed")
    splits = json.loads(Path("data/splits.json").read_text())
    params = yaml.safe_load(Path("params.yaml").read_text())["preprocess"]
    spec = PreprocessSpec.from_dict(params)
    bench = pd.read_csv("data/benchmark/interim/labelled.csv")
    cfg = load_cfg(args.epochs)
    if args.synthetic_patients:
        cfg["train"]["max_synthetic_patients"] = args.synthetic_patients
    synthetic = Path(args.synthetic) if args.synthetic else None
    index = pd.read_csv(processed / layout.INDEX_CSV)
    train_rows = index[index.volume_id.isin(set(splits["train"]))]
    wanted = every = conditions(train_rows)
    if args.conditions == "none":
        wanted = {}
    elif args.conditions != "all":
        names = args.conditions.split(",")
        wanted = {k: v for k, v in wanted.items() if any(n.lower() in k.lower() for n in names)}
    result = {
        "epochs": args.epochs,
        "synthetic": args.synthetic or None,
        "synthetic_patients": args.synthetic_patients or None,
        "train": {k: cfg["train"][k] for k in ("lr", "weight_decay", "augment_strength")},
        "date": time.strftime("%Y-%m-%d"),
        "conditions": [],
        "variants": [],
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in [v for v in args.variants.split(",") if v]:
        start = time.time()
        with tempfile.TemporaryDirectory() as work:
            row = run_variant(name, cfg, splits, spec, bench, Path(work), every, synthetic)
        row["seconds"] = round(time.time() - start)
        print(json.dumps(row), flush=True)
        result["variants"].append(row)
        (out / "heldout.json").write_text(json.dumps(result, indent=2))
    for name, keep in wanted.items():
        start = time.time()
        with tempfile.TemporaryDirectory() as work:
            row = run_condition(
                name, keep, cfg, processed, splits, spec, bench, Path(work), synthetic
            )
        row["seconds"] = round(time.time() - start)
        print(json.dumps(row), flush=True)
        result["conditions"].append(row)
        (out / "heldout.json").write_text(json.dumps(result, indent=2))
    print_tables(result)


def markdown(header: list[str], rows: list[list]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(str(c) for c in line) + " |" for line in lines)


def interval(r: dict) -> str:
    return f"{r['accuracy']:.3f} ({r['ci95'][0]:.2f}-{r['ci95'][1]:.2f})"


def print_tables(result: dict) -> None:
    control = result["variants"][0]["by_condition"] if result["variants"] else {}
    rows = [
        [
            r["condition"],
            r["dropped_from_training"],
            r["n"],
            interval(r),
            interval(control[r["condition"]]) if r["condition"] in control else "-",
        ]
        for r in result["conditions"]
    ]
    header = ["held-out condition", "dropped from training", "n tested", "accuracy held out"]
    print(markdown([*header, "accuracy trained with it"], rows))
    rows = [
        [
            r["variant"],
            interval(r),
            f"{r['outside 300-700']:.3f}",
            f"{r['b >= 2000']['accuracy']:.3f} (n={r['b >= 2000']['n']})",
            r["confidence_auroc"],
        ]
        for r in result["variants"]
    ]
    header = ["intensity", "benchmark accuracy", "outside 300-700", "b >= 2000", "conf. AUROC"]
    print("\n" + markdown(header, rows))


if __name__ == "__main__":
    main()
