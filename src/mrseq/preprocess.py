"""The one deterministic volume -> tensor transform, shared by training, evaluation and serving.

Its parameters travel in model_spec.json, so a served model preprocesses exactly as it was
trained. Order matters: reorient, normalise on the whole volume (so padding stays at the
minimum), anti-alias, resample, then crop/pad around the centre.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mrseq import layout
from mrseq.pool import run_all

logging.getLogger("monai.data.nvimgcodec_pydicom_plugin").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=".*NvImgCodecPydicomReader.*")


@dataclass(frozen=True)
class PreprocessSpec:
    spacing: tuple[float, float, float]  # mm, RAS axes
    shape: tuple[int, int, int]  # voxels
    percentiles: tuple[float, float] = (0.5, 99.5)
    orientation: str = "RAS"
    antialias: bool = True
    intensity: str = "percentile"  # or "log": log-compressed over the robust range
    # A second channel at this finer spacing over the central part of the same box: the
    # acquired resolution and EPI texture that separate b0 DWI from fat-suppressed TSE, which
    # the coarse grid averages away. None: one channel.
    detail_spacing: tuple[float, float, float] | None = None

    @property
    def grids(self) -> list[tuple[float, float, float]]:
        """One output grid per channel: the model grid, then the detail grid if any."""
        return [self.spacing] + ([self.detail_spacing] if self.detail_spacing else [])

    @property
    def channels(self) -> int:
        return len(self.grids)

    @property
    def finest_mm(self) -> float:
        """The finest in-plane spacing of any channel: synthesis must render no coarser."""
        return min(min(g[:2]) for g in self.grids)

    @classmethod
    def from_dict(cls, d: dict) -> PreprocessSpec:
        return cls(
            spacing=tuple(float(v) for v in d["spacing"]),
            shape=tuple(int(v) for v in d["shape"]),
            percentiles=tuple(float(v) for v in d.get("percentiles", (0.5, 99.5))),
            orientation=d.get("orientation", "RAS"),
            antialias=bool(d.get("antialias", True)),
            intensity=str(d.get("intensity", "percentile")),
            detail_spacing=_spacing_or_none(d.get("detail_spacing")),
        )

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def save_spec(folder: Path, spec: PreprocessSpec) -> None:
    """Record the spec a folder of arrays was made with (preprocess and synthesize)."""
    (Path(folder) / layout.SPEC_JSON).write_text(json.dumps(spec.to_dict(), indent=2) + "\n")


def load_spec(folder: str | Path) -> PreprocessSpec:
    """The spec a folder of arrays was made with; a clear error for a folder without one."""
    path = Path(folder) / layout.SPEC_JSON
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: rerun the stage that made {folder}")
    return PreprocessSpec.from_dict(json.loads(path.read_text()))


def _spacing_or_none(value) -> tuple[float, float, float] | None:
    return None if value is None else tuple(float(v) for v in value)


def quantiles(flat: torch.Tensor, qs) -> torch.Tensor:
    """torch.quantile(flat, qs) (linear interpolation), bit for bit, by one np.partition
    instead of a full sort: 5x faster on a volume, and most of preprocessing's time was the sort."""
    q = torch.as_tensor(qs, dtype=flat.dtype)
    ranks = q * (flat.numel() - 1)  # torch's own arithmetic, in the input's dtype
    below, above = ranks.to(torch.long), ranks.ceil().to(torch.long)
    part = np.partition(flat.numpy(), sorted(set(below.tolist() + above.tolist())))
    low, high = torch.from_numpy(part[below.numpy()]), torch.from_numpy(part[above.numpy()])
    return low.lerp(high, ranks - below)


def normalise(image: torch.Tensor, low_pct: float, high_pct: float) -> torch.Tensor:
    """Percentile clip to [0, 1]: no absolute scale survives, so vendor scaling cannot matter."""
    low, high = quantiles(_sample(image), [low_pct / 100, high_pct / 100])
    return ((image - low) / torch.clamp(high - low, min=1e-6)).clamp(0, 1)


def normalise_log(image: torch.Tensor, low_pct: float, high_pct: float) -> torch.Tensor:
    """log(1 + x / median) above the low percentile, scaled by its high percentile to [0, 1]:
    the bright tail (fluid on ADC, restricted tissue at high b) keeps its structure instead of
    saturating. Scale-free like `normalise`, so a vendor's scaling cannot matter."""
    low = quantiles(_sample(image), [low_pct / 100])[0]
    linear = (image - low).clamp(min=0)
    median = quantiles(_sample(linear), [0.5])[0].clamp(min=1e-6)
    logged = torch.log1p(linear / median)
    high = quantiles(_sample(logged), [high_pct / 100])[0].clamp(min=1e-6)
    return (logged / high).clamp(0, 1)


def _sample(image: torch.Tensor) -> torch.Tensor:
    """The voxels the percentiles are read from: all, or a strided 1-2 M of a large volume."""
    plain = image.as_tensor() if hasattr(image, "as_tensor") else image  # MetaTensor -> Tensor
    flat = plain.flatten().float()
    return flat[:: flat.numel() // 1_000_000 + 1] if flat.numel() > 2_000_000 else flat


def decimate(image, target_spacing) -> torch.Tensor:
    """Box-average by the integer part of the downsampling factor (an area filter), so that
    noise and fine texture do not alias when resampling to coarse spacing; affine kept exact."""
    from monai.data import MetaTensor

    affine = image.affine.clone()
    current = torch.linalg.norm(affine[:3, :3], dim=0)
    k = [max(1, int(t / float(c))) for t, c in zip(target_spacing, current, strict=True)]
    k = [min(kk, n) for kk, n in zip(k, image.shape[1:], strict=True)]
    if k == [1, 1, 1]:
        return image
    data = torch.nn.functional.avg_pool3d(image.as_tensor()[None], kernel_size=k, stride=k)[0]
    steps = torch.tensor(k, dtype=affine.dtype)
    affine[:3, 3] += affine[:3, :3] @ ((steps - 1) / 2)  # new voxel 0 is the old block's centre
    affine[:3, :3] *= steps
    return MetaTensor(data, affine=affine)


NORMALISERS = {"percentile": normalise, "log": normalise_log}


def preprocess_volume(array: np.ndarray, affine: np.ndarray, spec: PreprocessSpec) -> torch.Tensor:
    """(X, Y, Z) array + RAS affine -> float32 tensor (spec.channels, *spec.shape) in [0, 1]."""
    from monai.data import MetaTensor
    from monai.transforms import Orientation

    if array.ndim != 3 or min(array.shape) < 1:
        raise ValueError(f"expected a 3D volume, got shape {array.shape}")
    image = MetaTensor(
        torch.as_tensor(np.asarray(array, dtype=np.float32))[None],
        affine=torch.as_tensor(affine, dtype=torch.float64),
    )
    image = Orientation(axcodes=spec.orientation, labels=None)(image)
    if spec.intensity not in NORMALISERS:
        raise ValueError(f"unknown intensity {spec.intensity!r}; one of {sorted(NORMALISERS)}")
    image = NORMALISERS[spec.intensity](image, *spec.percentiles)
    channels = [_resample(image, spacing, spec) for spacing in spec.grids]
    return torch.cat(channels).to(torch.float32).contiguous()


def _resample(image, spacing, spec: PreprocessSpec) -> torch.Tensor:
    """Anti-alias, resample to `spacing`, crop/pad to spec.shape around the centre."""
    from monai.transforms import ResizeWithPadOrCrop, Spacing

    if spec.antialias:
        image = decimate(image, spacing)
    image = Spacing(pixdim=spacing, mode="bilinear")(image)
    image = ResizeWithPadOrCrop(spatial_size=spec.shape)(image)
    return torch.as_tensor(image, dtype=torch.float32)


def _one(args: tuple[str, str, dict]) -> str | None:
    from mrseq.ingest import load_saved_volume

    source, target, spec = args
    try:
        array, affine = load_saved_volume(source)
        tensor = preprocess_volume(array, affine, PreprocessSpec.from_dict(spec))
        np.save(target, tensor.numpy().astype(np.float16))  # halves the cache; [0,1] fits
        return None
    except Exception as exc:  # report, keep going with the rest
        return f"{source}: {type(exc).__name__}: {exc}"


def preprocess_index(
    index: pd.DataFrame,
    interim: Path,
    out: Path,
    spec: PreprocessSpec,
    workers: int = 1,
    progress: bool = True,
) -> pd.DataFrame:
    """Preprocess every labelled volume; write out/arrays/<volume_id>.npy, out/index.csv and
    the spec used (out/preprocess_spec.json: export puts it in the model as it is)."""
    (out / layout.ARRAYS_DIR).mkdir(parents=True, exist_ok=True)
    save_spec(out, spec)
    jobs = [
        (str(interim / f), str(out / layout.array_file(v)), spec.to_dict())
        for v, f in zip(index.volume_id, index.file, strict=True)
    ]
    torch.set_num_threads(1 if workers > 1 else torch.get_num_threads())
    errors = run_all(
        _one,
        jobs,
        desc="preprocess",
        unit="vol",
        progress=progress,
        workers=workers,
        min_jobs=9,
        chunksize=4,
    )
    ok = [e is None for e in errors]
    for e in errors:
        if e:
            logging.getLogger(__name__).warning("preprocess failed: %s", e)
    kept = index[ok].assign(array=[layout.array_file(v) for v in index.volume_id[ok]])
    kept.to_csv(out / layout.INDEX_CSV, index=False)
    return kept
