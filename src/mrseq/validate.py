"""What a volume must be before any work is spent on it: the limits every entry point shares.

Checked from the array's shape and affine (no pixels needed for geometry), so a request that
claims an absurd volume is refused before it can cost memory or time.
"""

from __future__ import annotations

import numpy as np

# What a volume may be before any work is spent on it (checked from the array's shape and
# affine, before preprocessing): MR voxels are 0.1-10 mm, a body fits in 600 mm, and a volume
# beyond 2**26 voxels (e.g. 1024 x 1024 x 64) or under 8 x 8 x 2 is no prostate series.
SPACING_MM = (0.1, 10.0)
MAX_EXTENT_MM = 600.0
MAX_VOXELS = 2**26
MIN_SHAPE = (8, 8, 2)


def why_bad_geometry(shape: tuple[int, ...], affine: np.ndarray) -> str | None:
    """The reason a volume of this shape and affine cannot be classified, or None; needs no
    pixels, so a header claiming an absurd volume is refused before anything is decoded."""
    spacing = np.linalg.norm(np.asarray(affine, float)[:3, :3], axis=0)
    shape = tuple(int(n) for n in shape)
    low, high = SPACING_MM
    if not np.all(np.isfinite(spacing)) or spacing.min() < low or spacing.max() > high:
        text = ", ".join(f"{v:g}" for v in spacing)
        return f"voxel spacing ({text}) mm is outside {low:g}-{high:g} mm"
    extent = spacing * np.array(shape)
    if extent.max() > MAX_EXTENT_MM:
        return f"volume spans {extent.max():.0f} mm, more than {MAX_EXTENT_MM:.0f} mm"
    if int(np.prod(shape)) > MAX_VOXELS:
        return f"volume has {int(np.prod(shape))} voxels, more than {MAX_VOXELS}"
    if any(a < b for a, b in zip(sorted(shape), sorted(MIN_SHAPE), strict=True)):
        return f"volume {shape} is too small (at least {MIN_SHAPE} voxels)"
    return None


def why_unusable(array: np.ndarray, affine: np.ndarray) -> str | None:
    """Geometry as above, then values: NaN, infinities and blank volumes are refused."""
    why = why_bad_geometry(array.shape, affine)
    if why:
        return why
    if not np.all(np.isfinite(array)):
        return "volume holds NaN or infinite values"
    if float(np.max(array)) == float(np.min(array)):
        return "volume is blank (every voxel has the same value)"
    return None
