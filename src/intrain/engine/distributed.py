"""Distributed data parallel training under ``torchrun``: process group, rank, wrapper.

``torchrun --nproc_per_node N -m intrain train ...`` sets ``WORLD_SIZE``/``RANK``/``LOCAL_RANK``;
:func:`process_group` then joins the group (gloo on CPU, NCCL on CUDA) for the duration of a run.
Every rank trains on its interleaved shard of the same seeded epoch order, so the union of the
ranks' batches at a step is the 1-process batch of the same global size. Pruning decisions are made
identically on every rank: L1 scores come from identical (all-reduced) weights, random scores from
the same seed, mean activations are summed across ranks (:func:`sum_across_ranks`) before ranking.
Only rank 0 writes files and prints.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.distributed as dist
from torch import nn

from ..collectives import is_distributed, sum_across_ranks  # noqa: F401 - part of this module's API
from ..errors import ConfigError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def world_from_environment() -> World:
    """The rank layout ``torchrun`` announces through the environment (1 process otherwise)."""
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        raise ConfigError("WORLD_SIZE, RANK and LOCAL_RANK must be whole numbers (as torchrun sets them)") from None
    return World(rank=rank, size=size, local_rank=local_rank)


@contextmanager
def process_group(world: World, device: torch.device) -> Iterator[World]:
    """Join (and finally leave) the default process group when running with more than one rank."""
    if not world.distributed or dist.is_initialized():
        yield world
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)  # object collectives (every rank's RNG state) use the current device
    dist.init_process_group(backend=backend)
    try:
        yield world
        dist.barrier()  # every rank done with its collectives before the group goes (not after an error)
    finally:
        dist.destroy_process_group()


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """The module the training loop calls: a DistributedDataParallel wrapper when distributed.

    Compaction replaces parameters, so the wrapper must be rebuilt after it (call ``wrap`` again on
    the plain model on every rank).
    """
    if not is_distributed():
        return model
    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)
