"""The paper's metrics with 95 % confidence intervals, from maintained libraries.

Proportions (accuracy, sensitivity, specificity, PPV, NPV) get Wilson score intervals
(scipy's binomtest); F1 and kappa, which are not proportions, get percentile bootstrap
intervals over volumes (scipy.stats.bootstrap, paired); the statistics themselves are
scikit-learn's and calibration error is torchmetrics'.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats
from sklearn.metrics import cohen_kappa_score, confusion_matrix, f1_score, roc_auc_score

NAN = float("nan")


def wilson(successes: int, total: int) -> tuple[float, float, float]:
    """(estimate, low, high); NaN when total is 0."""
    if total == 0:
        return NAN, NAN, NAN
    ci = stats.binomtest(int(successes), int(total)).proportion_ci(0.95, method="wilson")
    return successes / total, float(ci.low), float(ci.high)


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows: truth, columns: prediction."""
    return confusion_matrix(y_true, y_pred, labels=list(range(n_classes)))


def cohen_kappa(y_true, y_pred) -> float:
    """Cohen's kappa; 1 when both raters give one and the same class throughout."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(np.unique(np.concatenate([y_true, y_pred]))) == 1:
        return 1.0
    return float(cohen_kappa_score(y_true, y_pred))


def _f1(y_true, y_pred) -> float:
    return float(f1_score(y_true, y_pred, zero_division=np.nan))


def _bootstrap(stat, y_true, y_pred, n: int, seed: int) -> tuple[float, float]:
    """Percentile interval of stat(y_true, y_pred) over volumes resampled in pairs."""
    if n < 1 or len(y_true) < 2:
        return NAN, NAN
    with warnings.catch_warnings():  # a degenerate resample is an answer, not a problem
        warnings.simplefilter("ignore")
        ci = stats.bootstrap(
            (y_true, y_pred),
            stat,
            paired=True,
            vectorized=False,
            n_resamples=n,
            method="percentile",
            random_state=np.random.default_rng(seed),
        ).confidence_interval
    return float(ci.low), float(ci.high)


def entry(estimate: float, interval: tuple[float, float]) -> dict:
    return {"value": round(float(estimate), 4), "ci95": [round(float(v), 4) for v in interval]}


def _one_vs_rest(m: np.ndarray, c: int) -> tuple[int, int, int, int]:
    tp = m[c, c]
    fn = m[c].sum() - tp
    fp = m[:, c].sum() - tp
    tn = m.sum() - tp - fn - fp
    return int(tp), int(fp), int(fn), int(tn)


def per_class(y_true, y_pred, classes: list[str], bootstrap: int = 1000, seed: int = 0) -> dict:
    """The paper's per-class table: one-vs-rest metrics with CIs."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    m = confusion(y_true, y_pred, len(classes))
    out = {}
    for c, name in enumerate(classes):
        tp, fp, fn, tn = _one_vs_rest(m, c)
        row = {"support": tp + fn}
        for key, (num, den) in {
            "accuracy": (tp + tn, tp + tn + fp + fn),
            "sensitivity": (tp, tp + fn),
            "specificity": (tn, tn + fp),
            "ppv": (tp, tp + fp),
            "npv": (tn, tn + fn),
        }.items():
            est, low, high = wilson(num, den)
            row[key] = entry(est, (low, high))
        truth, said = y_true == c, y_pred == c
        for key, stat in (("f1", _f1), ("kappa", cohen_kappa)):
            row[key] = entry(stat(truth, said), _bootstrap(stat, truth, said, bootstrap, seed))
        out[name] = row
    return out


def overall(y_true, y_pred, n_classes: int, bootstrap: int = 1000, seed: int = 0) -> dict:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    right = int((y_true == y_pred).sum())
    est, low, high = wilson(right, len(y_true))
    interval = _bootstrap(cohen_kappa, y_true, y_pred, bootstrap, seed)
    kappa = entry(cohen_kappa(y_true, y_pred), interval)
    return {"n": len(y_true), "accuracy": entry(est, (low, high)), "kappa": kappa}


def expected_calibration_error(confidence, correct, bins: int = 10) -> tuple[float, list[dict]]:
    """ECE (torchmetrics, top-label, L1) and the reliability table for the plot (per bin:
    mean confidence, accuracy, count)."""
    import torch
    from torchmetrics.functional.classification import binary_calibration_error

    confidence, correct = np.array(confidence, float), np.array(correct, float)  # own copies
    if not len(confidence):
        return NAN, []
    ece = binary_calibration_error(
        torch.as_tensor(confidence, dtype=torch.float32),
        torch.as_tensor(correct, dtype=torch.long),
        n_bins=bins,
        norm="l1",
    )
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=False), 0, bins - 1)
    table = [
        {
            "bin_low": round(float(edges[b]), 2),
            "bin_high": round(float(edges[b + 1]), 2),
            "confidence": float(confidence[which == b].mean()),
            "accuracy": float(correct[which == b].mean()),
            "count": int((which == b).sum()),
        }
        for b in range(bins)
        if (which == b).any()
    ]
    return float(ece), table


def confidence_auroc(confidence, correct) -> float | None:
    """AUROC of confidence for telling right answers from wrong ones (None if all one kind)."""
    correct = np.asarray(correct, bool)
    if correct.all() or not correct.any():
        return None
    return round(float(roc_auc_score(correct, np.asarray(confidence, float))), 4)
