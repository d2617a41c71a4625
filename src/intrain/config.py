"""Run configuration: one frozen dataclass, validated on construction.

The same keys are accepted from a YAML file (``--config``) and from command-line flags (flags win).
Every invalid value raises :class:`~intrain.errors.ConfigError` with a one-line, actionable message.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import yaml

from .errors import ConfigError
from .schedules import lr_factor, pruned_fraction

METHODS = ("dense", "pwt", "prt", "ra", "scratch")
CRITERIA = ("l1", "mean-activation", "random")
SCOPES = ("global", "layer")
OPTIMIZERS = ("adam", "sgd")
LR_SCHEDULES = ("constant", "step", "cosine", "inv")
PARTITIONS = ("type", "sensitivity", "none")
INITS = ("he-normal", "gaussian", "xavier", "pytorch")
MOMENTS = ("magnitude", "signed")
MOMENTS_OVER = ("all", "kept")
MOMENTS_AT = ("step", "start")
REINITS = ("none", "he-normal")
SCRATCH_INITS = ("fresh", "same")

DEFAULT_LR = {"adam": 1e-3, "sgd": 0.01}
LATE_PRUNE_LR_FACTOR = 0.25  # below this share of the initial learning rate, a last prune is flagged
MAX_SEED = 2**32 - 1  # numpy.random.seed's range
MAX_WIDTH = 64.0  # beyond, even LeNet-5 no longer fits in memory


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run. Field names are the YAML keys."""

    # what to train
    model: str = "lenet5"
    dataset: str = "mnist"
    data_dir: str | None = None
    width: float = 1.0
    subset: int | None = None
    # how to prune
    method: str = "dense"
    criterion: str = "l1"
    target: float = 0.5
    initial: float = 0.0
    rate: float | None = None
    every: int = 1
    scope: str = "layer"
    include_linear: bool = False
    prune_epoch: int | None = None
    compact: bool | None = None  # None: on for filter pruning (pwt, prt), off otherwise
    bn_recalibration_batches: int = 50
    # redundancy-aware training (RA)
    range: float = 2.0
    epsilon: float = 0.1
    partition: str = "type"
    delta: float = 0.4
    probe_fraction: float = 0.1
    extending_interval: int | None = None
    classes: tuple[tuple[str, ...], ...] | None = None
    masks_from: str | None = None
    moments: str = "magnitude"  # RA Eq. 1: mu and sigma of |K| (magnitude) or of K (signed)
    moments_over: str = "all"  # RA Eq. 1: over all of a layer's weights or the kept (unmasked) ones
    moments_at: str = "step"  # RA Eq. 1: thresholds recomputed every step, or fixed when the class starts
    reinit: str = "none"  # RA: he-normal re-initialises, at attach, layers Eq. 1 would prune >= 99% of
    scratch_init: str = "fresh"  # scratch: a fresh initialisation (init_seed) or the ra run's own (same)
    init_seed: int | None = None  # scratch fresh: the initialisation's seed (default: the ra run's seed + 1)
    # initialisation of conv/linear weights: he-normal N(0, 2/fan_in), gaussian N(0, init_std^2),
    # xavier (Caffe's filler: uniform on +-sqrt(3/fan_in)), pytorch (PyTorch's default uniform)
    init: str = "he-normal"
    init_std: float = 0.01
    # optimisation
    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float | None = None
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_schedule: str = "constant"
    lr_step_epochs: int = 30
    lr_gamma: float = 0.1
    lr_milestones: tuple[int, ...] | None = None  # step schedule: drop by lr_gamma at these iterations
    inv_gamma: float = 1e-4
    inv_power: float = 0.75
    # runtime
    seed: int = 0
    device: str = "auto"
    out: str | None = None

    def __post_init__(self) -> None:
        _validate(self)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, source: str = "config") -> "TrainConfig":
        """Build from a mapping (YAML file, CLI overrides). Unknown keys are errors."""
        if not isinstance(values, Mapping):
            raise ConfigError(f"{source}: expected a mapping of keys to values, got {type(values).__name__}")
        known = {f.name for f in fields(cls)}
        for key in values:
            if not isinstance(key, str) or key not in known:
                hint = difflib.get_close_matches(str(key).replace("-", "_"), sorted(known), n=1)
                suggestion = f"; did you mean '{hint[0]}'?" if hint else ""
                raise ConfigError(f"{source}: unknown key '{key}'{suggestion}")
        cleaned = dict(values)
        if cleaned.get("classes") is not None:
            cleaned["classes"] = _as_classes(cleaned["classes"])
        if cleaned.get("lr_milestones") is not None:
            cleaned["lr_milestones"] = _as_milestones(cleaned["lr_milestones"])
        return cls(**cleaned)

    @classmethod
    def load(cls, path: str | Path, overrides: Mapping[str, Any] | None = None) -> "TrainConfig":
        """Read a YAML file, apply ``overrides`` (e.g. command-line flags) and validate."""
        values = read_yaml(path)
        values.update(overrides or {})
        return cls.from_dict(values, source=str(path))

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        if self.classes is not None:
            values["classes"] = [list(c) for c in self.classes]
        if self.lr_milestones is not None:
            values["lr_milestones"] = list(self.lr_milestones)
        return values

    # ------------------------------------------------------------------ derived values
    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]

    @property
    def compacts(self) -> bool:
        """Whether pruned filters are physically removed after each pruning epoch (``compact``;
        unset means on for the filter-pruning methods pwt and prt)."""
        return self.compact if self.compact is not None else self.method in ("pwt", "prt")

    @property
    def pruning_rate(self) -> float:
        """Fraction added per epoch: by default ``target / epochs`` so the target is reached at the end."""
        return self.rate if self.rate is not None else (self.target - self.initial) / self.epochs

    @property
    def last_prune_epoch(self) -> int | None:
        """The epoch after which a filter-pruning method (pwt, prt) prunes for the last time; None
        for the others. PWT's schedule stops at the first event that reaches the target, or at the
        last event before ``epochs`` ends when it never does."""
        if self.method == "prt":
            return self.prune_epoch
        if self.method != "pwt" or self.target == 0:
            return None
        events = range(self.every, self.epochs + 1, self.every)
        for epoch in events:
            if pruned_fraction(epoch, target=self.target, rate=self.pruning_rate, initial=self.initial,
                               every=self.every) >= self.target - 1e-12:
                return epoch
        return events[-1] if events else None

    def advisories(self) -> list[str]:
        """Valid settings known to give poor results, as one-line notes for the user (printed by
        ``intrain train``; empty when there is nothing to say).

        PWT's last prune must leave learning rate to recover with: a prune costs several points that
        the following epochs win back, and a decayed cosine or step rate cannot (PRT is not flagged:
        retraining at a lowered rate is its usual recipe)."""
        notes = []
        last = self.last_prune_epoch
        if self.method == "pwt" and last is not None and self.lr_schedule in ("cosine", "step"):
            left = lr_factor(self.lr_schedule, last, iterations_per_epoch=1, total_iterations=self.epochs,
                             step_epochs=self.lr_step_epochs, gamma=self.lr_gamma)
            if left < LATE_PRUNE_LR_FACTOR:
                notes.append(
                    f"pwt prunes for the last time after epoch {last} of {self.epochs}, when the "
                    f"{self.lr_schedule} learning rate is down to {100 * left:.0f}% of its start: too little is "
                    "left to recover from the prune (measured with VGG-16 on Fashion-MNIST, cosine, last prune "
                    "after epoch 15 of 16: 22% final accuracy against 85% dense); reach the target earlier "
                    "(--rate) or use --lr-schedule constant")
        return notes


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # ValueError: a NUL in the path
        raise ConfigError(f"config file {path} is unreadable: {exc.__class__.__name__}") from None
    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError(f"config file {path} is not valid YAML{at}") from None
    if values is None:
        raise ConfigError(f"config file {path} is empty")
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path}: expected a mapping of keys to values")
    return dict(values)


def write_yaml(config: TrainConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False), encoding="utf-8")


# ---------------------------------------------------------------------- validation
def _validate(c: TrainConfig) -> None:
    for f in fields(c):
        _check_type(f, getattr(c, f.name))
    _choice("method", c.method, METHODS)
    _choice("criterion", c.criterion, CRITERIA)
    _choice("scope", c.scope, SCOPES)
    _choice("optimizer", c.optimizer, OPTIMIZERS)
    _choice("lr_schedule", c.lr_schedule, LR_SCHEDULES)
    _choice("partition", c.partition, PARTITIONS)
    _choice("init", c.init, INITS)
    _choice("moments", c.moments, MOMENTS)
    _choice("moments_over", c.moments_over, MOMENTS_OVER)
    _choice("moments_at", c.moments_at, MOMENTS_AT)
    _choice("reinit", c.reinit, REINITS)
    _choice("scratch_init", c.scratch_init, SCRATCH_INITS)
    if not (c.init_std > 0 and math.isfinite(c.init_std)):
        raise ConfigError(f"init_std: must be a positive number, got {c.init_std}")
    if c.init_seed is not None and not 0 <= c.init_seed <= MAX_SEED:
        raise ConfigError(f"init_seed: must be in [0, {MAX_SEED}], got {c.init_seed}")
    if c.init_seed is not None and (c.method != "scratch" or c.scratch_init != "fresh"):
        raise ConfigError("init_seed: only used by method scratch with scratch_init fresh")
    if c.lr_milestones is not None:
        _as_milestones(c.lr_milestones)
    if not c.model:
        raise ConfigError("model: must not be empty")
    if not c.dataset:
        raise ConfigError("dataset: must not be empty")
    _at_least("epochs", c.epochs, 1)
    _at_least("batch_size", c.batch_size, 1)
    _at_least("every", c.every, 1)
    _at_least("lr_step_epochs", c.lr_step_epochs, 1)
    _at_least("bn_recalibration_batches", c.bn_recalibration_batches, 0)
    _at_least("seed", c.seed, 0)
    if c.seed > MAX_SEED:
        raise ConfigError(f"seed: must be at most {MAX_SEED} (numpy's limit), got {c.seed}")
    if c.subset is not None:
        _at_least("subset", c.subset, 1)
    _fraction("target", c.target)
    _fraction("initial", c.initial)
    if c.initial > c.target:
        raise ConfigError(f"initial: {c.initial} is above target {c.target}")
    if c.rate is not None and not 0 < c.rate < 1:
        raise ConfigError(f"rate: must be in (0, 1), got {c.rate}")
    if not (0 < c.width <= MAX_WIDTH):
        raise ConfigError(f"width: must be a positive number up to {MAX_WIDTH}, got {c.width}")
    if c.lr is not None and not (c.lr > 0 and math.isfinite(c.lr)):
        raise ConfigError(f"lr: must be a positive number, got {c.lr}")
    for name in ("momentum", "weight_decay", "inv_gamma", "inv_power", "lr_gamma"):
        value = getattr(c, name)
        if not (value >= 0 and math.isfinite(value)):
            raise ConfigError(f"{name}: must be a non-negative number, got {value}")
    if c.momentum >= 1:
        raise ConfigError(f"momentum: must be below 1, got {c.momentum}")
    if c.method == "prt":
        if c.prune_epoch is None:
            raise ConfigError("prune_epoch: method prt needs --prune-epoch E (prune after E dense epochs)")
        if not 1 <= c.prune_epoch <= c.epochs:
            raise ConfigError(f"prune_epoch: must be between 1 and epochs ({c.epochs}), got {c.prune_epoch}")
    elif c.prune_epoch is not None:
        raise ConfigError(f"prune_epoch: only used by method prt, not {c.method}")
    for name in ("range", "epsilon", "delta"):
        value = getattr(c, name)
        if math.isnan(value) or (name != "delta" and not math.isfinite(value)):
            raise ConfigError(f"{name}: must be a finite number, got {value}")
    if c.epsilon < 0:
        raise ConfigError(f"epsilon: must be non-negative, got {c.epsilon}")
    if c.delta < 0:
        raise ConfigError(f"delta: must be non-negative (inf gives one class), got {c.delta}")
    if not 0 <= c.probe_fraction < 1:
        raise ConfigError(f"probe_fraction: must be in [0, 1), got {c.probe_fraction}")
    if c.extending_interval is not None:
        _at_least("extending_interval", c.extending_interval, 1)
    if c.method == "scratch" and not c.masks_from:
        raise ConfigError("masks_from: method scratch needs --masks-from RUN_DIR (a finished ra run)")
    if c.method == "ra" and c.partition == "sensitivity" and c.classes is None and c.probe_fraction == 0:
        raise ConfigError("probe_fraction: partition sensitivity needs a probe phase, got 0")
    if c.method in ("ra", "scratch") and c.compact:
        raise ConfigError(f"compact: method {c.method} prunes single weights, not filters; drop --compact")
    if c.method == "dense" and c.compact:
        raise ConfigError("compact: method dense prunes no filters, so there is nothing to compact; drop --compact")
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d{1,4})?", c.device):
        raise ConfigError(f"device: expected auto, cpu, cuda, cuda:N or mps, got '{c.device}'")
    for name in ("data_dir", "out", "masks_from"):
        if "\x00" in (getattr(c, name) or ""):
            raise ConfigError(f"{name}: a path cannot contain a NUL character")



def _check_type(f: dataclasses.Field, value: Any) -> None:
    annotation = str(f.type)
    optional = "None" in annotation
    if value is None:
        if optional:
            return
        raise ConfigError(f"{f.name}: must not be empty")
    base = annotation.split("|")[0].strip()
    if base == "bool":
        ok = isinstance(value, bool)
        expected = "true or false"
    elif base == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
        expected = "a whole number"
    elif base == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        expected = "a number"
    elif base == "str":
        ok = isinstance(value, str)
        expected = "a string"
    else:  # classes: validated by _as_classes
        return
    if not ok:
        raise ConfigError(f"{f.name}: expected {expected}, got {value!r}")


def _as_classes(value: Any) -> tuple[tuple[str, ...], ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError("classes: expected a list of classes, each a list of layer names")
    result = []
    for item in value:
        if not isinstance(item, (list, tuple)) or not item or not all(isinstance(n, str) for n in item):
            raise ConfigError("classes: each class must be a non-empty list of layer names")
        result.append(tuple(item))
    return tuple(result)


def _as_milestones(value: Any) -> tuple[int, ...]:
    ok = isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    if not ok or list(value) != sorted(set(value)) or (value and value[0] < 1):
        raise ConfigError(f"lr_milestones: expected increasing iterations >= 1, got {value!r}")
    return tuple(value)


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name}: unknown value '{value}'; choose one of: {', '.join(choices)}")


def _at_least(name: str, value: int, low: int) -> None:
    if value < low:
        raise ConfigError(f"{name}: must be at least {low}, got {value}")


def _fraction(name: str, value: float) -> None:
    if not (0 <= value < 1):
        raise ConfigError(f"{name}: must be a fraction in [0, 1), got {value}")
