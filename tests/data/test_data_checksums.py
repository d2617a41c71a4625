"""IDX files are checked against the published MNIST and Fashion-MNIST files: the other dataset's
files (or another file of the same one) are refused naming both; unknown files pass with a note."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import pytest

from intrain.data.datasets import _IDX_FILES, _IDX_SHA256, check_idx_origin
from intrain.errors import DataError

SHARED = Path("/work/shared/data")
# the .gz files' MD5s as torchvision lists them (torchvision.datasets.MNIST / FashionMNIST resources)
TORCHVISION_MD5 = {
    "mnist": ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
              "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"),
    "fashion-mnist": ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                      "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"),
}


def test_the_published_files_pass_silently():
    for name, digests in _IDX_SHA256.items():
        for stem, digest in zip(_IDX_FILES, digests):
            assert check_idx_origin(name, stem, Path(stem), digest) is None


def test_the_other_datasets_files_are_refused_naming_both():
    with pytest.raises(DataError) as info:
        check_idx_origin("fashion-mnist", _IDX_FILES[1], Path("x/train-labels-idx1-ubyte.gz"), _IDX_SHA256["mnist"][1])
    message = str(info.value)
    assert "--dataset fashion-mnist" in message and "is MNIST's train-labels-idx1-ubyte" in message
    assert "use --dataset mnist" in message and "\n" not in message


def test_swapped_files_of_one_dataset_are_refused():
    with pytest.raises(DataError, match="is MNIST's t10k-labels-idx1-ubyte .* not MNIST's train-labels-idx1-ubyte"):
        check_idx_origin("mnist", _IDX_FILES[1], Path("train-labels-idx1-ubyte"), _IDX_SHA256["mnist"][3])


def test_unknown_files_give_a_note():
    note = check_idx_origin("mnist", _IDX_FILES[0], Path("mine/train-images-idx3-ubyte"), "0" * 64)
    assert "unknown checksum" in note and "mine/train-images-idx3-ubyte" in note


@pytest.mark.skipif(not (SHARED / "mnist").is_dir(), reason="needs the original MNIST / Fashion-MNIST files")
def test_hard_coded_digests_are_those_of_the_files_torchvision_lists():
    for name, md5s in TORCHVISION_MD5.items():
        for stem, md5, sha in zip(_IDX_FILES, md5s, _IDX_SHA256[name]):
            raw = (SHARED / name / f"{stem}.gz").read_bytes()
            assert hashlib.md5(raw).hexdigest() == md5, (name, stem)  # the byte-exact originals
            assert hashlib.sha256(gzip.decompress(raw)).hexdigest() == sha, (name, stem)
