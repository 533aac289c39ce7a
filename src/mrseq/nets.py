"""3D ResNet factory over MONAI's ResNet: depth and widths from params."""

from __future__ import annotations

from torch import nn

from mrseq.sequences import MODEL_CLASSES

LAYERS = {10: [1, 1, 1, 1], 18: [2, 2, 2, 2], 34: [3, 4, 6, 3]}


def build_net(
    depth: int = 10,
    widths: list[int] = (16, 32, 64, 128),
    conv1_stride: int = 2,
    n_classes: int = len(MODEL_CLASSES),
    in_channels: int = 1,
) -> nn.Module:
    """A basic-block 3D ResNet (MONAI); one input channel per preprocessing grid.

    Narrow widths (the default, 1/4 of the paper-standard 64-512) train on 2 CPU cores;
    `widths: [64, 128, 256, 512]` with depth 18 is the full-size net for GPUs.
    """
    from monai.networks.nets import ResNet

    if depth not in LAYERS:
        raise ValueError(f"model.depth must be one of {sorted(LAYERS)}, got {depth}")
    if len(widths) != 4:
        raise ValueError(f"model.widths needs 4 numbers, got {widths}")
    return ResNet(
        block="basic",
        layers=LAYERS[depth],
        block_inplanes=list(widths),
        spatial_dims=3,
        n_input_channels=in_channels,
        conv1_t_size=7,
        conv1_t_stride=conv1_stride,
        num_classes=n_classes,
    )


def build_net_from_params(model: dict, in_channels: int | None = None) -> nn.Module:
    """`in_channels` overrides the section's (training knows it from the arrays)."""
    return build_net(
        int(model["depth"]),
        list(model["widths"]),
        int(model["conv1_stride"]),
        in_channels=int(in_channels or model.get("in_channels", 1)),
    )
