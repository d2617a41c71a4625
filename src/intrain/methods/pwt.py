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
from ..importance import Importance, settings_name
from ..schedules import SHAPES, algorithm1_settings, lr_factor, pwt_plan
from .filter_pruning import FilterPruning, FilterSettings, filter_label, filter_pruning_arguments
from .registry import MethodSpec, RunContext, register

def pwt(
    *,
    target: float,
    epochs: int,
    recipe: str = "recommended",
    rate: float | None = None,
    initial: float | None = None,
    every: int = 1,
    reach: float | None = None,
    schedule: str | None = None,
    prune_every_steps: int | None = None,
    steps_per_epoch: int | None = None,
    criterion: str | Importance = "l1",
    scope: str | None = None,
    include_linear: bool = False,
    seed: int = 0,
    round_to: int = 1,
) -> FilterPruning:
    """PWT with ``intrain train --method pwt``'s settings and defaults (:class:`PWTConfig`).

    ``recipe`` fills ``schedule``, ``reach``, ``prune_every_steps`` and ``scope`` when not given:
    ``recommended`` (the default, as on the command line): cubic, the target after 60% of the
    epochs, a prune every 6 optimizer steps (``steps_per_epoch`` needed: the batches per epoch),
    per-layer ranking; ``paper``: the PWT paper's Algorithms 1-3 as written: a linear schedule,
    ``initial`` at the first epoch end (default ``rate``) and ``rate`` more after each epoch (default:
    the target at the last epoch), at epoch ends, ``scope="paper"`` (l1: one ranking over the
    network; mean-activation: one filter per layer per epoch; random: a layer, then a filter).
    ``every`` prunes every N-th epoch (Mod-N, the events counted back from the epoch that reaches
    the target).
    ``criterion``: a name (``l1``, ``mean-activation``, ``random``, ``group-l1``) or an
    :class:`~intrain.importance.Importance` object, a user's own included.
    ``round_to=N``: every pruned layer keeps a multiple of N filters (:mod:`intrain.methods.round_to`).

    Arguments are checked here as ``intrain train`` checks them (:class:`~intrain.errors.ConfigError`),
    a schedule that never reaches ``target`` within ``epochs`` included.
    """
    c = PWTConfig(target=target, initial=initial, rate=rate, every=every, recipe=recipe, reach=reach,
                  schedule=schedule, prune_every_steps=prune_every_steps, criterion=settings_name(criterion),
                  scope=scope, include_linear=include_linear, round_to=round_to)
    filter_pruning_arguments(criterion, c.effective_scope, include_linear, seed, scopes=validation.PWT_SCOPES)
    validation.whole("epochs", epochs)
    validation.at_least("epochs", epochs, 1)
    _check_settings(c, epochs)
    plan = c.plan(epochs)
    if c.algorithm2:  # one filter per layer at every epoch end, up to the target in each layer
        return FilterPruning(lambda epochs_done: target if epochs_done > 0 else 0.0, criterion=criterion,
                             scope="paper", include_linear=include_linear, seed=seed)
    every_steps = None
    k = c.schedule_settings["prune_every_steps"]
    if k is not None:
        if steps_per_epoch is not None:
            validation.whole("steps_per_epoch", steps_per_epoch)
            validation.at_least("steps_per_epoch", steps_per_epoch, 1)
        every_steps = (k, steps_per_epoch or 1, plan.at if steps_per_epoch else _needs_steps(k, c.recipe))
    return FilterPruning(plan.after_epoch, criterion=criterion, scope=c.effective_scope,
                         include_linear=include_linear, seed=seed, every_steps=every_steps,
                         round_to=round_to)


def _needs_steps(k: int, recipe: str):
    """The progress schedule of a method built without ``steps_per_epoch``: a one-line ConfigError
    when first used (pruning by steps needs the batches per epoch; pruning by hand does not)."""
    def progress(epochs_done: float) -> float:
        raise ConfigError(f"steps_per_epoch: pwt prunes every {k} optimizer steps (recipe {recipe}) and needs the "
                          "number of batches per epoch: pwt(..., steps_per_epoch=len(train_loader)), or "
                          "recipe='paper' (epoch ends)")
    return progress


# ---------------------------------------------------------------------- the registry's entry
# PWT's settings when not given: the paper's (Algorithms 1-3 as written), and intrain's recommendation
# (measured on benchmarks/pwt_protocol.py: see benchmarks/README.md)
PWT_RECIPES = {
    "paper": {"schedule": "linear", "reach": 1.0, "prune_every_steps": None, "scope": "paper"},
    "recommended": {"schedule": "cubic", "reach": 0.6, "prune_every_steps": 6, "scope": "layer"},
}
DEFAULT_RECIPE = "recommended"  # measured: benchmarks/README.md, "PWT protocol"
LATE_PRUNE_LR_FACTOR = 0.25  # below this share of the initial learning rate, a last prune is flagged
ALGORITHM2_FIXED = ("rate", "initial", "reach", "schedule", "prune_every_steps")  # Algorithm 2 has no schedule


@dataclass(frozen=True)
class PWTConfig(FilterSettings):
    """PWT's settings (see :func:`pwt`): the target and the schedule that reaches it."""

    target: float = field(default=0.5, metadata={"help": "fraction of filters pruned at the end, in [0, 1)"})
    initial: float | None = field(default=None, metadata={
        "help": "recipe paper (Algorithm 1): the fraction pruned at the first epoch end (default: rate); "
                "otherwise the fraction the schedule grows from (default 0)"})
    rate: float | None = field(default=None, metadata={
        "help": "fraction added per epoch (default: the target at the last epoch)"})
    every: int = field(default=1, metadata={"help": "prune every N-th epoch (Mod-N), N x rate at a time"})
    recipe: str = field(default=DEFAULT_RECIPE, metadata={
        "help": "defaults of --schedule/--reach/--prune-every-steps/--scope: paper (the PWT paper's Algorithms "
                "1-3 as written: linear, 1, epoch ends, scope paper) or recommended (intrain's, the default: cubic, "
                "0.6, every 6 steps, scope layer)"})
    reach: float | None = field(default=None, metadata={
        "help": "reach the target after this fraction of the epochs (the paper: 1)"})
    schedule: str | None = field(default=None, metadata={
        "help": "growth of the pruned fraction: linear (the paper) or cubic (Zhu & Gupta)"})
    prune_every_steps: int | None = field(default=None, metadata={
        "help": "prune every K optimizer steps, the schedule interpolated by iteration (default: at epoch ends)"})

    scopes = validation.PWT_SCOPES

    @property
    def default_scope(self) -> str | None:
        return None  # the recipe's: effective_scope

    def validate(self) -> None:
        super().validate()
        validation.choice("recipe", self.recipe, tuple(PWT_RECIPES))
        if self.schedule is not None:
            validation.choice("schedule", self.schedule, SHAPES)
        validation.fraction("target", self.target)
        if self.initial is not None:
            validation.fraction("initial", self.initial)
        if self.algorithm2:
            given = [name for name in ALGORITHM2_FIXED if getattr(self, name) is not None]
            if given or self.every != 1:
                name = given[0] if given else "every"
                raise ConfigError(f"{name}: mean-activation with scope paper (Algorithm 2) prunes one filter per layer "
                                  f"at every epoch end, up to the target in each layer; drop --{name.replace('_', '-')} "
                                  "or choose --scope layer/global")

    @property
    def effective_scope(self) -> str:
        """``scope`` as used: the value given, else the recipe's."""
        return self.scope or PWT_RECIPES[self.recipe]["scope"]

    @property
    def algorithm2(self) -> bool:
        """Mean-activation as the paper's Algorithm 2: one filter per layer per epoch, no schedule."""
        return self.effective_scope == "paper" and self.criterion == "mean-activation"

    @property
    def algorithm1(self) -> bool:
        """Whether the schedule is Algorithm 1's (recipe paper, linear): ``initial`` at the first epoch end."""
        return self.recipe == "paper" and self.schedule_settings["schedule"] == "linear" and not self.algorithm2

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

    def start(self, epochs: int) -> float:
        """``initial`` as used: given, else Algorithm 1's (one rate) or 0."""
        if self.algorithm1:
            return algorithm1_settings(target=self.target, epochs=epochs, rate=self.rate, initial=self.initial,
                                       reach=self.schedule_settings["reach"])[0]
        return self.initial if self.initial is not None else 0.0

    def pruning_rate(self, epochs: int) -> float:
        """Fraction added per epoch by a linear schedule: ``rate``, else the rate that reaches the target
        at ``reach`` of the epochs (Algorithm 1: from ``initial`` at the first epoch end)."""
        if self.rate is not None:
            return self.rate
        if self.algorithm1:
            return algorithm1_settings(target=self.target, epochs=epochs, initial=self.initial,
                                       reach=self.schedule_settings["reach"])[1]
        return (self.target - self.start(epochs)) / (epochs * self.schedule_settings["reach"])

    def plan(self, epochs: int):
        """The schedule of pruned fractions over ``epochs`` (:class:`~intrain.schedules.PruneSchedule`)."""
        settings = self.schedule_settings
        return pwt_plan(target=self.target, epochs=epochs, rate=self.rate, initial=self.initial, every=self.every,
                        reach=settings["reach"], shape=settings["schedule"], algorithm1=self.algorithm1)


def _check_settings(c: PWTConfig, epochs: int) -> None:
    validation.pwt_schedule(target=c.target, epochs=epochs, rate=c.rate, initial=c.initial, every=c.every,
                            reach=c.reach, schedule=c.schedule, prune_every_steps=c.prune_every_steps,
                            algorithm1=c.algorithm1)


def _check(c: PWTConfig, run) -> None:
    _check_settings(c, run.epochs)


def _resolve(c: PWTConfig, run) -> PWTConfig:
    """The recipe's settings written out, the scope and start included; a linear schedule as its rate
    per epoch."""
    if c.algorithm2:
        return dataclasses.replace(c, scope="paper")
    settings = dict(c.schedule_settings)
    if settings["schedule"] == "linear" and 0 < c.pruning_rate(run.epochs) < 1:
        settings.update(rate=c.pruning_rate(run.epochs), reach=None)
    return dataclasses.replace(c, **settings, scope=c.effective_scope, initial=c.start(run.epochs))


def _last_prune_epoch(c: PWTConfig, run) -> int | None:
    """None when never, or not known ahead (Algorithm 2: its pace depends on the layers' sizes)."""
    return None if c.target == 0 or c.algorithm2 else c.plan(run.epochs).last_epoch


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


def departures(c: PWTConfig, run) -> list[str]:
    """What this configuration does that the PWT paper's Algorithms 1-3 do not (empty: as written),
    e.g. ``["cubic schedule", "reach 0.6", "every 6 steps", "per-layer ranking"]``."""
    if c.algorithm2:
        return ["hidden linear layers pruned too"] if c.include_linear else []
    settings, notes = c.schedule_settings, []
    if settings["schedule"] != "linear":
        notes.append(f"{settings['schedule']} schedule")
    if settings["reach"] is not None and settings["reach"] < 1 and settings["schedule"] != "linear":
        notes.append(f"reach {settings['reach']:g}")
    last = c.plan(run.epochs).last_epoch
    if settings["schedule"] == "linear" and last < run.epochs:
        notes.append(f"target at epoch {last} of {run.epochs}")
    if settings["prune_every_steps"] is not None:
        notes.append(f"every {settings['prune_every_steps']} steps")
    if settings["schedule"] == "linear" and not c.algorithm1 and c.start(run.epochs) > 0:
        notes.append("first prune at initial + rate")
    notes += _scope_departures(c.criterion, c.effective_scope)
    if c.include_linear:
        notes.append("hidden linear layers pruned too")
    return notes


def _scope_departures(criterion: str, scope: str) -> list[str]:
    if scope == "paper" or (scope == "global" and criterion == "l1"):
        return []
    if scope == "layer":
        return ["per-layer draws" if criterion == "random" else "per-layer ranking"]
    if criterion == "random":
        return ["draws over all filters (not a layer, then a filter)"]
    return ["global ranking to the schedule (not one filter per layer per epoch)"]


def _build(c: PWTConfig, run: RunContext) -> FilterPruning:
    return pwt(target=c.target, epochs=run.config.epochs, recipe=c.recipe, rate=c.rate, initial=c.initial,
               every=c.every, reach=c.reach, schedule=c.schedule, prune_every_steps=c.prune_every_steps,
               steps_per_epoch=run.iterations_per_epoch, criterion=c.criterion, scope=c.scope,
               include_linear=c.include_linear, seed=run.config.seed, round_to=c.round_to)


SPEC = register(MethodSpec(
    "pwt", PWTConfig, _build, "pruning filters while training (Roy et al.): a schedule of pruned fractions",
    structured=True, check=_check, resolve=_resolve, last_prune_epoch=_last_prune_epoch, advisories=_advisories,
    label=_label, departures=departures))
