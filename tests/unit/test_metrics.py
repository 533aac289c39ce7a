import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    f1_score,
    precision_score,
    recall_score,
)

from mrseq import metrics

CLASSES = ["a", "b", "c"]


@pytest.fixture
def predictions():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    yhat = np.where(rng.random(200) < 0.8, y, rng.integers(0, 3, 200))
    return y, yhat


def test_per_class_matches_sklearn(predictions):
    y, yhat = predictions
    table = metrics.per_class(y, yhat, CLASSES, bootstrap=50)
    recall = recall_score(y, yhat, average=None)
    precision = precision_score(y, yhat, average=None)
    f1 = f1_score(y, yhat, average=None)
    for c, name in enumerate(CLASSES):
        row = table[name]
        assert row["sensitivity"]["value"] == pytest.approx(recall[c], abs=1e-4)
        assert row["ppv"]["value"] == pytest.approx(precision[c], abs=1e-4)
        assert row["f1"]["value"] == pytest.approx(f1[c], abs=1e-4)
        binary_t, binary_p = y == c, yhat == c
        assert row["specificity"]["value"] == pytest.approx(
            recall_score(~binary_t, ~binary_p), abs=1e-4
        )
        assert row["npv"]["value"] == pytest.approx(precision_score(~binary_t, ~binary_p), abs=1e-4)
        assert row["accuracy"]["value"] == pytest.approx(
            accuracy_score(binary_t, binary_p), abs=1e-4
        )
        assert row["kappa"]["value"] == pytest.approx(
            cohen_kappa_score(binary_t, binary_p), abs=1e-4
        )
        low, high = row["f1"]["ci95"]
        assert low <= row["f1"]["value"] <= high


def test_overall_matches_sklearn(predictions):
    y, yhat = predictions
    out = metrics.overall(y, yhat, 3, bootstrap=50)
    assert out["accuracy"]["value"] == pytest.approx(accuracy_score(y, yhat), abs=1e-4)
    assert out["kappa"]["value"] == pytest.approx(cohen_kappa_score(y, yhat), abs=1e-4)


def test_wilson_interval_known_value():
    # 8/10: Wilson 95 % interval is (0.4902, 0.9433)
    p, low, high = metrics.wilson(8, 10)
    assert (
        p == 0.8
        and low == pytest.approx(0.4902, abs=1e-3)
        and high == pytest.approx(0.9433, abs=1e-3)
    )
    assert metrics.wilson(10, 10)[2] == pytest.approx(1.0)


def test_fixed_confusion_matrix():
    m = np.array([[5, 1, 0], [0, 4, 0], [1, 0, 3]])
    y = np.repeat([0, 0, 1, 2, 2], [5, 1, 4, 1, 3])
    yhat = np.array([0] * 5 + [1] + [1] * 4 + [0] + [2] * 3)
    np.testing.assert_array_equal(metrics.confusion(y, yhat, 3), m)
    assert metrics.cohen_kappa(y, yhat) == pytest.approx(cohen_kappa_score(y, yhat))
    assert metrics.cohen_kappa([1, 1, 1], [1, 1, 1]) == 1.0  # one class throughout: agreement


def test_calibration_error_zero_when_confidence_equals_accuracy():
    conf = np.array([0.95] * 20)
    correct = np.array([1] * 19 + [0])
    ece, table = metrics.expected_calibration_error(conf, correct)
    assert ece == pytest.approx(0.0, abs=1e-9) and table[0]["count"] == 20


def test_confidence_auroc_ranks_right_above_wrong():
    confidence = [0.9, 0.8, 0.7, 0.6, 0.5]
    assert metrics.confidence_auroc(confidence, [1, 1, 1, 0, 0]) == 1.0
    assert metrics.confidence_auroc(confidence, [0, 0, 1, 1, 1]) == 0.0
    assert metrics.confidence_auroc(confidence, [1, 1, 1, 1, 1]) is None


def test_temperature_scaling_fixes_overconfidence_without_changing_answers():
    import torch

    from mrseq.export import fit_temperature

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 2000)
    # logits that are right 70 % of the time but ~99 % confident: T must come out > 1
    wrong = rng.random(2000) > 0.7
    winner = np.where(wrong, (labels + 1) % 3, labels)
    logits = np.zeros((2000, 3))
    logits[np.arange(2000), winner] = 6.0
    t = fit_temperature(torch.tensor(logits, dtype=torch.float32), torch.tensor(labels))
    assert t > 2
    probs = torch.softmax(torch.tensor(logits) / t, 1).numpy()
    assert (probs.argmax(1) == winner).all()
    assert metrics.expected_calibration_error(probs.max(1), ~wrong)[0] < 0.03


def test_bands_split_dwi_near_the_boundary_from_the_rest():
    import pandas as pd

    from mrseq.evaluate import band_of

    table = pd.DataFrame(
        {
            "label": ["DWI_Low", "DWI_High", "DWI_High", "ADC", "T2WI_fs"],
            "b_value": [None, 550.0, 1400.0, None, None],
            "true_b_value": [400.0, 550.0, 1400.0, None, None],
        }
    )
    assert list(band_of(table)) == ["b300-700", "b300-700", "rest", "rest", "rest"]
