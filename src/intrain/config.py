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
from .schedules import SHAPES, PruneSchedule, lr_factor, pwt_plan
from .validation import at_least as _at_least
from .validation import choice as _choice
from .validation import fraction as _fraction
from .validation import pwt_schedule, ra_thresholds

METHODS = ("dense", "pwt", "prt", "ra", "scratch")
CRITERIA = ("l1", "mean-activation", "random")
SCOPES = ("global", "layer")
OPTIMIZERS = ("adam", "sgd")
LR_SCHEDULES = ("constant", "step", "cosine", "inv")
PARTITIONS = ("type", "sensitivity", "none")
AMP_MODES = ("off", "bf16", "fp16")
INITS = ("he-normal", "gaussian", "xavier", "pytorch")
MOMENTS = ("magnitude", "signed")
MOMENTS_OVER = ("all", "kept")
MOMENTS_AT = ("step", "start")
REINITS = ("none", "he-normal")
SCRATCH_INITS = ("fresh", "same")

DEFAULT_LR = {"adam": 1e-3, "sgd": 0.01}
# PWT's schedule settings when not given: the paper's, and intrain's recommendation (measured on
# benchmarks/pwt_protocol.py: see benchmarks/README.md)
PWT_RECIPES = {
    "paper": {"schedule": "linear", "reach": 1.0, "prune_every_steps": None},
    "recommended": {"schedule": "cubic", "reach": 0.6, "prune_every_steps": 6},
}
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
    recipe: str = "paper"  # PWT: where reach, schedule and prune_every_steps come from when unset
    reach: float | None = None  # PWT: the target is reached after this fraction of the epochs (1: the paper)
    schedule: str | None = None  # PWT: linear (the paper) or cubic (Zhu & Gupta)
    prune_every_steps: int | None = None  # PWT: prune every K optimizer steps instead of at epoch ends
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
    lr_step_epochs: int | None = None  # None: a third of the epochs (at least 1)
    lr_gamma: float = 0.1
    lr_milestones: tuple[int, ...] | None = None  # step schedule: drop by lr_gamma at these iterations
    inv_gamma: float = 1e-4
    inv_power: float = 0.75
    # runtime
    seed: int = 0
    device: str = "auto"
    out: str | None = None
    # image folders, mixed precision, memory layout
    image_size: int | None = None  # dataset folder: side of the square crops (default 224)
    workers: int = 0  # dataset folder: decoding processes (0: the training process)
    amp: str = "off"  # autocast: off, bf16 or fp16 (fp16 with a gradient scaler, CUDA only)
    channels_last: bool = False

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
    def pwt_schedule_settings(self) -> dict[str, Any]:
        """PWT's ``schedule``, ``reach`` and ``prune_every_steps`` as used: the values given, else the
        ``recipe``'s (``paper`` or ``recommended``). A ``rate`` fixes a linear schedule, ``every`` > 1
        (Mod-N) pruning at epoch ends."""
        recipe = PWT_RECIPES[self.recipe]
        rate_given = self.rate is not None
        return {
            "schedule": self.schedule or ("linear" if rate_given else recipe["schedule"]),
            "reach": None if rate_given else (self.reach if self.reach is not None else recipe["reach"]),
            "prune_every_steps": self.prune_every_steps if self.prune_every_steps is not None
            else (None if self.every > 1 else recipe["prune_every_steps"]),
        }

    @property
    def pruning_rate(self) -> float:
        """Fraction added per epoch by a linear schedule: ``rate``, else ``target / (reach * epochs)``
        (the paper: ``target / epochs``, the target reached at the end)."""
        if self.rate is not None:
            return self.rate
        return (self.target - self.initial) / (self.epochs * self.pwt_schedule_settings["reach"])

    @property
    def prune_schedule(self) -> PruneSchedule:
        """PWT's schedule of pruned fractions (:class:`~intrain.schedules.PruneSchedule`)."""
        settings = self.pwt_schedule_settings
        return pwt_plan(target=self.target, epochs=self.epochs, rate=self.rate, initial=self.initial,
                        every=self.every, reach=settings["reach"], shape=settings["schedule"])

    @property
    def step_epochs(self) -> int:
        """Epochs between the ``step`` schedule's rate drops (``lr_step_epochs``; unset: a third of
        the run, at least 1)."""
        return self.lr_step_epochs if self.lr_step_epochs is not None else max(1, self.epochs // 3)

    def resolved(self) -> "TrainConfig":
        """This configuration with every default a reader or a resume depends on written out: the
        absolute data folder (``$INTRAIN_DATA_DIR`` or ``./data`` when unset; none for ``demo``), the
        learning rate, the step schedule's interval, PWT's rate, compaction on or off, and absolute
        ``out`` and ``masks_from`` folders. ``device`` stays as given (``auto`` resumes anywhere); the
        device used is in summary.json."""
        from .data.datasets import default_data_dir

        data_dir = None
        if self.dataset != "demo":
            data_dir = str(Path(self.data_dir).expanduser().absolute() if self.data_dir else default_data_dir())
        pwt = {}
        if self.method == "pwt":  # the recipe's settings written out; a linear schedule as its rate per epoch
            pwt = dict(self.pwt_schedule_settings)
            if pwt["schedule"] == "linear" and 0 < self.pruning_rate < 1:
                pwt.update(rate=self.pruning_rate, reach=None)
        return self.replace(
            **pwt, data_dir=data_dir, lr=self.learning_rate, compact=self.compacts,
            lr_step_epochs=self.step_epochs,
            out=str(Path(self.out).expanduser().absolute()) if self.out else None,
            masks_from=str(Path(self.masks_from).expanduser().absolute()) if self.masks_from else None)

    @property
    def last_prune_epoch(self) -> int | None:
        """The epoch after which a filter-pruning method (pwt, prt) prunes for the last time (for
        pwt, the epoch that reaches the target); None for the others."""
        if self.method == "prt":
            return self.prune_epoch
        if self.method != "pwt" or self.target == 0:
            return None
        return self.prune_schedule.last_epoch

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
                             step_epochs=self.step_epochs, gamma=self.lr_gamma)
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
        values = yaml.load(text, Loader=_config_loader())  # noqa: S506 - a SafeLoader subclass
    except _DuplicateKey as exc:
        raise ConfigError(f"config file {path}: key '{exc.key}' is given twice (line {exc.line})") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError(f"config file {path} is not valid YAML{at}") from None
    if values is None:
        raise ConfigError(f"config file {path} is empty")
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path}: expected a mapping of keys to values")
    return dict(values)


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: Any, line: int) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.key, self.line = key, line


# YAML 1.2 floats: PyYAML follows YAML 1.1, where 1e-3 (no dot) or 1.0e-3 with no sign is a string
_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)(?:[eE][-+]?[0-9]+)?$"
                    r"|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$")


def _config_loader() -> type:
    """A ``yaml.SafeLoader`` subclass (built per call: no module-level state shared with other YAML
    users) that reads ``1e-3`` as a number, as YAML 1.2 and the command line do, and refuses a key
    given twice in one mapping."""

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)):
                continue  # unhashable keys are refused later (unknown key)
            if key in seen:
                raise _DuplicateKey(key, key_node.start_mark.line + 1)
            seen.add(key)
        return loader.construct_mapping(node, deep=True)

    Loader.add_constructor("tag:yaml.org,2002:map", mapping)
    return Loader


def write_yaml(config: TrainConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False), encoding="utf-8")


# ---------------------------------------------------------------------- validation
def _validate(c: TrainConfig) -> None:
    for f in fields(c):
        _check_type(f, getattr(c, f.name))
    for name, choices in (("method", METHODS), ("criterion", CRITERIA), ("scope", SCOPES),
                          ("optimizer", OPTIMIZERS), ("lr_schedule", LR_SCHEDULES), ("partition", PARTITIONS),
                          ("recipe", tuple(PWT_RECIPES)), ("schedule", SHAPES), ("amp", AMP_MODES),
                          ("init", INITS), ("moments", MOMENTS), ("moments_over", MOMENTS_OVER),
                          ("moments_at", MOMENTS_AT), ("reinit", REINITS), ("scratch_init", SCRATCH_INITS)):
        if getattr(c, name) is not None:  # schedule: None is the recipe's
            _choice(name, getattr(c, name), choices)
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
    if c.lr_step_epochs is not None:
        _at_least("lr_step_epochs", c.lr_step_epochs, 1)
    if c.lr_schedule == "step" and c.step_epochs >= c.epochs:
        if c.lr_step_epochs is None:
            raise ConfigError(f"lr_schedule: step never lowers the rate in {c.epochs} epoch(s); use constant")
        raise ConfigError(f"lr_step_epochs: a step every {c.lr_step_epochs} epochs never lowers the rate in "
                          f"{c.epochs} epochs; use fewer (default: a third of the epochs)")
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
    _validate_pwt_options(c)
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
    if c.method == "pwt":
        pwt_schedule(target=c.target, epochs=c.epochs, rate=c.rate, initial=c.initial, every=c.every,
                     reach=c.reach, schedule=c.schedule, prune_every_steps=c.prune_every_steps)
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
    ra_thresholds(c.range, c.epsilon)
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
    if c.image_size is not None:
        _at_least("image_size", c.image_size, 16)
        if c.dataset != "folder":
            raise ConfigError(f"image_size: only used by dataset folder; {c.dataset} has its own size")
    _at_least("workers", c.workers, 0)
    if c.workers and c.dataset != "folder":
        raise ConfigError(f"workers: only dataset folder decodes images; {c.dataset} is held in memory, drop --workers")
    for name in ("data_dir", "out", "masks_from"):
        if "\x00" in (getattr(c, name) or ""):
            raise ConfigError(f"{name}: a path cannot contain a NUL character")



def _validate_pwt_options(c: TrainConfig) -> None:
    """PWT's schedule options belong to pwt alone (their values: :func:`~intrain.validation.pwt_schedule`)."""
    used = [name for name, default in (("recipe", "paper"), ("reach", None), ("schedule", None),
                                       ("prune_every_steps", None)) if getattr(c, name) != default]
    if used and c.method != "pwt":
        raise ConfigError(f"{used[0]}: only used by method pwt, not {c.method}")


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

