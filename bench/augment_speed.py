"""Training augmentation: the whole-batch stage (mrseq.augment) vs MONAI per volume.

The baseline is the recipe as it was up to 2026-12-06: every transform as a MONAI transform per
volume, in one Compose (RandAffine, RandFlip, RandBiasField, the per-volume transforms that stay,
RandRicianNoise). The candidate is what training runs now: those per-volume transforms in the
loader, then `BatchAugment` on the batch. Both at params.yaml's `train.augment_strength`, on the
same volumes (params.yaml's model grid, random values), interleaved in rounds so machine noise
hits both alike. Prints ms per volume for the augmentation alone and for a whole training step
(augmentation, forward, backward, optimiser step of the params.yaml net) and the ratios.

Usage: python bench/augment_speed.py [--batches 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from mrseq.nets import build_net_from_params
from mrseq.params import load_yaml
from mrseq.training import build_augment, build_batch_augment


def monai_reference(strength: float):
    """The per-volume Compose training used before the batch stage (same ranges and odds)."""
    from monai.transforms import Compose, RandAffine, RandBiasField, RandFlip, RandRicianNoise

    s, p = float(strength), min(1.0, 0.5 * float(strength))
    affine = RandAffine(
        prob=min(1.0, 0.8 * s),
        rotate_range=[0.26 * s] * 3,
        scale_range=[0.15 * s] * 3,
        translate_range=[6 * s, 6 * s, 2 * s],
        padding_mode="zeros",
    )
    head = [
        affine,
        RandFlip(prob=0.5, spatial_axis=0),
        RandBiasField(prob=p, coeff_range=(0.0, 0.4 * s)),
    ]
    compose = Compose(
        [
            *head,
            *build_augment(s).transforms,
            RandRicianNoise(prob=p, std=0.05 * s, sample_std=True),
        ]
    )
    compose.set_random_state(seed=0)
    return compose


def augment_monai(compose, batch: torch.Tensor) -> torch.Tensor:
    return torch.stack(
        [torch.as_tensor(compose(v), dtype=torch.float32).clamp(0, 1) for v in batch]
    )


def augment_batched(per_volume, batch_stage, batch: torch.Tensor) -> torch.Tensor:
    return batch_stage(
        torch.stack([torch.as_tensor(per_volume(v), dtype=torch.float32) for v in batch])
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=8, help="batches per side and round")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    params = load_yaml("params.yaml")
    t, shape = params["train"], tuple(params["preprocess"]["shape"])
    strength, size = float(t["augment_strength"]), int(t["batch_size"])
    channels = 2 if params["preprocess"].get("detail_spacing") else 1
    torch.manual_seed(0)
    batches = [torch.rand(size, channels, *shape) for _ in range(args.batches)]
    labels = torch.randint(0, 6, (size,))
    net = build_net_from_params(params["model"], in_channels=channels)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    reference = monai_reference(strength)
    per_volume = build_augment(strength)
    per_volume.set_random_state(seed=0)
    batch_stage = build_batch_augment(strength, seed=0)
    sides = {
        "MONAI per volume": lambda b: augment_monai(reference, b),
        "per volume + batch stage": lambda b: augment_batched(per_volume, batch_stage, b),
    }

    def step(x: torch.Tensor) -> None:
        loss = loss_fn(net(x), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    aug_s = dict.fromkeys(sides, 0.0)
    step_s = dict.fromkeys(sides, 0.0)
    for run in sides.values():  # warm-up: caches, allocator, oneDNN kernels
        step(run(batches[0]))
    for _ in range(args.rounds):
        for name, run in sides.items():
            for batch in batches:
                start = time.perf_counter()
                x = run(batch)
                middle = time.perf_counter()
                step(x)
                aug_s[name] += middle - start
                step_s[name] += time.perf_counter() - start
    volumes = args.rounds * args.batches * size
    print(
        f"{volumes} volumes per side, {shape} x {channels} channel(s), "
        f"batch {size}, strength {strength}"
    )
    print(f"{'':26s} {'augment ms/vol':>15s} {'train step ms/vol':>18s}")
    for name in sides:
        print(
            f"{name:26s} {1000 * aug_s[name] / volumes:15.2f} {1000 * step_s[name] / volumes:18.2f}"
        )
    base, new = sides
    print(
        f"ratio (batch stage / MONAI): augmentation {aug_s[new] / aug_s[base]:.2f}, "
        f"training step {step_s[new] / step_s[base]:.2f}"
    )


if __name__ == "__main__":
    main()
