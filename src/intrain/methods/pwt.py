"""PWT — pruning filters while training (Roy et al., Algorithms 1–3).

At the end of every pruning epoch (or every K optimizer steps), filters are pruned until the pruned
fraction of all prunable filters reaches the schedule's ``P`` (Algorithm 1's inner loop), lowest
score first, by :class:`~intrain.methods.filter_pruning.FilterPruning` (scores, scopes, tracing and
masks are there). This file holds PWT's schedule and its recipes: ``paper`` (the target grows
linearly and is reached at the last epoch) and ``recommended`` (the default: cubic, the target after
60% of the epochs, a prune every 6 steps; measured in benchmarks/README.md, "PWT protocol").

The same machinery runs the prune-then-retrain baseline (PRT-E, :mod:`intrain.methods.prt`) and Soft
Filter Pruning (:mod:`intrain.methods.sfp`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .. import validation
from ..errors import ConfigError
from ..schedules import SHAPES, lr_factor, pwt_plan
from .filter_pruning import FilterPruning, FilterSettings, filter_label, filter_pruning_arguments
from .registry import MethodSpec, RunContext, register

def pwt(
    *,
    target: float,
    epochs: int,
    rate: float | None = None,
    initial: float = 0.0,
    every: int = 1,
    reach: float | None = None,
    schedule: str = "linear",
    prune_every_steps: int | None = None,
    steps_per_epoch: int | None = None,
    criterion: str = "l1",
    scope: str = "layer",
    include_linear: bool = False,
    seed: int = 0,
    round_to: int = 1,
) -> FilterPruning:
    """PWT. The paper's schedule by default: ``initial`` growing by ``rate`` per epoch (default
    ``target / epochs``) up to ``target``, applied every ``every`` epochs (Mod-N, the events counted
    back from the epoch that reaches the target).

    Beyond the paper: ``reach`` (a fraction of ``epochs``) reaches the target earlier and leaves the
    rest of training at the final size; ``schedule="cubic"`` is Zhu & Gupta's gradual schedule;
    ``prune_every_steps=K`` prunes every K optimizer steps (``steps_per_epoch`` needed), the
    schedule interpolated by iteration, so the same target is reached in many small steps;
    ``round_to=N``: every pruned layer keeps a multiple of N filters (:mod:`intrain.methods.round_to`).

    Arguments are checked here as ``intrain train`` checks them (:class:`~intrain.errors.ConfigError`),
    a schedule that never reaches ``target`` within ``epochs`` included.
    """
    filter_pruning_arguments(criterion, scope, include_linear, seed)
    validation.pwt_schedule(target=target, epochs=epochs, rate=rate, initial=initial, every=every, reach=reach,
                            schedule=schedule, prune_every_steps=prune_every_steps)
    plan = pwt_plan(target=target, epochs=epochs, rate=rate, initial=initial, every=every, reach=reach,
                    shape=schedule)
    every_steps = None
    if prune_every_steps is not None:
        if steps_per_epoch is None:
            raise ConfigError("steps_per_epoch: prune_every_steps needs the number of batches per epoch")
        validation.whole("steps_per_epoch", steps_per_epoch)
        validation.at_least("steps_per_epoch", steps_per_epoch, 1)
        every_steps = (prune_every_steps, steps_per_epoch, plan.at)
    return FilterPruning(plan.after_epoch, criterion=criterion, scope=scope, include_linear=include_linear, seed=seed,
                         every_steps=every_steps, round_to=round_to)


# ---------------------------------------------------------------------- the registry's entry
# PWT's schedule settings when not given: the paper's, and intrain's recommendation (measured on
# benchmarks/pwt_protocol.py: see benchmarks/README.md)
PWT_RECIPES = {
    "paper": {"schedule": "linear", "reach": 1.0, "prune_every_steps": None},
    "recommended": {"schedule": "cubic", "reach": 0.6, "prune_every_steps": 6},
}
DEFAULT_RECIPE = "recommended"  # measured: benchmarks/README.md, "PWT protocol"
LATE_PRUNE_LR_FACTOR = 0.25  # below this share of the initial learning rate, a last prune is flagged


@dataclass(frozen=True)
class PWTConfig(FilterSettings):
    """PWT's settings (see :func:`pwt`): the target and the schedule that reaches it."""

    target: float = field(default=0.5, metadata={"help": "fraction of filters pruned at the end, in [0, 1)"})
    initial: float = field(default=0.0, metadata={"help": "fraction pruned at the first pruning event"})
    rate: float | None = field(default=None, metadata={"help": "fraction added per epoch (default target/epochs)"})
    every: int = field(default=1, metadata={"help": "prune every N-th epoch (Mod-N), N x rate at a time"})
    recipe: str = field(default=DEFAULT_RECIPE, metadata={
        "help": "defaults of --schedule/--reach/--prune-every-steps: paper (linear, 1, epoch ends) or recommended "
                "(cubic, 0.6, 6)"})
    reach: float | None = field(default=None, metadata={
        "help": "reach the target after this fraction of the epochs (the paper: 1)"})
    schedule: str | None = field(default=None, metadata={
        "help": "growth of the pruned fraction: linear (the paper) or cubic (Zhu & Gupta)"})
    prune_every_steps: int | None = field(default=None, metadata={
        "help": "prune every K optimizer steps, the schedule interpolated by iteration (default: at epoch ends)"})

    def validate(self) -> None:
        super().validate()
        validation.choice("recipe", self.recipe, tuple(PWT_RECIPES))
        if self.schedule is not None:
            validation.choice("schedule", self.schedule, SHAPES)
        validation.fraction("target", self.target)
        validation.fraction("initial", self.initial)

    @property
    def schedule_settings(self) -> dict[str, Any]:
        """``schedule``, ``reach`` and ``prune_every_steps`` as used: the values given, else the
        ``recipe``'s. A ``rate`` fixes a linear schedule, ``every`` > 1 (Mod-N) pruning at epoch ends."""
        recipe = PWT_RECIPES[self.recipe]
        rate_given = self.rate is not None
        return {
            "schedule": self.schedule or ("linear" if rate_given else recipe["schedule"]),
            "reach": None if rate_given else (self.reach if self.reach is not None else recipe["reach"]),
            "prune_every_steps": self.prune_every_steps if self.prune_every_steps is not None
            else (None if self.every > 1 else recipe["prune_every_steps"]),
        }

    def pruning_rate(self, epochs: int) -> float:
        """Fraction added per epoch by a linear schedule: ``rate``, else ``target / (reach * epochs)``."""
        if self.rate is not None:
            return self.rate
        return (self.target - self.initial) / (epochs * self.schedule_settings["reach"])

    def plan(self, epochs: int):
        """The schedule of pruned fractions over ``epochs`` (:class:`~intrain.schedules.PruneSchedule`)."""
        settings = self.schedule_settings
        return pwt_plan(target=self.target, epochs=epochs, rate=self.rate, initial=self.initial, every=self.every,
                        reach=settings["reach"], shape=settings["schedule"])


def _check(c: PWTConfig, run) -> None:
    validation.pwt_schedule(target=c.target, epochs=run.epochs, rate=c.rate, initial=c.initial, every=c.every,
                            reach=c.reach, schedule=c.schedule, prune_every_steps=c.prune_every_steps)


def _resolve(c: PWTConfig, run) -> PWTConfig:
    """The recipe's settings written out; a linear schedule as its rate per epoch."""
    settings = dict(c.schedule_settings)
    if settings["schedule"] == "linear" and 0 < c.pruning_rate(run.epochs) < 1:
        settings.update(rate=c.pruning_rate(run.epochs), reach=None)
    return dataclasses.replace(c, **settings)


def _last_prune_epoch(c: PWTConfig, run) -> int | None:
    return None if c.target == 0 else c.plan(run.epochs).last_epoch


def _advisories(c: PWTConfig, run) -> list[str]:
    """PWT's last prune must leave learning rate to recover with: a prune costs several points that
    the following epochs win back, and a decayed cosine or step rate cannot."""
    last = _last_prune_epoch(c, run)
    if last is None or run.lr_schedule not in ("cosine", "step"):
        return []
    left = lr_factor(run.lr_schedule, last, iterations_per_epoch=1, total_iterations=run.epochs,
                     step_epochs=run.step_epochs, gamma=run.lr_gamma)
    if left >= LATE_PRUNE_LR_FACTOR:
        return []
    return [f"pwt prunes for the last time after epoch {last} of {run.epochs}, when the {run.lr_schedule} "
            f"learning rate is down to {100 * left:.0f}% of its start: too little is left to recover from the "
            "prune (measured with VGG-16 on Fashion-MNIST, cosine, last prune after epoch 15 of 16: 22% final "
            "accuracy against 85% dense); reach the target earlier (--rate) or use --lr-schedule constant"]


def _label(summary: dict, config: dict) -> str:
    text = filter_label("pwt", summary, config)
    return text + (f" Mod{config['every']}" if (config.get("every") or 1) > 1 else "")


def _build(c: PWTConfig, run: RunContext) -> FilterPruning:
    return pwt(target=c.target, epochs=run.config.epochs, rate=c.rate, initial=c.initial, every=c.every,
               **c.schedule_settings, steps_per_epoch=run.iterations_per_epoch, criterion=c.criterion,
               scope=c.scope, include_linear=c.include_linear, seed=run.config.seed, round_to=c.round_to)


SPEC = register(MethodSpec(
    "pwt", PWTConfig, _build, "pruning filters while training (Roy et al.): a schedule of pruned fractions",
    structured=True, check=_check, resolve=_resolve, last_prune_epoch=_last_prune_epoch, advisories=_advisories,
    label=_label))
