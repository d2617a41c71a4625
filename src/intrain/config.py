"""Run configuration: one frozen dataclass, validated on construction, holding the method's own.

The same keys are accepted from a YAML file (``--config``) and from command-line flags (flags win).
Every invalid value raises :class:`~intrain.errors.ConfigError` with a one-line, actionable message.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

import yaml

from .errors import ConfigError
from .yaml_file import read_yaml  # noqa: F401 - part of this module's API
from .methods import registry
from .validation import at_least as _at_least
from .validation import choice as _choice
from .validation import field_type

OPTIMIZERS = ("adam", "sgd")
LR_SCHEDULES = ("constant", "step", "cosine", "inv")
AMP_MODES = ("off", "bf16", "fp16")
LOGS = ("none", "tensorboard")
INITS = ("he-normal", "lecun-normal", "gaussian", "xavier", "pytorch")

DEFAULT_LR = {"adam": 1e-3, "sgd": 0.01}
MAX_SEED = 2**32 - 1  # numpy.random.seed's range
MAX_WIDTH = 64.0  # beyond, even LeNet-5 no longer fits in memory


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run. Field names are the YAML keys.

    The run's own settings are fields; the pruning method's are in ``method_config``, an instance of
    the method's config dataclass (:mod:`intrain.methods.registry`), whose field names are YAML keys
    too: flat (``target: 0.8``) or nested under the method's name (``pwt: {target: 0.8}``). Build one
    from flat keys with :meth:`of` or :meth:`from_dict`; a key the method does not use is refused.
    """

    # what to train
    model: str = "lenet5"
    dataset: str = "mnist"
    data_dir: str | None = None
    width: float = 1.0
    subset: int | None = None
    # held out of the training data for choosing (None: none): N examples, or a fraction in (0, 1)
    val_split: float | None = None
    # how to prune: the method and its own settings (None: the method's defaults)
    method: str = "dense"
    method_config: Any = None
    compact: bool | None = None  # None: on for methods that remove whole filters (spec.structured)
    bn_recalibration_batches: int = 50
    # initialisation of conv/linear weights: he-normal N(0, 2/fan_in), lecun-normal N(0, 1/fan_in) (Caffe
    # xavier's variance, Gaussian), gaussian N(0, init_std^2),
    # xavier (Caffe's filler: uniform on +-sqrt(3/fan_in)), pytorch (PyTorch's default uniform)
    init: str = "he-normal"
    init_std: float = 0.01
    # start from these weights instead (intrain.models.weights): a state dict, an intrain model.pt, a
    # timm/torchvision checkpoint file; every key and shape must fit the model
    init_from: str | None = None
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
    skip_bad_images: bool = False  # dataset folder: train without the images that do not decode
    amp: str = "off"  # autocast: off, bf16 or fp16 (fp16 with a gradient scaler, CUDA only)
    channels_last: bool = False
    # besides history.jsonl and history.csv: none, or tensorboard (event files in RUN_DIR/tensorboard)
    log: str = "none"

    def __post_init__(self) -> None:
        spec = method_spec(self.method)
        if self.method_config is None:
            object.__setattr__(self, "method_config", spec.config())
        elif type(self.method_config) is not spec.config:
            raise ConfigError(f"method_config: method {self.method} takes a {spec.config.__name__}, "
                              f"got {type(self.method_config).__name__}")
        _validate(self)
        spec.check(self.method_config, self)

    # ------------------------------------------------------------------ construction
    @classmethod
    def of(cls, **values: Any) -> "TrainConfig":
        """From flat keyword arguments, run and method settings alike:
        ``TrainConfig.of(method="pwt", target=0.8, epochs=20)``."""
        return cls.from_dict(values, source="arguments")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, source: str = "config", lenient: bool = False) -> "TrainConfig":
        """Build from a mapping (YAML file, CLI overrides): run keys, the method's keys flat or nested
        under the method's name. Unknown keys are errors, and so are keys of another method, unless
        ``lenient`` (configs written by intrain before methods had their own settings held every
        method's keys: these are dropped)."""
        flat, nested = _lift_nested(values, source)
        return cls._from_flat(flat, nested, source=source, lenient=lenient)

    @classmethod
    def _from_flat(cls, flat: dict[str, Any], nested: set[str], *, source: str, lenient: bool) -> "TrainConfig":
        if lenient:  # older versions wrote every setting, used or not: those unused had no effect
            flat = {k: v for k, v in flat.items() if k not in unused_settings(flat)}
        spec = method_spec(flat.get("method", "dense"))
        users = registry.field_users()
        for name in nested - {spec.name}:
            if not lenient:
                raise ConfigError(f"{name}: settings of method {name}, but the method is {spec.name}")
        run_keys = {f.name for f in fields(cls)} - {"method_config"}
        run, own = {}, {}
        for key, value in flat.items():
            if key in run_keys:
                run[key] = value
            elif key in spec.field_names:
                own[key] = value
            elif key in users:
                if not lenient:
                    raise registry.not_used(key, spec.name)
            else:
                hint = difflib.get_close_matches(str(key).replace("-", "_"), sorted(run_keys | set(users)), n=1)
                suggestion = f"; did you mean '{hint[0]}'?" if hint else ""
                raise ConfigError(f"{source}: unknown key '{key}'{suggestion}")
        if run.get("lr_milestones") is not None:
            run["lr_milestones"] = _as_milestones(run["lr_milestones"])
        return cls(**run, method_config=spec.config(**own))

    @classmethod
    def load(cls, path: str | Path, overrides: Mapping[str, Any] | None = None, *,
             lenient: bool = False) -> "TrainConfig":
        """Read a YAML file, apply ``overrides`` (e.g. command-line flags, flat) and validate."""
        flat, nested = _lift_nested(read_yaml(path), str(path))
        flat.update(overrides or {})
        return cls._from_flat(flat, nested, source=str(path), lenient=lenient)

    def replace(self, **changes: Any) -> "TrainConfig":
        """A copy with ``changes``: run and method settings alike, flat. Changing the method keeps
        this config's settings that the new method uses too and drops the others; so does changing the
        optimizer, schedule or initialisation (e.g. ``momentum`` when the optimizer becomes adam)."""
        values = self.to_dict()
        if changes.get("method", self.method) != self.method:
            kept = method_spec(changes["method"]).field_names
            values = {k: v for k, v in values.items() if k not in self.spec.field_names or k in kept}
        values.update(changes)
        values = {k: v for k, v in values.items() if k in changes or k not in unused_settings(values)}
        return self.of(**values)

    def to_dict(self) -> dict[str, Any]:
        """Flat: the run's keys with the method's settings after ``method``."""
        values: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "method_config":
                values.update(self.method_config.to_dict())
            else:
                values[f.name] = getattr(self, f.name)
        if self.lr_milestones is not None:
            values["lr_milestones"] = list(self.lr_milestones)
        return values

    # ------------------------------------------------------------------ derived values
    @property
    def spec(self) -> registry.MethodSpec:
        """The method's registry entry."""
        return registry.get(self.method)

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]

    @property
    def compacts(self) -> bool:
        """Whether pruned filters are physically removed after each pruning epoch (``compact``;
        unset means on for the methods that remove whole filters)."""
        return self.compact if self.compact is not None else self.spec.structured

    @property
    def step_epochs(self) -> int:
        """Epochs between the ``step`` schedule's rate drops (``lr_step_epochs``; unset: a third of
        the run, at least 1)."""
        return self.lr_step_epochs if self.lr_step_epochs is not None else max(1, self.epochs // 3)

    def resolved(self) -> "TrainConfig":
        """This configuration with every default a reader or a resume depends on written out: the
        absolute data folder (``$INTRAIN_DATA_DIR`` or ``./data`` when unset; none for ``demo``), the
        learning rate, the step schedule's interval, the method's own (e.g. PWT's recipe and rate),
        compaction on or off, an absolute ``init_from`` file and an absolute ``out`` folder (the method's paths: its ``resolve``).
        ``device`` stays as given (``auto`` resumes anywhere); the device used is in summary.json."""
        from .data.datasets import default_data_dir

        data_dir = None
        if self.dataset != "demo":
            data_dir = str(Path(self.data_dir).expanduser().absolute() if self.data_dir else default_data_dir())
        own = self.spec.resolve(self.method_config, self)
        steps = self.lr_schedule == "step" and self.lr_milestones is None
        return dataclasses.replace(
            self, method_config=own, data_dir=data_dir, lr=self.learning_rate, compact=self.compacts,
            image_size=self.folder_image_size,
            lr_step_epochs=self.step_epochs if steps else None, out=str(Path(self.out).expanduser().absolute()) if self.out else None,
            init_from=str(Path(self.init_from).expanduser().absolute()) if self.init_from else None)

    @property
    def folder_image_size(self) -> int | None:
        """``dataset folder``: the crops' side used, ``image_size`` or else the model's fixed input size,
        else 224 (``image_size`` as given for the other datasets, which refuse it)."""
        if self.dataset != "folder":
            return self.image_size
        from .data.folder import DEFAULT_IMAGE_SIZE
        from .models import model_entry

        return self.image_size or model_entry(self.model).input_size or DEFAULT_IMAGE_SIZE

    @property
    def last_prune_epoch(self) -> int | None:
        """The epoch after which the method prunes for the last time (None: never, or not known
        ahead, as for weight pruning)."""
        return self.spec.last_prune_epoch(self.method_config, self)

    def advisories(self) -> list[str]:
        """Valid settings known to give poor results, as one-line notes for the user (printed by
        ``intrain train``; empty when there is nothing to say): the method's own."""
        return list(self.spec.advisories(self.method_config, self))


def method_spec(name: Any) -> registry.MethodSpec:
    """The registry entry of method ``name`` (a one-line ConfigError for an unknown name)."""
    return registry.get(name)


def _lift_nested(values: Any, source: str) -> tuple[dict[str, Any], set[str]]:
    """Flat keys from ``values``: a method's settings nested under its name (``pwt: {target: 0.8}``)
    are lifted to the top level; returns them with the names of the methods nested."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"{source}: expected a mapping of keys to values, got {type(values).__name__}")
    flat, nested = {}, set()
    for key, value in values.items():
        spec = registry.find(key)
        if spec is None or not isinstance(value, Mapping):
            if key in flat:
                raise ConfigError(f"{source}: '{key}' is given twice (flat and under method {_owner(key, values)})")
            flat[key] = value
            continue
        nested.add(key)
        for name, item in value.items():
            if name not in spec.field_names:
                raise ConfigError(f"{source}: '{key}.{name}' is not a setting of method {key} "
                                  f"(its settings: {', '.join(spec.field_names) or 'none'})")
            if name in flat:
                raise ConfigError(f"{source}: '{name}' is given twice (flat and under method {key})")
            flat[name] = item
    return flat, nested


def _owner(key: str, values: Mapping[str, Any]) -> str:
    return next((k for k, v in values.items() if isinstance(v, Mapping) and key in v), "?")


def write_yaml(config: TrainConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False), encoding="utf-8")


# ---------------------------------------------------------------------- validation
def _validate(c: TrainConfig) -> None:
    """The run's own settings (the method's are checked by its config class and ``spec.check``)."""
    for f in fields(c):
        field_type(f, getattr(c, f.name))
    for name, choices in (("optimizer", OPTIMIZERS), ("lr_schedule", LR_SCHEDULES), ("amp", AMP_MODES), ("log", LOGS),
                          ("init", INITS)):
        _choice(name, getattr(c, name), choices)
    if not (c.init_std > 0 and math.isfinite(c.init_std)):
        raise ConfigError(f"init_std: must be a positive number, got {c.init_std}")
    if c.lr_milestones is not None:
        _as_milestones(c.lr_milestones)
    if not c.model:
        raise ConfigError("model: must not be empty")
    if not c.dataset:
        raise ConfigError("dataset: must not be empty")
    _at_least("epochs", c.epochs, 1)
    _at_least("batch_size", c.batch_size, 1)
    if c.lr_step_epochs is not None:
        _at_least("lr_step_epochs", c.lr_step_epochs, 1)
    if c.lr_schedule == "step" and c.lr_milestones is None and c.step_epochs >= c.epochs:  # milestones: iterations
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
    if c.val_split is not None:
        v = c.val_split
        if not (math.isfinite(v) and v > 0 and (v < 1 or float(v).is_integer())):
            raise ConfigError(f"val_split: expected a number of examples (a whole number >= 1) or a fraction "
                              f"in (0, 1), got {v!r}")
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
    if c.compact and not c.spec.structured:
        raise ConfigError(f"compact: method {c.method} removes no whole filters, so there is nothing to compact; "
                          "drop --compact")
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d{1,4})?", c.device):
        raise ConfigError(f"device: expected auto, cpu, cuda, cuda:N or mps, got '{c.device}'")
    if c.image_size is not None:
        _at_least("image_size", c.image_size, 16)
        if c.dataset != "folder":
            raise ConfigError(f"image_size: only used by dataset folder; {c.dataset} has its own size")
    _at_least("workers", c.workers, 0)
    if c.workers and c.dataset != "folder":
        raise ConfigError(f"workers: only dataset folder decodes images; {c.dataset} is held in memory, drop --workers")
    if c.skip_bad_images and c.dataset != "folder":
        raise ConfigError(f"skip_bad_images: only dataset folder decodes images; drop --skip-bad-images for {c.dataset}")
    for name in ("data_dir", "out", "init_from"):
        if "\x00" in (getattr(c, name) or ""):
            raise ConfigError(f"{name}: a path cannot contain a NUL character")
    _refuse_unused(c)


# settings used only by one optimizer, schedule or initialisation: (key, who uses it, is it used)
_USED_BY: tuple[tuple[str, str, Any], ...] = (
    ("momentum", "optimizer sgd", lambda v: v.get("optimizer", "adam") == "sgd"),
    ("lr_gamma", "lr_schedule step", lambda v: v.get("lr_schedule", "constant") == "step"),
    ("lr_milestones", "lr_schedule step", lambda v: v.get("lr_schedule", "constant") == "step"),
    ("lr_step_epochs", "lr_schedule step without lr_milestones",
     lambda v: v.get("lr_schedule", "constant") == "step" and v.get("lr_milestones") is None),
    ("inv_gamma", "lr_schedule inv", lambda v: v.get("lr_schedule", "constant") == "inv"),
    ("inv_power", "lr_schedule inv", lambda v: v.get("lr_schedule", "constant") == "inv"),
    ("init_std", "init gaussian", lambda v: v.get("init", "he-normal") == "gaussian"),
)


def unused_settings(values: Mapping[str, Any]) -> dict[str, str]:
    """The settings in ``values`` (flat keys) that the chosen optimizer, learning-rate schedule or
    initialisation does not use and that differ from their defaults, each with who would use it."""
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    return {key: user for key, user, used in _USED_BY
            if key in values and values[key] != defaults[key] and not used(values)}


def _refuse_unused(c: TrainConfig) -> None:
    """A setting that would do nothing is refused, as a method's unused setting is."""
    values = {f.name: getattr(c, f.name) for f in fields(c)}
    for key, user in unused_settings(values).items():
        flag = "--" + key.replace("_", "-")
        raise ConfigError(f"{key}: only {user} uses it, and this run has {_setting_of(user, values)}; "
                          f"drop {flag}")


def _setting_of(user: str, values: Mapping[str, Any]) -> str:
    """The run's value of the setting ``user`` names ("optimizer sgd" -> "optimizer adam")."""
    key = user.split()[0]
    text = f"{key} {values[key]}"
    return text + " with lr_milestones" if user.endswith("without lr_milestones") and values[key] == "step" else text


def _as_milestones(value: Any) -> tuple[int, ...]:
    ok = isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    if not ok or list(value) != sorted(set(value)) or (value and value[0] < 1):
        raise ConfigError(f"lr_milestones: expected increasing iterations >= 1, got {value!r}")
    return tuple(value)

