"""Network Slimming (Z. Liu, J. Li, Z. Shen, G. Huang, S. Yan, C. Zhang, "Learning Efficient
Convolutional Networks through Network Slimming", ICCV 2017, arXiv:1708.06519).

Training adds an L1 penalty ``λ·Σ|γ|`` on the scales γ of every BatchNorm2d, as the paper's code
does: after each backward pass and before the optimizer step (:meth:`~intrain.methods.base.
PruningMethod.on_before_optimizer_step`) every γ's gradient gains the subgradient ``λ·sign(γ)``
(0 where γ is 0, so a pruned channel stays at 0). The penalty drives the scales of unneeded channels
towards zero; channels are then removed by ``|γ|`` of the BatchNorm that follows each conv, lowest
first, one ranking over the network (the paper's global threshold; ``scope="layer"``: each layer
to the fraction on its own). A conv without a BatchNorm after it has no γ to rank: refused when the
method attaches.

When channels go, on PWT's schedule machinery (:class:`~intrain.methods.filter_pruning.FilterPruning`:
masks, coupled residual groups, compaction): ``recipe="paper"`` (the default) prunes once, after the
last epoch, to the target (the paper prunes once after training; it then fine-tunes, which a run
here does not: start a run from the result with ``--init-from`` for that); ``recipe="recommended"``
prunes on PWT's recommended schedule (cubic, the target after 60% of the epochs, every 6 steps), so
the remaining epochs train the slimmed network. λ defaults to the paper's 1e-4 for VGG on CIFAR (its
ResNet and DenseNet runs use 1e-5).
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import nn

from .. import validation
from ..errors import ConfigError
from ..masks import PrunableLayer
from ..schedules import abrupt_fraction, pwt_plan
from .filter_pruning import FilterPruning, Schedule
from .pwt import PWT_RECIPES
from .registry import MethodConfig, MethodSpec, RunContext, register

RECIPES = ("paper", "recommended")
DEFAULT_LAMBDA = 1e-4  # the paper's for VGG on CIFAR


@torch.no_grad()
def add_l1_subgradient(norms: Sequence[nn.Module], strength: float) -> None:
    """Add ``strength · sign(γ)`` to the gradient of every ``norms``' scale γ (the subgradient of
    ``strength · Σ|γ|``); a γ without a gradient (not used by this step's loss) is left alone."""
    for norm in norms:
        gamma = norm.weight
        if gamma.grad is not None:
            gamma.grad.add_(gamma.sign(), alpha=strength)


def gamma_scores(layers: Sequence[PrunableLayer]) -> list[torch.Tensor]:
    """``|γ|`` of the BatchNorm after each layer: one score per filter (lower = pruned first)."""
    return [layer.norm.weight.detach().abs() for layer in layers]


def require_batchnorm(layers: Sequence[PrunableLayer]) -> None:
    """A one-line ConfigError naming the first layer with no affine BatchNorm after it."""
    for layer in layers:
        if layer.norm is None or not layer.norm.affine:
            raise ConfigError(f"slim: layer '{layer.name}' has no BatchNorm (with scales) after it: network slimming "
                              "ranks a conv's channels by the scales γ of the BatchNorm that follows it; use a model "
                              "with one after every conv (vgg16, resnet20, ...) or another method")


class NetworkSlimming(FilterPruning):
    """Network Slimming: the L1 penalty on BatchNorm scales while training, filters pruned by ``|γ|``
    to ``schedule`` (see the module docstring)."""

    name = "slim"

    def __init__(self, schedule: Schedule, *, slim_lambda: float = DEFAULT_LAMBDA, scope: str = "global",
                 seed: int = 0, every_steps: Any = None, round_to: int = 1) -> None:
        slim_settings(slim_lambda, scope)
        super().__init__(schedule, criterion="l1", scope=scope, seed=seed, every_steps=every_steps,
                         round_to=round_to)
        self.slim_lambda = float(slim_lambda)
        self.norms: list[nn.Module] = []  # every BatchNorm2d with scales: the penalty's (the paper's code)

    def _install(self, stack: ExitStack) -> None:
        super()._install(stack)
        require_batchnorm(self.layers)
        self.norms = [m for m in self.model.modules() if isinstance(m, nn.BatchNorm2d) and m.affine]

    def on_before_optimizer_step(self) -> None:
        """The penalty: ``λ·sign(γ)`` added to every BatchNorm scale's gradient."""
        super().on_before_optimizer_step()
        add_l1_subgradient(self.norms, self.slim_lambda)

    def scores(self, epoch: int) -> list[torch.Tensor]:
        return gamma_scores(self.layers)


def slim_settings(slim_lambda: Any, scope: Any) -> None:
    """The settings that do not depend on the run, checked as ``intrain train`` checks them."""
    validation.number("slim_lambda", slim_lambda)
    if not 0 <= slim_lambda < float("inf"):
        raise ConfigError(f"slim_lambda: must be a finite number >= 0, got {slim_lambda}")
    validation.choice("scope", scope, validation.SCOPES)


def slim(*, target: float, epochs: int, slim_lambda: float = DEFAULT_LAMBDA, recipe: str = "paper",
         scope: str = "global", steps_per_epoch: int | None = None, seed: int = 0,
         round_to: int = 1) -> NetworkSlimming:
    """Network Slimming pruning ``target`` of the filters over a run of ``epochs`` epochs: once after
    the last (``recipe="paper"``) or on PWT's recommended schedule (``recipe="recommended"``, which
    prunes every 6 steps and needs ``steps_per_epoch``, the batches per epoch)."""
    SlimConfig(target=target, slim_lambda=slim_lambda, recipe=recipe, scope=scope, round_to=round_to)
    validation.whole("epochs", epochs)
    validation.at_least("epochs", epochs, 1)
    validation.seed(seed)
    if recipe == "paper":
        def schedule(epochs_done: int) -> float:
            return abrupt_fraction(epochs_done, target=target, prune_epoch=epochs)

        return NetworkSlimming(schedule, slim_lambda=slim_lambda, scope=scope, seed=seed, round_to=round_to)
    if steps_per_epoch is None:
        raise ConfigError("steps_per_epoch: slim's recipe recommended prunes every "
                          f"{PWT_RECIPES['recommended']['prune_every_steps']} optimizer steps and needs the number of "
                          "batches per epoch: slim(..., steps_per_epoch=len(train_loader)), or recipe='paper'")
    validation.whole("steps_per_epoch", steps_per_epoch)
    validation.at_least("steps_per_epoch", steps_per_epoch, 1)
    plan = recommended_plan(target, epochs)
    every_steps = (PWT_RECIPES["recommended"]["prune_every_steps"], steps_per_epoch, plan.at)
    return NetworkSlimming(plan.after_epoch, slim_lambda=slim_lambda, scope=scope, seed=seed,
                           every_steps=every_steps, round_to=round_to)


def recommended_plan(target: float, epochs: int):
    """PWT's recommended schedule (:data:`~intrain.methods.pwt.PWT_RECIPES`) to ``target``."""
    recipe = PWT_RECIPES["recommended"]
    return pwt_plan(target=target, epochs=epochs, reach=recipe["reach"], shape=recipe["schedule"])


# ---------------------------------------------------------------------- the registry's entry
@dataclass(frozen=True)
class SlimConfig(MethodConfig):
    target: float = field(default=0.5, metadata={"help": "fraction of filters pruned at the end, in [0, 1)"})
    slim_lambda: float = field(default=DEFAULT_LAMBDA, metadata={
        "help": "strength λ of the L1 penalty on BatchNorm scales γ (the paper: 1e-4 for VGG, 1e-5 for ResNet)"})
    recipe: str = field(default="paper", metadata={
        "help": "paper (the default: prune once, after the last epoch) or recommended (PWT's schedule: cubic, "
                "the target after 0.6 of the epochs, a prune every 6 steps)"})
    scope: str | None = field(default="global", metadata={
        "help": "global (one |γ| ranking over the network: the paper's threshold, the default) or layer "
                "(each layer pruned to the fraction)"})
    round_to: int = field(default=1, metadata={
        "help": "every pruned layer keeps a multiple of N filters (at least N; layers of at most N filters untouched)"})

    def validate(self) -> None:
        validation.number("target", self.target)
        validation.fraction("target", self.target)
        validation.choice("recipe", self.recipe, RECIPES)
        slim_settings(self.slim_lambda, self.scope)
        validation.whole("round_to", self.round_to)
        validation.at_least("round_to", self.round_to, 1)


def _build(c: SlimConfig, run: RunContext) -> NetworkSlimming:
    return slim(target=c.target, epochs=run.config.epochs, slim_lambda=c.slim_lambda, recipe=c.recipe, scope=c.scope,
                steps_per_epoch=run.iterations_per_epoch, seed=run.config.seed, round_to=c.round_to)


def _last_prune_epoch(c: SlimConfig, run) -> int | None:
    if c.target == 0:
        return None
    return run.epochs if c.recipe == "paper" else recommended_plan(c.target, run.epochs).last_epoch


def departures(c: SlimConfig, run) -> list[str]:
    """What this configuration does that the paper does not (its λ is a setting of the paper's too)."""
    if c.recipe == "paper":
        notes = ["no fine-tuning after the prune"]
    else:
        recipe = PWT_RECIPES["recommended"]
        notes = [f"pruned while training ({recipe['schedule']} schedule, reach {recipe['reach']:g}, "
                 f"every {recipe['prune_every_steps']} steps)"]
    return notes + (["per-layer ranking"] if c.scope == "layer" else [])


def _label(summary: dict, config: dict) -> str:
    target = summary.get("target", config.get("target"))
    text = f"Slim {target:.0%}" if target is not None else "Slim"
    return text + (" recommended" if config.get("recipe") == "recommended" else "")


SPEC = register(MethodSpec(
    "slim", SlimConfig, _build, "network slimming (Liu et al.): an L1 penalty on BatchNorm scales while training, "
    "channels removed by |γ|", structured=True, last_prune_epoch=_last_prune_epoch, label=_label,
    departures=departures))
