"""MR signal physics: tissue parameters, signal equations, noise, bias and artefacts.

Signals are computed per tissue and mixed by the tissue fractions of each voxel, which is what
partial volume physically is. Times in ms, ADC in 1e-6 mm2/s, b in s/mm2.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import fft as sfft

from mrseq.simulate.anatomy import TISSUES
from mrseq.simulate.ranges import draw

# name: (PD, T1 range at 3T, T2 range, ADC range, fat fraction) -- literature values.
TISSUE_TABLE = {
    "air": (0.0, (1000, 1000), (1, 1), (0, 0), 0.0),
    "fat": (0.95, (370, 390), (70, 130), (0, 100), 0.95),
    "muscle": (0.75, (900, 1400), (30, 45), (1300, 1500), 0.03),
    "cortex": (0.05, (900, 1100), (1, 3), (0, 200), 0.0),
    "marrow": (0.85, (450, 590), (50, 110), (300, 500), 0.7),
    "urine": (1.0, (2800, 3200), (800, 1200), (2800, 3000), 0.0),
    "rectal_wall": (0.8, (1250, 1350), (55, 65), (1100, 1300), 0.0),
    "gas": (0.0, (1000, 1000), (1, 1), (0, 0), 0.0),
    "stool": (0.55, (600, 1200), (40, 120), (300, 900), 0.1),
    "pz": (0.9, (1550, 1650), (100, 150), (1600, 1700), 0.0),
    "tz": (0.85, (1450, 1550), (75, 125), (1300, 1450), 0.0),
    "lesion": (0.85, (1350, 1450), (70, 100), (800, 1100), 0.0),
    "haemorrhage": (0.8, (400, 700), (30, 60), (700, 900), 0.0),
    "sv_fluid": (1.0, (2300, 2700), (250, 500), (2300, 2700), 0.0),
    "venous": (0.9, (1650, 1750), (150, 250), (2000, 2400), 0.0),
    "vessel": (0.9, (1850, 1950), (15, 25), (3500, 5000), 0.0),  # flow void on TSE and DWI
}
FAT_T1_3T = 380.0


FLUIDS = ("urine", "sv_fluid", "venous", "vessel")


class Tissues:
    """Per-patient draws of every tissue's parameters at one field strength.

    Literature ranges widened by per-tissue factors (ranges.py): contrast between tissues
    changes from patient to patient, far beyond one site, while fluid keeps the highest ADC.
    """

    def __init__(self, rng: np.random.Generator, field: float):
        rows = [TISSUE_TABLE[name] for name in TISSUES]
        n = len(rows)
        t1_scale = 0.8 if field < 2 else 1.0  # T1 ~20 % shorter at 1.5 T
        fluid = np.array([name in FLUIDS for name in TISSUES])
        adc_factor = np.where(fluid, draw(rng, "fluid_adc_factor", n), draw(rng, "adc_factor", n))
        self.pd = np.array([r[0] for r in rows]) * draw(rng, "pd_factor", n)
        self.t1 = np.array([rng.uniform(*r[1]) for r in rows]) * t1_scale
        self.t1 *= draw(rng, "t1_factor", n)
        self.t2 = np.array([rng.uniform(*r[2]) for r in rows]) * (1.05 if field < 2 else 1.0)
        self.t2 *= draw(rng, "t2_factor", n)
        adc = np.array([rng.uniform(*r[3]) for r in rows]) * 1e-6 * adc_factor
        # Tissue never diffuses faster than free fluid: the ADC map's class-defining order.
        free = min(adc[TISSUES.index(name)] for name in ("urine", "sv_fluid"))
        self.adc = np.where(fluid, adc, np.minimum(adc, 0.85 * free))
        self.ff = np.array([r[4] for r in rows])
        self.fat_t1 = FAT_T1_3T * t1_scale
        self.fat_t2 = float(draw(rng, "fat_t2"))
        self.perfusion = float(draw(rng, "perfusion"))  # IVIM fraction, visible at low b only


def _recovery(tr: float, t1: np.ndarray) -> np.ndarray:
    return 1.0 - np.exp(-tr / t1)


def spin_echo(tis: Tissues, tr: float, te: float) -> tuple[np.ndarray, np.ndarray]:
    """(water, fat) signal per tissue for a (turbo) spin echo."""
    water = tis.pd * (1 - tis.ff) * _recovery(tr, tis.t1) * np.exp(-te / tis.t2)
    fat = tis.pd * tis.ff * _recovery(tr, tis.fat_t1) * np.exp(-te / tis.fat_t2)
    return water, fat


def stir(tis: Tissues, tr: float, te: float, ti: float) -> np.ndarray:
    """Magnitude inversion recovery: fat is nulled when TI = T1_fat ln 2."""

    def ir(t1):
        return np.abs(1 - 2 * np.exp(-ti / t1) + np.exp(-tr / t1))

    water = tis.pd * (1 - tis.ff) * ir(tis.t1) * np.exp(-te / tis.t2)
    fat = tis.pd * tis.ff * ir(tis.fat_t1) * np.exp(-te / tis.fat_t2)
    return water + fat


def diffusion(tis: Tissues, s0_water: np.ndarray, b: float) -> np.ndarray:
    """Bi-exponential (IVIM) decay; the perfusion part is gone by b ~ 200."""
    fast = np.exp(-b * 15e-3)
    f = tis.perfusion * (tis.pd > 0)
    return s0_water * ((1 - f) * np.exp(-b * tis.adc) + f * fast)


# ------------------------------------------------------------------ fields on the image grid


SMOOTH_SAMPLES = 24  # a few low-frequency waves need no more samples per axis


def smooth_field(rng: np.random.Generator, shape: tuple[int, ...], waves: int, amp: float):
    """A smooth random field ~N(0, amp) over a grid, from a few low-frequency cosines.

    Evaluated on at most SMOOTH_SAMPLES points per axis and interpolated (it is smooth by
    construction; evaluating it per voxel was a sixth of the simulator's time)."""
    coarse = tuple(min(n, SMOOTH_SAMPLES) for n in shape)
    grids = np.meshgrid(*[np.linspace(-1, 1, n, dtype=np.float32) for n in coarse], indexing="ij")
    out = np.zeros(coarse, dtype=np.float32)
    for _ in range(waves):
        k = rng.normal(0, 1.5, len(shape))
        out += np.cos(sum(ki * g for ki, g in zip(k, grids, strict=True)) + rng.uniform(0, 6.3))
    out *= amp / np.sqrt(waves / 2)
    if coarse == tuple(shape):
        return out
    t = torch.from_numpy(out)[None, None]
    mode = "trilinear" if len(shape) == 3 else "bilinear"
    return F.interpolate(t, size=tuple(shape), mode=mode, align_corners=True)[0, 0].numpy()


def bias_field(rng, shape, field: float, endorectal: np.ndarray | None) -> np.ndarray:
    """Coil sensitivity x 3 T dielectric shading x optional endorectal-coil hot spot."""
    bias = np.exp(smooth_field(rng, shape, 4, float(draw(rng, "bias"))))
    grids = np.meshgrid(*[np.linspace(-1, 1, n, dtype=np.float32) for n in shape], indexing="ij")
    if field > 2:
        centre = rng.uniform(-0.4, 0.4, len(shape))
        r2 = sum((g - c) ** 2 for g, c in zip(grids, centre, strict=True))
        bias *= 1 - float(draw(rng, "shading")) * np.exp(-r2 / rng.uniform(0.08, 0.3))
    if endorectal is not None:
        bias *= 1 + float(draw(rng, "endorectal_gain")) * np.exp(-endorectal / 15.0)
    return bias


# ------------------------------------------------------------------ acquisition artefacts


def epi_distortion(image: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Shift along phase encoding (axis 1) by `shift` pixels, with pile-up (x Jacobian)."""
    n = image.shape[1]
    j = np.arange(n, dtype=np.float32)
    out = np.empty_like(image)
    for i in range(image.shape[0]):
        for k in range(image.shape[2]):
            src = np.clip(j - shift[i, :, k], 0, n - 1)
            jac = np.clip(1 - np.gradient(shift[i, :, k]), 0.2, 4.0)
            out[i, :, k] = np.interp(src, j, image[i, :, k]) * jac
    return out


def nyquist_ghost(image: np.ndarray, level: float) -> np.ndarray:
    return image + level * np.roll(image, image.shape[1] // 2, axis=1)


def motion_phase(rng, lines: int, severity: float) -> np.ndarray | None:
    """Phase errors on some phase-encode lines (ghosts along the phase direction), or None."""
    if severity <= 0:
        return None
    hit = rng.random(lines) < severity
    return np.where(hit, np.exp(1j * rng.normal(0, 0.6, lines)), 1.0).astype(np.complex64)


def kspace_filter(n: int, window: float) -> np.ndarray:
    """Vendor apodisation: a blend of no filter (Gibbs ringing) and a full Hann window."""
    hann = 0.5 * (1 - np.cos(2 * np.pi * (np.arange(n) + 0.5) / n))
    return ((1 - window) + window * np.outer(hann, hann)).astype(np.float32)


def to_kspace(image: np.ndarray) -> np.ndarray:
    # scipy.fft keeps complex64 (numpy's FFT always computes in double: twice the time).
    return sfft.fftshift(sfft.fft2(image.astype(np.complex64), axes=(0, 1)), axes=(0, 1))


def from_kspace(k: np.ndarray, recon: int) -> np.ndarray:
    """Zero-fill acquired k-space (n, n, slices) to the recon matrix: complex image.

    Truncating k-space at the acquired matrix gives Gibbs ringing at sharp edges; zero filling
    interpolates as scanners do (and correlates the noise, as on scanners)."""
    n = k.shape[0]
    padded = np.zeros((recon, recon, k.shape[2]), dtype=np.complex64)
    o = (recon - n) // 2
    padded[o : o + n, o : o + n] = k
    out = sfft.ifft2(sfft.ifftshift(padded, axes=(0, 1)), axes=(0, 1))
    return out * np.float32((recon / n) ** 2)


def signal_kspace(
    image: np.ndarray,
    window: float,
    phase: np.ndarray | None,
    spike: tuple[int, int, int, float] | None = None,
) -> np.ndarray:
    """The object's filtered k-space, with motion errors on phase-encode lines and a spike."""
    k = to_kspace(image) * kspace_filter(image.shape[0], window)[:, :, None]
    if phase is not None:
        k *= phase[None, :, None]
    if spike is not None:  # one bright k-space point: stripes over a slice (TorchIO's RandomSpike)
        i, j, z, strength = spike
        k[i, j, z] += strength * np.abs(k[..., z]).max()
    return k


def noise_kspace(rng, shape: tuple[int, int, int], window: float) -> np.ndarray:
    """Thermal noise drawn directly in k-space: white noise of unit variance per pixel in
    the image is white with variance n*n per k-space sample (no forward FFT needed)."""
    k = np.empty(shape, dtype=np.complex64)
    k.real = rng.standard_normal(shape, dtype=np.float32)
    k.imag = rng.standard_normal(shape, dtype=np.float32)
    return k * (np.float32(shape[0]) * kspace_filter(shape[0], window)[:, :, None])


def fit_adc(images: list[np.ndarray], b_values: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Log-linear least squares over b: returns (S0, ADC in mm2/s) per voxel."""
    b = np.asarray(b_values, dtype=np.float32)
    logs = np.stack([np.log(np.maximum(im, 1e-3)) for im in images], axis=-1)
    b_mean = b.mean()
    slope = ((logs - logs.mean(-1, keepdims=True)) * (b - b_mean)).sum(-1) / (
        (b - b_mean) ** 2
    ).sum()
    intercept = logs.mean(-1) - slope * b_mean
    return np.exp(intercept), np.clip(-slope, 0, 5e-3)


def fit_adc_variant(rng, images: dict[float, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """How scanners fit ADC differs: all b-values, only b above the IVIM range, or two points.

    S0 always comes from the full log-linear fit (it sets the background mask and the
    calculated images); the ADC from the drawn variant.
    """
    b = sorted(images)
    s0, adc = fit_adc([images[v] for v in b], b)
    kind = rng.choice(["all", "ivim_free", "two_point"], p=[0.5, 0.25, 0.25])
    floor = float(rng.uniform(50, 200))
    chosen = [v for v in b if v >= floor] if kind == "ivim_free" else [b[0], b[-1]]
    if kind != "all" and len(set(chosen)) >= 2:
        _, adc = fit_adc([images[v] for v in chosen], chosen)
    return s0, adc


# ------------------------------------------------------------------ contrast-enhanced T1

# Gadolinium per tissue: (peak concentration in mM, wash-in time constant in s, wash-out rate
# in 1/s). Shaped after the literature, not fitted: arteries first and highest, cancer early
# with wash-out, normal gland slower and lower, fluid, fat and gas (almost) none.
GD_TABLE = {
    "vessel": (5.0, 5.0, 3e-3),
    "venous": (3.5, 12.0, 2e-3),
    "lesion": (0.9, 15.0, 3e-3),
    "pz": (0.3, 60.0, 5e-4),
    "tz": (0.45, 45.0, 8e-4),
    "muscle": (0.25, 60.0, 3e-4),
    "rectal_wall": (0.6, 25.0, 1e-3),
    "marrow": (0.35, 40.0, 8e-4),
    "haemorrhage": (0.05, 100.0, 0.0),
    "fat": (0.05, 60.0, 0.0),
}
R1_GD = 4.0e-3  # T1 relaxivity of gadolinium chelates, 1/(mM ms) (~4 /mM/s at 1.5-3 T)


def gd_concentration(rng, seconds: float) -> np.ndarray:
    """Per-tissue gadolinium concentration (mM) `seconds` after injection, with per-series
    draws of dose, bolus arrival and each tissue's uptake."""
    arrival = rng.uniform(5, 25)
    t = max(0.0, seconds - arrival)
    out = np.zeros(len(TISSUES))
    for i, name in enumerate(TISSUES):
        peak, tau, wash = GD_TABLE.get(name, (0.0, 1.0, 0.0))
        peak *= float(draw(rng, "gd_uptake"))
        out[i] = peak * (1 - np.exp(-t / tau)) * np.exp(-wash * t)
    return out * float(draw(rng, "gd_dose"))


def enhanced_t1(t1: np.ndarray, concentration: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 / t1 + R1_GD * concentration)


def spoiled_gre(tis: Tissues, tr: float, te: float, flip: float, t1: np.ndarray):
    """(water, fat) signal per tissue for a spoiled gradient echo (T1-weighted at short TR)."""
    a = np.radians(flip)

    def ernst(t1_):
        e1 = np.exp(-tr / t1_)
        return np.sin(a) * (1 - e1) / (1 - np.cos(a) * e1)

    t2_star = 0.6 * tis.t2  # T2* below T2: a few ms of TE barely matter at these values
    water = tis.pd * (1 - tis.ff) * ernst(t1) * np.exp(-te / t2_star)
    fat = tis.pd * tis.ff * ernst(np.full_like(t1, tis.fat_t1)) * np.exp(-te / 20.0)
    return water, fat
