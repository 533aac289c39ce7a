"""A randomised male pelvis as soft-edged shapes in patient coordinates (LPS mm).

Each structure is a signed-distance-like function of position; a smooth random deformation
(shared by the whole patient) and per-structure surface bumps keep shapes from being ellipsoids.
Memberships are sigmoids of the distance over a width tied to voxel size, which gives
partial-volume edges without aliasing. Origin: the prostate centre; x to the patient's left,
y posterior, z superior.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mrseq.simulate.ranges import draw

TISSUES = (
    "air",
    "fat",
    "muscle",
    "cortex",
    "marrow",
    "urine",
    "rectal_wall",
    "gas",
    "stool",
    "pz",
    "tz",
    "lesion",
    "haemorrhage",
    "sv_fluid",
    "venous",
    "vessel",
)
T = {name: i for i, name in enumerate(TISSUES)}


@dataclass
class Shape:
    """Deformed ellipsoid (or z-aligned tube when `tube`) painted with one tissue."""

    tissue: str
    centre: np.ndarray
    radii: np.ndarray
    bumps: np.ndarray  # (k, 4): amplitude and a direction for surface bumps
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    tube: bool = False
    shell: float = 0.0  # > 0: only a shell of this thickness (mm) inside the surface

    def __post_init__(self):
        # float32 throughout: float64 parameters would upcast every point array.
        for name in ("centre", "radii", "bumps", "rotation"):
            setattr(self, name, np.asarray(getattr(self, name), dtype=np.float32))

    def distance(self, p: np.ndarray) -> np.ndarray:
        """Approximate signed distance in mm (negative inside) for points p (N, 3)."""
        q = (p - self.centre) @ self.rotation / self.radii
        if self.tube:
            q = q.copy()
            q[:, 2] = 0.0
        n = np.sqrt(np.einsum("ij,ij->i", q, q)) + np.float32(1e-6)
        # all bumps at once: cos(3 * q.dir / |q|) weighted by their amplitudes
        bump = np.cos((q @ (3.0 * self.bumps[:, 1:].T)) / n[:, None]) @ self.bumps[:, 0]
        scale = float(np.min(self.radii[:2] if self.tube else self.radii))
        d = (n - 1.0 - bump) * scale
        if self.shell > 0:
            d = np.maximum(d, -d - self.shell)
        return d

    def bounds(self, margin: float) -> tuple[np.ndarray, np.ndarray]:
        extent = np.abs(self.rotation) @ (self.radii * 1.35) + np.float32(margin)
        if self.tube:
            extent[2] = np.inf
        return self.centre - extent, self.centre + extent


@dataclass
class Patient:
    shapes: list[Shape]
    warp: np.ndarray  # (k, 7): amplitude xyz, wave vector xyz, phase
    texture: np.ndarray  # same form, scalar texture modulating proton density
    gas_centre: np.ndarray
    prostate_volume_ml: float
    scale: float = 1.0  # the whole pelvis is this much larger than its shapes say


def _bumps(rng: np.random.Generator, k: int, amp: float) -> np.ndarray:
    dirs = rng.normal(size=(k, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    return np.column_stack([rng.uniform(-amp, amp, k), dirs])


def _rot(rng: np.random.Generator, degrees: float) -> np.ndarray:
    angles = np.radians(rng.uniform(-degrees, degrees, 3))
    cx, cy, cz = np.cos(angles)
    sx, sy, sz = np.sin(angles)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rx @ ry @ rz


def _waves(rng: np.random.Generator, k: int, amp: float, wavelength: tuple[float, float]):
    vec = rng.normal(size=(k, 3))
    vec /= np.linalg.norm(vec, axis=1, keepdims=True)
    vec *= (2 * np.pi / rng.uniform(*wavelength, k))[:, None]
    return np.column_stack([rng.uniform(-amp, amp, (k, 3)), vec, rng.uniform(0, 2 * np.pi, k)])


def _shape(rng, tissue, centre, radii, tilt=8.0, bump=0.1, **kw) -> Shape:
    return Shape(
        tissue,
        np.asarray(centre, float),
        np.asarray(radii, float),
        _bumps(rng, 6, bump),
        _rot(rng, tilt),
        **kw,
    )


def _pair(rng, tissue, centre, radii, **kw) -> list[Shape]:
    """Left and right copies, each with its own randomness."""
    x, y, z = centre
    jitter = lambda: rng.normal(0, 3, 3)  # noqa: E731
    return [_shape(rng, tissue, np.array([s * x, y, z]) + jitter(), radii, **kw) for s in (-1, 1)]


def _body(rng) -> list[Shape]:
    a, b = rng.uniform(150, 205), rng.uniform(105, 145)  # habitus
    subcut = rng.uniform(10, 40)
    centre = [0, rng.uniform(5, 20), 0]
    return [
        _shape(rng, "fat", centre, [a, b, 1], tilt=3, bump=0.03, tube=True),
        _shape(
            rng,
            "muscle",
            centre,
            [a - subcut, b - subcut * 0.8, 1],
            tilt=3,
            bump=0.03,
            tube=True,
            shell=rng.uniform(8, 16),
        ),
        _shape(
            rng,
            "fat",
            centre,
            [a - subcut - 14, b - subcut * 0.8 - 14, 1],
            tilt=3,
            bump=0.03,
            tube=True,
        ),
    ]


def _muscles(rng) -> list[Shape]:
    return [
        *_pair(rng, "muscle", [52, 8, 5], [12, 30, 35]),  # obturator internus
        *_pair(rng, "muscle", [70, 5, -25], [14, 25, 22]),  # obturator externus
        *_pair(rng, "muscle", [28, 28, -18], [6, 28, 10], tilt=20),  # levator ani
        *_pair(rng, "muscle", [85, 80, 10], [45, 35, 80]),  # gluteus maximus
        *_pair(rng, "muscle", [70, -40, 40], [22, 20, 60]),  # iliopsoas
    ]


def _bones(rng) -> list[Shape]:
    out = []
    for centre, radii in (
        ([90, 2, 12], [24, 24, 24]),  # femoral heads
        ([115, 15, -30], [16, 16, 45]),  # femoral necks/shafts
        ([18, -48, 8], [12, 10, 22]),  # pubic bones at the symphysis
        ([58, 30, -22], [16, 18, 18]),  # ischial tuberosities
        ([75, 10, 55], [18, 35, 40]),  # iliac/acetabular roof
    ):
        outer = _pair(rng, "cortex", centre, radii, bump=0.04)
        for shape in outer:
            inner = Shape(
                "marrow", shape.centre, shape.radii - rng.uniform(2, 4), shape.bumps, shape.rotation
            )
            out += [shape, inner]
    sacrum = _shape(rng, "cortex", [0, 95, 40], [35, 14, 60], tilt=15)
    out += [sacrum, Shape("marrow", sacrum.centre, sacrum.radii - 3, sacrum.bumps, sacrum.rotation)]
    return out


def _rectum(rng) -> tuple[list[Shape], np.ndarray]:
    centre = np.array([rng.normal(0, 4), rng.uniform(30, 42), 0.0])
    r = rng.uniform(14, 24)
    wall = rng.uniform(3, 5)
    radii = [r * rng.uniform(0.9, 1.3), r, 1]
    shapes = [
        _shape(rng, "rectal_wall", centre, radii, tilt=10, tube=True),
        _shape(rng, "stool", centre, [radii[0] - wall, r - wall, 1], tilt=10, tube=True),
    ]
    gas = centre + [rng.normal(0, 3), -rng.uniform(0, r / 2), rng.uniform(-15, 15)]
    if rng.random() < 0.7:  # gas rises anteriorly in a supine patient
        size = rng.uniform(4, r - wall)
        shapes.append(_shape(rng, "gas", gas, [size, size * 0.7, size * 1.5], bump=0.15))
    return shapes, gas


def _prostate(rng) -> tuple[list[Shape], float]:
    volume_ml = float(draw(rng, "prostate_ml"))
    aspect = np.array([1.25, 0.85, 1.0]) * rng.uniform(0.9, 1.1, 3)
    scale = (volume_ml * 1000 / (4 / 3 * np.pi * np.prod(aspect))) ** (1 / 3)
    radii = aspect * scale
    gland = _shape(rng, "pz", [0, 0, 0], radii, bump=0.05)
    tz_frac = np.clip(0.25 + (volume_ml - 20) / 200 + rng.normal(0, 0.05), 0.2, 0.75)
    tz_radii = radii * tz_frac ** (1 / 3)
    tz = _shape(rng, "tz", [0, -radii[1] * 0.2, radii[2] * 0.15], tz_radii, bump=0.08)
    shapes = [
        _shape(rng, "venous", [0, -radii[1] * 0.3, 0], radii + [6, 4, 3], shell=3, bump=0.1),
        gland,
        tz,
        *_pair(
            rng,
            "sv_fluid",
            [radii[0] * 0.7, radii[1] * 0.9, radii[2] + 12],
            [14, 6, 8],
            tilt=25,
            bump=0.2,
        ),
    ]
    shapes += _focal(rng, gland, tz)
    return shapes, volume_ml


def _focal(rng, gland: Shape, tz: Shape) -> list[Shape]:
    """Lesions and haemorrhage: independent of which sequences a study has."""
    out = []
    for _ in range(rng.choice([0, 1, 1, 2])):
        zone = gland if rng.random() < 0.7 else tz
        where = zone.centre + rng.uniform(-0.6, 0.6, 3) * zone.radii
        if zone is gland:  # peripheral zone lesions sit posterolaterally
            where[1] = abs(where[1]) + zone.radii[1] * 0.2
        size = rng.uniform(4, 12)
        out.append(_shape(rng, "lesion", where, size * rng.uniform(0.7, 1.3, 3), bump=0.2))
    if rng.random() < 0.25:
        where = gland.centre + [rng.uniform(-0.5, 0.5) * gland.radii[0], gland.radii[1] * 0.5, 0]
        out.append(_shape(rng, "haemorrhage", where, rng.uniform(4, 10, 3), bump=0.3))
    return out


def _bladder(rng, prostate_top: float) -> list[Shape]:
    filling = rng.uniform(0.4, 1.0)
    radii = np.array([50, 40, 35]) * filling + rng.uniform(5, 12, 3)
    centre = [rng.normal(0, 5), rng.uniform(-15, 0), prostate_top + radii[2] * 0.85]
    wall = _shape(rng, "muscle", centre, radii, bump=0.08)
    urine = Shape("urine", wall.centre, wall.radii - rng.uniform(3, 5), wall.bumps, wall.rotation)
    return [wall, urine]


def _vessels(rng) -> list[Shape]:
    shapes = []
    for x, y in ((80, -30), (95, -25)):  # external iliac / femoral artery and vein
        r = rng.uniform(4, 6)
        shapes += _pair(rng, "vessel", [x, y, 0], [r, r, 1], tube=True, tilt=10, bump=0.05)
    return shapes


CLUTTER_TISSUES = ("fat", "muscle", "urine", "stool", "tz", "lesion", "haemorrhage", "sv_fluid")


def _clutter(rng) -> list[Shape]:
    """Blobs of random tissue anywhere in the pelvis: anatomy the net must not rely on."""
    out = []
    for _ in range(int(draw(rng, "clutter"))):
        where = rng.uniform(-70, 70, 3) * [1, 0.8, 0.8]
        radii = rng.uniform(4, 25, 3)
        out.append(_shape(rng, str(rng.choice(CLUTTER_TISSUES)), where, radii, tilt=40, bump=0.3))
    return out


def make_patient(rng: np.random.Generator) -> Patient:
    """Random anatomy; later shapes are painted over earlier ones."""
    prostate, volume = _prostate(rng)
    top = max(s.centre[2] + s.radii[2] for s in prostate if s.tissue == "pz")
    rectum, gas_centre = _rectum(rng)
    shapes = [
        *_body(rng),
        *_muscles(rng),
        *_bones(rng),
        *_vessels(rng),
        *_clutter(rng),
        *rectum,
        *_bladder(rng, top),
        *prostate,
    ]
    scale = float(draw(rng, "anatomy_scale"))
    return Patient(
        shapes=shapes,
        warp=_waves(rng, 4, float(draw(rng, "warp_mm")), (80, 250)),
        texture=_waves(rng, 12, float(draw(rng, "texture")), (15, 90)),
        gas_centre=gas_centre * scale,
        prostate_volume_ml=volume * scale**3,
        scale=scale,
    )


def _wave_sum(waves: np.ndarray, p: np.ndarray) -> np.ndarray:
    out = np.zeros((len(p), 3), dtype=np.float32)
    waves = waves.astype(np.float32)
    for row in waves:
        out += np.sin(p @ row[3:6] + row[6])[:, None] * row[:3]
    return out


def mix(patient: Patient, points: np.ndarray, edge: float, vectors: np.ndarray) -> np.ndarray:
    """Per-point mix of per-tissue values (tissues, M) -> (N, M), soft edges of `edge` mm.

    Painting is linear in the values, so mixing M channels directly equals tissue fractions
    times `vectors`, at M/len(TISSUES) of the cost.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    points = points / np.float32(patient.scale)
    warped = points + _wave_sum(patient.warp, points)
    out = np.repeat(vectors[T["air"]][None, :], len(points), axis=0)
    chunk_low, chunk_high = warped.min(axis=0), warped.max(axis=0)
    for shape in patient.shapes:
        low, high = shape.bounds(margin=5.0)
        if np.any(high < chunk_low) or np.any(low > chunk_high):
            continue  # the whole chunk misses this shape
        inside = np.ones(len(points), dtype=bool)
        for axis in range(3):
            if low[axis] > chunk_low[axis] or high[axis] < chunk_high[axis]:
                inside &= (warped[:, axis] >= low[axis]) & (warped[:, axis] <= high[axis])
        if inside.all():  # no gather/scatter needed
            idx = slice(None)
        else:
            idx = np.flatnonzero(inside)
            if not len(idx):
                continue
        d = shape.distance(warped[idx])
        m = (1.0 / (1.0 + np.exp(np.clip(d / np.float32(edge), -30, 30))))[:, None]
        out[idx] = out[idx] * (1.0 - m) + m * vectors[T[shape.tissue]]
    return out


def fractions(patient: Patient, points: np.ndarray, edge: float) -> np.ndarray:
    """Tissue fractions (N, len(TISSUES)) at points (N, 3)."""
    return mix(patient, points, edge, np.eye(len(TISSUES)))


def texture(patient: Patient, points: np.ndarray) -> np.ndarray:
    """Smooth random proton-density modulation around 1 (tissue heterogeneity)."""
    waves = patient.texture.astype(np.float32)
    out = np.ones(len(points), dtype=np.float32)
    for row in waves:
        out += row[0] * np.sin(points @ row[3:6] + row[6])
    return out
