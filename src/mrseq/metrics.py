"""The paper's metrics with 95 % confidence intervals.

Proportions (accuracy, sensitivity, specificity, PPV, NPV) get Wilson score intervals; F1 and
kappa, which are not proportions, get percentile bootstrap intervals over volumes.
"""

from __future__ import annotations

import numpy as np

Z95 = 1.959963984540054


def wilson(successes: int, total: int) -> tuple[float, float, float]:
    """(estimate, low, high); NaN when total is 0."""
    if total == 0:
        return (float("nan"),) * 3
    p = successes / total
    denom = 1 + Z95**2 / total
    centre = (p + Z95**2 / (2 * total)) / denom
    half = Z95 * np.sqrt(p * (1 - p) / total + Z95**2 / (4 * total**2)) / denom
    return p, max(0.0, centre - half), min(1.0, centre + half)


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows: truth, columns: prediction."""
    m = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(m, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return m


def cohen_kappa(m: np.ndarray) -> float:
    n = m.sum()
    if n == 0:
        return float("nan")
    observed = np.trace(m) / n
    expected = (m.sum(0) @ m.sum(1)) / n**2
    return float((observed - expected) / (1 - expected)) if expected < 1 else 1.0


def _one_vs_rest(m: np.ndarray, c: int) -> tuple[int, int, int, int]:
    tp = m[c, c]
    fn = m[c].sum() - tp
    fp = m[:, c].sum() - tp
    tn = m.sum() - tp - fn - fp
    return int(tp), int(fp), int(fn), int(tn)


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else float("nan")


def _binary_kappa(tp: int, fp: int, fn: int, tn: int) -> float:
    return cohen_kappa(np.array([[tp, fn], [fp, tn]]))


def _bootstrap(y_true, y_pred, n_classes, stat, n: int, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n):
        idx = rng.integers(0, len(y_true), len(y_true))
        values.append(stat(confusion(y_true[idx], y_pred[idx], n_classes)))
    values = np.array(values, dtype=float)
    values = values[~np.isnan(values)]
    if not len(values):
        return float("nan"), float("nan")
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def entry(estimate: float, interval: tuple[float, float]) -> dict:
    return {"value": round(float(estimate), 4), "ci95": [round(float(v), 4) for v in interval]}


def per_class(y_true, y_pred, classes: list[str], bootstrap: int = 1000, seed: int = 0) -> dict:
    """The paper's per-class table: one-vs-rest metrics with CIs."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    k = len(classes)
    m = confusion(y_true, y_pred, k)
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
        f1 = lambda mm, c=c: _f1(*_one_vs_rest(mm, c)[:3])  # noqa: E731
        kap = lambda mm, c=c: _binary_kappa(*_one_vs_rest(mm, c))  # noqa: E731
        row["f1"] = entry(f1(m), _bootstrap(y_true, y_pred, k, f1, bootstrap, seed))
        row["kappa"] = entry(kap(m), _bootstrap(y_true, y_pred, k, kap, bootstrap, seed))
        out[name] = row
    return out


def overall(y_true, y_pred, n_classes: int, bootstrap: int = 1000, seed: int = 0) -> dict:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    m = confusion(y_true, y_pred, n_classes)
    est, low, high = wilson(int(np.trace(m)), int(m.sum()))
    kappa = entry(
        cohen_kappa(m), _bootstrap(y_true, y_pred, n_classes, cohen_kappa, bootstrap, seed)
    )
    return {"n": int(m.sum()), "accuracy": entry(est, (low, high)), "kappa": kappa}


def expected_calibration_error(confidence, correct, bins: int = 10) -> tuple[float, list[dict]]:
    """ECE and the reliability table (per confidence bin: mean confidence, accuracy, count)."""
    confidence, correct = np.asarray(confidence, float), np.asarray(correct, float)
    edges = np.linspace(0, 1, bins + 1)
    table, ece = [], 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        inside = (confidence > lo) & (confidence <= hi)
        if not inside.any():
            continue
        conf, acc = confidence[inside].mean(), correct[inside].mean()
        ece += inside.mean() * abs(conf - acc)
        table.append(
            {
                "bin_low": round(lo, 2),
                "bin_high": round(hi, 2),
                "confidence": float(conf),
                "accuracy": float(acc),
                "count": int(inside.sum()),
            }
        )
    return float(ece), table


def confidence_auroc(confidence, correct) -> float | None:
    """AUROC of confidence for telling right answers from wrong ones (None if all one kind)."""
    from sklearn.metrics import roc_auc_score

    correct = np.asarray(correct, bool)
    if correct.all() or not correct.any():
        return None
    return round(float(roc_auc_score(correct, np.asarray(confidence, float))), 4)
