"""Models from timm and torchvision by name: ``timm:NAME`` and ``torchvision:NAME``.

They are built without pretrained weights (``pretrained=False`` / ``weights=None``), with the
dataset's class count and input channels, and keep their library's own initialisation. timm takes
the channels itself (``in_chans``); for torchvision the first convolution is rebuilt with the
dataset's channels when it has another count. ``width`` does not apply to them. A library that is
not installed, or a name it does not know, is one line naming what to do.
"""

from __future__ import annotations

import importlib
from typing import Callable

from torch import nn

from intrain.errors import ConfigError

LIBRARIES = ("timm", "torchvision")
EXTRAS = {"timm": "pip install 'intrain[timm]'", "torchvision": "pip install 'intrain[vision]'"}


def split_name(name: str) -> tuple[str, str] | None:
    """``("timm", "resnet18")`` for ``"timm:resnet18"``; ``None`` for a registry name."""
    if not isinstance(name, str) or ":" not in name:
        return None
    library, _, model = name.partition(":")
    if library not in LIBRARIES:
        raise ConfigError(f"unknown model library '{library}' in {name!r}; use timm:NAME or torchvision:NAME")
    if not model:
        raise ConfigError(f"model {name!r} names no {library} model; e.g. {library}:resnet18")
    return library, model


def _import(library: str, name: str):
    try:
        return importlib.import_module(library if library == "timm" else "torchvision.models")
    except ImportError:
        raise ConfigError(f"model {name!r} needs {library}, which is not installed: {EXTRAS[library]}") from None
    except RuntimeError as exc:  # torchvision built for another torch build, e.g. PyPI's beside a +cpu torch
        if "torchvision::" not in str(exc):
            raise
        raise ConfigError(build_mismatch(str(exc))) from None


def build_mismatch(error: str) -> str:
    """The one line for a torchvision whose compiled operators do not fit the installed torch."""
    import torch

    version = torch.__version__
    local = version.split("+")[1] if "+" in version else None
    index = f" --index-url https://download.pytorch.org/whl/{local}" if local else ""
    return (f"torchvision does not fit the installed torch {version} ({error.strip().splitlines()[-1]}): install the "
            f"torchvision built for it, from the index torch came from: pip install torchvision{index} "
            f"\"torch=={version.split('+')[0]}\"")


def external_factory(library: str, model: str) -> Callable[..., nn.Module]:
    """A registry-style factory ``(num_classes=, in_channels=, width=)`` for a library model."""
    name = f"{library}:{model}"

    def factory(*, num_classes: int, in_channels: int, width: float) -> nn.Module:
        if width != 1.0:
            raise ConfigError(f"width: {name} is built as its library defines it; drop --width")
        module = _import(library, name)
        if library == "timm":
            if model not in module.list_models():
                raise ConfigError(f"unknown model {name!r}; timm.list_models() lists its names")
            return module.create_model(model, pretrained=False, num_classes=num_classes, in_chans=in_channels)
        if model not in module.list_models():
            raise ConfigError(f"unknown model {name!r}; torchvision.models.list_models() lists its names")
        net = module.get_model(model, weights=None, num_classes=num_classes)
        return net if in_channels == 3 else with_input_channels(net, in_channels, name)

    return factory


def with_input_channels(model: nn.Module, in_channels: int, name: str) -> nn.Module:
    """``model`` with its first convolution rebuilt for ``in_channels`` input channels."""
    for path, child in model.named_modules():  # depth first: the first convolution the input meets
        if not isinstance(child, nn.Conv2d):
            continue
        if child.groups != 1:
            raise ConfigError(f"model {name!r}: its first convolution is grouped; cannot give it "
                              f"{in_channels} input channels")
        parent_path, _, attribute = path.rpartition(".")
        setattr(model.get_submodule(parent_path), attribute, nn.Conv2d(
            in_channels, child.out_channels, child.kernel_size, child.stride, child.padding,
            child.dilation, bias=child.bias is not None, padding_mode=child.padding_mode))
        return model
    raise ConfigError(f"model {name!r} has no convolution to take {in_channels} input channels")
