"""What each simulated study contains: series, geometry, timing and vendor conventions.

Geometry is drawn from the same distributions for every class inside the T2 family and inside
the diffusion family (low b, high b and ADC share their acquisition's grid), so matrix size,
spacing, plane and slice count cannot give the label away.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mrseq.dicom_write import Geometry
from mrseq.simulate.ranges import draw

VENDORS = ("SIEMENS", "GE MEDICAL SYSTEMS", "Philips Medical Systems", "Canon Medical Systems")
VENDOR_P = (0.4, 0.25, 0.25, 0.1)
B_STYLE = {VENDORS[0]: "siemens", VENDORS[1]: "ge", VENDORS[2]: "philips", VENDORS[3]: "standard"}
# Chance that a vendor stores several b-values interleaved in one series.
INTERLEAVE_P = {VENDORS[0]: 0.8, VENDORS[1]: 0.7, VENDORS[2]: 0.6, VENDORS[3]: 0.0}
# Common protocol b-values; 40 % of draws are continuous over the band instead (any b counts).
LOW_B = (0, 50, 100, 150, 200, 300, 400)
HIGH_B = (500, 600, 800, 1000, 1200, 1400, 1500, 1600, 2000, 2500, 3000)
CONTINUOUS_B_P = 0.4
CALC_B = (1000, 3000)
# Per patient: probabilities of 0, 1, 2 volumes, matching the paper's class totals per patient
# (T2WI_nan 0.92, T2WI_fs 1.09, DWI_Low 0.93, DWI_High 0.96, ADC 0.83).
COUNT_P = {
    "T2WI_nan": (0.11, 0.86, 0.03),
    "T2WI_fs": (0.055, 0.80, 0.145),
    "DWI_Low": (0.11, 0.85, 0.04),
    "DWI_High": (0.11, 0.82, 0.07),
    "ADC": (0.17, 0.83, 0.0),
}
FS_METHODS = ("spair", "spir", "stir", "dixon")
PLANES = ("axial", "sagittal", "coronal")
PLANE_P = (0.65, 0.22, 0.13)
DWI_PLANE_P = (0.9, 0.05, 0.05)
_BASE = {
    "axial": ((1, 0, 0), (0, 1, 0)),
    "sagittal": ((0, 1, 0), (0, 0, -1)),
    "coronal": ((1, 0, 0), (0, 0, -1)),
}


@dataclass
class Grid:
    """Acquisition and reconstruction grid of one series (shared by an acquisition's images)."""

    plane: str
    row_dir: np.ndarray
    col_dir: np.ndarray
    centre: np.ndarray
    acq: int  # acquired matrix (square)
    recon: int  # reconstructed matrix
    fov: float  # mm
    n_slices: int
    step: float  # slice spacing, mm
    thickness: float
    snr_gain: float = 1.0  # > 1 where synth rendered coarser than planned (see coarsen)
    anatomy_step: float = 0.0  # mm; coarser anatomy sampling than render.ANATOMY_STEP_MM

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.row_dir, self.col_dir)

    def origin(self) -> np.ndarray:
        half = (self.acq - 1) / 2 * self.fov / self.acq
        return (
            self.centre
            - half * self.row_dir
            - half * self.col_dir
            - (self.n_slices - 1) / 2 * self.step * self.normal
        )

    def points(self, through: float, n: int | None = None) -> np.ndarray:
        """Acquired voxel centres (acq, acq, slices, 3), shifted `through` mm along the normal;
        with `n`, an n x n in-plane grid spanning the same first-to-last centres (coarser)."""
        d = self.fov / self.acq
        n = self.acq if n is None else n
        i = np.linspace(0, (self.acq - 1) * d, n, dtype=np.float32)
        k = np.arange(self.n_slices, dtype=np.float32) * self.step + through
        ii, jj, kk = np.meshgrid(i, i, k, indexing="ij")
        o = self.origin().astype(np.float32)
        return (
            o
            + ii[..., None] * self.row_dir
            + jj[..., None] * self.col_dir
            + kk[..., None] * self.normal
        ).astype(np.float32)

    def geometry(self) -> Geometry:
        d = self.fov / self.recon
        return Geometry(
            self.origin(), self.row_dir, self.col_dir, (d, d, self.step), self.thickness
        )


@dataclass
class SeriesPlan:
    kind: str  # "t2", "dwi" (yields DWI, ADC, calculated images) or a non-target subtype
    grid: Grid
    fs: str | None = None  # fat suppression of a T2 series
    tr: float = 0.0
    te: float = 0.0
    acquired_b: list[float] = field(default_factory=list)
    export_b: list[float] = field(default_factory=list)  # acquired b-values written out
    calc_b: float | None = None  # a calculated high-b image from the fit
    adc: bool = False
    interleave: bool = False
    eadc: float | None = None  # b of an exponential-ADC image from the fit (non-target)
    phases: list[float] = field(default_factory=list)  # s after contrast (T1 GRE series)
    flip: float = 0.0  # degrees (gradient echo)
    one_series: bool = True  # DCE phases as temporal positions of one series, or one each
    drawn: dict = field(default_factory=dict)  # nuisance values drawn at render (for labels)


@dataclass
class StudyPlan:
    vendor: str
    field: float
    series: list[SeriesPlan]
    strip_private: bool
    endorectal: bool


def _tilt(rng, degrees: float) -> np.ndarray:
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = np.radians(rng.uniform(0, degrees))
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def _grid(rng, plane: str, pixel: float, fov: float, limits, n: int, thick: float, scale: float):
    """A tilted grid; acquired matrix from FOV and pixel, recon by a zero-fill factor."""
    acq = int(np.clip(round(fov / pixel / 2) * 2, *limits[:2]))
    recon = int(min(limits[2], round(acq * float(draw(rng, "recon_factor")) / 2) * 2))
    rot = _tilt(rng, 15.0 if rng.random() < 0.4 else 3.0)
    row, col = (rot @ np.array(v, dtype=float) for v in _BASE[plane])
    acq, recon = max(16, round(acq * scale / 2) * 2), max(16, round(recon * scale / 2) * 2)
    offset = float(draw(rng, "offset_mm"))
    centre = rng.normal(0, [offset, offset, offset]) + [0, 0, rng.uniform(-5, 10)]
    step = thick * rng.uniform(1.0, 1.3)
    return Grid(plane, row, col, centre, acq, max(acq, recon), fov, n, step, thick)


def t2_grid(rng, plane: str, scale: float) -> Grid:
    fov = rng.uniform(120, 300)
    thick = float(draw(rng, "t2_thickness"))
    n = int(rng.integers(12, 41))
    return _grid(rng, plane, float(draw(rng, "t2_pixel")), fov, (112, 320, 448), n, thick, scale)


def dwi_grid(rng, scale: float, plane: str = "axial") -> Grid:
    fov = rng.uniform(160, 360)
    thick = float(draw(rng, "dwi_thickness"))
    n = int(rng.integers(12, 41))
    return _grid(rng, plane, float(draw(rng, "dwi_pixel")), fov, (48, 192, 256), n, thick, scale)


def _count(rng, label: str) -> int:
    return int(rng.choice(3, p=COUNT_P[label]))


def _b_values(rng, band: str, n: int, top: float = 3000.0) -> list[float]:
    """n distinct b-values in a band: common protocol values or anywhere in the band."""
    low, high = (0.0, 499.0) if band == "low" else (500.0, top)
    common = [float(b) for b in (LOW_B if band == "low" else HIGH_B) if b <= high]
    out: set[float] = set()
    while len(out) < n:
        if rng.random() < CONTINUOUS_B_P:
            out.add(float(round(rng.uniform(low, high))))
        else:
            out.add(float(rng.choice(common)))
    return sorted(out)


def _t2_series(rng, fs: str | None, scale: float) -> SeriesPlan:
    plane = str(rng.choice(PLANES, p=PLANE_P))
    tr, te = float(draw(rng, "t2_tr")), float(draw(rng, "t2_te"))
    if fs == "stir":
        te = rng.uniform(30, 90)
    return SeriesPlan("t2", t2_grid(rng, plane, scale), fs=fs, tr=tr, te=te)


def _dwi_series(rng, vendor: str, n_low: int, n_high: int, n_adc: int, scale: float) -> SeriesPlan:
    calc = n_high > 0 and rng.random() < 0.25
    top = float(draw(rng, "b_high_max")) if rng.random() < 0.3 else 2000.0
    low = _b_values(rng, "low", max(1, n_low, 1 + int(rng.random() < 0.4)))
    high = _b_values(rng, "high", max(1, n_high - int(calc)), top)
    export = low[-n_low:] if n_low else []  # keep the largest low b values
    export += high[: n_high - int(calc)]
    plane = str(rng.choice(PLANES, p=DWI_PLANE_P))
    return SeriesPlan(
        "dwi",
        dwi_grid(rng, scale, plane),
        tr=float(draw(rng, "dwi_tr")),
        te=float(draw(rng, "dwi_te")),
        acquired_b=low + high,
        export_b=export,
        calc_b=float(round(rng.uniform(*CALC_B))) if calc else None,
        adc=n_adc > 0,
        interleave=rng.random() < INTERLEAVE_P[vendor],
    )


def coarsen(study: StudyPlan | list[SeriesPlan], min_pixel: float, anatomy_step: float) -> None:
    """Render no finer than `min_pixel` mm in-plane, anatomy sampled every `anatomy_step` mm
    (synthesised training volumes).

    The model sees 1.25 mm voxels: a 0.4 mm T2 is box-averaged down anyway, so rendering it
    at 0.4 mm costs ~10x the time for detail that is averaged away. The averaging would also
    have lowered the noise by about the ratio of acquired pixel sizes: `snr_gain` keeps that.
    """
    for plan in study.series if isinstance(study, StudyPlan) else study:
        g = plan.grid
        g.anatomy_step = anatomy_step
        cap = max(16, int(g.fov / min_pixel / 2) * 2)
        if g.recon <= cap:
            continue
        acq = min(g.acq, cap)
        g.snr_gain, g.acq, g.recon = g.acq / acq, acq, cap


def plan_study(rng: np.random.Generator, scale: float = 1.0) -> StudyPlan:
    vendor = str(rng.choice(VENDORS, p=VENDOR_P))
    counts = {label: _count(rng, label) for label in COUNT_P}
    if sum(counts.values()) == 0:
        counts["T2WI_nan"] = 1
    series = [_t2_series(rng, None, scale) for _ in range(counts["T2WI_nan"])]
    series += [
        _t2_series(rng, str(rng.choice(FS_METHODS)), scale) for _ in range(counts["T2WI_fs"])
    ]
    if counts["DWI_Low"] + counts["DWI_High"] + counts["ADC"]:
        series.append(
            _dwi_series(rng, vendor, counts["DWI_Low"], counts["DWI_High"], counts["ADC"], scale)
        )
    rng.shuffle(series)
    return StudyPlan(
        vendor,
        3.0 if rng.random() < 0.7 else 1.5,
        series,
        strip_private=rng.random() < 0.15,
        endorectal=rng.random() < 0.2,
    )
