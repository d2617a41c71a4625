"""Loading whole datasets into memory as uint8 tensors: :func:`load_dataset` and :class:`Splits`."""

from __future__ import annotations

import hashlib
import numbers
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from intrain.data.cifar import CIFAR_URL, read_cifar_batch
from intrain.data.idx import decompress, parse_idx
from intrain.data.specs import DatasetSpec, dataset_spec
from intrain.errors import ConfigError, DataError

DATA_DIR_ENV = "INTRAIN_DATA_DIR"

_IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

# name -> (title for messages, torchvision folder, download page)
_IDX_SOURCES = {
    "mnist": ("MNIST", "MNIST", "http://yann.lecun.com/exdb/mnist/"),
    "fashion-mnist": (
        "Fashion-MNIST", "FashionMNIST", "https://github.com/zalandoresearch/fashion-mnist"
    ),
}

# SHA-256 of the uncompressed files as published (the .gz files' MD5s are those torchvision lists:
# MNIST f68b3c2d..., d53e105e..., 9fb629c4..., ec29112d...; Fashion-MNIST 8d4fb7e6..., 25c81989...,
# bef4ecab..., bb300cfd...), in the order of _IDX_FILES
_IDX_SHA256 = {
    "mnist": (
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
    "fashion-mnist": (
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
}

# name -> (title, folder inside data_dir, train files, test file, label key)
_CIFAR_SOURCES = {
    "cifar10": (
        "CIFAR-10", "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "labels",
    ),
    "cifar100": ("CIFAR-100", "cifar-100-python", ("train",), "test", "fine_labels"),
}


@dataclass(frozen=True)
class Splits:
    """A dataset in memory: uint8 images ``[N, C, H, W]`` and int64 labels ``[N]`` per split."""

    spec: DatasetSpec
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    notes: tuple[str, ...] = ()  # one-line remarks for the user (e.g. IDX files of unknown origin)
    # held out of the training examples by ``val_split`` (None without one): never trained on
    val_images: torch.Tensor | None = None
    val_labels: torch.Tensor | None = None


def default_data_dir() -> Path:
    """``$INTRAIN_DATA_DIR`` when set, otherwise ``./data`` (made absolute for clear messages)."""
    return Path(os.environ.get(DATA_DIR_ENV) or "data").expanduser().absolute()


def load_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    subset: int | None = None,
    seed: int = 0,
    val_split: float | None = None,
) -> Splits:
    """Load dataset ``name`` from ``data_dir`` (default :func:`default_data_dir`).

    ``val_split`` (N examples, or a fraction in (0, 1)) first holds out a stratified validation
    split of the training examples (:func:`validation_indices`: the same examples whatever the run's
    seed). ``subset=N`` then keeps N of the remaining training examples, stratified by class and chosen
    reproducibly from ``seed``; the test split is never subsampled. ``demo`` is shipped inside the
    package and ignores ``data_dir``. Missing or corrupt files raise ``DataError``.
    """
    spec = dataset_spec(name)
    if name == "folder":  # decoded batch by batch, never held in memory whole
        raise ConfigError("dataset folder is read with intrain.data.folder.scan_folder and FolderLoader, "
                          "not load_dataset")
    root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    notes: tuple[str, ...] = ()
    if name == "demo":
        arrays = _load_demo()
    elif name in _IDX_SOURCES:
        arrays, notes = _load_idx_dataset(name, root)
    else:
        arrays = _load_cifar(name, root, spec.num_classes)
    train_x, train_y, test_x, test_y = (torch.from_numpy(np.ascontiguousarray(a)) for a in arrays)
    if train_x.dim() == 3:  # IDX images are [N, H, W]; add the channel dimension
        train_x, test_x = train_x.unsqueeze(1), test_x.unsqueeze(1)
    train_y, test_y = train_y.long(), test_y.long()
    val_x = val_y = None
    if val_split is not None:
        train_keep, val_keep = validation_indices(train_y, val_split)
        val_x, val_y = train_x[val_keep], train_y[val_keep]
        train_x, train_y = train_x[train_keep], train_y[train_keep]
    if subset is not None:
        keep = stratified_indices(train_y, subset, seed=seed)
        train_x, train_y = train_x[keep], train_y[keep]
    return Splits(spec, train_x, train_y, test_x, test_y, notes, val_x, val_y)


VAL_SPLIT_SEED = 20_170_919  # the validation split's own seed: one split for every run seed


def validation_size(val_split: float, total: int) -> int:
    """Examples held out by ``val_split``: N itself when it is a whole number >= 1, else that fraction
    of ``total`` (rounded); one line if that leaves no validation or no training example."""
    size = int(val_split) if val_split >= 1 else round(val_split * total)
    if not 0 < size < total:
        shown = int(val_split) if float(val_split).is_integer() else val_split
        raise ConfigError(f"val_split: {shown} of {total} training examples leaves "
                          f"{'no validation' if size <= 0 else 'no training'} example; "
                          f"use a count from 1 to {total - 1} or a fraction in (0, 1)")
    return size


def validation_indices(labels: torch.Tensor, val_split: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(train, validation)`` sorted indices into ``labels``: a stratified validation split of
    :func:`validation_size` examples drawn from :data:`VAL_SPLIT_SEED` (the same examples for every run
    seed, so that runs chosen between were scored on one split), the rest for training."""
    held = stratified_indices(labels, validation_size(val_split, labels.numel()), seed=VAL_SPLIT_SEED)
    keep = torch.ones(labels.numel(), dtype=torch.bool)
    keep[held] = False
    return torch.nonzero(keep).flatten(), held


def stratified_indices(labels: torch.Tensor, size: int, *, seed: int = 0) -> torch.Tensor:
    """Sorted indices of ``size`` examples whose class mix matches ``labels``, chosen from ``seed``.

    Each class gets ``size * count / total`` examples rounded down; the remainder goes to the
    classes with the largest fractional parts (ties to the lower class index).
    """
    total = labels.numel()
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or not 0 < size <= total:
        raise ConfigError(f"subset must be a whole number from 1 to {total}, got {size!r}")
    classes, counts = torch.unique(labels, return_counts=True)
    exact = counts.double() * size / total
    quota = exact.floor().long()
    order = sorted(range(len(classes)), key=lambda i: (-(exact[i] - quota[i]).item(), i))
    for i in order[: size - int(quota.sum())]:
        quota[i] += 1
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for cls, take in zip(classes.tolist(), quota.tolist()):
        members = torch.nonzero(labels == cls).flatten()
        chosen.append(members[torch.randperm(members.numel(), generator=generator)[:take]])
    return torch.cat(chosen).sort().values


def _check_pair(images: np.ndarray, labels: np.ndarray, image_file: str, num_classes: int = 10):
    """Raise ``DataError`` unless ``images`` and ``labels`` agree in count and label range."""
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{image_file} holds {images.shape[0]} images but its label file {labels.shape[0]} "
            "labels; the files come from different downloads"
        )
    if labels.size and labels.max() >= num_classes:
        raise DataError(
            f"the labels for {image_file} go beyond {num_classes - 1}; the file is corrupt"
        )


def _idx_search_dirs(name: str, root: Path) -> list[Path]:
    """Where an IDX dataset may live: the directory itself, ``<name>/``, torchvision's layout."""
    return [root, root / name, root / _IDX_SOURCES[name][1] / "raw"]


def _find_idx_file(name: str, root: Path, stem: str) -> Path:
    """Path of ``stem`` (raw preferred, then ``.gz``) in the search dirs, or ``DataError``."""
    dirs = _idx_search_dirs(name, root)
    for folder in dirs:
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.is_file():
                return candidate
    title, _, url = _IDX_SOURCES[name]
    raise DataError(
        f"{title} file {stem}(.gz) not found in {root} (searched {', '.join(map(str, dirs))}); "
        f"download it with 'intrain data fetch {name} --data-dir {root}' (from {url}) or pass --data-dir"
    )


def _load_idx_dataset(name: str, root: Path) -> tuple[tuple[np.ndarray, ...], tuple[str, ...]]:
    """Read the four IDX files of MNIST or Fashion-MNIST, checked against the published files
    (:func:`check_idx_origin`); returns the arrays and the notes about files of unknown origin."""
    paths = [_find_idx_file(name, root, stem) for stem in _IDX_FILES]
    arrays, notes = [], []
    for stem, path in zip(_IDX_FILES, paths):
        data = _read_bytes(path)
        note = check_idx_origin(name, stem, path, hashlib.sha256(data).hexdigest())
        notes += [note] if note else []
        arrays.append(parse_idx(data, str(path), ndim=3 if "images" in stem else 1))
    _check_pair(arrays[0], arrays[1], str(paths[0]))
    _check_pair(arrays[2], arrays[3], str(paths[2]))
    return tuple(arrays), tuple(notes)


def _read_bytes(path: Path) -> bytes:
    """The uncompressed bytes of an IDX file (raw or ``.gz``)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    return decompress(raw, str(path))


def check_idx_origin(name: str, stem: str, path: Path, sha256: str) -> str | None:
    """Compare an IDX file's checksum (of its uncompressed bytes) with the published MNIST and
    Fashion-MNIST files: the file of another dataset, or another file of this one, is a
    ``DataError`` naming both; a file of unknown origin gives a note (returned), the published one
    None."""
    for dataset, digests in _IDX_SHA256.items():
        if sha256 in digests:
            known_stem = _IDX_FILES[digests.index(sha256)]
            if dataset == name and known_stem == stem:
                return None
            raise DataError(f"--dataset {name} but {path} is {_IDX_SOURCES[dataset][0]}'s {known_stem} (by its "
                            f"checksum), not {_IDX_SOURCES[name][0]}'s {stem}; pass the {_IDX_SOURCES[name][0]} "
                            f"files with --data-dir" + (f" or use --dataset {dataset}" if dataset != name else ""))
    return (f"{path} is not the published {_IDX_SOURCES[name][0]} {stem} (unknown checksum); "
            "training on it as given")


def _load_demo() -> tuple[np.ndarray, ...]:
    """Read the MNIST subset shipped in ``intrain/data/demo/`` (see its README.md)."""
    folder = resources.files("intrain.data").joinpath("demo")
    arrays = []
    for stem in _IDX_FILES:
        resource = folder.joinpath(f"{stem}.gz")
        label = f"intrain/data/demo/{stem}.gz"
        try:
            raw = resource.read_bytes()
        except OSError:
            raise DataError(
                f"packaged demo file {label} is missing; reinstall intrain "
                "or regenerate it with scripts/make_demo_subset.py"
            ) from None
        arrays.append(parse_idx(decompress(raw, label), label, ndim=3 if "images" in stem else 1))
    _check_pair(arrays[0], arrays[1], "demo train images")
    _check_pair(arrays[2], arrays[3], "demo test images")
    return tuple(arrays)


def _cifar_folder(name: str, root: Path) -> Path:
    """The CIFAR folder: ``root`` itself or ``root/<folder>``, whichever holds all files."""
    title, folder, train_files, test_file, _ = _CIFAR_SOURCES[name]
    needed = (*train_files, test_file)
    dirs = [root, root / folder]
    for candidate in dirs:
        if all((candidate / f).is_file() for f in needed):
            return candidate
    best = dirs[1] if dirs[1].is_dir() else root
    missing = next(f for f in needed if not (best / f).is_file())
    raise DataError(
        f"{title} file {missing} not found in {root} (searched {', '.join(map(str, dirs))}); "
        f"download it with 'intrain data fetch {name} --data-dir {root}' (the python version from {CIFAR_URL}) "
        "or pass --data-dir"
    )


def _load_cifar(name: str, root: Path, num_classes: int) -> tuple[np.ndarray, ...]:
    """Read CIFAR-10 or CIFAR-100 (python version) into train/test arrays."""
    _, _, train_files, test_file, label_key = _CIFAR_SOURCES[name]
    folder = _cifar_folder(name, root)
    train = [read_cifar_batch(folder / f, label_key, num_classes) for f in train_files]
    test_x, test_y = read_cifar_batch(folder / test_file, label_key, num_classes)
    train_x = np.concatenate([x for x, _ in train])
    train_y = np.concatenate([y for _, y in train])
    return train_x, train_y, test_x, test_y
