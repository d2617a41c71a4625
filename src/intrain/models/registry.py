"""A timm-style registry of model factories.

Each architecture module decorates a small factory with :func:`register_model`;
:func:`create_model` looks the name up, validates the common arguments, builds the
network and (by default) applies :func:`intrain.models.init.init_weights`.

A factory is called with keyword arguments only::

    factory(num_classes=..., in_channels=..., width=...) -> nn.Module

Example::

    from intrain.models import create_model
    model = create_model("resnet20", num_classes=10, in_channels=3, width=0.5)
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Callable, Sequence

from torch import nn

from intrain.errors import ConfigError

ModelFactory = Callable[..., nn.Module]

_REGISTRY: dict[str, "ModelEntry"] = {}


@dataclass(frozen=True)
class ModelEntry:
    """One registered architecture.

    Attributes:
        name: the registry key, e.g. ``"vgg16"``.
        factory: builds the network from ``num_classes``, ``in_channels`` and ``width``.
        input_size: the square spatial size (in pixels) the network expects, e.g. 32 for
            the CIFAR VGG/ResNets; smaller images (28x28 MNIST) are padded to it by the data
            pipeline. ``None`` means the network accepts any size.
        external: a timm or torchvision model (``timm:NAME``, ``torchvision:NAME``), which keeps
            its library's initialisation.
    """

    name: str
    factory: ModelFactory
    input_size: int | None = None
    external: bool = False


def register_model(name: str, *, input_size: int | None = None) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator that registers a model factory under ``name``.

    The factory is returned unchanged, so it can still be called directly.

    Raises:
        ValueError: if ``name`` is already registered (a programming error, not a user one).
    """

    def decorator(factory: ModelFactory) -> ModelFactory:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = ModelEntry(name=name, factory=factory, input_size=input_size)
        return factory

    return decorator


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    return sorted(_REGISTRY)


def model_entry(name: str) -> ModelEntry:
    """The :class:`ModelEntry` registered under ``name``.

    ``timm:NAME`` and ``torchvision:NAME`` give an entry that builds that library's model
    (:mod:`intrain.models.external`; whether the library has it is checked when it is built).

    Raises:
        ConfigError: if no model has that name; the message lists the valid choices.
    """
    from intrain.models.external import external_factory, split_name

    library = split_name(name)
    if library is not None:
        return ModelEntry(name=name, factory=external_factory(*library), external=True)
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):  # TypeError: an unhashable name from a config file
        hint = difflib.get_close_matches(name, list_models(), n=1) if isinstance(name, str) else []
        suggestion = f"; did you mean '{hint[0]}'?" if hint else ""
        raise ConfigError(f"unknown model {name!r}{suggestion}; choose one of: {', '.join(list_models())}, "
                          "timm:NAME, torchvision:NAME") from None


def create_model(
    name: str,
    *,
    num_classes: int = 10,
    in_channels: int = 1,
    width: float = 1.0,
    init: bool = True,
) -> nn.Module:
    """Build a registered model.

    Args:
        name: a registered model name (see :func:`list_models`).
        num_classes: number of output logits, at least 2.
        in_channels: channels of the input images (1 for MNIST, 3 for CIFAR), at least 1.
        width: multiplier applied to every hidden channel/unit count, see
            :func:`scale_channels`. Must be a finite number > 0.
        init: apply :func:`intrain.models.init.init_weights` (Gaussian He init). With
            ``False`` the layers keep PyTorch's default (uniform) initialisation.

    Raises:
        ConfigError: unknown name or an invalid argument.
    """
    entry = model_entry(name)
    _check_int("num_classes", num_classes, minimum=2)
    _check_int("in_channels", in_channels, minimum=1)
    if isinstance(width, bool) or not isinstance(width, Real) or not math.isfinite(width) or width <= 0:
        raise ConfigError(f"width must be a finite number > 0, got {width!r}")

    model = entry.factory(num_classes=int(num_classes), in_channels=int(in_channels), width=float(width))
    if init and not entry.external:
        from intrain.models.init import init_weights  # local import: init.py does not need the registry

        init_weights(model)
    return model


def input_error(model: nn.Module, shape: tuple[int, ...]) -> str | None:
    """Why ``model`` cannot take inputs of per-example ``shape`` (the first line of the error of one
    eval-mode forward pass of a zero image, on the model's device), or ``None`` when it can. No random
    draw, no statistics change; an out-of-memory error propagates."""
    import torch

    was_training = model.training
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    try:
        with torch.no_grad():
            model.eval()(torch.zeros((1, *shape), device=device))
        return None
    except RuntimeError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "allocate" in reason:
            raise
        return reason
    finally:
        model.train(was_training)


def input_size_message(model: str, dataset: str, shape: Sequence[int], reason: str) -> str:
    """The one line for a model that cannot take a dataset's images (training and ``intrain cost``)."""
    return (f"model: {model} cannot take {dataset}'s {'x'.join(map(str, shape))} inputs ({reason}); pick a model "
            f"for small images (lenet5, vgg16, resnet20, resnet56) or a dataset with larger images (folder)")


def scale_channels(channels: int, width: float) -> int:
    """Channel count ``channels`` scaled by the width multiplier: ``max(1, round(channels * width))``."""
    return max(1, round(channels * width))


def _check_int(what: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ConfigError(f"{what} must be an integer >= {minimum}, got {value!r}")
