import numpy as np
import pytest
import torch

from mrseq.preprocess import PreprocessSpec, decimate, preprocess_volume

SPEC = PreprocessSpec(spacing=(2.0, 2.0, 4.0), shape=(24, 24, 10))


def blob(shape=(80, 70, 20)):
    x, y, z = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    return (1000 * np.exp(-((x - 0.2) ** 2 + y**2 + z**2) / 0.1)).astype(np.float32)


def affine(spacing=(0.8, 0.9, 3.0)):
    return np.diag([*spacing, 1.0])


def test_shape_dtype_and_range():
    out = preprocess_volume(blob(), affine(), SPEC)
    assert out.shape == (1, 24, 24, 10) and out.dtype == torch.float32
    assert float(out.min()) >= 0 and float(out.max()) <= 1 and float(out.max()) > 0.9


def test_intensity_scale_does_not_matter():
    a = preprocess_volume(blob(), affine(), SPEC)
    b = preprocess_volume(blob() * 37.5 + 12, affine(), SPEC)
    torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


def test_storage_orientation_does_not_matter():
    """The same anatomy stored with x flipped (and the affine saying so) gives the same tensor."""
    vol, aff = blob(), affine()
    flipped = vol[::-1].copy()
    aff_flipped = aff.copy()
    aff_flipped[0, 0] = -aff[0, 0]
    aff_flipped[0, 3] = aff[0, 0] * (vol.shape[0] - 1)
    torch.testing.assert_close(
        preprocess_volume(vol, aff, SPEC),
        preprocess_volume(flipped, aff_flipped, SPEC),
        atol=1e-4,
        rtol=0,
    )


def test_decimate_keeps_world_coordinates():
    from monai.data import MetaTensor

    image = MetaTensor(torch.rand(1, 12, 12, 4), affine=torch.tensor(affine((0.5, 0.5, 3.0))))
    small = decimate(image, (2.0, 2.0, 3.0))
    assert small.shape == (1, 3, 3, 4)
    # the centre of the first 4x4 block sits at voxel (1.5, 1.5) of the original grid
    np.testing.assert_allclose(small.affine[:3, 3].numpy(), [0.75, 0.75, 0.0])
    np.testing.assert_allclose(np.diag(small.affine.numpy())[:3], [2.0, 2.0, 3.0])
    assert float(small[0, 0, 0, 0]) == pytest.approx(float(image[0, :4, :4, 0].mean()), rel=1e-5)


def test_rejects_non_3d():
    with pytest.raises(ValueError, match="3D"):
        preprocess_volume(np.zeros((4, 4)), affine(), SPEC)
