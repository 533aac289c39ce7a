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


def test_detail_channel_keeps_what_the_coarse_grid_averages_away():
    """Stripes 1 mm apart (0.25 mm pixels): the 2 mm grid averages them to a flat grey, the
    0.5 mm detail channel keeps them; a 2 mm-acquired image (upsampled, blurred) has no such
    texture at fine scale. Channel 0 is the one-channel tensor, unchanged."""
    spec = PreprocessSpec(
        spacing=(2.0, 2.0, 4.0), shape=(24, 24, 10), detail_spacing=(0.5, 0.5, 4.0)
    )
    x = np.arange(240)
    stripes = np.broadcast_to(((x // 2) % 2)[:, None, None], (240, 240, 20)).astype(np.float32)
    fine = preprocess_volume(stripes * 100 + 50, affine((0.25, 0.25, 3.0)), spec)
    assert fine.shape == (2, 24, 24, 10)
    torch.testing.assert_close(
        fine[:1], preprocess_volume(stripes * 100 + 50, affine((0.25, 0.25, 3.0)), SPEC)
    )
    centre = (slice(4, 20), slice(4, 20), 5)
    assert float(fine[0][centre].std()) < 0.05 < float(fine[1][centre].std())
    coarse = preprocess_volume(blob((30, 30, 20)), affine((2.0, 2.0, 3.0)), spec)
    step = np.abs(np.diff(coarse[1].numpy(), axis=0)).max()
    assert step < 0.2  # neighbouring fine voxels of a coarse acquisition barely differ
    assert PreprocessSpec.from_dict(spec.to_dict()) == spec and spec.channels == 2
    assert spec.finest_mm == 0.5 and SPEC.finest_mm == 2.0  # synthesis renders this fine


def test_every_preprocess_param_reaches_the_spec_the_stages_build():
    """The stages build the spec from params.yaml's whole `preprocess` section: a key such as
    detail_spacing must not be dropped by one stage and kept by another."""
    import dataclasses
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[2]
    section = yaml.safe_load((root / "params.yaml").read_text())["preprocess"]
    fields = {f.name for f in dataclasses.fields(PreprocessSpec)} - {"orientation"}
    assert fields <= set(section), fields - set(section)
    changed = {**section, "detail_spacing": [0.5, 0.5, 4.0], "intensity": "log"}
    spec = PreprocessSpec.from_dict(changed)
    assert spec.detail_spacing == (0.5, 0.5, 4.0) and spec.intensity == "log"
    for script in ("preprocess.py", "synthesize.py"):  # export copies what preprocess used
        text = (root / "pipelines" / script).read_text()
        assert "PreprocessSpec.from_dict(" in text and " for k in (" not in text, script


def test_a_folder_of_arrays_records_its_spec_and_training_refuses_two(tmp_path):
    from mrseq.preprocess import load_spec, save_spec
    from mrseq.training import check_same_grid

    one = PreprocessSpec((1.25, 1.25, 4.0), (96, 96, 20))
    other = PreprocessSpec((1.25, 1.25, 4.0), (96, 96, 20), intensity="log")
    for name, spec in (("a", one), ("b", one), ("c", other)):
        (tmp_path / name).mkdir()
        save_spec(tmp_path / name, spec)
    assert load_spec(tmp_path / "a") == one
    check_same_grid(tmp_path / "a", tmp_path / "b")
    with pytest.raises(ValueError, match="different preprocessing"):
        check_same_grid(tmp_path / "a", tmp_path / "c")
    with pytest.raises(FileNotFoundError, match="rerun the stage"):
        load_spec(tmp_path)


@pytest.mark.parametrize("n", [2, 7, 1000, 123_457])
def test_quantiles_equal_torch_quantile_bit_for_bit(n):
    """The partition-based percentiles must give exactly torch.quantile's values: the
    preprocessed arrays (and so the trained model) must not change with the speed-up."""
    from mrseq.preprocess import quantiles

    rng = np.random.default_rng(n)
    for flat in (
        torch.from_numpy(rng.random(n, dtype=np.float32) * 3000),
        torch.from_numpy(rng.integers(0, 50, n).astype(np.float32)),  # many ties
    ):
        qs = [0.005, 0.5, 0.995, 0.0, 1.0]
        assert torch.equal(quantiles(flat, qs), torch.quantile(flat, torch.tensor(qs)))
