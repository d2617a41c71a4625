"""Static facts about each supported dataset: shape, classes and normalisation statistics.

Nothing here touches the file system, so a model can be built for a dataset whose files are absent.
"""

from __future__ import annotations

import difflib

from dataclasses import dataclass

from intrain.errors import ConfigError


@dataclass(frozen=True)
class DatasetSpec:
    """Shape and normalisation facts for one dataset.

    ``mean``/``std`` are per-channel statistics of the training pixels scaled to [0, 1].
    ``augment`` says whether training uses random crop + horizontal flip (the CIFAR recipe).
    """

    name: str
    num_classes: int
    in_channels: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: bool = False


_MNIST_STATS = ((0.1307,), (0.3081,))
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

_SPECS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("mnist", 10, 1, 28, *_MNIST_STATS),
        DatasetSpec("fashion-mnist", 10, 1, 28, (0.2860,), (0.3530,)),
        DatasetSpec(
            "cifar10", 10, 3, 32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), augment=True
        ),
        DatasetSpec(
            "cifar100", 100, 3, 32, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), augment=True
        ),
        # The demo set is a small MNIST subset shipped with the package: MNIST's statistics.
        DatasetSpec("demo", 10, 1, 28, *_MNIST_STATS),
        # Your own images (intrain.data.folder): the class count comes from the folder and the size
        # from --image-size; these are the defaults (ImageNet's 1,000 classes at 224x224).
        DatasetSpec("folder", 1000, 3, 224, IMAGENET_MEAN, IMAGENET_STD, augment=True),
    )
}


def list_datasets() -> list[str]:
    """Names accepted by :func:`dataset_spec` and :func:`intrain.data.load_dataset`."""
    return list(_SPECS)


def dataset_spec(name: str) -> DatasetSpec:
    """Return the :class:`DatasetSpec` for ``name``; raises ``ConfigError`` for an unknown name."""
    try:
        return _SPECS[name]
    except (KeyError, TypeError):
        hint = difflib.get_close_matches(name, list(_SPECS), n=1) if isinstance(name, str) else []
        suggestion = f"; did you mean '{hint[0]}'?" if hint else ""
        raise ConfigError(f"unknown dataset {name!r}{suggestion}; choose one of: {', '.join(_SPECS)}") from None
