"""Baselines the papers compare against: dense training and prune-then-retrain (PRT-E)."""

from __future__ import annotations

from .. import validation
from ..schedules import abrupt_fraction
from .base import PruningMethod
from .pwt import FilterPruning, filter_pruning_arguments


def dense() -> PruningMethod:
    """No pruning at all."""
    return PruningMethod()


def prt(*, target: float, prune_epoch: int, criterion: str = "l1", scope: str = "layer",
        include_linear: bool = False, seed: int = 0) -> FilterPruning:
    """PRT-E: train dense for ``prune_epoch`` epochs, prune abruptly to ``target`` by L1, retrain.
    Arguments are checked as ``intrain train`` checks them (:class:`~intrain.errors.ConfigError`)."""
    filter_pruning_arguments(criterion, scope, include_linear, seed)
    validation.number("target", target)
    validation.fraction("target", target)
    validation.whole("prune_epoch", prune_epoch)
    validation.at_least("prune_epoch", prune_epoch, 1)

    def schedule(epochs_done: int) -> float:
        return abrupt_fraction(epochs_done, target=target, prune_epoch=prune_epoch)

    method = FilterPruning(schedule, criterion=criterion, scope=scope, include_linear=include_linear, seed=seed)
    method.name = "prt"
    return method
