"""RA's option checks: per-layer ranges (``--layer-ranges``), the mask freeze fraction, Dynamic
Network Surgery's options and a layer Eq. 1 would prune whole as it starts, each a one-line
:class:`~intrain.errors.ConfigError` on bad input."""

from __future__ import annotations

import math
from typing import Any, Mapping

from .. import validation
from ..errors import ConfigError

DEAD_START = 0.99  # a layer that Eq. 1 would prune this much of when it starts pruning is refused


def check_freeze(fraction: Any) -> None:
    """``freeze_masks_at``: None, or a fraction of the run in (0, 1]."""
    if fraction is None:
        return
    validation.number("freeze_masks_at", fraction)
    if not 0 < fraction <= 1:
        raise ConfigError(f"freeze_masks_at: must be a fraction of the run in (0, 1], got {fraction}")


def check_dns_options(hysteresis: str, epsilon: float, update_gamma: Any, update_power: Any) -> None:
    """Dynamic Network Surgery's options: its band needs ε < 1; the update probability's γ and power
    are finite and non-negative."""
    if hysteresis == "relative" and epsilon >= 1:
        raise ConfigError(f"epsilon: hysteresis relative needs epsilon below 1 (the band is (1 -+ epsilon) t), got {epsilon}")
    for name, value in (("update_gamma", update_gamma), ("update_power", update_power)):
        validation.number(name, value)
        if not math.isfinite(value) or value < 0:
            raise ConfigError(f"{name}: must be a finite non-negative number, got {value}")


def parse_layer_ranges(text: str) -> tuple[tuple[str, float], ...]:
    """``--layer-ranges conv1=1.2,conv2=2``: ``layer=range`` pairs separated by ','."""
    pairs = []
    for part in (p.strip() for p in text.split(",")):
        name, _, value = part.partition("=")
        try:
            pairs.append((name.strip(), float(value)))
        except ValueError:
            raise ConfigError(f"layer_ranges: expected pairs like 'conv1=1.2,fc1=2.7', got '{text}'") from None
        if not name.strip():
            raise ConfigError(f"layer_ranges: expected pairs like 'conv1=1.2,fc1=2.7', got '{text}'")
    return tuple(pairs)


def checked_layer_ranges(ranges: Any, epsilon: float) -> dict[str, float]:
    """``layer_ranges`` as ``{layer: range}``, from a mapping, ``(layer, range)`` pairs or the flag's
    text; each range checked as ``range`` is (one-line :class:`~intrain.errors.ConfigError`)."""
    if ranges is None:
        return {}
    if isinstance(ranges, str):
        ranges = parse_layer_ranges(ranges)
    items = ranges.items() if isinstance(ranges, Mapping) else ranges
    try:
        pairs = [(name, value) for name, value in items]
    except (TypeError, ValueError):
        raise ConfigError("layer_ranges: expected layer names mapped to ranges, e.g. {conv1: 1.2}") from None
    checked: dict[str, float] = {}
    for name, value in pairs:
        if not isinstance(name, str) or isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"layer_ranges: expected a layer name and a number, got {name!r}: {value!r}")
        if name in checked:
            raise ConfigError(f"layer_ranges: layer '{name}' is given twice")
        try:
            validation.ra_thresholds(float(value), epsilon)
        except ConfigError as exc:
            raise ConfigError(f"layer_ranges: layer '{name}': {exc}") from None
        checked[name] = float(value)
    return checked


def dead_start_message(name: str, fraction: float, range_: float, epsilon: float, flag: str = "--range") -> str:
    """The one line refusing a layer Eq. 1 would prune ``fraction`` (>= DEAD_START) of: all of it is a uniform
    initialisation's signature (re-initialise it first); short of that, a range too high (lower it first)."""
    head = (f"RA: Eq. 1 at range {range_:g} (epsilon {epsilon:g}) would prune {100 * fraction:.1f}% of layer "
            f"'{name}' as it starts pruning (")
    reinit = ("re-initialise a uniform-initialised layer He-normal (ra(reinit='he-normal'), --reinit he-normal, "
              "or intrain.methods.ra.reinit_he_normal(layer))")
    if fraction >= 0.999:
        return (f"{head}a uniform initialisation, e.g. PyTorch's default, lies wholly below the lower threshold; "
                f"the limit is {100 * DEAD_START:g}%): {reinit}, or lower {flag}")
    return f"{head}the limit is {100 * DEAD_START:g}%): lower {flag}, or {reinit}"
