"""The method registry: every pruning method declares itself once, in its own module.

A method module (``methods/<name>.py``; :mod:`intrain.methods.sfp` is the short example) defines

- its settings as a frozen dataclass deriving from :class:`MethodConfig`: only the fields the method
  uses, each with ``field(metadata={"help": ...})`` (the help text of its command-line flag), checked
  on construction (:meth:`MethodConfig.validate`);
- a :class:`MethodSpec`: that dataclass, how the method is built for a run (:attr:`MethodSpec.build`),
  what kind of pruning it is (compaction, cost counting, export) and what reports say about it;

and calls :func:`register` with the spec when imported (``intrain.methods`` imports every method).
Everything else reads the spec: :class:`~intrain.config.TrainConfig` (the method's settings, flat or
nested under the method's name in YAML), the command line (one flag per field), the engine (building,
compaction, costs, the sparse export) and reports (labels, the dense baseline). The registry is the
only module-level state, filled at import.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ..errors import ConfigError
from ..validation import check_field_types

if TYPE_CHECKING:  # pragma: no cover
    from ..config import TrainConfig
    from .base import PruningMethod

COST_MODES = ("structured", "nonzero", "full")


@dataclass(frozen=True)
class MethodConfig:
    """Base of the methods' settings: frozen, field types checked, then :meth:`validate`."""

    def __post_init__(self) -> None:
        check_field_types(self)
        self.validate()

    def validate(self) -> None:
        """Check the values (one-line :class:`~intrain.errors.ConfigError`); override per method."""

    def to_dict(self) -> dict[str, Any]:
        """Field name -> value, tuples as lists (YAML- and JSON-friendly)."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class RunContext:
    """What a method's :attr:`MethodSpec.build` may use besides its own settings."""

    config: "TrainConfig"  # the whole run (epochs, seed, ...)
    iterations_per_epoch: int = 1
    model: Any = None  # the freshly built model (RA's probe trains a copy of it)
    train_loader: Any = None
    make_optimizer: Callable[[Any], Any] | None = None  # model -> an optimizer as the run's
    saved_state: Mapping[str, Any] | None = None  # the method's state_dict() of a checkpoint being resumed


def _nothing(*args: Any) -> None:
    return None


def _no_notes(*args: Any) -> list[str]:
    return []


def _unchanged(method_config: Any, run: Any) -> Any:
    return method_config


def _label(name: str) -> Callable[[Mapping[str, Any], Mapping[str, Any]], str]:
    return lambda summary, config: name


@dataclass(frozen=True)
class MethodSpec:
    """One pruning method, declared once (see the module docstring).

    ``structured``: removes whole filters, so compaction is on by default and ``intrain export``
    removes them. ``cost_mode``: how a training epoch's cost is counted (:mod:`intrain.costs`):
    ``structured`` (at the filters and channels kept), ``nonzero`` (non-zero weights, idealised sparse
    hardware) or ``full`` (every filter: the model trains at full size). ``sparse_weights``: per-weight
    masks; the run also writes ``model_sparse.npz``. ``baseline``: the reference of reports' Δ column
    (dense). ``prunes_while_training``: reports compare it with prune-then-retrain.

    Hooks (all optional), called with the method's settings and the whole run's
    :class:`~intrain.config.TrainConfig`: ``check`` (settings that depend on the run, e.g. epochs),
    ``resolve`` (the settings with the defaults a reader or a resume depends on written out),
    ``last_prune_epoch``, ``advisories`` (one-line notes on valid but poor settings),
    ``initial_seed`` (a seed for the initial weights other than the run's), ``departures`` (short
    strings naming each setting that departs from the method's paper, for summary.json and report
    labels; given the resolved configuration), and ``label(summary, config)`` for reports (``config`` a flat dict of a run's config.yaml, maybe of an older version).
    """

    name: str
    config: type
    build: Callable[[Any, RunContext], "PruningMethod"]
    help: str
    structured: bool = False
    cost_mode: str = "structured"
    sparse_weights: bool = False
    baseline: bool = False
    prunes_while_training: bool = True
    check: Callable[[Any, "TrainConfig"], None] = _nothing
    resolve: Callable[[Any, "TrainConfig"], Any] = _unchanged
    last_prune_epoch: Callable[[Any, "TrainConfig"], int | None] = _nothing
    advisories: Callable[[Any, "TrainConfig"], list[str]] = _no_notes
    initial_seed: Callable[[Any, "TrainConfig"], int | None] = _nothing
    label: Callable[[Mapping[str, Any], Mapping[str, Any]], str] | None = None
    departures: Callable[[Any, "TrainConfig"], list[str]] = _no_notes

    def __post_init__(self) -> None:
        if not (isinstance(self.config, type) and issubclass(self.config, MethodConfig)):
            raise TypeError(f"method {self.name}: config must be a MethodConfig dataclass")
        if self.cost_mode not in COST_MODES:
            raise TypeError(f"method {self.name}: cost_mode must be one of {', '.join(COST_MODES)}")
        missing = [f.name for f in fields(self.config) if not f.metadata.get("help")]
        if missing:
            raise TypeError(f"method {self.name}: field {missing[0]} has no help text (metadata={{'help': ...}})")
        if self.label is None:
            object.__setattr__(self, "label", _label(self.name))

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(self.config))


_REGISTRY: dict[str, MethodSpec] = {}


def register(spec: MethodSpec) -> MethodSpec:
    """Add ``spec``; a name registered twice, or a field that another method declares with another
    type, is a programming error (``ValueError``)."""
    if spec.name in _REGISTRY and _REGISTRY[spec.name] is not spec:
        raise ValueError(f"method {spec.name!r} is registered already")
    types = {f.name: (str(f.type), other.name) for other in _REGISTRY.values() for f in fields(other.config)}
    for f in fields(spec.config):
        if f.name in types and types[f.name][0] != str(f.type):
            raise ValueError(f"method {spec.name}: field {f.name} is {f.type}, but {types[f.name][1]}'s is "
                             f"{types[f.name][0]} (one flag per name: the types must agree)")
    _REGISTRY[spec.name] = spec
    return spec


def names() -> tuple[str, ...]:
    """Registered method names, in registration order."""
    return tuple(_REGISTRY)


def get(name: Any) -> MethodSpec:
    """The spec of method ``name``; an unknown name is a one-line ConfigError with a suggestion."""
    if isinstance(name, str) and name in _REGISTRY:
        return _REGISTRY[name]
    if not isinstance(name, str):
        raise ConfigError(f"method: expected a string, got {name!r}")
    hint = difflib.get_close_matches(name, names(), n=1)
    suggestion = f"; did you mean '{hint[0]}'?" if hint else ""
    raise ConfigError(f"method: unknown value '{name}'{suggestion} (choose one of: {', '.join(names())})")


def find(name: Any) -> MethodSpec | None:
    """The spec of ``name``, or None (e.g. a method of a run written by another version)."""
    return _REGISTRY.get(name) if isinstance(name, str) else None


def specs() -> tuple[MethodSpec, ...]:
    return tuple(_REGISTRY.values())


def field_users() -> dict[str, tuple[str, ...]]:
    """Every method setting's name -> the methods that use it, in registration order."""
    users: dict[str, list[str]] = {}
    for spec in _REGISTRY.values():
        for name in spec.field_names:
            users.setdefault(name, []).append(spec.name)
    return {name: tuple(methods) for name, methods in users.items()}


def field_help(name: str) -> str:
    """The help text of setting ``name``, followed by the methods that use it (each method's own text
    where they differ)."""
    texts = {spec.name: _with_default(f) for spec in _REGISTRY.values() for f in fields(spec.config) if f.name == name}
    if len(set(texts.values())) == 1:
        return f"{next(iter(texts.values()))} [{', '.join(texts)}]"
    return "; ".join(f"[{method}] {text}" for method, text in texts.items())


def _with_default(f: dataclasses.Field) -> str:
    """A setting's help text with its default (a bool switch: off)."""
    text = f.metadata["help"]
    if "default" in text or f.default is dataclasses.MISSING:
        return text
    default = f.default
    shown = "off" if default is False else "none" if default is None else default
    return f"{text} (default {shown})"


def method_field(name: str) -> dataclasses.Field:
    """The dataclass field ``name`` as first declared (type and help text of its flag)."""
    for spec in _REGISTRY.values():
        for f in fields(spec.config):
            if f.name == name:
                return f
    raise KeyError(name)


def not_used(key: str, method: str) -> ConfigError:
    """The one-line error for a setting the chosen method does not use."""
    users = field_users().get(key, ())
    return ConfigError(f"{key}: not used by method {method} (used by: {', '.join(users)})")
