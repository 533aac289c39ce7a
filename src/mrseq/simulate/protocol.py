"""What each simulated study contains: series, geometry, timing and vendor conventions.

Geometry is drawn from the same distributions for every class inside the T2 family and inside
the diffusion family (low b, high b and ADC share their acquisition's grid), so matrix size,
spacing, plane and slice count cannot give the label away.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mrseq.dicom_write import Geometry

VENDORS = ("SIEMENS", "GE MEDICAL SYSTEMS", "Philips Medical Systems", "Canon Medical Systems")
VENDOR_P = (0.4, 0.25, 0.25, 0.1)
B_STYLE = {VENDORS[0]: "siemens", VENDORS[1]: "ge", VENDORS[2]: "philips", VENDORS[3]: "standard"}
# Chance that a vendor stores several b-values interleaved in one series.
INTERLEAVE_P = {VENDORS[0]: 0.8, VENDORS[1]: 0.7, VENDORS[2]: 0.6, VENDORS[3]: 0.0}
LOW_B = ((0, 50, 100, 150, 200, 300, 400), (3, 3, 2, 1, 1, 1, 3))  # values, weights: 400 and
HIGH_B = ((500, 600, 800, 1000, 1400, 1500, 2000), (3, 3, 3, 3, 2, 2, 1))  # 500-600 oversampled
CALC_B = (1400, 1500, 2000)
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

    def points(self, through: float) -> np.ndarray:
        """Acquired voxel centres (acq, acq, slices, 3), shifted `through` mm along the normal."""
        d = self.fov / self.acq
        i = np.arange(self.acq, dtype=np.float32) * d
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
    kind: str  # "t2" or "dwi" (a diffusion acquisition yields DWI, ADC and calculated images)
    grid: Grid
    fs: str | None = None  # fat suppression of a T2 series
    tr: float = 0.0
    te: float = 0.0
    acquired_b: list[float] = field(default_factory=list)
    export_b: list[float] = field(default_factory=list)  # acquired b-values written out
    calc_b: float | None = None  # a calculated high-b image from the fit
    adc: bool = False
    interleave: bool = False


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


def _grid(
    rng,
    plane: str,
    acq: int,
    recon: int,
    fov: float,
    n: int,
    step: float,
    thick: float,
    scale: float,
) -> Grid:
    rot = _tilt(rng, 15.0 if rng.random() < 0.4 else 3.0)
    row, col = (rot @ np.array(v, dtype=float) for v in _BASE[plane])
    acq, recon = max(16, round(acq * scale / 2) * 2), max(16, round(recon * scale / 2) * 2)
    centre = rng.normal(0, [6, 6, 6]) + [0, 0, rng.uniform(-5, 10)]
    return Grid(plane, row, col, centre, acq, recon, fov, n, step, thick)


def t2_grid(rng, plane: str, scale: float) -> Grid:
    recon = int(rng.choice([256, 320, 384, 448, 512]))
    spacing = rng.uniform(0.3, 0.7)
    fov = float(np.clip(recon * spacing, 130, 260))
    acq = int(np.clip(recon / rng.choice([1.0, 1.25, 1.5, 2.0]), 192, 288))
    thick = rng.uniform(3.0, 3.6)
    return _grid(
        rng,
        plane,
        acq,
        max(acq, recon),
        fov,
        int(rng.integers(16, 37)),
        thick * rng.uniform(1.0, 1.1),
        thick,
        scale,
    )


def dwi_grid(rng, scale: float) -> Grid:
    acq = int(rng.choice([96, 112, 128, 144, 160]))
    spacing = rng.uniform(1.4, 2.5)
    recon = acq * 2 if (rng.random() < 0.5 and acq * 2 <= 256) else acq
    thick = rng.uniform(3.0, 4.0)
    return _grid(
        rng,
        "axial",
        acq,
        recon,
        acq * spacing,
        int(rng.integers(16, 31)),
        thick * rng.uniform(1.0, 1.1),
        thick,
        scale,
    )


def _count(rng, label: str) -> int:
    return int(rng.choice(3, p=COUNT_P[label]))


def _pick(rng, table, n: int) -> list[float]:
    values, weights = table
    p = np.asarray(weights, float) / sum(weights)
    return sorted(float(v) for v in rng.choice(values, size=n, replace=False, p=p))


def _t2_series(rng, fs: str | None, scale: float) -> SeriesPlan:
    plane = str(rng.choice(PLANES, p=PLANE_P))
    tr, te = rng.uniform(3000, 7000), rng.uniform(85, 130)
    if fs == "stir":
        te = rng.uniform(40, 90)
    return SeriesPlan("t2", t2_grid(rng, plane, scale), fs=fs, tr=tr, te=te)


def _dwi_series(rng, vendor: str, n_low: int, n_high: int, n_adc: int, scale: float) -> SeriesPlan:
    calc = n_high > 0 and rng.random() < 0.25
    low = _pick(rng, LOW_B, max(1, n_low, 1 + int(rng.random() < 0.4)))
    high = _pick(rng, HIGH_B, max(1, n_high - int(calc)))
    export = low[-n_low:] if n_low else []  # keep the largest low b values
    export += high[: n_high - int(calc)]
    plan = SeriesPlan(
        "dwi",
        dwi_grid(rng, scale),
        tr=rng.uniform(3000, 8000),
        te=rng.uniform(55, 95),
        acquired_b=low + high,
        export_b=export,
        calc_b=float(rng.choice(CALC_B)) if calc else None,
        adc=n_adc > 0,
        interleave=rng.random() < INTERLEAVE_P[vendor],
    )
    return plan


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
        endorectal=rng.random() < 0.12,
    )
