import gzip

import numpy as np
import pytest
import torch

from conftest import IDX_STEMS, SHARED_DATA, tiny_arrays
from intrain.data import load_dataset
from intrain.data.idx import encode_idx, parse_idx
from intrain.errors import DataError


def assert_matches(splits, arrays):
    """``splits`` holds exactly ``arrays`` with the documented dtypes and shapes."""
    assert splits.train_images.dtype == torch.uint8 and splits.test_images.dtype == torch.uint8
    assert splits.train_labels.dtype == torch.int64 and splits.test_labels.dtype == torch.int64
    assert splits.train_images.shape == (20, 1, 28, 28)
    assert splits.test_images.shape == (10, 1, 28, 28)
    np.testing.assert_array_equal(splits.train_images[:, 0].numpy(), arrays["train_images"])
    np.testing.assert_array_equal(splits.train_labels.numpy(), arrays["train_labels"])
    np.testing.assert_array_equal(splits.test_images[:, 0].numpy(), arrays["test_images"])
    np.testing.assert_array_equal(splits.test_labels.numpy(), arrays["test_labels"])


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize(
    "name, layout",
    [
        ("mnist", "."),
        ("mnist", "mnist"),
        ("mnist", "MNIST/raw"),
        ("fashion-mnist", "fashion-mnist"),
        ("fashion-mnist", "FashionMNIST/raw"),
    ],
)
def test_idx_round_trip_in_every_layout(tmp_path, write_mnist, name, layout, gz):
    arrays = write_mnist(tmp_path / layout, gz=gz)
    splits = load_dataset(name, tmp_path)
    assert splits.spec.name == name
    assert_matches(splits, arrays)


def test_encode_parse_round_trip_and_header():
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    data = encode_idx(array)
    assert data[:16] == bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4])
    np.testing.assert_array_equal(parse_idx(data, "x", ndim=3), array)


def test_default_data_dir_from_env(tmp_path, write_mnist, monkeypatch):
    arrays = write_mnist(tmp_path / "elsewhere" / "mnist")
    monkeypatch.setenv("INTRAIN_DATA_DIR", str(tmp_path / "elsewhere"))
    assert_matches(load_dataset("mnist"), arrays)


def test_default_data_dir_is_dot_data(tmp_path, write_mnist, monkeypatch):
    arrays = write_mnist(tmp_path / "data")
    monkeypatch.delenv("INTRAIN_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert_matches(load_dataset("mnist"), arrays)


def test_missing_files_message_names_file_dirs_and_source(tmp_path):
    with pytest.raises(DataError) as info:
        load_dataset("mnist", tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert "train-images-idx3-ubyte(.gz) not found in " + str(tmp_path) in message
    for searched in (tmp_path, tmp_path / "mnist", tmp_path / "MNIST" / "raw"):
        assert str(searched) in message
    assert "http://yann.lecun.com/exdb/mnist/" in message and "--data-dir" in message


def test_missing_fashion_mentions_its_layout(tmp_path):
    with pytest.raises(DataError, match="Fashion-MNIST file .*FashionMNIST/raw.*zalando"):
        load_dataset("fashion-mnist", tmp_path)


def test_one_missing_file_is_named(tmp_path, write_mnist):
    write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\(\.gz\) not found"):
        load_dataset("mnist", tmp_path)


@pytest.mark.parametrize("gz", [True, False])
def test_truncated_file_names_the_file(tmp_path, write_mnist, gz):
    write_mnist(tmp_path, gz=gz)
    path = tmp_path / (IDX_STEMS["train_images"] + (".gz" if gz else ""))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError) as info:
        load_dataset("mnist", tmp_path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_truncated_inside_valid_gzip(tmp_path, write_mnist):
    write_mnist(tmp_path)
    path = tmp_path / (IDX_STEMS["test_images"] + ".gz")
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-1]))
    with pytest.raises(DataError, match=f"{path}.* is truncated"):
        load_dataset("mnist", tmp_path)


def test_bad_magic_names_the_file(tmp_path, write_mnist):
    write_mnist(tmp_path, gz=False)
    path = tmp_path / IDX_STEMS["train_labels"]
    data = bytearray(path.read_bytes())
    data[3] = 3  # claims 3 dimensions: an images file where labels belong
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=f"{path} has bad IDX magic number 0x00000803"):
        load_dataset("mnist", tmp_path)


def test_label_count_mismatch(tmp_path, write_mnist):
    arrays = tiny_arrays()
    arrays["train_labels"] = arrays["train_labels"][:-1]
    write_mnist(tmp_path, arrays=arrays)
    with pytest.raises(DataError, match="20 images but its label file 19 labels"):
        load_dataset("mnist", tmp_path)


@pytest.mark.skipif(not (SHARED_DATA / "mnist").is_dir(), reason="shared MNIST copy absent")
def test_real_mnist():
    splits = load_dataset("mnist", SHARED_DATA)
    assert splits.train_images.shape == (60000, 1, 28, 28)
    assert splits.test_images.shape == (10000, 1, 28, 28)
    assert splits.train_labels.bincount().tolist() == [
        5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949
    ]
    assert splits.test_labels.bincount().tolist() == [
        980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009
    ]
    assert abs(splits.train_images.float().mean().item() / 255 - 0.1307) < 1e-4


@pytest.mark.skipif(not (SHARED_DATA / "fashion-mnist").is_dir(), reason="shared copy absent")
def test_real_fashion_mnist():
    splits = load_dataset("fashion-mnist", SHARED_DATA)
    assert splits.train_images.shape == (60000, 1, 28, 28)
    assert splits.test_images.shape == (10000, 1, 28, 28)
    assert splits.train_labels.bincount().tolist() == [6000] * 10
    assert splits.test_labels.bincount().tolist() == [1000] * 10
