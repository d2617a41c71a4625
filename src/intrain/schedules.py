"""Schedules as pure functions of the epoch or iteration: no hidden counters.

- :func:`pruned_fraction` — PWT's required pruned fraction after a given number of epochs
  (Algorithm 1: P starts at ``initial`` and grows by ``rate`` per epoch until ``target``;
  ``every = N`` prunes only every N-th epoch, N × rate at a time: PWT-ModN).
- :func:`abrupt_fraction` — prune-then-retrain (PRT-E): nothing until epoch E, then the target.
- :func:`lr_factor` — learning-rate multipliers: constant, step, cosine and Caffe's "inv".
"""

from __future__ import annotations

import math


def pruned_fraction(epochs_done: int, *, target: float, rate: float, initial: float = 0.0, every: int = 1) -> float:
    """Fraction of filters that must be pruned once ``epochs_done`` epochs have finished.

    Pruning events happen at the end of epochs ``every, 2·every, ...``. After ``k`` events the
    fraction is ``min(target, initial + k · every · rate)``; before the first event it is 0.
    With the default ``rate = target / epochs`` the target is reached at the last epoch: 80 epochs to
    80% prune 1% after every epoch, as in the paper.
    """
    events = epochs_done // every
    if events == 0:
        return 0.0
    return min(target, initial + events * every * rate)


def is_pruning_epoch(epochs_done: int, every: int = 1) -> bool:
    """Whether a pruning event happens at the end of epoch number ``epochs_done`` (1-based)."""
    return epochs_done > 0 and epochs_done % every == 0


def abrupt_fraction(epochs_done: int, *, target: float, prune_epoch: int) -> float:
    """PRT-E: train dense for ``prune_epoch`` epochs, prune to ``target`` at once, then retrain."""
    return target if epochs_done >= prune_epoch else 0.0


def lr_factor(
    schedule: str,
    iteration: int,
    *,
    iterations_per_epoch: int,
    total_iterations: int,
    step_epochs: int = 30,
    gamma: float = 0.1,
    inv_gamma: float = 1e-4,
    inv_power: float = 0.75,
    milestones: tuple[int, ...] | None = None,
) -> float:
    """Multiplier of the base learning rate at ``iteration`` (0-based, counted over the whole run).

    - ``constant``: 1.
    - ``step``: ``gamma ** (epoch // step_epochs)``; with ``milestones`` (iterations, Caffe's
      ``multistep``) ``gamma ** (number of milestones <= iteration)``.
    - ``cosine``: ``0.5 · (1 + cos(π · iteration / total_iterations))``.
    - ``inv`` (Caffe): ``(1 + inv_gamma · iteration) ** (−inv_power)``.
    """
    if schedule == "constant":
        return 1.0
    if schedule == "step" and milestones:
        return gamma ** sum(iteration >= m for m in milestones)
    if schedule == "step":
        return gamma ** ((iteration // iterations_per_epoch) // step_epochs)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(iteration, total_iterations) / total_iterations))
    if schedule == "inv":
        return (1.0 + inv_gamma * iteration) ** (-inv_power)
    raise ValueError(f"unknown learning-rate schedule '{schedule}'")
