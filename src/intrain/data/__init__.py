"""Datasets and the in-memory, on-device batch pipeline.

- :func:`dataset_spec` / :func:`list_datasets`: static facts (classes, shape, mean/std), no files.
- :func:`load_dataset`: MNIST, Fashion-MNIST (IDX), CIFAR-10/100 (python version) or the packaged
  ``demo`` MNIST subset, as uint8 tensors in a :class:`Splits`.
- :class:`BatchLoader`: reproducible, resumable, shardable normalised batches on a device.
"""

from intrain.data.datasets import DATA_DIR_ENV, Splits, default_data_dir, load_dataset
from intrain.data.loader import BatchLoader
from intrain.data.specs import DatasetSpec, dataset_spec, list_datasets

__all__ = [
    "DATA_DIR_ENV",
    "BatchLoader",
    "DatasetSpec",
    "Splits",
    "dataset_spec",
    "default_data_dir",
    "list_datasets",
    "load_dataset",
]
