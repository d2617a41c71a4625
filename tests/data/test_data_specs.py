import dataclasses

import pytest

from intrain.data import DatasetSpec, dataset_spec, list_datasets
from intrain.errors import ConfigError


def test_list_datasets_names():
    assert list_datasets() == ["mnist", "fashion-mnist", "cifar10", "cifar100", "demo", "folder"]


@pytest.mark.parametrize(
    "name, classes, channels, size, mean, std, augment",
    [
        ("mnist", 10, 1, 28, (0.1307,), (0.3081,), False),
        ("fashion-mnist", 10, 1, 28, (0.2860,), (0.3530,), False),
        ("cifar10", 10, 3, 32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), True),
        ("cifar100", 100, 3, 32, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), True),
        ("demo", 10, 1, 28, (0.1307,), (0.3081,), False),
    ],
)
def test_dataset_spec_values(name, classes, channels, size, mean, std, augment):
    assert dataset_spec(name) == DatasetSpec(name, classes, channels, size, mean, std, augment)


def test_spec_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        dataset_spec("mnist").num_classes = 3


def test_unknown_dataset_lists_choices():
    with pytest.raises(ConfigError, match=r"unknown dataset 'imagenet'; choose one of: mnist, "):
        dataset_spec("imagenet")
