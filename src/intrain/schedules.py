"""Schedules as pure functions of the epoch or iteration: no hidden counters.

- :class:`PruneSchedule` — PWT's required pruned fraction as a function of training progress:
  the paper's linear growth (Algorithm 1) or Zhu & Gupta's cubic one, reaching the target after
  ``reach`` epochs; at epoch ends (every N-th with Mod-N) or, continuously, at any step.
- :func:`pwt_plan` — a :class:`PruneSchedule` from PWT's settings (``rate`` per epoch, the paper's
  form, or ``reach`` and ``shape``).
- :func:`abrupt_fraction` — prune-then-retrain (PRT-E): nothing until epoch E, then the target.
- :func:`lr_factor` — learning-rate multipliers: constant, step, cosine and Caffe's "inv".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SHAPES = ("linear", "cubic")
_EPS = 1e-9


@dataclass(frozen=True)
class PruneSchedule:
    """PWT's pruned fraction as a pure function of training progress.

    ``reach`` is the number of epochs (possibly fractional) after which ``target`` is reached.
    ``shape`` ``linear`` is the paper's: ``initial + (target - initial) * t / reach``, so with
    ``reach = epochs`` it prunes ``target / epochs`` after every epoch and reaches the target at the
    last; ``cubic`` is Zhu & Gupta's (2017) gradual schedule
    ``target - (target - initial) * (1 - t / reach) ** 3``, which prunes fastest early, while the
    network is most redundant. Before any progress (``t <= 0``) nothing is pruned.

    With ``every = N`` (PWT-ModN) pruning happens only at the end of every N-th epoch, counted back
    from the epoch that reaches the target (:attr:`last_epoch`), so every Mod-N schedule ends at the
    target with its last prune at the same epoch as Mod-1: 16 epochs, Mod-3, prune after epochs
    1, 4, 7, 10, 13 and 16.
    """

    target: float
    reach: float
    initial: float = 0.0
    every: int = 1
    shape: str = "linear"

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"unknown schedule shape '{self.shape}'; choose one of: {', '.join(SHAPES)}")
        if not (self.reach > 0 and math.isfinite(self.reach)):
            raise ValueError(f"reach must be a positive number of epochs, got {self.reach}")
        if self.every < 1:
            raise ValueError(f"every must be at least 1, got {self.every}")

    @property
    def last_epoch(self) -> int:
        """The epoch (1-based) at whose end the target is reached."""
        return max(1, math.ceil(self.reach - _EPS))

    def at(self, progress: float) -> float:
        """The fraction after ``progress`` epochs of training (fractional: steps / steps per epoch)."""
        if progress <= 0:
            return 0.0
        done = min(1.0, progress / self.reach)
        if done >= 1.0 - _EPS:
            return self.target
        span = self.target - self.initial
        if self.shape == "linear":
            return max(0.0, self.initial + span * done)  # algorithm1's initial may lie below 0
        return self.target - span * (1.0 - done) ** 3

    def last_event(self, epochs_done: int) -> int:
        """The latest epoch-end pruning event at or before ``epochs_done`` (0: none yet)."""
        if epochs_done >= self.last_epoch:
            return self.last_epoch
        event = epochs_done - (epochs_done - self.last_epoch) % self.every
        return max(event, 0)

    def after_epoch(self, epochs_done: int) -> float:
        """The fraction once ``epochs_done`` epochs have finished, pruning at epoch ends (Mod-N)."""
        return self.at(self.last_event(epochs_done))

    def is_event(self, epochs_done: int) -> bool:
        """Whether the end of epoch ``epochs_done`` (1-based) is a pruning event."""
        return 0 < epochs_done <= self.last_epoch and self.last_event(epochs_done) == epochs_done

    @classmethod
    def from_rate(cls, *, target: float, rate: float, initial: float = 0.0, every: int = 1) -> "PruneSchedule":
        """The paper's parametrisation: ``rate`` added per epoch from ``initial`` up to ``target``."""
        if target <= initial:  # nothing to grow: the target at the first event
            return cls(target=target, reach=_EPS, initial=initial, every=every)
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        return cls(target=target, reach=(target - initial) / rate, initial=initial, every=every)

    @classmethod
    def algorithm1(cls, *, target: float, rate: float, initial: float, every: int = 1) -> "PruneSchedule":
        """PWT's Algorithm 1 as written: ``P% = initial`` at the first epoch end, then ``rate`` more
        after each further epoch, up to ``target`` (0.1, 0.1 per epoch, 0.5: 0.1, 0.2, 0.3, 0.4, 0.5
        after epochs 1-5). :meth:`from_rate` prunes ``initial + rate`` at the first epoch end; this is
        that schedule started one ``rate`` lower."""
        return cls.from_rate(target=target, rate=rate, initial=initial - rate, every=every)


def algorithm1_settings(*, target: float, epochs: int, rate: float | None = None, initial: float | None = None,
                        reach: float | None = None) -> tuple[float, float]:
    """``(initial, rate)`` of PWT's Algorithm 1 (:meth:`PruneSchedule.algorithm1`) from the settings
    given: ``initial`` unset starts at one ``rate`` (the paper's experiments: 1% per epoch reaches 80%
    after 80 epochs); ``rate`` unset reaches the target after ``reach`` (default 1) of the ``epochs``."""
    last = epochs * (reach if reach is not None else 1.0)
    if initial is None:
        step = rate if rate is not None else target / last
        return min(step, target), step
    if rate is not None:
        return initial, rate
    if target > initial and last > 1 + _EPS:
        return initial, (target - initial) / (last - 1)
    return initial, max(target - initial, _EPS)  # one epoch: only initial == target reaches it


def pwt_plan(*, target: float, epochs: int, rate: float | None = None, initial: float | None = None, every: int = 1,
             reach: float | None = None, shape: str = "linear", algorithm1: bool = False) -> PruneSchedule:
    """PWT's schedule from its settings: ``rate`` per epoch (the paper's form, linear), else the
    target reached after ``reach`` (a fraction, default 1) of ``epochs`` on a ``shape`` schedule,
    growing from ``initial`` (default 0). ``algorithm1`` (linear): Algorithm 1 as written, ``initial``
    at the first epoch end (:func:`algorithm1_settings`, :meth:`PruneSchedule.algorithm1`)."""
    if algorithm1:
        start, step = algorithm1_settings(target=target, epochs=epochs, rate=rate, initial=initial, reach=reach)
        return PruneSchedule.algorithm1(target=target, rate=step, initial=start, every=every)
    initial = initial if initial is not None else 0.0
    if rate is not None:
        return PruneSchedule.from_rate(target=target, rate=rate, initial=initial, every=every)
    return PruneSchedule(target=target, reach=epochs * (reach if reach is not None else 1.0), initial=initial,
                         every=every, shape=shape)


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
