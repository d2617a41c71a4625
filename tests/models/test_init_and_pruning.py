"""Gaussian He initialisation, seeding, and Torch-Pruning compatibility."""

import math

import pytest
import torch
import torch_pruning as tp
from torch import nn

from intrain.models import create_model, init_weights, list_models, model_entry


def kurtosis(t: torch.Tensor) -> float:
    x = t.detach().flatten().double()
    x = x - x.mean()
    return float((x**4).mean() / (x**2).mean() ** 2)


def test_init_is_gaussian_he_fan_in():
    torch.manual_seed(0)
    model = create_model("lenet5")
    w = model.fc1.weight  # 500 x 800 = 400,000 weights
    expected_std = math.sqrt(2.0 / 800)
    assert abs(w.std().item() - expected_std) < 0.1 * expected_std
    assert abs(w.mean().item()) < 0.01 * expected_std
    assert abs(kurtosis(w) - 3.0) < 0.1  # uniform would be 1.8


def test_default_pytorch_init_is_not_gaussian():
    """Sanity check that the kurtosis test above can tell the two apart."""
    torch.manual_seed(0)
    model = create_model("lenet5", init=False)
    assert kurtosis(model.fc1.weight) < 2.0


@pytest.mark.parametrize("name", ["lenet5", "vgg16", "resnet20"])
def test_init_biases_zero_batchnorm_identity(name):
    torch.manual_seed(0)
    model = create_model(name, width=0.25)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            assert m.weight.std().item() > 0.5 * math.sqrt(2.0 / fan_in)
            if m.bias is not None:
                assert torch.all(m.bias == 0)
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)


def test_init_weights_returns_model_and_resets():
    layer = nn.Linear(1000, 300)
    nn.init.constant_(layer.bias, 5.0)
    assert init_weights(layer) is layer
    assert torch.all(layer.bias == 0)
    assert abs(kurtosis(layer.weight) - 3.0) < 0.15


@pytest.mark.parametrize("name", ["lenet5", "vgg16", "resnet20"])
def test_same_seed_same_weights(name):
    torch.manual_seed(123)
    a = create_model(name, width=0.25).state_dict()
    torch.manual_seed(123)
    b = create_model(name, width=0.25).state_dict()
    torch.manual_seed(124)
    c = create_model(name, width=0.25).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a if k.endswith("conv1.weight") or k.endswith("0.weight"))


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("in_channels", [1, 3])
def test_torch_pruning_dependency_graph_builds(name, in_channels):
    model = create_model(name, in_channels=in_channels, width=0.25)
    size = model_entry(name).input_size or 96  # the ImageNet models take any size; alexnet at least 67
    example = torch.randn(1, in_channels, size, size)
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=example)
    first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    group = graph.get_pruning_group(first_conv, tp.prune_conv_out_channels, idxs=[0])
    assert len(group) > 1  # the conv's BatchNorm / next layer are coupled to it


@pytest.mark.parametrize("name", list_models())
def test_torch_pruning_removes_a_channel(name):
    """Physically pruning one output channel of the first conv keeps the model runnable."""
    model = create_model(name, in_channels=3, width=0.25)
    size = model_entry(name).input_size or 96  # the ImageNet models take any size; alexnet at least 67
    example = torch.randn(2, 3, size, size)
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=example[:1])
    first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    before = first_conv.out_channels
    group = graph.get_pruning_group(first_conv, tp.prune_conv_out_channels, idxs=[0])
    group.prune()
    assert first_conv.out_channels == before - 1
    model.eval()
    assert model(example).shape == (2, 10)
