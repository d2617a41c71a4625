"""The model registry: names, lookup, argument validation."""

import pytest
import torch
from torch import nn

from intrain.errors import ConfigError
from intrain.models import ModelEntry, create_model, list_models, model_entry, register_model
from intrain.models.registry import scale_channels


def test_list_models_is_sorted_and_complete():
    assert list_models() == ["alexnet", "lenet5", "mobilenetv2", "resnet20", "resnet56", "vgg16", "vgg16-224"]


@pytest.mark.parametrize(("name", "size"), [("lenet5", 28), ("vgg16", 32), ("resnet20", 32), ("resnet56", 32)])
def test_model_entry_input_size(name, size):
    entry = model_entry(name)
    assert isinstance(entry, ModelEntry)
    assert entry.name == name
    assert entry.input_size == size


def test_unknown_name_lists_choices():
    with pytest.raises(ConfigError) as excinfo:
        create_model("x")
    assert str(excinfo.value) == ("unknown model 'x'; choose one of: alexnet, lenet5, mobilenetv2, resnet20, resnet56, vgg16, "
                                  "vgg16-224, timm:NAME, torchvision:NAME")
    with pytest.raises(ConfigError, match="unknown model"):
        model_entry("VGG16")


@pytest.mark.parametrize("width", [0, -0.5, 0.0, float("nan"), float("inf"), "1", None, True])
def test_bad_width(width):
    with pytest.raises(ConfigError, match="width"):
        create_model("lenet5", width=width)


@pytest.mark.parametrize("num_classes", [1, 0, -3, 2.5, "10", True])
def test_bad_num_classes(num_classes):
    with pytest.raises(ConfigError, match="num_classes"):
        create_model("lenet5", num_classes=num_classes)


@pytest.mark.parametrize("in_channels", [0, -1, 1.0, None])
def test_bad_in_channels(in_channels):
    with pytest.raises(ConfigError, match="in_channels"):
        create_model("lenet5", in_channels=in_channels)


def test_num_classes_two_is_allowed():
    assert create_model("lenet5", num_classes=2)(torch.randn(3, 1, 28, 28)).shape == (3, 2)


@pytest.mark.parametrize(("channels", "width", "expected"), [(64, 1.0, 64), (64, 0.25, 16), (20, 0.33, 7), (16, 0.01, 1)])
def test_scale_channels(channels, width, expected):
    assert scale_channels(channels, width) == expected


def test_register_model_and_duplicate(monkeypatch):
    from intrain.models import registry

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    @register_model("tiny", input_size=8)
    def tiny(*, num_classes, in_channels, width):
        return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * 64, num_classes))

    assert "tiny" in list_models()
    assert model_entry("tiny") == ModelEntry("tiny", tiny, 8)
    assert create_model("tiny", num_classes=3)(torch.randn(2, 1, 8, 8)).shape == (2, 3)
    with pytest.raises(ValueError, match="already registered"):
        register_model("tiny")(tiny)
