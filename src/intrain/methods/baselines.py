"""Baselines the papers compare against: dense training and prune-then-retrain (PRT-E)."""

from __future__ import annotations

from ..schedules import abrupt_fraction
from .base import PruningMethod
from .pwt import FilterPruning


def dense() -> PruningMethod:
    """No pruning at all."""
    return PruningMethod()


def prt(*, target: float, prune_epoch: int, criterion: str = "l1", scope: str = "layer",
        include_linear: bool = False, seed: int = 0) -> FilterPruning:
    """PRT-E: train dense for ``prune_epoch`` epochs, prune abruptly to ``target`` by L1, retrain."""

    def schedule(epochs_done: int) -> float:
        return abrupt_fraction(epochs_done, target=target, prune_epoch=prune_epoch)

    method = FilterPruning(schedule, criterion=criterion, scope=scope, include_linear=include_linear, seed=seed)
    method.name = "prt"
    return method
