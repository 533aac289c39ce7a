"""bench/fit_ceiling.py: the per-class, per-b-value and per-subtype tables the README cites."""

import numpy as np
import pandas as pd
import pytest

from helpers import bench_script


@pytest.fixture(scope="module")
def fit():
    return bench_script("fit_ceiling")


def rows():
    return pd.DataFrame(
        {
            "label": ["DWI_Low", "DWI_Low", "DWI_Low", "DWI_High", "other", "other", "T2WI_fs"],
            "true_b_value": [0, 100, 450, 1000, np.nan, np.nan, np.nan],
            "subtype": ["", "", "", "", "dce", "random_contrast", ""],
        }
    )


def test_summary_counts_sensitivity_per_class(fit):
    pred = np.array(["T2WI_fs", "DWI_Low", "DWI_Low", "DWI_High", "other", "T2WI_nan", "T2WI_fs"])
    s = fit.summary(rows(), pred)
    assert s["n"] == 7 and s["accuracy"] == round(5 / 7, 4)
    assert s["sensitivity"]["DWI_Low"] == round(2 / 3, 3)
    assert s["sensitivity"]["other"] == 0.5 and s["sensitivity"]["T2WI_fs"] == 1.0


def test_dwi_by_b_value_bins_and_names_the_wrong_answers(fit):
    pred = np.array(["T2WI_fs", "DWI_Low", "DWI_High", "DWI_High", "other", "other", "T2WI_fs"])
    table = fit.by_b_value(rows(), pred)
    assert [(r["label"], r["b"]) for r in table] == [
        ("DWI_High", "(900, 1200]"),
        ("DWI_Low", "(-1, 0]"),
        ("DWI_Low", "(50, 150]"),
        ("DWI_Low", "(400, 499]"),
    ]
    assert table[1] == {
        "label": "DWI_Low",
        "b": "(-1, 0]",
        "n": 1,
        "sensitivity": 0.0,
        "wrong": {"T2WI_fs": 1},
    }
    assert table[3]["wrong"] == {"DWI_High": 1}


def test_other_by_subtype(fit):
    pred = np.array(["DWI_Low"] * 4 + ["other", "T2WI_nan", "T2WI_fs"])
    assert fit.by_subtype(rows(), pred) == {
        "dce": {"n": 1, "kept_out": 1.0},
        "random_contrast": {"n": 1, "kept_out": 0.0},
    }


def test_low_b_by_quartile_counts_what_went_to_t2_fs(fit):
    d = pd.DataFrame(
        {
            "label": ["DWI_Low"] * 8 + ["DWI_Low"],
            "true_b_value": [0, 50, 100, 150, 0, 50, 100, 150, 800],
            "fat_residual": [0.01, 0.02, 0.03, 0.04, 0.1, 0.2, 0.3, 0.4, 0.5],
        }
    )
    pred = np.array(["T2WI_fs"] * 4 + ["DWI_Low"] * 3 + ["T2WI_fs", "DWI_Low"])
    table = fit.low_b_by(d, pred, "fat_residual")
    assert [r["n"] for r in table] == [2, 2, 2, 2]
    assert [r["as_T2WI_fs"] for r in table] == [2, 2, 0, 1]
    assert [r["sensitivity"] for r in table] == [0.0, 0.0, 1.0, 0.5]
