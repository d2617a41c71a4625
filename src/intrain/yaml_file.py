"""Reading intrain's YAML files (run configs): YAML 1.2 numbers, a key given twice refused, one-line
:class:`~intrain.errors.ConfigError` messages. No intrain imports beyond errors: any layer may read one."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError


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
