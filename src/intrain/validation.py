"""Checks shared by :class:`~intrain.config.TrainConfig` and the public constructors of the methods
(:func:`~intrain.methods.pwt`, :func:`~intrain.methods.prt`, :func:`~intrain.methods.ra`, ...), so
that the Python API refuses what the command line refuses, with the same one-line
:class:`~intrain.errors.ConfigError` messages (``name: what is wrong, got value``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from .errors import ConfigError
from .schedules import SHAPES, pwt_plan

CRITERIA = ("l1", "mean-activation", "random", "group-l1")  # intrain.importance.NAMES
SCOPES = ("global", "layer")
# PWT also: "paper", each criterion as its algorithm in the paper (Algorithms 1-3)
PWT_SCOPES = ("global", "layer", "paper")
PARTITIONS = ("type", "sensitivity", "none")

# RA never prunes below this ``range - epsilon``. Eq. 1's lower threshold is
# ``l = max(mu + sigma * (range - epsilon), 0)`` with mu, sigma the mean and standard deviation of a
# layer's weight magnitudes |K|, and a weight is pruned only when |w| < l. For weights drawn
# symmetrically and unimodally around 0 (every standard initialisation: uniform, normal, ...), |K|
# has a non-increasing density, i.e. it is a mixture of uniforms U[0, a]: mu = E[a]/2 and
# sigma^2 = E[a^2]/3 - E[a]^2/4 >= E[a]^2/12, so mu <= sqrt(3) sigma (equality for a uniform). Hence
# range - epsilon <= -sqrt(3) gives l = 0 for every such layer: no weight can ever be pruned.
RA_MIN_LOWER_FACTOR = -math.sqrt(3)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


MAX_SEED = 2**32 - 1  # numpy.random.seed's range


def check_field_types(obj: Any) -> None:
    """Check every field of the dataclass instance ``obj`` against its annotation (``bool``, ``int``,
    ``float``, ``str``, optionally ``| None``; other annotations are checked by their owner)."""
    for f in dataclasses.fields(obj):
        field_type(f, getattr(obj, f.name))


def field_type(f: dataclasses.Field, value: Any) -> None:
    annotation = str(f.type)
    if value is None:
        if "None" in annotation:
            return
        raise ConfigError(f"{f.name}: must not be empty")
    base = annotation.split("|")[0].strip()
    checks = {"bool": (lambda v: isinstance(v, bool), "true or false"), "int": (is_whole, "a whole number"),
              "float": (is_number, "a number"), "str": (lambda v: isinstance(v, str), "a string")}
    if base in checks and not checks[base][0](value):
        raise ConfigError(f"{f.name}: expected {checks[base][1]}, got {value!r}")


def choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value is None:  # as the config's type check words it
        raise ConfigError(f"{name}: must not be empty")
    if not isinstance(value, str):
        raise ConfigError(f"{name}: expected a string, got {value!r}")
    if value not in choices:
        raise ConfigError(f"{name}: unknown value '{value}'; choose one of: {', '.join(choices)}")


def whole(name: str, value: Any) -> None:
    if value is None:
        raise ConfigError(f"{name}: must not be empty")
    if not is_whole(value):
        raise ConfigError(f"{name}: expected a whole number, got {value!r}")


def number(name: str, value: Any) -> None:
    if value is None:
        raise ConfigError(f"{name}: must not be empty")
    if not is_number(value):
        raise ConfigError(f"{name}: expected a number, got {value!r}")


def flag(name: str, value: Any) -> None:
    if value is None:
        raise ConfigError(f"{name}: must not be empty")
    if not isinstance(value, bool):
        raise ConfigError(f"{name}: expected true or false, got {value!r}")


def seed(value: Any) -> None:
    whole("seed", value)
    at_least("seed", value, 0)
    if value > MAX_SEED:
        raise ConfigError(f"seed: must be at most {MAX_SEED} (numpy's limit), got {value}")


def at_least(name: str, value: int, low: int) -> None:
    if value < low:
        raise ConfigError(f"{name}: must be at least {low}, got {value}")


def fraction(name: str, value: float) -> None:
    if not (0 <= value < 1):
        raise ConfigError(f"{name}: must be a fraction in [0, 1), got {value}")


def pwt_schedule(*, target: float, epochs: int, rate: float | None, initial: float | None, every: int,
                 reach: float | None = None, schedule: str | None = None,
                 prune_every_steps: int | None = None, algorithm1: bool = False) -> None:
    """PWT's schedule arguments (types, ranges, combinations) and that the schedule reaches ``target``
    within ``epochs`` (:func:`~intrain.schedules.pwt_plan`; ``algorithm1``: Algorithm 1's, which
    starts at ``initial``; ``initial`` None: the schedule's default start)."""
    for name, value in (("target", target), ("initial", initial)):
        if value is not None:
            number(name, value)
            fraction(name, value)
    for name, value in (("epochs", epochs), ("every", every)):
        whole(name, value)
        at_least(name, value, 1)
    start = initial if initial is not None else 0.0
    if start > target:
        raise ConfigError(f"initial: {initial} is above target {target}")
    if rate is not None:
        number("rate", rate)
        if not 0 < rate < 1:
            raise ConfigError(f"rate: must be in (0, 1), got {rate}")
    if reach is not None:
        number("reach", reach)
        if not 0 < reach <= 1:
            raise ConfigError(f"reach: must be a fraction of the epochs in (0, 1], got {reach}")
    if schedule is not None:
        choice("schedule", schedule, SHAPES)
    if prune_every_steps is not None:
        whole("prune_every_steps", prune_every_steps)
        at_least("prune_every_steps", prune_every_steps, 1)
    if rate is not None and reach is not None:
        raise ConfigError("reach: give either rate (per epoch) or reach (fraction of the epochs), not both")
    if rate is not None and schedule not in (None, "linear"):
        raise ConfigError(f"rate: the {schedule} schedule is set by reach, not by a rate per epoch")
    if prune_every_steps is not None and every != 1:
        raise ConfigError("prune_every_steps: pruning every K steps replaces --every (Mod-N epochs); drop one")
    if target <= start and not algorithm1:
        return
    if every > epochs:
        raise ConfigError(f"every: pruning every {every} epochs never prunes in {epochs} epochs")
    plan = pwt_plan(target=target, epochs=epochs, rate=rate, initial=initial, every=every, reach=reach,
                    shape=schedule or "linear", algorithm1=algorithm1)
    if plan.last_epoch > epochs:
        pace = f"at {rate:g} per epoch" if rate is not None else "one rate per epoch"
        start_text = f"from {start:g} at the first epoch end (Algorithm 1)" if algorithm1 else f"from {start:g}"
        raise ConfigError(f"rate: {pace} {start_text}, pwt reaches its target {target:g} after "
                          f"epoch {plan.last_epoch}, beyond the {epochs} epochs; raise --rate or --epochs")


def ra_thresholds(range_: Any, epsilon: Any) -> None:
    """RA's Eq. 1 settings: finite numbers, epsilon >= 0, and a ``range - epsilon`` above
    :data:`RA_MIN_LOWER_FACTOR`, below which the thresholds cannot prune anything."""
    for name, value in (("range", range_), ("epsilon", epsilon)):
        number(name, value)
        if not math.isfinite(value):
            raise ConfigError(f"{name}: must be a finite number, got {value}")
    if epsilon < 0:
        raise ConfigError(f"epsilon: must be non-negative, got {epsilon}")
    if range_ - epsilon <= RA_MIN_LOWER_FACTOR:
        raise ConfigError(f"range: {range_} - epsilon {epsilon} is at most -sqrt(3): Eq. 1's lower threshold "
                          "max(mu + sigma (range - epsilon), 0) is then 0 for weights spread symmetrically around 0, "
                          "so nothing would ever be pruned")
