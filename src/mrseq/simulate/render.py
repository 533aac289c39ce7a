"""Render a planned series into reconstructed magnitude (or ADC) volumes."""

from __future__ import annotations

import numpy as np

from mrseq.simulate import physics
from mrseq.simulate.anatomy import Patient, mix, texture
from mrseq.simulate.protocol import Grid, SeriesPlan, StudyPlan

# Through-plane partial volume comes from the soft edge width, which follows the slice
# thickness; averaging sub-slices was measured to double the cost for little visible change.
SUBSLICES = (0.0,)


def project(patient: Patient, grid: Grid, vectors: np.ndarray) -> np.ndarray:
    """Per-voxel mix of per-tissue values: (acq, acq, slices, M) from vectors (tissues, M)."""
    d = grid.fov / grid.acq
    edge = 0.5 * max(d, grid.thickness / 2)
    out = np.zeros((grid.acq, grid.acq, grid.n_slices, vectors.shape[1]), dtype=np.float32)
    vectors = vectors.astype(np.float32)
    for offset in SUBSLICES:
        points = grid.points(offset * grid.thickness)
        for k in range(grid.n_slices):
            p = points[:, :, k].reshape(-1, 3)
            values = mix(patient, p, edge, vectors) * texture(patient, p)[:, None]
            out[:, :, k] += values.reshape(grid.acq, grid.acq, -1) / len(SUBSLICES)
    return out


def _distance_map(grid: Grid, where: np.ndarray) -> np.ndarray:
    return np.linalg.norm(grid.points(0.0) - where.astype(np.float32), axis=-1)


def _edge_map(grid: Grid) -> np.ndarray:
    """0 at the field's centre, ~1 at the edge of a 260 mm field (B0/B1 fall off)."""
    return np.linalg.norm(grid.points(0.0) - grid.centre.astype(np.float32), axis=-1) / 130.0


def noise_sigma(image: np.ndarray, snr: float) -> float:
    """Sigma giving `snr` in the image's bright foreground."""
    foreground = image[image > 0.2 * np.percentile(image, 99)]
    return float(np.median(foreground) if foreground.size else 1.0) / snr


def _acquire(
    rng, image: np.ndarray, grid: Grid, sigma: float, coils: int, window: float, motion: float
) -> np.ndarray:
    """Noise at the acquired resolution, then k-space filtering, motion and zero filling."""
    gfactor = 1 + np.abs(physics.smooth_field(rng, image.shape, 3, 0.3))
    phase = physics.motion_phase(rng, grid.acq, motion)
    power = np.zeros((grid.recon, grid.recon, grid.n_slices), dtype=np.float32)
    for _ in range(coils):
        noise = np.empty(image.shape, dtype=np.complex64)
        noise.real = rng.standard_normal(image.shape, dtype=np.float32)
        noise.imag = rng.standard_normal(image.shape, dtype=np.float32)
        channel = image / np.float32(np.sqrt(coils)) + np.float32(sigma) * gfactor * noise
        power += physics.reconstruct(channel, grid.recon, window, phase) ** 2
    return np.sqrt(power)


def _bias(rng, study: StudyPlan, patient: Patient, grid: Grid) -> np.ndarray:
    endorectal = _distance_map(grid, patient.gas_centre) if study.endorectal else None
    shape = (grid.acq, grid.acq, grid.n_slices)
    return physics.bias_field(rng, shape, study.field, endorectal)


def render_t2(
    rng, study: StudyPlan, patient: Patient, tis: physics.Tissues, plan: SeriesPlan
) -> np.ndarray:
    grid = plan.grid
    if plan.fs == "stir":
        ti = tis.fat_t1 * np.log(2) * rng.uniform(0.95, 1.05)
        image = project(patient, grid, physics.stir(tis, plan.tr, plan.te, ti)[:, None])[..., 0]
    else:
        water, fat = physics.spin_echo(tis, plan.tr, plan.te)
        maps = project(patient, grid, np.stack([water, fat], axis=1))
        image = maps[..., 0] + maps[..., 1] * _fat_residual(rng, plan.fs, patient, grid)
        if plan.fs == "dixon" and rng.random() < 0.1:
            image = _dixon_swap(rng, maps, grid)
    image *= _bias(rng, study, patient, grid)
    snr = rng.uniform(18, 45) * (0.6 if study.field < 2 else 1.0)
    return _acquire(
        rng,
        image,
        grid,
        noise_sigma(image, snr),
        coils=int(rng.choice([1, 2])),
        window=rng.uniform(0, 0.4),
        motion=rng.choice([0, 0, 0.02, 0.06]),
    )


def _fat_residual(rng, fs: str | None, patient: Patient, grid: Grid) -> np.ndarray | float:
    """Unsuppressed fat: 1. Spectral suppression fails near the field's edges and rectal gas."""
    if fs is None:
        return 1.0
    if fs == "dixon":
        return rng.uniform(0.02, 0.08)
    base = rng.uniform(0.03, 0.15)
    edge = rng.uniform(0.3, 0.9) * np.clip(_edge_map(grid) - 0.4, 0, None) ** 2 * 4
    gas = rng.uniform(0.2, 0.6) * np.exp(-_distance_map(grid, patient.gas_centre) / 15.0)
    return np.clip(base + edge + gas, 0, 1)


def _dixon_swap(rng, maps: np.ndarray, grid: Grid) -> np.ndarray:
    """A fat-water swap: in a smooth region the 'water' image shows fat."""
    swap = physics.smooth_field(rng, maps.shape[:3], 2, 1.0) > 1.2
    return np.where(swap, maps[..., 1] + 0.1 * maps[..., 0], maps[..., 0] + 0.03 * maps[..., 1])


def render_dwi(
    rng, study: StudyPlan, patient: Patient, tis: physics.Tissues, plan: SeriesPlan
) -> dict[str, np.ndarray | dict]:
    """Every acquired b image, the fitted ADC and (if planned) a calculated high-b image."""
    grid = plan.grid
    water, fat = physics.spin_echo(tis, plan.tr, plan.te)
    columns = [physics.diffusion(tis, water, b) for b in plan.acquired_b] + [fat]
    maps = project(patient, grid, np.stack(columns, axis=1))
    fat_residual = np.roll(maps[..., -1], int(rng.integers(2, 7)), axis=1) * rng.uniform(0.01, 0.06)
    shift = _epi_shift(rng, patient, grid)
    bias = _bias(rng, study, patient, grid)
    ghost = rng.uniform(0.005, 0.04)
    snr = rng.uniform(15, 30) * (0.6 if study.field < 2 else 1.0)
    coils, window = int(rng.choice([1, 2, 3])), rng.uniform(0.2, 0.6)
    # Noise is set by the unweighted (b=0) signal, so high-b images have the same sigma and
    # less SNR. The first acquired b is the lowest; undo its decay for a typical ADC.
    b0_scale = float(np.exp(plan.acquired_b[0] * 1.5e-3))
    sigma = noise_sigma(maps[..., 0] * bias, snr) * b0_scale
    images = {}
    for i, b in enumerate(plan.acquired_b):
        image = physics.epi_distortion((maps[..., i] + fat_residual) * bias, shift)
        image = physics.nyquist_ghost(image, ghost)
        images[b] = _acquire(rng, image, grid, sigma, coils, window, 0.0)
    return {"images": images, **_fit(plan, images)}


def _epi_shift(rng, patient: Patient, grid: Grid) -> np.ndarray:
    """Phase-encode displacement (pixels): smooth B0 error plus a strong one at rectal gas."""
    shape = (grid.acq, grid.acq, grid.n_slices)
    smooth = physics.smooth_field(rng, shape, 3, rng.uniform(0.5, 2.0))
    gas = np.exp(-((_distance_map(grid, patient.gas_centre) / 20.0) ** 2))
    return smooth + rng.uniform(1, 5) * gas * rng.choice([-1, 1])


def _fit(plan: SeriesPlan, images: dict[float, np.ndarray]) -> dict:
    s0, adc = physics.fit_adc(list(images.values()), list(images))
    out = {"adc": adc, "s0": s0}
    if plan.calc_b is not None:
        out["calc"] = s0 * np.exp(-plan.calc_b * adc)
    return out
