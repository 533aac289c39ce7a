"""bench/adc_evidence.py: the logistic fit behind mrseq.predict.ADC_EVIDENCE."""

import numpy as np
import pandas as pd

from helpers import bench_script
from mrseq import predict


def test_the_fit_gives_a_likelihood_ratio_that_rises_with_rho(monkeypatch):
    adc_evidence = bench_script("adc_evidence")
    rng = np.random.default_rng(0)
    rho = np.concatenate([rng.uniform(0.5, 1.0, 30), rng.uniform(-1.0, 0.6, 20)])
    rows = pd.DataFrame({"label": ["ADC"] * 30 + ["other"] * 20, "rho": rho})
    fitted = adc_evidence.fit(rows)
    assert fitted["slope"] > 0
    assert fitted["base_log_odds"] == round(float(np.log(30 / 20)), 3)
    monkeypatch.setattr(predict, "ADC_EVIDENCE", fitted)
    assert predict.adc_likelihood_ratio(0.95) > 1 > predict.adc_likelihood_ratio(-0.5)
