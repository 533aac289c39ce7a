"""Series that are none of the five classes, as a real prostate study also holds them.

Localisers, T1-weighted TSE, DCE (a T1 gradient echo before and after gadolinium, its phases
as temporal positions of one series or one series each), post-contrast fat-suppressed T1,
subtraction (a late phase minus the pre-contrast one), exponential ADC and T2 maps. They are
drawn from their own generator and rendered after the target series, so adding them leaves
every target image of a patient unchanged.
"""

from __future__ import annotations

import numpy as np

from mrseq.simulate import physics
from mrseq.simulate.protocol import PLANE_P, PLANES, Grid, SeriesPlan, StudyPlan, _grid, t2_grid
from mrseq.simulate.ranges import draw
from mrseq.simulate.render import _acquire, _bias, _fat_residual, _motion, noise_sigma, project

SUBTYPES = ("localiser", "t1_tse", "dce", "t1_post_fs", "subtraction", "eadc", "t2_map")
# Chance that a study holds each (subtraction and eADC need a DCE or a diffusion series).
STUDY_P = {
    "localiser": 0.7,
    "t1_tse": 0.4,
    "dce": 0.45,
    "t1_post_fs": 0.25,
    "subtraction": 0.5,
    "eadc": 0.25,
    "t2_map": 0.15,
}


def gre_grid(rng, scale: float, plane: str = "axial") -> Grid:
    fov = rng.uniform(180, 360)
    thick = float(draw(rng, "gre_thickness"))
    n = int(rng.integers(12, 41))
    return _grid(rng, plane, float(draw(rng, "gre_pixel")), fov, (96, 256, 320), n, thick, scale)


def _localisers(rng, scale: float) -> list[SeriesPlan]:
    """A 3-plane localiser: one series per plane, 1-7 thick slices on a large field."""
    out = []
    for plane in PLANES:
        n = int(rng.choice([1, 3, 5, 7], p=[0.3, 0.4, 0.2, 0.1]))
        grid = _grid(
            rng,
            plane,
            rng.uniform(1.2, 2.5),
            rng.uniform(260, 420),
            (96, 256, 512),
            n,
            rng.uniform(5, 10),
            scale,
        )
        out.append(
            SeriesPlan(
                "localiser",
                grid,
                tr=rng.uniform(4, 9),
                te=rng.uniform(1.5, 4),
                flip=rng.uniform(15, 40),
                phases=[-1.0],
            )
        )
    return out


def _gre(rng, kind: str, phases: list[float], fs: str | None, scale: float) -> SeriesPlan:
    plane = "axial" if rng.random() < 0.85 else str(rng.choice(PLANES[1:]))
    return SeriesPlan(
        kind,
        gre_grid(rng, scale, plane),
        fs=fs,
        tr=float(draw(rng, "gre_tr")),
        te=float(draw(rng, "gre_te")),
        flip=float(draw(rng, "gre_flip")),
        phases=phases,
        one_series=rng.random() < 0.6,
    )


def _dce_phases(rng) -> list[float]:
    """Pre-contrast, then 1-3 phases anywhere in the first five minutes (s after injection)."""
    return [-1.0, *sorted(float(t) for t in rng.uniform(15, 300, int(rng.integers(1, 4))))]


def plan_others(
    rng, study: StudyPlan, scale: float, skip: tuple[str, ...] = ()
) -> list[SeriesPlan]:
    """Non-target series for a study; `skip` leaves subtypes out (a held-out type in training)."""

    def wanted(kind: str) -> bool:
        return rng.random() < STUDY_P[kind] and kind not in skip

    plans: list[SeriesPlan] = []
    if wanted("localiser"):
        plans += _localisers(rng, scale)
    if wanted("t1_tse"):
        plane = str(rng.choice(PLANES, p=PLANE_P))
        fs = "spair" if rng.random() < 0.15 else None
        plans.append(
            SeriesPlan(
                "t1_tse",
                t2_grid(rng, plane, scale),
                fs=fs,
                tr=float(draw(rng, "t1_tr")),
                te=float(draw(rng, "t1_te")),
            )
        )
    if wanted("dce"):
        dce = _gre(rng, "dce", _dce_phases(rng), "spair" if rng.random() < 0.6 else None, scale)
        dce.drawn["subtraction"] = wanted("subtraction")
        plans.append(dce)
    if wanted("t1_post_fs"):
        plans.append(_gre(rng, "t1_post_fs", [rng.uniform(300, 900)], "spair", scale))
    dwi = [p for p in study.series if p.kind == "dwi"]
    if dwi and wanted("eadc"):
        dwi[0].eadc = float(rng.choice([1000.0, max(dwi[0].acquired_b)]))
    if wanted("t2_map"):
        plane = str(rng.choice(PLANES, p=PLANE_P))
        plans.append(
            SeriesPlan(
                "t2_map",
                t2_grid(rng, plane, scale),
                tr=rng.uniform(1000, 3000),
                te=rng.uniform(10, 15),
            )
        )
    return plans


def _snr(rng, study: StudyPlan, plan: SeriesPlan) -> float:
    snr = float(draw(rng, "other_snr")) * (0.6 if study.field < 2 else 1.0)
    plan.drawn["snr"] = snr
    return snr


def _acquired(rng, study, patient, plan: SeriesPlan, clean: list[np.ndarray]) -> list[np.ndarray]:
    """Bias, noise and k-space for each clean image of one acquisition (one noise level)."""
    grid = plan.grid
    bias = _bias(rng, study, patient, grid)
    sigma = noise_sigma(clean[0] * bias, _snr(rng, study, plan) * grid.snr_gain)
    window, motion = float(draw(rng, "apodisation")), _motion(rng)
    return [_acquire(rng, image * bias, grid, sigma, window, motion) for image in clean]


def render_t1(rng, study: StudyPlan, patient, tis: physics.Tissues, plan: SeriesPlan):
    """Every phase of a T1-weighted series: TSE, or a spoiled gradient echo at the phase's
    gadolinium concentration (a negative time is before injection)."""
    columns = []
    for seconds in plan.phases or [-1.0]:
        if plan.kind == "t1_tse":
            water, fat = physics.spin_echo(tis, plan.tr, plan.te)
        else:
            conc = physics.gd_concentration(rng, seconds) if seconds >= 0 else 0.0
            t1 = physics.enhanced_t1(tis.t1, conc)
            water, fat = physics.spoiled_gre(tis, plan.tr, plan.te, plan.flip, t1)
        columns += [water, fat]
    maps = project(patient, plan.grid, np.stack(columns, axis=1))
    residual = _fat_residual(rng, plan, patient, plan.grid)
    clean = [maps[..., 2 * i] + maps[..., 2 * i + 1] * residual for i in range(len(columns) // 2)]
    return _acquired(rng, study, patient, plan, clean)


def render_t2_map(rng, study: StudyPlan, patient, tis: physics.Tissues, plan: SeriesPlan):
    """A fitted T2 map in ms, clipped at a vendor maximum."""
    weight = tis.pd * (1 - tis.ff)
    return fitted_map(
        rng, study, patient, plan, tis.t2, weight, lambda r: float(draw(r, "t2_map_max"))
    )


def fitted_map(rng, study, patient, plan: SeriesPlan, quantity, weight, clip) -> np.ndarray:
    """A per-tissue `quantity` as a scanner's fit stores it: the `weight`-weighted mean of each
    voxel, fit noise that grows where signal is low, the background zeroed, clipped at
    `clip(rng)`, through the scanner's zero filling (no coil bias: a fit divides it out)."""
    maps = project(patient, plan.grid, np.stack([weight * quantity, weight], axis=1))
    pd = np.maximum(maps[..., 1], 1e-6)
    value = maps[..., 0] / pd
    snr = _snr(rng, study, plan)
    relative = pd / max(float(np.percentile(pd, 99)), 1e-6)
    value = value * (
        1 + rng.standard_normal(value.shape).astype(np.float32) / (snr * np.maximum(relative, 0.05))
    )
    value = np.clip(value, 0, clip(rng))
    value[relative < rng.uniform(0.03, 0.15)] = 0.0
    recon = physics.from_kspace(physics.to_kspace(value), plan.grid.recon)  # scanner zero filling
    return np.abs(recon)
