"""Prune-then-retrain (PRT-E), the PWT paper's baseline: train dense for E epochs, prune abruptly to
the target by the filter criterion, retrain at that size for the remaining epochs."""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import validation
from ..errors import ConfigError
from ..importance import Importance
from ..schedules import abrupt_fraction
from .filter_pruning import FilterPruning, FilterSettings, filter_label, filter_pruning_arguments
from .registry import MethodSpec, RunContext, register


def prt(*, target: float, prune_epoch: int, criterion: str | Importance = "l1", scope: str = "layer",
        include_linear: bool = False, seed: int = 0, round_to: int = 1) -> FilterPruning:
    """PRT-E: train dense for ``prune_epoch`` epochs, prune abruptly to ``target`` by ``criterion`` (a name
    or an :class:`~intrain.importance.Importance`), retrain.
    Arguments are checked as ``intrain train`` checks them (:class:`~intrain.errors.ConfigError`)."""
    filter_pruning_arguments(criterion, scope, include_linear, seed)
    validation.number("target", target)
    validation.fraction("target", target)
    validation.whole("prune_epoch", prune_epoch)
    validation.at_least("prune_epoch", prune_epoch, 1)

    def schedule(epochs_done: int) -> float:
        return abrupt_fraction(epochs_done, target=target, prune_epoch=prune_epoch)

    method = FilterPruning(schedule, criterion=criterion, scope=scope, include_linear=include_linear, seed=seed,
                           round_to=round_to)
    method.name = "prt"
    return method


@dataclass(frozen=True)
class PRTConfig(FilterSettings):
    target: float = field(default=0.5, metadata={"help": "fraction of filters pruned at the end, in [0, 1)"})
    prune_epoch: int | None = field(default=None, metadata={"help": "prune after this many dense epochs, then retrain"})

    def validate(self) -> None:
        super().validate()
        validation.fraction("target", self.target)
        if self.prune_epoch is None:
            raise ConfigError("prune_epoch: method prt needs --prune-epoch E (prune after E dense epochs)")


def _check(c: PRTConfig, run) -> None:
    if not 1 <= c.prune_epoch <= run.epochs:
        raise ConfigError(f"prune_epoch: must be between 1 and epochs ({run.epochs}), got {c.prune_epoch}")


def _label(summary: dict, config: dict) -> str:
    text = filter_label("prt", summary, config)
    return text + (f" @E{config['prune_epoch']}" if config.get("prune_epoch") else "")


def _build(c: PRTConfig, run: RunContext) -> FilterPruning:
    return prt(target=c.target, prune_epoch=c.prune_epoch, criterion=c.criterion, scope=c.scope,
               include_linear=c.include_linear, seed=run.config.seed, round_to=c.round_to)


SPEC = register(MethodSpec(
    "prt", PRTConfig, _build, "prune-then-retrain (PRT-E): dense for E epochs, one prune, retraining",
    structured=True, prunes_while_training=False, check=_check, last_prune_epoch=lambda c, run: c.prune_epoch,
    label=_label))
