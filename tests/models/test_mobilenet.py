"""MobileNetV2 (the zoo's depthwise-separable network): its published size, its structure, and a PWT
run that prunes and compacts it."""

from __future__ import annotations

import pytest
import torch

from intrain.models import create_model, model_entry
from intrain.models.mobilenet import InvertedResidual, divisible


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: depthwise convs on one thread


def test_the_cifar_network_has_the_published_size():
    model = create_model("mobilenetv2", num_classes=10, in_channels=3)
    assert sum(p.numel() for p in model.parameters()) == 2_236_682  # the usual CIFAR-10 MobileNetV2: 2.24M
    blocks = [m for m in model.modules() if isinstance(m, InvertedResidual)]
    assert len(blocks) == 17 and sum(b.residual for b in blocks) == 10
    depthwise = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    assert len(depthwise) == 17 and all(m.groups == m.in_channels == m.out_channels for m in depthwise)
    assert model_entry("mobilenetv2").input_size == 32


def test_width_rounds_channels_to_multiples_of_eight():
    assert [divisible(c) for c in (4, 6, 8, 12, 48, 80, 11.5)] == [8, 8, 8, 16, 48, 80, 16]
    model = create_model("mobilenetv2", num_classes=10, in_channels=1, width=0.25)
    assert all(m.out_channels % 8 == 0 for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    features = model.features(torch.zeros(2, 1, 32, 32))
    assert features.shape == (2, 1280, 4, 4)  # 32x32 ends at 4x4: strides 2 at three stages only

# PWT prunes it and its compacted form computes what the masked one did: test_imagenet_models.py
