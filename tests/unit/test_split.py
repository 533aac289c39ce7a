import pandas as pd
import pytest

from mrseq.sequences import CLASSES
from mrseq.split import split_patients


def index(n_patients=60):
    rows = []
    for p in range(n_patients):
        for c in CLASSES[: 2 + p % 4]:
            rows.append({"volume_id": f"v{p}_{c}", "patient_id": f"p{p}", "label": c})
    return pd.DataFrame(rows)


def test_no_patient_in_two_splits_and_every_volume_once():
    table = index()
    splits = split_patients(table, seed=3)
    owner = table.set_index("volume_id").patient_id
    patients = {k: set(owner[v]) for k, v in splits.items()}
    assert not patients["train"] & patients["val"]
    assert not patients["train"] & patients["test"]
    assert not patients["val"] & patients["test"]
    assert sorted(sum(splits.values(), [])) == sorted(table.volume_id)


def test_roughly_eight_one_one_and_stratified():
    table = index(100)
    splits = split_patients(table, seed=0)
    n = len(table)
    assert len(splits["train"]) / n == pytest.approx(0.8, abs=0.05)
    assert len(splits["test"]) / n == pytest.approx(0.1, abs=0.04)
    test = table[table.volume_id.isin(splits["test"])]
    assert set(test.label) == set(CLASSES)


def test_seeded():
    assert split_patients(index(), seed=1) == split_patients(index(), seed=1)
    assert split_patients(index(), seed=1) != split_patients(index(), seed=2)


def test_bad_fractions_and_too_few_patients():
    with pytest.raises(ValueError, match="sum to 1"):
        split_patients(index(), (0.5, 0.1, 0.1))
    with pytest.raises(ValueError, match="at least"):
        split_patients(index(4))
