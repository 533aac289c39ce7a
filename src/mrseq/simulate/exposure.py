"""Outlier exposure: training-only `other` series of random, physics-violating contrast.

The held-out T2 maps showed that the net maps an unseen series type onto the nearest target
class: it learned "which of the five is closest", not "obeys one of the five signatures".
As SynthSeg does with random contrasts, each of these series gives every tissue a random
value and renders it either as a magnitude image (the scanner's bias, noise and k-space, like
any acquired series) or as a fitted quantitative map (background zeroed, no coil bias, fit
noise where signal is low, clipped, stored in integer units), so `other` covers "anything that
is not one of the five physics" rather than a list of known series types.

A draw whose tissue order matches one of the patient's own target signatures (Spearman rho
above RHO_MAX over the tissues that fill the image) is drawn again: it would be label noise
against a target class. A map is compared with the ADC signature only: a quantitative map
that is not an ADC map is `other` by the label's definition.

Drawn from their own generator and only by the synthesize stage: the DICOM cohorts
(validation, test, benchmark) hold only real series types, so no figure is measured on them.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

from mrseq.simulate import physics
from mrseq.simulate.anatomy import TISSUES
from mrseq.simulate.other import _acquired, fitted_map, gre_grid
from mrseq.simulate.protocol import PLANE_P, PLANES, SeriesPlan, StudyPlan, dwi_grid, t2_grid
from mrseq.simulate.render import project

SUBTYPE = "random_contrast"
# Tissues that fill a prostate field of view; small ones (vessels, cortex) barely show.
MAJOR = ("fat", "muscle", "marrow", "urine", "rectal_wall", "stool", "pz", "tz", "sv_fluid")
RHO_MAX = 0.7
MAP_SHARE = 0.4  # the rest are magnitude images


def exposure_rng(seed: int, index: int) -> np.random.Generator:
    """Their own generator: adding them leaves every other image of a patient unchanged."""
    return np.random.default_rng([seed, index, 3])


def signatures(tis: physics.Tissues) -> dict[str, np.ndarray]:
    """Per-tissue signal of each target class for this patient (typical protocols)."""
    water, fat = physics.spin_echo(tis, 4000.0, 100.0)
    epi_water, epi_fat = physics.spin_echo(tis, 4000.0, 80.0)
    b0 = epi_water + 0.02 * epi_fat  # diffusion is always fat suppressed
    return {
        "T2WI_nan": water + fat,
        "T2WI_fs": water + 0.02 * fat,
        "DWI_Low": physics.diffusion(tis, b0, 100.0),
        "DWI_High": physics.diffusion(tis, b0, 1000.0),
        "ADC": tis.adc,
    }


def _major(values: np.ndarray) -> np.ndarray:
    return np.asarray(values)[[TISSUES.index(t) for t in MAJOR]]


def too_close(values: np.ndarray, targets: list[np.ndarray]) -> bool:
    """True when the tissue order of `values` is that of any target signature."""
    v = _major(values)
    return any(spearmanr(v, _major(t)).statistic > RHO_MAX for t in targets)


def random_values(rng, tis: physics.Tissues, is_map: bool) -> np.ndarray:
    """Random per-tissue values in [0, 1] (a magnitude image's are scaled by proton density,
    so air and gas stay dark), redrawn while they mimic a target class."""
    targets = signatures(tis)
    compare = [targets["ADC"]] if is_map else list(targets.values())
    for _ in range(100):
        values = rng.uniform(0, 1, len(TISSUES)) ** rng.uniform(0.5, 3.0)
        if not is_map:
            values = tis.pd * values
        if not too_close(values, compare):
            return values
    raise RuntimeError("no random contrast unlike the targets in 100 draws")


def plan_random(rng, scale: float, rate: float) -> list[SeriesPlan]:
    """Poisson(rate) random-contrast series, on any target or gradient-echo grid."""
    plans = []
    for _ in range(int(rng.poisson(rate))):
        plane = str(rng.choice(PLANES, p=PLANE_P))
        pick = int(rng.integers(3))
        if pick == 0:
            grid = t2_grid(rng, plane, scale)
        elif pick == 1:
            grid = dwi_grid(rng, scale, plane)
        else:
            grid = gre_grid(rng, scale, plane)
        plan = SeriesPlan(SUBTYPE, grid)
        plan.drawn["map"] = bool(rng.random() < MAP_SHARE)
        plans.append(plan)
    return plans


def render_random(rng, study: StudyPlan, patient, tis: physics.Tissues, plan: SeriesPlan):
    """One random-contrast image: (image, quantitative)."""
    is_map = plan.drawn["map"]
    values = random_values(rng, tis, is_map)
    if not is_map:
        clean = project(patient, plan.grid, values[:, None].astype(np.float32))[..., 0]
        return _acquired(rng, study, patient, plan, [clean])[0], False
    top = float(np.exp(rng.uniform(np.log(100), np.log(4000))))  # the map's unit scale
    return fitted_map(rng, study, patient, plan, values * top, tis.pd, lambda _: top), True


def render_exposure(rng, study: StudyPlan, plans, patient, tis: physics.Tissues, writer) -> None:
    """Render the random-contrast series into `writer`, labelled `other`."""
    from mrseq.simulate import _write_other  # the package imports this module's users

    for plan in plans:
        image, quantitative = render_random(rng, study, patient, tis, plan)
        _write_other(writer, rng, plan, SUBTYPE, [image], quantitative=quantitative)
