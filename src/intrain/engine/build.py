"""Turn a :class:`~intrain.config.TrainConfig` into the objects a run needs."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..config import MAX_SEED, TrainConfig
from ..data import BatchLoader, DatasetSpec, default_data_dir, load_dataset
from ..data.datasets import stratified_indices, validation_indices
from ..errors import ConfigError
from ..methods import PruningMethod
from ..methods.registry import RunContext
from ..models import create_model, model_entry
from ..models.registry import input_error, input_size_message
from ..models.init import FILLERS
from ..models.weights import load_initial_weights
from ..schedules import lr_factor
from .distributed import World


RANK_SEED_STRIDE = 1_000_003  # under torchrun, rank r draws from seed + r * stride


@dataclass
class RunParts:
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    method: PruningMethod
    train_loader: BatchLoader  # or a FolderLoader: the same interface
    test_loader: BatchLoader
    spec: DatasetSpec
    device: torch.device
    notes: tuple[str, ...] = ()  # the data's notes for the user (Splits.notes)
    val_loader: BatchLoader | None = None  # the validation split held out of the training data (val_split)
    skipped_images: int | None = None  # dataset folder: images left out as undecodable (skip_bad_images)


def resolve_device(name: str, world: World = World()) -> torch.device:
    """``auto`` is CUDA when available; under torchrun each rank takes the GPU of its local rank."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and world.distributed:
        name = f"cuda:{world.local_rank}"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device: '{name}' requested but CUDA is not available on this machine")
    if name.startswith("cuda:") and int(name[5:]) >= torch.cuda.device_count():
        raise ConfigError(f"device: '{name}' requested but this machine has {torch.cuda.device_count()} CUDA device(s)")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device: 'mps' requested but MPS is not available on this machine")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_model(config: TrainConfig, spec: DatasetSpec) -> nn.Module:
    try:
        model = create_model(config.model, num_classes=spec.num_classes, in_channels=spec.in_channels,
                             width=config.width, init=config.init == "he-normal")
        if config.init in FILLERS:
            FILLERS[config.init](model, std=config.init_std)
        return model
    except (MemoryError, torch.OutOfMemoryError):  # an absurd --width
        raise ConfigError(f"width: {config.model} at width {config.width} does not fit in memory") from None
    except RuntimeError as exc:
        if "allocate" not in str(exc):
            raise
        raise ConfigError(f"width: {config.model} at width {config.width} does not fit in memory") from None


def make_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.learning_rate, momentum=config.momentum, weight_decay=config.weight_decay)


class LrSchedule:
    """A picklable learning-rate multiplier for ``LambdaLR`` (its state travels in checkpoints)."""

    def __init__(self, config: TrainConfig, iterations_per_epoch: int) -> None:
        self.schedule = config.lr_schedule
        self.iterations_per_epoch = iterations_per_epoch
        self.total_iterations = iterations_per_epoch * config.epochs
        self.step_epochs, self.gamma = config.lr_step_epochs, config.lr_gamma
        self.inv_gamma, self.inv_power = config.inv_gamma, config.inv_power
        self.milestones = config.lr_milestones

    def __call__(self, iteration: int) -> float:
        return lr_factor(
            self.schedule, iteration, iterations_per_epoch=self.iterations_per_epoch,
            total_iterations=self.total_iterations, step_epochs=self.step_epochs, gamma=self.gamma,
            inv_gamma=self.inv_gamma, inv_power=self.inv_power, milestones=getattr(self, "milestones", None),
        )


def make_method(config: TrainConfig, iterations_per_epoch: int = 1, *, model: nn.Module | None = None,
                train_loader=None, saved_state: dict | None = None) -> PruningMethod:
    """The run's pruning method, built by its registry entry (:attr:`MethodSpec.build`). ``model`` and
    ``train_loader`` serve a method that needs them before training (RA's probe phase);
    ``saved_state`` is the method's state in a checkpoint being resumed."""
    context = RunContext(config, iterations_per_epoch, model=model, train_loader=train_loader,
                         make_optimizer=lambda m: make_optimizer(config, m), saved_state=saved_state)
    return config.spec.build(config.method_config, context)


def build(config: TrainConfig, world: World = World(), saved_method_state: dict | None = None, *,
          progress: bool = True) -> RunParts:
    """Data, model, optimizer, schedule and pruning method for ``config``, seeded.

    With several ranks, ``batch_size`` is the global batch: each rank takes ``batch_size / ranks``.
    The method is built last (RA's probe phase runs then, unless ``saved_method_state``, the method's
    state in a checkpoint being resumed, holds its result), after ``init_from``'s weights are loaded
    (not when resuming: the checkpoint's weights replace them). ``progress``: a folder dataset's scan
    may draw a bar on a terminal.
    """
    device = resolve_device(config.device, world)
    check_precision(config, device)
    if config.batch_size % world.size:
        raise ConfigError(f"batch_size: {config.batch_size} is not divisible by the {world.size} ranks")
    entry = model_entry(config.model)
    notes: tuple[str, ...] = ()
    skipped = None
    if config.dataset == "folder":
        spec, train_loader, test_loader, val_loader, skipped = folder_loaders(config, entry, world, device, progress)
        if skipped:
            notes = (f"left out {len(skipped)} image(s) that do not decode (--skip-bad-images), e.g. {skipped[0]}",)
    else:
        splits = load_dataset(config.dataset, config.data_dir, subset=config.subset, seed=config.seed,
                              val_split=config.val_split)
        spec, notes = splits.spec, splits.notes
        pad_to = entry.input_size if entry.input_size and entry.input_size != spec.image_size else None
        train_loader = BatchLoader(splits.train_images, splits.train_labels, spec,
                                   batch_size=config.batch_size // world.size, train=True, device=device,
                                   seed=config.seed, pad_to=pad_to, rank=world.rank, world_size=world.size)

        def evaluation(images, labels):
            return BatchLoader(images, labels, spec, batch_size=max(config.batch_size, 256), train=False,
                               device=device, seed=config.seed, pad_to=pad_to)

        test_loader = evaluation(splits.test_images, splits.test_labels)
        val_loader = evaluation(splits.val_images, splits.val_labels) if splits.val_images is not None else None
    if config.batch_size > train_loader.num_examples:
        notes = (*notes, f"batch_size {config.batch_size} is larger than the {train_loader.num_examples} "
                 f"training examples: every epoch is one batch of {train_loader.num_examples}")
    seed_everything(config.seed)
    init_seed = config.spec.initial_seed(config.method_config, config)
    if init_seed is not None:  # e.g. scratch: its initial weights come from its own init seed
        torch.manual_seed(init_seed)
    model = apply_memory_format(make_model(config, spec).to(device), config)
    if init_seed is not None:
        torch.manual_seed(config.seed)
    if config.init_from is not None and saved_method_state is None:  # a resumed run's come from its checkpoint
        load_initial_weights(model, config.init_from, config.model)
    check_input_size(model, config, train_loader.input_shape)  # e.g. alexnet on 28x28 MNIST: one line, now
    optimizer = make_optimizer(config, model)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, LrSchedule(config, len(train_loader)))
    method = make_method(config, len(train_loader), model=model, train_loader=train_loader,
                         saved_state=saved_method_state)
    if world.distributed:  # each rank its own stream for dropout and the like (weights are identical)
        seed_everything((config.seed + RANK_SEED_STRIDE * world.rank) % (MAX_SEED + 1))
    return RunParts(model, optimizer, scheduler, method, train_loader, test_loader, spec, device, notes, val_loader,
                    None if skipped is None else len(skipped))


def folder_loaders(config: TrainConfig, entry, world: World, device: torch.device, progress: bool = True):
    """Spec, loaders and skipped (undecodable) files of ``--dataset folder`` (:mod:`intrain.data.folder`):
    ``image_size`` defaults to the model's fixed input size, else 224."""
    from ..data.folder import FolderLoader, scan_folder

    size = config.folder_image_size
    if entry.input_size and size != entry.input_size:
        raise ConfigError(f"image_size: model {config.model} takes {entry.input_size}x{entry.input_size} "
                          f"images, got {size}; drop --image-size or pick another model")
    data = scan_folder(config.data_dir if config.data_dir is not None else default_data_dir(), size,
                       skip_bad=config.skip_bad_images, progress=progress)
    files, labels = data.train_files, data.train_labels
    held = None
    if config.val_split is not None:  # held out of DIR/train (DIR/val is the test split)
        keep, val = (i.tolist() for i in validation_indices(labels, config.val_split))
        held = tuple(files[i] for i in val), labels[val]
        files, labels = tuple(files[i] for i in keep), labels[keep]
    if config.subset is not None:
        keep = stratified_indices(labels, config.subset, seed=config.seed).tolist()
        files, labels = tuple(files[i] for i in keep), labels[keep]
    common = dict(device=device, seed=config.seed, workers=config.workers, channels_last=config.channels_last)
    train = FolderLoader(files, labels, data.spec, batch_size=config.batch_size // world.size, train=True,
                         rank=world.rank, world_size=world.size, **common)

    def evaluation(files, labels):
        return FolderLoader(files, labels, data.spec, batch_size=max(config.batch_size, 256), train=False, **common)

    test = evaluation(data.val_files, data.val_labels)
    return data.spec, train, test, evaluation(*held) if held is not None else None, data.skipped


def check_input_size(model: nn.Module, config: TrainConfig, shape: tuple[int, ...]) -> None:
    """A model too deep for the images (:func:`~intrain.models.registry.input_error`) is one line here,
    before the run folder exists, rather than a traceback in the first step."""
    reason = input_error(model, tuple(shape))
    if reason is None:
        return
    if config.dataset == "folder":
        raise ConfigError(f"image_size: model {config.model} cannot take {'x'.join(map(str, shape))} inputs "
                          f"({reason}); use a larger --image-size")
    raise ConfigError(input_size_message(config.model, config.dataset, shape, reason))


def check_precision(config: TrainConfig, device: torch.device) -> None:
    """fp16 autocast needs a gradient scaler, which intrain runs on CUDA only."""
    if config.amp == "fp16" and device.type != "cuda":
        raise ConfigError(f"amp: fp16 trains with a gradient scaler on CUDA only, and the device is {device}; "
                          "use --amp bf16 there")


def apply_memory_format(model: nn.Module, config: TrainConfig) -> nn.Module:
    """``--channels-last``: 4-d parameters and buffers in channels-last memory order, in place (the
    parameter objects stay, so an optimizer over them keeps working). Needed again whenever the
    tensors are replaced (compaction, shrinking to a checkpoint)."""
    return model.to(memory_format=torch.channels_last) if config.channels_last else model
