import os
import pickle

import numpy as np
import pytest
import torch

from intrain.data import load_dataset
from intrain.errors import DataError


def expected_images(batches, files):
    return np.concatenate([batches[f][b"data"] for f in files]).reshape(-1, 3, 32, 32)


@pytest.mark.parametrize("protocol", [2, 4, 5])
@pytest.mark.parametrize("point_at_folder", [False, True])
def test_cifar10_tiny_files(tmp_path, write_cifar, protocol, point_at_folder):
    batches = write_cifar(tmp_path, "cifar10", protocol)
    train_files = [f"data_batch_{i}" for i in range(1, 6)]
    root = tmp_path / "cifar-10-batches-py" if point_at_folder else tmp_path
    splits = load_dataset("cifar10", root)
    assert splits.train_images.dtype == torch.uint8 and splits.train_labels.dtype == torch.int64
    assert splits.train_images.shape == (4 + 5 + 6 + 7 + 8, 3, 32, 32)
    assert splits.test_images.shape == (9, 3, 32, 32)
    np.testing.assert_array_equal(
        splits.train_images.numpy(), expected_images(batches, train_files)
    )
    assert splits.train_labels.tolist() == sum((batches[f][b"labels"] for f in train_files), [])
    np.testing.assert_array_equal(
        splits.test_images.numpy(), expected_images(batches, ["test_batch"])
    )
    assert splits.test_labels.tolist() == batches["test_batch"][b"labels"]


def test_cifar_channel_layout(tmp_path, write_cifar):
    """Each row is 1024 red, 1024 green, 1024 blue values, each a 32x32 row-major plane."""
    batches = write_cifar(tmp_path, "cifar10")
    row = batches["data_batch_1"][b"data"][0]
    image = load_dataset("cifar10", tmp_path).train_images[0]
    assert image[1, 0, 0] == row[1024] and image[2, 31, 31] == row[3071]
    assert image[0, 1, 0] == row[32]


@pytest.mark.parametrize("protocol", [2, 5])
def test_cifar100_tiny_files_use_fine_labels(tmp_path, write_cifar, protocol):
    batches = write_cifar(tmp_path, "cifar100", protocol)
    splits = load_dataset("cifar100", tmp_path)
    assert splits.spec.num_classes == 100
    assert splits.train_images.shape == (4, 3, 32, 32)
    assert splits.test_images.shape == (5, 3, 32, 32)
    np.testing.assert_array_equal(splits.train_images.numpy(), expected_images(batches, ["train"]))
    assert splits.train_labels.tolist() == batches["train"][b"fine_labels"]
    assert splits.test_labels.tolist() == batches["test"][b"fine_labels"]


def test_missing_cifar_message(tmp_path):
    with pytest.raises(DataError) as info:
        load_dataset("cifar10", tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert f"CIFAR-10 file data_batch_1 not found in {tmp_path}" in message
    assert str(tmp_path / "cifar-10-batches-py") in message
    assert "https://www.cs.toronto.edu/~kriz/cifar.html" in message


def test_missing_one_cifar_batch_is_named(tmp_path, write_cifar):
    write_cifar(tmp_path, "cifar10")
    (tmp_path / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(DataError, match="CIFAR-10 file data_batch_4 not found"):
        load_dataset("cifar10", tmp_path)


class _Exploit:
    """Pickles to a call of os.system that would create ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", [2, 4])
def test_malicious_pickle_is_refused_and_not_executed(tmp_path, write_cifar, protocol):
    write_cifar(tmp_path, "cifar10")
    marker = tmp_path / "pwned"
    path = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    payload = {b"data": np.zeros((1, 3072), np.uint8), b"labels": [_Exploit(marker)]}
    path.write_bytes(pickle.dumps(payload, protocol=protocol))
    with pytest.raises(DataError, match=f"{path} refers to (posix|os).system"):
        load_dataset("cifar10", tmp_path)
    assert not marker.exists()


def test_builtins_eval_is_refused(tmp_path, write_cifar):
    write_cifar(tmp_path, "cifar100")
    path = tmp_path / "cifar-100-python" / "train"
    path.write_bytes(b"cbuiltins\neval\n(S'1+1'\ntR.")
    with pytest.raises(DataError, match="refers to builtins.eval"):
        load_dataset("cifar100", tmp_path)


def test_truncated_pickle_names_the_file(tmp_path, write_cifar):
    write_cifar(tmp_path, "cifar10")
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError, match=f"{path} is not a valid CIFAR pickle"):
        load_dataset("cifar10", tmp_path)


def test_out_of_range_label(tmp_path, write_cifar):
    batches = write_cifar(tmp_path, "cifar10")
    path = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    batch = batches["data_batch_2"]
    batch[b"labels"][0] = 10
    path.write_bytes(pickle.dumps(batch))
    with pytest.raises(DataError, match=f"{path} has labels outside 0..9"):
        load_dataset("cifar10", tmp_path)
