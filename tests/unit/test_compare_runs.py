"""bench/compare_runs.py: the paired counts and the two-run average the README cites."""

import numpy as np
import pandas as pd
import pytest

from helpers import bench_script
from mrseq.sequences import MODEL_CLASSES


@pytest.fixture(scope="module")
def compare():
    return bench_script("compare_runs")


def table(labels, probs):
    probs = np.asarray(probs, dtype=float)
    out = pd.DataFrame({"volume_id": [f"v{i}" for i in range(len(labels))], "label": labels})
    for i, name in enumerate(MODEL_CLASSES):
        out[f"p_{name}"] = probs[:, i]
    out["predicted"] = [MODEL_CLASSES[i] for i in probs.argmax(1)]
    out["answer"], out["confidence"], out["unknown_by"] = out["predicted"], probs.max(1), ""
    out["manufacturer"], out["field_strength"], out["plane"] = "X", 3.0, "axial"
    out["b_value"], out["subtype"] = np.nan, ""
    return out


def onehot(index, weight):
    p = np.full(len(MODEL_CLASSES), (1 - weight) / (len(MODEL_CLASSES) - 1))
    p[index] = weight
    return p


def test_paired_counts_and_average(compare):
    labels = ["T2WI_nan", "ADC", "other"]
    # a: right, wrong (DWI_High, barely), right; b: wrong (T2WI_fs, barely), right, right
    a = table(labels, [onehot(0, 0.9), onehot(3, 0.5), onehot(5, 0.9)])
    b = table(labels, [onehot(1, 0.5), onehot(4, 0.9), onehot(5, 0.9)])
    result = compare.paired(a, b)
    assert (result["right_only_under_a"], result["right_only_under_b"]) == (1, 1)
    assert result["sign_test_p"] == 1.0
    assert result["answers_agree"] == pytest.approx(1 / 3, abs=1e-3)
    mean = compare.averaged(a, b)
    assert list(mean.predicted) == labels  # each run's confident answer outweighs the other's
    assert compare.headline(mean, [])["accuracy"] == 1.0
    assert compare.headline(a, [])["accuracy"] == pytest.approx(2 / 3, abs=1e-3)


def test_tables_of_other_volumes_are_refused(compare, tmp_path):
    a = table(["ADC"], [onehot(4, 0.9)])
    b = a.assign(volume_id="w0")
    a.to_csv(tmp_path / "a.csv", index=False)
    b.to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(SystemExit, match="same labelled volumes"):
        compare.aligned(tmp_path / "a.csv", tmp_path / "b.csv")
