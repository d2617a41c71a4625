"""Image-folder datasets (the ImageNet layout), decoded with Pillow: :func:`scan_folder` and
:class:`FolderLoader`.

``DIR/train/<class>/<image>`` and ``DIR/val/<class>/<image>``: classes are the sorted names of the
train class folders, and ``val`` must have the same ones. Images are any file Pillow can decode with
one of :data:`IMAGE_EXTENSIONS` (case-insensitive); other files and hidden files are ignored. The
scan opens every image and decodes its header (:func:`check_images`, a progress bar on a terminal for
more than :data:`SCAN_BAR_FROM` files), so that a corrupt file is one line before the run starts,
or, with ``skip_bad``, left out and counted.

Transforms (one resampling each, bilinear, with Pillow's ``resize(box=...)``):

- training: random-resized crop (scale 0.08-1 of the area, aspect ratio 3/4-4/3, torchvision's
  algorithm with 10 attempts then a centre crop) to ``image_size`` and a horizontal flip with
  probability 0.5;
- evaluation: the centre square that a resize of the shorter side to ``image_size / 0.875`` followed
  by a centre crop of ``image_size`` would keep, resampled to ``image_size``.

Pixels travel as uint8 and are normalised with the ImageNet mean and standard deviation on the
device, batch by batch, as :class:`~intrain.data.loader.BatchLoader` does.

**Determinism.** Every training position of an epoch gets a 63-bit seed drawn, with the order, from
:func:`~intrain.data.loader.epoch_generator` (seed, epoch); a worker draws that sample's crop and
flip from ``random.Random(sample_seed)``. So the batches depend only on (seed, epoch), not on the
number of workers, on which worker decodes what, or on the global random state, and a resumed run
replays an epoch exactly.
"""

from __future__ import annotations

import math
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from intrain.data.loader import epoch_generator
from intrain.data.specs import IMAGENET_MEAN, IMAGENET_STD, DatasetSpec
from intrain.errors import ConfigError, DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".bmp", ".tif", ".tiff", ".webp", ".gif")
DEFAULT_IMAGE_SIZE = 224
EVAL_CROP_FRACTION = 0.875  # 224 of 256
SCALE, RATIO = (0.08, 1.0), (3 / 4, 4 / 3)
LAYOUT = "expected DIR/train/<class>/<images> and DIR/val/<class>/<images>"
SCAN_BAR_FROM = 1000  # a progress bar over the header check from this many files (on a terminal)


@dataclass(frozen=True)
class FolderData:
    """A scanned image folder: class names, and per split the image paths and their labels."""

    spec: DatasetSpec
    classes: tuple[str, ...]
    train_files: tuple[str, ...]
    train_labels: torch.Tensor
    val_files: tuple[str, ...]
    val_labels: torch.Tensor
    skipped: tuple[str, ...] = ()  # the images left out as undecodable (``skip_bad``)


def folder_spec(num_classes: int, image_size: int = DEFAULT_IMAGE_SIZE) -> DatasetSpec:
    """The facts of a folder dataset with ``num_classes`` classes: RGB, ImageNet statistics."""
    return DatasetSpec("folder", num_classes, 3, image_size, IMAGENET_MEAN, IMAGENET_STD, augment=True)


def scan_folder(root: str | os.PathLike, image_size: int = DEFAULT_IMAGE_SIZE, *, skip_bad: bool = False,
                progress: bool = True) -> FolderData:
    """List the images of ``root`` (see the module docstring) and check that each decodes
    (:func:`check_images`); a bad layout or image raises ``DataError`` with one line naming the folder
    or file. With ``skip_bad`` undecodable images are left out instead and listed in ``skipped``."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"folder dataset {root} not found ({LAYOUT})")
    train_dir, val_dir = root / "train", root / "val"
    for split in (train_dir, val_dir):
        if not split.is_dir():
            raise DataError(f"folder dataset {root} has no {split.name} folder ({LAYOUT})")
    classes = _class_folders(train_dir)
    val_classes = _class_folders(val_dir)
    if val_classes != classes:
        missing = sorted(set(classes) - set(val_classes))
        extra = sorted(set(val_classes) - set(classes))
        what = "; ".join([f"missing {', '.join(map(repr, missing[:3]))}"] * bool(missing)
                         + [f"extra {', '.join(map(repr, extra[:3]))}"] * bool(extra))
        raise DataError(f"{val_dir} has other class folders than {train_dir}: {what}")
    train_files, train_labels = _images(train_dir, classes)
    val_files, val_labels = _images(val_dir, classes)
    if len(classes) < 2:
        raise DataError(f"{train_dir} has {len(classes)} class folder; a classifier needs at least 2")
    bad = check_images((*train_files, *val_files), skip_bad=skip_bad, progress=progress)
    if bad:
        train_files, train_labels = _without(train_files, train_labels, bad, train_dir)
        val_files, val_labels = _without(val_files, val_labels, bad, val_dir)
    return FolderData(folder_spec(len(classes), image_size), classes, train_files,
                      torch.tensor(train_labels, dtype=torch.int64), val_files,
                      torch.tensor(val_labels, dtype=torch.int64), tuple(sorted(bad)))


def check_images(files: Sequence[str], *, skip_bad: bool = False, progress: bool = True) -> set[str]:
    """Open every file and decode its header with Pillow (``Image.verify``); return the files that
    fail when ``skip_bad``, else raise ``DataError`` naming the first. ``progress``: a bar on a
    terminal for more than :data:`SCAN_BAR_FROM` files."""
    from PIL import Image

    checked: Iterator[str] | Sequence[str] = files
    if progress and len(files) > SCAN_BAR_FROM and sys.stderr.isatty():
        from tqdm import tqdm

        checked = tqdm(files, desc="checking images", unit="img", leave=False, dynamic_ncols=True)
    bad = set()
    for path in checked:
        try:
            with Image.open(path) as image:
                image.verify()
        except Exception as exc:  # noqa: BLE001 - Pillow raises many types for a bad file
            if not skip_bad:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise DataError(f"cannot decode image {path}: {reason}; --skip-bad-images trains "
                                "without the images that do not decode") from None
            bad.add(path)
    return bad


def _without(files: tuple[str, ...], labels: list[int], bad: set[str], split: Path) -> tuple[tuple[str, ...], list[int]]:
    kept = [i for i, path in enumerate(files) if path not in bad]
    if not kept:
        raise DataError(f"{split}: none of its {len(files)} images decodes")
    return tuple(files[i] for i in kept), [labels[i] for i in kept]


def _class_folders(split: Path) -> tuple[str, ...]:
    try:
        names = sorted(e.name for e in os.scandir(split) if e.is_dir() and not e.name.startswith("."))
    except OSError as exc:
        raise DataError(f"cannot read {split}: {exc.strerror or exc}") from None
    if not names:
        raise DataError(f"{split} has no class folders ({LAYOUT})")
    return tuple(names)


def _images(split: Path, classes: Sequence[str]) -> tuple[tuple[str, ...], list[int]]:
    files: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        folder = split / name
        try:
            found = sorted(e.path for e in os.scandir(folder)
                           if not e.name.startswith(".") and e.name.lower().endswith(IMAGE_EXTENSIONS)
                           and e.is_file())
        except OSError as exc:
            raise DataError(f"cannot read {folder}: {exc.strerror or exc}") from None
        if not found:
            raise DataError(f"{folder} holds no images ({', '.join(IMAGE_EXTENSIONS[:3])}, ...)")
        files += found
        labels += [label] * len(found)
    return tuple(files), labels


# ---------------------------------------------------------------------- decoding and transforms
def random_resized_box(width: int, height: int, rng: random.Random) -> tuple[float, float, float, float]:
    """torchvision's ``RandomResizedCrop.get_params`` with ``rng``: the (left, top, right, bottom)
    crop box of an image of ``width x height``."""
    area = width * height
    log_ratio = (math.log(RATIO[0]), math.log(RATIO[1]))
    for _ in range(10):
        target = area * rng.uniform(*SCALE)
        aspect = math.exp(rng.uniform(*log_ratio))
        w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            top, left = rng.randint(0, height - h), rng.randint(0, width - w)
            return left, top, left + w, top + h
    ratio = width / height  # fallback: the centre crop of the allowed aspect ratios
    if ratio < RATIO[0]:
        w, h = width, round(width / RATIO[0])
    elif ratio > RATIO[1]:
        w, h = round(height * RATIO[1]), height
    else:
        w, h = width, height
    top, left = (height - h) // 2, (width - w) // 2
    return left, top, left + w, top + h


def center_box(width: int, height: int, size: int) -> tuple[float, float, float, float]:
    """The region that resize(shorter side -> size / 0.875) + centre crop(size) keeps, in the
    original image's coordinates."""
    side = min(width, height) * EVAL_CROP_FRACTION
    left, top = (width - side) / 2, (height - side) / 2
    return left, top, left + side, top + side


class _Failure:
    """What a worker returns instead of an image it cannot decode (turned into ``DataError``)."""

    def __init__(self, path: str, reason: str) -> None:
        self.path, self.reason = path, reason


class _Images(torch.utils.data.Dataset):
    """Decodes ``files[index]`` and applies the transform; item ``(index, sample_seed)``."""

    def __init__(self, files: Sequence[str], labels: torch.Tensor, size: int, train: bool) -> None:
        self.files, self.labels, self.size, self.train = files, labels, size, train

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, item: tuple[int, int]):
        from PIL import Image

        index, sample_seed = item
        path = self.files[index]
        try:
            with Image.open(path) as image:
                image = image.convert("RGB")
            width, height = image.size
            if self.train:
                rng = random.Random(sample_seed)
                box = random_resized_box(width, height, rng)
                image = image.resize((self.size, self.size), Image.BILINEAR, box=box)
                if rng.random() < 0.5:
                    image = image.transpose(Image.FLIP_LEFT_RIGHT)
            else:
                image = image.resize((self.size, self.size), Image.BILINEAR,
                                     box=center_box(width, height, self.size))
            pixels = np.asarray(image, dtype=np.uint8)
        except Exception as exc:  # noqa: BLE001 - Pillow raises many types for a bad file
            return _Failure(path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__), -1
        return pixels, int(self.labels[index])


def _collate(samples: list) -> Any:
    failure = next((s for s, _ in samples if isinstance(s, _Failure)), None)
    if failure is not None:
        return failure
    images = torch.from_numpy(np.stack([s for s, _ in samples]))  # [B, H, W, 3]
    return images, torch.tensor([label for _, label in samples], dtype=torch.int64)


# ---------------------------------------------------------------------- the loader
class FolderLoader:
    """Batches of decoded, augmented and normalised images from a list of files.

    The same interface as :class:`~intrain.data.loader.BatchLoader` (``epoch(e, start_batch)``,
    ``len``, ``num_examples``, ``input_shape``): ``x`` float32 ``[B, 3, size, size]`` (channels-last
    in memory when ``channels_last``) and ``y`` int64 on ``device``. ``workers`` processes decode
    (0: the calling process); ``rank``/``world_size`` shard the training order as ``BatchLoader``.
    """

    def __init__(self, files: Sequence[str], labels: torch.Tensor, spec: DatasetSpec, *, batch_size: int,
                 train: bool, device: str | torch.device = "cpu", seed: int = 0, workers: int = 0,
                 rank: int = 0, world_size: int = 1, channels_last: bool = False) -> None:
        if len(files) != labels.numel() or not files:
            raise ConfigError(f"need one label per image, got {labels.numel()} labels for {len(files)} images")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        if workers < 0:
            raise ConfigError(f"workers: must be at least 0, got {workers}")
        self.spec, self.batch_size, self.train = spec, batch_size, train
        self.device, self.seed, self.workers = torch.device(device), seed, workers
        self.rank, self.world_size = rank, world_size
        self.channels_last = channels_last
        self.dataset = _Images(tuple(files), labels, spec.image_size, train)
        self.num_examples = len(files)
        self.num_samples = math.ceil(self.num_examples / world_size) if train else self.num_examples
        mean = torch.tensor(spec.mean, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        std = torch.tensor(spec.std, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self._scale, self._shift = 1.0 / (255.0 * std), -mean / std

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.spec.in_channels, self.spec.image_size, self.spec.image_size)

    def __len__(self) -> int:
        return math.ceil(self.num_samples / self.batch_size)

    def epoch(self, epoch: int, start_batch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if not 0 <= start_batch <= len(self):
            raise ConfigError(f"start_batch must be in 0..{len(self)}, got {start_batch}")
        return self._batches(self._plan(epoch, start_batch))

    def _plan(self, epoch: int, start_batch: int) -> list[list[tuple[int, int]]]:
        """This rank's batches of ``(index, sample_seed)`` from ``start_batch`` on."""
        n = self.num_examples
        if self.train:
            total = self.num_samples * self.world_size
            generator = epoch_generator(self.seed, epoch)
            order = torch.randperm(n, generator=generator).repeat(math.ceil(total / n))[:total]
            seeds = torch.randint(0, 2**63 - 1, (total,), generator=generator)
            shard = slice(self.rank, total, self.world_size)
            items = list(zip(order[shard].tolist(), seeds[shard].tolist()))
        else:
            items = [(i, 0) for i in range(n)]
        return [items[b * self.batch_size:(b + 1) * self.batch_size] for b in range(start_batch, len(self))]

    def _batches(self, plan: list) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if not plan:
            return
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_sampler=plan, num_workers=self.workers, collate_fn=_collate,
            pin_memory=self.device.type == "cuda", generator=torch.Generator().manual_seed(0),
            persistent_workers=False, prefetch_factor=4 if self.workers else None)
        for batch in loader:
            if isinstance(batch, _Failure):
                raise DataError(f"cannot decode image {batch.path}: {batch.reason}")
            images, labels = batch
            yield self._normalise(images), labels.to(self.device, non_blocking=True)

    def _normalise(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``[B, H, W, 3]`` -> float32 ``(x / 255 - mean) / std`` ``[B, 3, H, W]`` on the device."""
        x = images.to(self.device, non_blocking=True).permute(0, 3, 1, 2)  # a channels-last view
        x = x.float().mul_(self._scale).add_(self._shift)
        return x if self.channels_last else x.contiguous()
