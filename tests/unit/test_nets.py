import pytest
import torch

from mrseq.nets import build_net
from mrseq.sequences import MODEL_CLASSES


@pytest.mark.parametrize("depth, shape", [(10, (2, 1, 32, 32, 12)), (18, (2, 1, 24, 24, 8))])
def test_output_shape(depth, shape):
    net = build_net(depth, [4, 8, 8, 16])
    assert net(torch.rand(shape)).shape == (shape[0], len(MODEL_CLASSES))  # five + other


def test_every_parameter_gets_a_finite_gradient():
    net = build_net(10, [4, 8, 8, 16])
    net(torch.rand(2, 1, 24, 24, 8)).sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name


def test_bad_depth_and_widths():
    with pytest.raises(ValueError, match="depth"):
        build_net(12)
    with pytest.raises(ValueError, match="4 numbers"):
        build_net(10, [4, 8])
