"""Render a planned series into reconstructed magnitude (or ADC) volumes.

Every nuisance is drawn from ranges.py at each call; the class-defining physics (T2 weighting,
fat suppressed or not, the diffusion weighting of each b-value, the ADC fit) is computed exactly.
"""

from __future__ import annotations

import numpy as np
import torch

from mrseq.simulate import physics
from mrseq.simulate.anatomy import Patient, mix, texture
from mrseq.simulate.protocol import Grid, SeriesPlan, StudyPlan
from mrseq.simulate.ranges import draw

# Anatomy is evaluated on a grid no finer than this (mm) and interpolated to the acquired
# matrix: tissue edges are soft over ~1 mm anyway (the sigmoid width follows the slice
# thickness), and evaluating shapes per voxel was half of the simulator's time. Noise, k-space
# filtering and zero filling still happen at the acquired and reconstructed resolution.
ANATOMY_STEP_MM = 1.1


def anatomy_points(grid: Grid) -> int:
    """In-plane samples at which to evaluate the anatomy (<= acq)."""
    d = grid.fov / grid.acq
    factor = max(1, int(round(max(ANATOMY_STEP_MM, grid.anatomy_step) / d)))
    return grid.acq if factor == 1 else int(np.ceil((grid.acq - 1) / factor)) + 1


def to_acquired(values: np.ndarray, acq: int) -> np.ndarray:
    """(n, n, slices, M) -> (acq, acq, slices, M), linear, first/last samples aligned."""
    if values.shape[0] == acq:
        return values
    t = torch.from_numpy(np.ascontiguousarray(values)).permute(2, 3, 0, 1)  # S, M, n, n
    up = torch.nn.functional.interpolate(t, size=(acq, acq), mode="bilinear", align_corners=True)
    return up.permute(2, 3, 0, 1).contiguous().numpy()


def project(patient: Patient, grid: Grid, vectors: np.ndarray) -> np.ndarray:
    """Per-voxel mix of per-tissue values: (acq, acq, slices, M) from vectors (tissues, M)."""
    d = grid.fov / grid.acq
    edge = 0.5 * max(d, grid.thickness / 2)
    n = anatomy_points(grid)
    vectors = vectors.astype(np.float32)
    out = np.zeros((n, n, grid.n_slices, vectors.shape[1]), dtype=np.float32)
    points = grid.points(0.0, n)
    for k in range(grid.n_slices):
        p = points[:, :, k].reshape(-1, 3)
        values = mix(patient, p, edge, vectors) * texture(patient, p)[:, None]
        out[:, :, k] = values.reshape(n, n, -1)
    return to_acquired(out, grid.acq)


def _distance_map(grid: Grid, where: np.ndarray) -> np.ndarray:
    n = anatomy_points(grid)
    d = np.linalg.norm(grid.points(0.0, n) - where.astype(np.float32), axis=-1)
    return to_acquired(d[..., None], grid.acq)[..., 0]


def _edge_map(grid: Grid) -> np.ndarray:
    """0 at the field's centre, ~1 at the edge of a 260 mm field (B0/B1 fall off)."""
    return _distance_map(grid, grid.centre) / 130.0


def noise_sigma(image: np.ndarray, snr: float) -> float:
    """Sigma giving `snr` in the image's bright foreground."""
    foreground = image[image > 0.2 * np.percentile(image, 99)]
    return float(np.median(foreground) if foreground.size else 1.0) / snr


def _spike(rng, grid: Grid) -> tuple[int, int, int, float] | None:
    if rng.random() >= 0.08:
        return None
    i, j = (int(v) for v in rng.integers(0, grid.acq, 2))
    return i, j, int(rng.integers(0, grid.n_slices)), 0.02 * float(draw(rng, "spike"))


def _acquire(rng, image: np.ndarray, grid: Grid, sigma: float, window: float, motion: float):
    """Signal and thermal noise through the same k-space filter and zero filling.

    Several receive channels combined by root-sum-of-squares give non-central chi noise (one
    channel: Rician), as on scanners; the g-factor map amplifies noise unevenly. Motion
    corrupts the object's phase-encode lines, not the noise (it is added at readout).
    """
    coils = int(round(float(draw(rng, "coils"))))
    phase = physics.motion_phase(rng, grid.acq, motion)
    k = physics.signal_kspace(image, window, phase, _spike(rng, grid))
    signal = physics.from_kspace(k, grid.recon) / np.float32(np.sqrt(coils))
    shape = (grid.recon, grid.recon, grid.n_slices)
    g = 1 + np.abs(physics.smooth_field(rng, shape, 3, float(draw(rng, "g_factor"))))
    scale = np.float32(sigma) * g
    power = np.zeros(shape, dtype=np.float32)
    for _ in range(coils):
        noise = physics.from_kspace(physics.noise_kspace(rng, image.shape, window), grid.recon)
        channel = signal + scale * noise
        power += channel.real**2 + channel.imag**2
    return np.sqrt(power)


def _bias(rng, study: StudyPlan, patient: Patient, grid: Grid) -> np.ndarray:
    endorectal = _distance_map(grid, patient.gas_centre) if study.endorectal else None
    shape = (grid.acq, grid.acq, grid.n_slices)
    return physics.bias_field(rng, shape, study.field, endorectal)


def _motion(rng) -> float:
    return float(draw(rng, "motion")) if rng.random() < 0.4 else 0.0


def render_t2(
    rng, study: StudyPlan, patient: Patient, tis: physics.Tissues, plan: SeriesPlan
) -> np.ndarray:
    grid = plan.grid
    if plan.fs == "stir":
        ti = tis.fat_t1 * np.log(2) * rng.uniform(0.95, 1.05)
        image = project(patient, grid, physics.stir(tis, plan.tr, plan.te, ti)[:, None])[..., 0]
        plan.drawn["fat_residual"] = 0.0
    else:
        water, fat = physics.spin_echo(tis, plan.tr, plan.te)
        maps = project(patient, grid, np.stack([water, fat], axis=1))
        residual = _fat_residual(rng, plan, patient, grid)
        image = maps[..., 0] + maps[..., 1] * residual
        if plan.fs == "dixon" and rng.random() < 0.1:
            image = _dixon_swap(rng, maps, grid)
    image *= _bias(rng, study, patient, grid)
    snr = float(draw(rng, "t2_snr")) * (0.6 if study.field < 2 else 1.0)
    plan.drawn["snr"] = snr
    window = float(draw(rng, "apodisation"))
    sigma = noise_sigma(image, snr * grid.snr_gain)
    return _acquire(rng, image, grid, sigma, window, _motion(rng))


def _fat_residual(rng, plan: SeriesPlan, patient: Patient, grid: Grid) -> np.ndarray | float:
    """Unsuppressed fat: 1. Spectral suppression fails near the field's edges and rectal gas."""
    if plan.fs is None:
        plan.drawn["fat_residual"] = 1.0
        return 1.0
    base = float(draw(rng, "fs_residual"))
    if plan.fs == "dixon":
        base = min(base, 0.1)
        plan.drawn["fat_residual"] = base
        return base
    plan.drawn["fat_residual"] = base
    edge = float(draw(rng, "fs_edge_fail")) * np.clip(_edge_map(grid) - 0.4, 0, None) ** 2 * 4
    gas = float(draw(rng, "fs_gas_fail")) * np.exp(-_distance_map(grid, patient.gas_centre) / 15.0)
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
    fat_level = float(draw(rng, "dwi_fat"))
    shift_px = int(round(float(draw(rng, "fat_shift_px"))))
    fat_residual = np.roll(maps[..., -1], shift_px, axis=1) * fat_level
    shift = _epi_shift(rng, patient, grid)
    bias = _bias(rng, study, patient, grid)
    ghost = float(draw(rng, "nyquist_ghost"))
    snr = float(draw(rng, "dwi_snr")) * (0.6 if study.field < 2 else 1.0)
    plan.drawn.update(snr=snr, fat_residual=fat_level)
    window = float(draw(rng, "apodisation"))
    # Noise is set by the unweighted (b=0) signal, so high-b images have the same sigma and
    # less SNR. The first acquired b is the lowest; undo its decay for a typical ADC.
    b0_scale = float(np.exp(plan.acquired_b[0] * 1.5e-3))
    sigma = noise_sigma(maps[..., 0] * bias, snr * grid.snr_gain) * b0_scale
    images = {}
    for i, b in enumerate(plan.acquired_b):
        image = physics.epi_distortion((maps[..., i] + fat_residual) * bias, shift)
        image = physics.nyquist_ghost(image, ghost)
        images[b] = _acquire(rng, image, grid, sigma, window, 0.0)
    return {"images": images, **_fit(rng, plan, images)}


def _epi_shift(rng, patient: Patient, grid: Grid) -> np.ndarray:
    """Phase-encode displacement (pixels): smooth B0 error plus a strong one at rectal gas."""
    shape = (grid.acq, grid.acq, grid.n_slices)
    smooth = physics.smooth_field(rng, shape, 3, float(draw(rng, "epi_shift_px")))
    gas = np.exp(-((_distance_map(grid, patient.gas_centre) / 20.0) ** 2))
    return smooth + float(draw(rng, "epi_gas_px")) * gas * rng.choice([-1, 1])


def _fit(rng, plan: SeriesPlan, images: dict[float, np.ndarray]) -> dict:
    s0, adc = physics.fit_adc_variant(rng, images)
    out = {"adc": adc, "s0": s0}
    if plan.calc_b is not None:
        out["calc"] = s0 * np.exp(-plan.calc_b * adc)
    return out
