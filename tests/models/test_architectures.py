"""Architecture shapes and golden parameter counts."""

import pytest
import torch
from torch import nn

from intrain.models import create_model


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def modules_of(model: nn.Module, kind: type) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, kind)]


# ---------------------------------------------------------------- LeNet-5


def test_lenet5_parameter_count():
    model = create_model("lenet5")
    weights = sum(p.numel() for name, p in model.named_parameters() if name.endswith("weight"))
    biases = sum(p.numel() for name, p in model.named_parameters() if name.endswith("bias"))
    assert (weights, biases) == (430_500, 580)
    assert n_params(model) == 431_080


def test_lenet5_layout_and_output():
    model = create_model("lenet5")
    assert [tuple(model.conv1.weight.shape), tuple(model.conv2.weight.shape)] == [(20, 1, 5, 5), (50, 20, 5, 5)]
    assert [tuple(model.fc1.weight.shape), tuple(model.fc2.weight.shape)] == [(500, 800), (10, 500)]
    assert len(modules_of(model, nn.ReLU)) == 1  # Caffe: no ReLU after the convs
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_lenet5_width_and_channels():
    model = create_model("lenet5", in_channels=3, width=0.5, num_classes=4)
    assert tuple(model.conv1.weight.shape) == (10, 3, 5, 5)
    assert tuple(model.fc1.weight.shape) == (250, 25 * 16)
    assert model(torch.randn(2, 3, 28, 28)).shape == (2, 4)


# ---------------------------------------------------------------- VGG-16


def test_vgg16_layers_and_batchnorm_after_every_layer():
    model = create_model("vgg16", in_channels=3)
    assert len(modules_of(model, nn.Conv2d)) == 13
    assert len(modules_of(model, nn.Linear)) == 3
    assert len(modules_of(model.features, nn.MaxPool2d)) == 5

    feats = list(model.features)
    for i, layer in enumerate(feats):
        if isinstance(layer, nn.Conv2d):
            assert isinstance(feats[i + 1], nn.BatchNorm2d) and isinstance(feats[i + 2], nn.ReLU)
            assert feats[i + 1].num_features == layer.out_channels
            assert layer.kernel_size == (3, 3) and layer.padding == (1, 1)

    cls = list(model.classifier)
    linears = [i for i, layer in enumerate(cls) if isinstance(layer, nn.Linear)]
    for i in linears[:2]:
        assert isinstance(cls[i + 1], nn.BatchNorm1d) and isinstance(cls[i + 2], nn.ReLU)
    assert linears[-1] == len(cls) - 1  # logits come straight out of the last fc
    assert [(cls[i].in_features, cls[i].out_features) for i in linears] == [(512, 512), (512, 512), (512, 10)]
    assert n_params(model) == 15_250_378


@pytest.mark.parametrize("in_channels", [1, 3])
def test_vgg16_output_shape(in_channels):
    model = create_model("vgg16", in_channels=in_channels, num_classes=100)
    assert model(torch.randn(2, in_channels, 32, 32)).shape == (2, 100)


def test_vgg16_width_quarter():
    model = create_model("vgg16", width=0.25, num_classes=10)
    channels = [m.out_channels for m in modules_of(model, nn.Conv2d)]
    assert channels == [16, 16, 32, 32, 64, 64, 64, 128, 128, 128, 128, 128, 128]
    out_features = [m.out_features for m in modules_of(model, nn.Linear)]
    assert out_features == [128, 128, 10]
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 10)


# ---------------------------------------------------------------- ResNets


def _convs(model):
    main = [m for m in modules_of(model, nn.Conv2d) if m.kernel_size == (3, 3)]
    projections = [m for m in modules_of(model, nn.Conv2d) if m.kernel_size == (1, 1)]
    return main, projections


@pytest.mark.parametrize(("name", "n"), [("resnet20", 3), ("resnet56", 9)])
def test_resnet_structure(name, n):
    model = create_model(name, in_channels=3)
    main, projections = _convs(model)
    assert len(main) == 1 + 2 * 3 * n  # stem + two convs per block, three stages
    assert len(projections) == 2  # first block of stages 2 and 3
    assert all(p.stride == (2, 2) for p in projections)
    assert [len(stage) for stage in (model.layer1, model.layer2, model.layer3)] == [n, n, n]
    assert [model.layer1[0].conv1.out_channels, model.layer2[0].conv1.out_channels, model.layer3[0].conv1.out_channels] == [16, 32, 64]
    assert isinstance(model.layer1[0].shortcut, nn.Identity)
    assert isinstance(model.layer2[1].shortcut, nn.Identity)
    assert model.fc.in_features == 64
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_resnet_golden_parameter_counts():
    # Option A (zero-padding) ResNet-20 has 269,722; the two projections add 512+64 and 2048+128.
    assert n_params(create_model("resnet20", in_channels=3)) == 272_474
    assert n_params(create_model("resnet20", in_channels=1)) == 272_186
    assert n_params(create_model("resnet56", in_channels=3)) == 855_770


def test_resnet_width_and_grayscale():
    model = create_model("resnet20", in_channels=1, width=0.5, num_classes=7)
    assert model.conv1.weight.shape == (8, 1, 3, 3)
    assert model.fc.in_features == 32
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 7)
