"""The ImageNet models (AlexNet, 224x224 VGG-16) and timm/torchvision models by name."""

from __future__ import annotations

import copy
import importlib.util

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from intrain.cli import main
from intrain.compaction import compact
from intrain.errors import ConfigError
from intrain.methods import pwt
from intrain.models import create_model, list_models, model_entry
from intrain.models.external import with_input_channels


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registered_with_any_input_size():
    assert {"alexnet", "vgg16-224"} <= set(list_models())
    assert model_entry("alexnet").input_size is None and model_entry("vgg16-224").input_size is None


def test_parameter_counts_at_1000_classes():
    # AlexNet: conv 34,944 + 614,656 + 885,120 + 1,327,488 + 884,992; fc 37,752,832 + 16,781,312 + 4,097,000
    # (Caffe's bvlc_alexnet: 60,965,224, its conv2/4/5 split into 2 groups)
    assert count(create_model("alexnet", num_classes=1000, in_channels=3)) == 62_378_344
    # torchvision's vgg16_bn (138,365,992) without the 13 conv and 2 hidden fc biases (-4,224 - 8,192)
    # and with BatchNorm1d after both hidden fc layers (+16,384)
    assert count(create_model("vgg16-224", num_classes=1000, in_channels=3)) == 138_369_960


@pytest.mark.parametrize("name, sizes", [("alexnet", (227, 224, 67)), ("vgg16-224", (224, 32))])
def test_outputs_for_several_image_sizes(name, sizes):
    model = create_model(name, num_classes=7, in_channels=3, width=0.0625).eval()
    for size in sizes:
        assert model(torch.zeros(2, 3, size, size)).shape == (2, 7)
    if name == "alexnet":  # 227 is Caffe's crop: pool5 is 6x6 without the adaptive pool's help
        assert model.features(torch.zeros(1, 3, 227, 227)).shape[-2:] == (6, 6)


@pytest.mark.parametrize("name, size", [("alexnet", 67), ("vgg16-224", 32), ("mobilenetv2", 32)])
def test_compacted_model_computes_what_the_masked_one_did(name, size):
    """Also MobileNetV2 (depthwise convs tied to the 1x1 convs that feed them), though not ImageNet-sized."""
    torch.manual_seed(0)
    model = create_model(name, num_classes=5, in_channels=3, width=0.125).double()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    method = pwt(target=0.9, epochs=1, criterion="l1").attach(model, optimizer)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(4, 3, size, size, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 5, (4,), generator=generator)
    for _ in range(2):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    method.prune_to(0.5)
    masked = copy.deepcopy(model)
    result = compact(model, optimizer, example_inputs=x[:1])
    method.reattach(optimizer, graph=result.graph)
    assert result.params_after < result.params_before
    for train in (False, True):
        outputs = []
        for net in (model, masked):
            torch.manual_seed(3)  # the same dropout masks: the hidden fc layers keep their sizes
            with torch.no_grad():
                outputs.append(net.train(train)(x))
        assert float((outputs[0] - outputs[1]).abs().max()) <= 1e-10


@pytest.mark.parametrize("library, extra", [("timm", "timm"), ("torchvision", "vision")])
def test_library_models_name_the_extra_when_the_library_is_missing(library, extra, capsys):
    if importlib.util.find_spec(library) is not None:
        pytest.skip(f"{library} is installed")
    with pytest.raises(ConfigError, match=rf"needs {library}, which is not installed: pip install 'intrain\[{extra}\]'"):
        create_model(f"{library}:resnet18")
    assert main(["train", "--model", f"{library}:resnet18", "--dataset", "demo", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"pip install 'intrain[{extra}]'" in err


@pytest.mark.parametrize("name, message", [
    ("keras:resnet", "unknown model library 'keras'"),
    ("timm:", "names no timm model"),
    ("resnet18", "choose one of: alexnet, lenet5, mobilenetv2, resnet20, resnet56, vgg16, vgg16-224, timm:NAME, torchvision:NAME"),
])
def test_bad_names_fail_loudly(name, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        create_model(name)


@pytest.mark.parametrize("library", ["timm", "torchvision"])
def test_library_models_take_the_datasets_classes_and_channels(library):
    pytest.importorskip(library)
    model = create_model(f"{library}:resnet18", num_classes=7, in_channels=1)
    assert model.eval()(torch.zeros(2, 1, 64, 64)).shape == (2, 7)
    with pytest.raises(ConfigError, match="unknown model"):
        create_model(f"{library}:no_such_net")
    with pytest.raises(ConfigError, match="drop --width"):
        create_model(f"{library}:resnet18", width=0.5)


def test_first_convolution_is_rebuilt_for_other_input_channels():
    net = nn.Sequential(nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), nn.ReLU()),
                        nn.Conv2d(8, 4, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    second = net[1]
    with_input_channels(net, 1, "test:net")
    first = net[0][0]
    assert (first.in_channels, first.out_channels, first.stride, first.padding, first.bias) == (1, 8, (2, 2), (1, 1), None)
    assert net[1] is second  # only the first convolution
    assert net(torch.zeros(2, 1, 9, 9)).shape == (2, 4)
