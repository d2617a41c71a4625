import numpy as np
import pytest

from conftest import tiny_arrays
from intrain.data import load_dataset
from intrain.errors import ConfigError


@pytest.fixture
def imbalanced_dir(tmp_path, write_mnist):
    """60 training examples: 30 of class 0, 20 of class 1, 10 of class 2, interleaved."""
    arrays = tiny_arrays(n_train=60)
    arrays["train_labels"] = np.array([0, 1, 0, 1, 0, 2] * 10, dtype=np.uint8)
    write_mnist(tmp_path, arrays=arrays)
    return tmp_path


@pytest.mark.parametrize("size, counts", [(30, [15, 10, 5]), (7, [4, 2, 1]), (60, [30, 20, 10])])
def test_subset_is_stratified(imbalanced_dir, size, counts):
    splits = load_dataset("mnist", imbalanced_dir, subset=size, seed=3)
    assert splits.train_labels.bincount().tolist() == counts
    assert splits.train_images.shape == (size, 1, 28, 28)


def test_subset_keeps_image_label_pairs_and_test_set(imbalanced_dir):
    full = load_dataset("mnist", imbalanced_dir)
    part = load_dataset("mnist", imbalanced_dir, subset=12, seed=1)
    rows = {full.train_images[i].numpy().tobytes(): int(full.train_labels[i]) for i in range(60)}
    for image, label in zip(part.train_images, part.train_labels):
        assert rows[image.numpy().tobytes()] == int(label)
    assert (part.test_images == full.test_images).all()
    assert (part.test_labels == full.test_labels).all()


def test_subset_is_deterministic_per_seed(imbalanced_dir):
    first = load_dataset("mnist", imbalanced_dir, subset=20, seed=5)
    again = load_dataset("mnist", imbalanced_dir, subset=20, seed=5)
    other = load_dataset("mnist", imbalanced_dir, subset=20, seed=6)
    assert (first.train_images == again.train_images).all()
    assert not (first.train_images == other.train_images).all()


@pytest.mark.parametrize("bad", [0, -1, 61, 2.5, True, "10"])
def test_invalid_subset(imbalanced_dir, bad):
    with pytest.raises(ConfigError, match="subset must be a whole number from 1 to 60"):
        load_dataset("mnist", imbalanced_dir, subset=bad)
