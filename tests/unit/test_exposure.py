"""Outlier exposure: random-contrast `other` series for training only."""

from __future__ import annotations

import numpy as np

from mrseq.preprocess import PreprocessSpec
from mrseq.sequences import OTHER
from mrseq.simulate.exposure import SUBTYPE, random_values, signatures, too_close
from mrseq.simulate.physics import Tissues
from mrseq.simulate.synth import synthesize_patient

SPEC = PreprocessSpec(spacing=(6.0, 6.0, 8.0), shape=(16, 16, 8))


def test_every_target_signature_counts_as_too_close():
    tis = Tissues(np.random.default_rng(1), 3.0)
    for name, values in signatures(tis).items():
        assert too_close(values, [values]), name


def test_random_values_never_mimic_a_target_and_a_map_only_avoids_adc():
    rng = np.random.default_rng(2)
    tis = Tissues(rng, 1.5)
    targets = signatures(tis)
    for _ in range(30):
        assert not too_close(random_values(rng, tis, False), list(targets.values()))
        assert not too_close(random_values(rng, tis, True), [targets["ADC"]])


def test_exposure_series_come_last_labelled_other_and_change_nothing_else():
    for index in range(4):
        plain = synthesize_patient(7, index, SPEC, 2.0, 3.0, 0.3)
        exposed = synthesize_patient(7, index, SPEC, 2.0, 3.0, 0.3, random_contrast=3.0)
        n = len(plain.rows)
        assert [r["volume_id"] for r in exposed.rows[:n]] == [r["volume_id"] for r in plain.rows]
        for a, b in zip(plain.arrays, exposed.arrays[:n], strict=True):
            np.testing.assert_array_equal(a, b)
        extra = exposed.rows[n:]
        assert all(r["label"] == OTHER and r["subtype"] == SUBTYPE for r in extra)
        for array in exposed.arrays[n:]:
            assert np.isfinite(array).all() and array.max() > 0.5  # an image, not a blank
    again = synthesize_patient(7, 3, SPEC, 2.0, 3.0, 0.3, random_contrast=3.0)
    for a, b in zip(again.arrays, exposed.arrays, strict=True):
        np.testing.assert_array_equal(a, b)
