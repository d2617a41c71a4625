"""Fixtures that write tiny datasets in the exact on-disk formats of MNIST and CIFAR."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from intrain.data.idx import write_idx

# CI checks the repository out with ../shared beside it; locate it relative to the repo root.
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

IDX_STEMS = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def tiny_arrays(n_train: int = 20, n_test: int = 10, seed: int = 0) -> dict[str, np.ndarray]:
    """Random 28x28 uint8 images and labels cycling through 0..9."""
    rng = np.random.default_rng(seed)
    return {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": (np.arange(n_train) % 10).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": (np.arange(n_test)[::-1] % 10).astype(np.uint8),
    }


@pytest.fixture
def write_mnist():
    """``write_mnist(folder, gz=True) -> arrays``: the four IDX files of a tiny MNIST."""

    def write(folder: Path, gz: bool = True, arrays: dict | None = None) -> dict[str, np.ndarray]:
        arrays = arrays or tiny_arrays()
        folder.mkdir(parents=True, exist_ok=True)
        for key, stem in IDX_STEMS.items():
            write_idx(folder / (stem + (".gz" if gz else "")), arrays[key])
        return arrays

    return write


def cifar_batch(n: int, num_classes: int, label_key: bytes, seed: int) -> dict:
    """A batch dict as in the originals: bytes keys, uint8 [N, 3072] data, list labels."""
    rng = np.random.default_rng(seed)
    return {
        b"batch_label": b"tiny batch",
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        label_key: [int(v) for v in rng.integers(0, num_classes, n)],
        b"filenames": [f"img_{i}.png".encode() for i in range(n)],
    }


@pytest.fixture
def write_cifar():
    """``write_cifar(root, 'cifar10'|'cifar100', protocol) -> {file name: batch dict}``."""

    def write(root: Path, name: str, protocol: int = pickle.DEFAULT_PROTOCOL) -> dict[str, dict]:
        if name == "cifar10":
            folder, files, classes, key = root / "cifar-10-batches-py", [
                f"data_batch_{i}" for i in range(1, 6)
            ] + ["test_batch"], 10, b"labels"
        else:
            folder, files, classes, key = root / "cifar-100-python", ["train", "test"], 100, (
                b"fine_labels"
            )
        folder.mkdir(parents=True, exist_ok=True)
        batches = {}
        for seed, file in enumerate(files):
            batches[file] = cifar_batch(4 + seed, classes, key, seed)
            if name == "cifar100":
                batches[file][b"coarse_labels"] = [0] * (4 + seed)
            with open(folder / file, "wb") as handle:
                pickle.dump(batches[file], handle, protocol=protocol)
        return batches

    return write
