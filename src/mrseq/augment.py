"""Whole-batch augmentation: MONAI's three costliest random transforms, redone for a batch.

Per volume, MONAI's RandAffine, RandBiasField and RandRicianNoise took 13.5 of the 16.8 ms the
training augmentation cost on 2 CPU cores (96 x 96 x 20 voxels), more than the net's forward and
backward pass (~9 ms a volume): MONAI builds each sampling grid, bias polynomial and noise field
volume by volume, in float64 numpy for the bias field. Here they are drawn per volume with the
same ranges and odds and applied to the whole batch in a few tensor operations (one
`grid_sample`, one product with a cached Legendre basis, one Rician draw for the volumes that
get noise), on the batch's device, so a GPU runs them too. `bench/augment_speed.py` times both.

The cheaper MONAI transforms (resolution loss, blur, Gibbs ringing, k-space spikes, contrast)
stay per volume in the data loader (`mrseq.training.build_augment`); this stage runs after them,
on the batch (`SequenceClassifier.on_after_batch_transfer`). The order therefore differs from
the single MONAI Compose of before (bias and geometry now follow the contrast transforms): each
draw is still one smooth gain field, one pose and one noise level per volume.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

# Names of the MONAI transforms this stage replaces (bench/recipe.py leaves them out by name).
REPLACED = ("RandAffine", "RandFlip", "RandBiasField", "RandRicianNoise")
BIAS_DEGREE = 3  # RandBiasField's default


class BatchAugment:
    """Random pose (rotation, scaling, translation, left-right flip), bias field and Rician
    noise for (B, C, X, Y, Z) batches in [0, 1]; output clamped to [0, 1].

    Ranges are those `build_augment` gave the MONAI transforms at `strength`; `skip` leaves
    out transforms by their MONAI name (ablations). Draws come from generators seeded by
    `seed`, so one seed gives one sequence of augmentations on one machine.
    """

    def __init__(self, strength: float, seed: int, skip: tuple[str, ...] = ()):
        s = float(strength)
        self.p = min(1.0, 0.5 * s)
        self.affine_prob = min(1.0, 0.8 * s)
        self.rotate, self.scale = 0.26 * s, 0.15 * s
        self.translate = torch.tensor([6 * s, 6 * s, 2 * s])  # voxels along X, Y, Z
        self.bias_coeff, self.noise_std = 0.4 * s, 0.05 * s
        self.skip = set(skip)
        self.seed = int(seed)
        self.params = torch.Generator().manual_seed(self.seed)
        self.noise: dict[str, torch.Generator] = {}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        if "RandBiasField" not in self.skip:
            x = x * self.bias_field(n, x.shape[2:], x.device)
        if not {"RandAffine", "RandFlip"} <= self.skip:
            x = warp(x, *self.poses(n))
        if "RandRicianNoise" not in self.skip:
            x = self.rician(x)
        return x.clamp(0, 1)

    def _uniform(self, *shape: int, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
        return low + (high - low) * torch.rand(*shape, generator=self.params)

    def poses(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(n, 3, 3) matrices and (n, 3) shifts taking output voxel coordinates (centred) to
        input ones: RandAffine's rotation about each axis and per-axis scale with
        `affine_prob`, its translation in voxels, then RandFlip's left-right mirror."""
        angles = self._uniform(n, 3, low=-self.rotate, high=self.rotate)
        scales = 1 + self._uniform(n, 3, low=-self.scale, high=self.scale)
        shifts = self._uniform(n, 3, low=-1, high=1) * self.translate
        moved = self._uniform(n) < self.affine_prob
        flipped = self._uniform(n) < 0.5
        if "RandAffine" in self.skip:
            moved = torch.zeros_like(moved)
        if "RandFlip" in self.skip:
            flipped = torch.zeros_like(flipped)
        matrices = rotations(angles) @ torch.diag_embed(scales)
        matrices = torch.where(moved[:, None, None], matrices, torch.eye(3))
        shifts = torch.where(moved[:, None], shifts, torch.zeros(3))
        mirror = torch.ones(n, 3)
        mirror[flipped, 0] = -1
        return matrices * mirror[:, None, :], shifts

    def bias_field(self, n: int, shape: tuple[int, ...], device) -> torch.Tensor:
        """(n, 1, X, Y, Z) gains exp(sum c_ijk P_i(x) P_j(y) P_k(z)), i + j + k <= 3, each
        c ~ U(0, bias_coeff), with odds p (else 1): MONAI RandBiasField's field."""
        basis = legendre_basis(tuple(shape), BIAS_DEGREE, device)
        coeffs = self._uniform(n, basis.shape[0], high=self.bias_coeff)
        coeffs[self._uniform(n) >= self.p] = 0
        log_gain = torch.einsum("nt,txyz->nxyz", coeffs.to(device), basis)
        return torch.exp(log_gain)[:, None]

    def rician(self, x: torch.Tensor) -> torch.Tensor:
        """RandRicianNoise with sample_std: sigma ~ U(0, noise_std) per volume, odds p."""
        n = x.shape[0]
        sigma = self._uniform(n, high=self.noise_std)
        chosen = torch.nonzero(self._uniform(n) < self.p).flatten()
        if len(chosen) == 0:
            return x
        key = str(x.device)
        if key not in self.noise:
            self.noise[key] = torch.Generator(device=x.device).manual_seed(self.seed + 1)
        picked = x[chosen.to(x.device)]
        s = sigma[chosen].to(x.device).view(-1, *[1] * (x.ndim - 1))
        real, imag = torch.randn(
            (2, *picked.shape), generator=self.noise[key], device=x.device, dtype=x.dtype
        )
        x = x.clone()
        x[chosen.to(x.device)] = torch.sqrt((picked + s * real) ** 2 + (s * imag) ** 2)
        return x


def rotations(angles: torch.Tensor) -> torch.Tensor:
    """(n, 3) angles in radians about X, Y, Z -> (n, 3, 3) rotations Rx @ Ry @ Rz."""
    c, s = torch.cos(angles), torch.sin(angles)
    one, zero = torch.ones_like(c[:, 0]), torch.zeros_like(c[:, 0])

    def mat(rows):
        return torch.stack([torch.stack(r, -1) for r in rows], -2)

    rx = mat([[one, zero, zero], [zero, c[:, 0], -s[:, 0]], [zero, s[:, 0], c[:, 0]]])
    ry = mat([[c[:, 1], zero, s[:, 1]], [zero, one, zero], [-s[:, 1], zero, c[:, 1]]])
    rz = mat([[c[:, 2], -s[:, 2], zero], [s[:, 2], c[:, 2], zero], [zero, zero, one]])
    return rx @ ry @ rz


def warp(x: torch.Tensor, matrices: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Resample each volume of (B, C, X, Y, Z) at input = matrix @ output + shift (voxel
    units, about the volume centre), trilinear, zeros outside: RandAffine's resampling
    (the same values as MONAI's `Affine` given the same matrix, to ~1e-5)."""
    size = x.shape[2:]
    affine = torch.cat([matrices, shifts[:, :, None]], 2).to(x)  # (B, 3, 4), rows X, Y, Z
    scale = torch.tensor([2 / d for d in size], dtype=x.dtype, device=x.device)
    affine = (affine * scale[:, None]).flip(1)  # grid_sample's units and (Z, Y, X) order
    grid = torch.matmul(centred_grid(tuple(size), x.dtype, x.device), affine.transpose(1, 2))
    grid = grid.view(x.shape[0], *size, 3)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@functools.lru_cache(maxsize=8)
def centred_grid(size: tuple[int, ...], dtype, device) -> torch.Tensor:
    """(1, X*Y*Z, 4) voxel coordinates about the centre, and a 1 for the shift.

    Cached and multiplied in one matmul: `F.affine_grid` rebuilds it every call and took longer
    than the resampling itself on CPU."""
    axes = [torch.arange(d, dtype=dtype, device=device) - (d - 1) / 2 for d in size]
    grid = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([*grid, torch.ones(size, dtype=dtype, device=device)], -1).view(1, -1, 4)


@functools.lru_cache(maxsize=8)
def legendre_basis(shape: tuple[int, ...], degree: int, device=None) -> torch.Tensor:
    """(terms, X, Y, Z) products P_i(x) P_j(y) P_k(z) for i + j + k <= degree on
    linspace(-1, 1) per axis, in the order RandBiasField assigns its coefficients; cached
    like `centred_grid` (one per shape and device, built once per fit)."""
    coords = [np.linspace(-1.0, 1.0, d, dtype=np.float32) for d in shape]
    polys = [
        np.stack(
            [np.polynomial.legendre.legval(c, np.eye(degree + 1)[i]) for i in range(degree + 1)]
        )
        for c in coords
    ]
    terms = [
        (i, j, k)
        for i in range(degree + 1)
        for j in range(degree + 1 - i)
        for k in range(degree + 1 - i - j)
    ]
    basis = [np.einsum("x,y,z->xyz", polys[0][i], polys[1][j], polys[2][k]) for i, j, k in terms]
    return torch.from_numpy(np.stack(basis).astype(np.float32)).to(device)
