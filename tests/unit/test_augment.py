import numpy as np
import pytest
import torch

from mrseq.augment import BatchAugment, legendre_basis, rotations, warp
from mrseq.nets import build_net
from mrseq.training import SequenceClassifier, build_batch_augment

SHAPE = (24, 20, 8)


def test_bias_basis_gives_monais_field():
    from monai.transforms import RandBiasField

    coeffs = np.random.default_rng(0).uniform(0, 0.4, 20)
    expected = RandBiasField()._generate_random_field(SHAPE, 3, list(coeffs))
    got = np.einsum("t,txyz->xyz", coeffs.astype(np.float32), legendre_basis(SHAPE, 3).numpy())
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_warp_resamples_as_monais_affine():
    from monai.transforms import Affine

    x = torch.rand(1, 1, *SHAPE)
    matrix = rotations(torch.tensor([[0.1, -0.2, 0.25]])) @ torch.diag(
        torch.tensor([1.1, 0.9, 1.0])
    )
    shift = torch.tensor([[2.0, -1.5, 0.5]])
    affine = torch.eye(4)
    affine[:3, :3], affine[:3, 3] = matrix[0], shift[0]
    expected = Affine(affine=affine, padding_mode="zeros", image_only=True)(x[0])
    torch.testing.assert_close(
        warp(x, matrix, shift)[0], torch.as_tensor(expected), atol=1e-4, rtol=0
    )


def test_mirror_matrix_is_an_exact_left_right_flip():
    x = torch.rand(2, 1, *SHAPE)
    mirror = torch.diag(torch.tensor([-1.0, 1.0, 1.0])).expand(2, 3, 3)
    torch.testing.assert_close(warp(x, mirror, torch.zeros(2, 3)), x.flip(2), atol=1e-5, rtol=0)


def test_seeded_batches_repeat_and_successive_draws_differ():
    x = torch.rand(6, 1, *SHAPE)
    first, second = BatchAugment(1.0, seed=3), BatchAugment(1.0, seed=3)
    a, b = first(x), first(x)
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1
    assert not torch.equal(a, b)
    assert torch.equal(a, second(x))


def test_each_volume_draws_its_own_pose():
    x = torch.rand(1, 1, *SHAPE).expand(8, 1, *SHAPE)
    out = BatchAugment(1.0, seed=0, skip=("RandBiasField", "RandRicianNoise"))(x)
    assert len({round(float(v.sum()), 3) for v in out}) > 4


def test_rician_noise_on_an_empty_volume_has_rayleigh_mean():
    aug = BatchAugment(1.0, seed=0, skip=("RandAffine", "RandFlip", "RandBiasField"))
    aug.p, aug.noise_std = 1.0, 0.1
    out = aug.rician(torch.zeros(64, 1, *SHAPE))
    sigma = aug.noise_std / 2  # the mean of sigma ~ U(0, noise_std)
    assert out.mean().item() == pytest.approx(sigma * np.sqrt(np.pi / 2), rel=0.1)


def test_skipping_everything_only_clamps():
    x = torch.rand(3, 1, *SHAPE) * 1.5
    aug = BatchAugment(
        1.0, seed=0, skip=("RandAffine", "RandFlip", "RandBiasField", "RandRicianNoise")
    )
    assert torch.equal(aug(x), x.clamp(0, 1))


def test_off_at_zero_strength_and_never_on_validation_batches():
    assert build_batch_augment(0.0, 0) is None

    def refuse(_):
        raise AssertionError("augmented a batch outside training")

    model = SequenceClassifier(build_net(10, [4, 8, 8, 8]), 1e-3, 0.0, 1, batch_augment=refuse)
    model.trainer = type("Stub", (), {"training": False})()
    batch = (torch.rand(2, 1, *SHAPE), torch.tensor([0, 1]))
    assert model.on_after_batch_transfer(batch, 0) is batch
