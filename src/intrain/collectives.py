"""Collective operations across the ranks of a distributed run, usable from any layer (criteria sum
their statistics with them); the process group itself is :mod:`intrain.engine.distributed`'s."""

from __future__ import annotations

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    """Whether a process group with more than one rank is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def sum_across_ranks(tensor: torch.Tensor) -> torch.Tensor:
    """Element-wise sum over all ranks (the tensor itself when not distributed)."""
    if not is_distributed():
        return tensor
    total = tensor.clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total
