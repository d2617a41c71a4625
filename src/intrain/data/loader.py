"""The training-time data pipeline: whole batches built with tensor ops on the target device.

The dataset lives on the device as uint8. Each batch is gathered by index, optionally padded and
augmented (still uint8, so padding is black pixel value 0 exactly like torchvision's ``Pad`` and
``RandomCrop(padding=4)`` on a PIL image), then normalised with the dataset's mean/std. There is no
DataLoader, no PIL and no per-sample Python.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from intrain.data.specs import DatasetSpec
from intrain.errors import ConfigError

SEED_STRIDE = 1_000_003
CROP_PADDING = 4  # CIFAR recipe: random 32x32 crop of the image zero-padded by 4 pixels


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The CPU generator for one epoch; it depends only on (seed, epoch), never the global RNG."""
    return torch.Generator().manual_seed(seed * SEED_STRIDE + epoch)


class BatchLoader:
    """Iterate over an in-memory uint8 dataset in normalised float32 batches.

    ``epoch(e)`` yields ``(x, y)`` with ``x`` float32 ``[B, C, H, W]`` and ``y`` int64 ``[B]`` on
    ``device``. For ``train=True`` the order is a permutation drawn from
    ``torch.Generator().manual_seed(seed * 1_000_003 + e)`` and, when ``spec.augment``, the same
    generator then draws a random crop offset and horizontal flip for every position of the
    epoch; a resumed run therefore reproduces an epoch exactly. ``train=False`` keeps the dataset
    order and never augments.

    ``pad_to`` zero-pads images symmetrically (an odd margin puts the extra pixel right/bottom) to
    ``pad_to x pad_to`` *before* normalisation with pixel value 0, as torchvision's ``Pad`` does;
    the border is therefore ``-mean/std`` after normalisation. ``rank``/``world_size`` shard each
    epoch like ``DistributedSampler``: the order is padded by wrapping around to a multiple of
    ``world_size`` and rank ``r`` takes positions ``r, r + world_size, ...``.
    """

    def __init__(
        self,
        images_uint8: torch.Tensor,
        labels: torch.Tensor,
        spec: DatasetSpec,
        *,
        batch_size: int,
        train: bool,
        device: str | torch.device = "cpu",
        seed: int = 0,
        pad_to: int | None = None,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        _check_arguments(images_uint8, labels, spec, batch_size, pad_to, rank, world_size)
        self.spec = spec
        self.batch_size = batch_size
        self.train = train
        self.device = torch.device(device)
        self.seed = seed
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size
        self.augment = train and spec.augment
        self.images = _pad_images(images_uint8, pad_to).to(self.device)
        self.labels = labels.to(self.device, torch.int64)
        self.num_examples = labels.numel()
        self.num_samples = math.ceil(self.num_examples / world_size)  # per rank
        mean = torch.tensor(spec.mean, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        std = torch.tensor(spec.std, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self._scale, self._shift = 1.0 / (255.0 * std), -mean / std

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One example's shape as the model sees it, ``(C, H, W)`` (after ``pad_to``)."""
        return tuple(self.images.shape[1:])

    def __len__(self) -> int:
        """Batches per epoch for this rank."""
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    def epoch(
        self, epoch: int, start_batch: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield the batches of ``epoch`` from batch ``start_batch`` on (for mid-epoch resume)."""
        if not 0 <= start_batch <= len(self):
            raise ConfigError(f"start_batch must be in 0..{len(self)}, got {start_batch}")
        return self._batches(epoch, start_batch)

    def _batches(self, epoch: int, start_batch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Generator behind :meth:`epoch`; the plan is drawn once, skipped batches cost nothing."""
        order, crops = self._epoch_plan(epoch)
        for b in range(start_batch, len(self)):
            positions = slice(b * self.batch_size, (b + 1) * self.batch_size)
            index = order[positions]
            x = self.images[index]
            if crops is not None:
                x = _crop_and_flip(x, *(c[positions] for c in crops))
            yield self._normalise(x), self.labels[index]

    def _epoch_plan(self, epoch: int):
        """This rank's example order and, when augmenting, its (dy, dx, flip) per position."""
        n, total = self.num_examples, self.num_samples * self.world_size
        generator = epoch_generator(self.seed, epoch)
        order = torch.randperm(n, generator=generator) if self.train else torch.arange(n)
        order = order.repeat(math.ceil(total / n))[:total]  # wrap-around padding for sharding
        shard = slice(self.rank, total, self.world_size)
        crops = None
        if self.augment:
            span = 2 * CROP_PADDING + 1
            dy = torch.randint(span, (total,), generator=generator)
            dx = torch.randint(span, (total,), generator=generator)
            flip = torch.rand(total, generator=generator) < 0.5
            crops = tuple(t[shard].to(self.device) for t in (dy, dx, flip))
        return order[shard].to(self.device), crops

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 pixels -> float32 ``(x / 255 - mean) / std``."""
        return x.float().mul_(self._scale).add_(self._shift)


def _check_arguments(images, labels, spec, batch_size, pad_to, rank, world_size) -> None:
    """Raise ``ConfigError`` for inconsistent loader arguments."""
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != spec.in_channels:
        raise ConfigError(
            f"images must be uint8 [N, {spec.in_channels}, H, W], got {images.dtype} "
            f"{tuple(images.shape)}"
        )
    if labels.dim() != 1 or labels.numel() != images.shape[0] or labels.numel() == 0:
        raise ConfigError(f"need one label per image, got {tuple(labels.shape)} labels "
                          f"for {images.shape[0]} images")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    if pad_to is not None and pad_to < max(images.shape[2:]):
        raise ConfigError(f"pad_to={pad_to} is smaller than the images {tuple(images.shape[2:])}")
    if world_size < 1 or not 0 <= rank < world_size:
        raise ConfigError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")


def _pad_images(images: torch.Tensor, pad_to: int | None) -> torch.Tensor:
    """Zero-pad uint8 images symmetrically to ``pad_to x pad_to`` (no-op for ``None``)."""
    if pad_to is None:
        return images
    height, width = images.shape[2:]
    top, left = (pad_to - height) // 2, (pad_to - width) // 2
    return F.pad(images, (left, pad_to - width - left, top, pad_to - height - top), value=0)


def _crop_and_flip(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor):
    """Per-sample random crop of the zero-padded batch at offset (dy, dx), then horizontal flip.

    ``unfold`` exposes every crop window as a view ``[B, C, offsets, offsets, H, W]``; one
    advanced-indexing gather picks each sample's window.
    """
    batch, _, height, width = x.shape
    windows = F.pad(x, (CROP_PADDING,) * 4, value=0).unfold(2, height, 1).unfold(3, width, 1)
    crops = windows[torch.arange(batch, device=x.device), :, dy, dx]
    return torch.where(flip[:, None, None, None], crops.flip(3), crops)
