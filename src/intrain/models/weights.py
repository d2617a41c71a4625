"""``--init-from FILE``: start a run from weights a user already has.

The file may hold a plain ``state_dict`` (what ``torch.save(model.state_dict(), f)`` writes, and
torchvision's and most timm checkpoint files), an intrain ``model.pt`` or ``checkpoint.pt``
(``{"model": state_dict, ...}``), or a training checkpoint keeping it under ``state_dict`` or
``model`` (timm's ``train.py``, Lightning). Keys saved from a ``DistributedDataParallel`` wrapper
(``module.`` before every key) are read without it. Loading is safe: ``torch.load(...,
weights_only=True)`` reads tensors and plain containers only, so a crafted file cannot run code.

The weights must fit the freshly built model exactly: every key it has, with the same shape, and no
other. The first that does not is one line (:class:`~intrain.errors.ConfigError`, exit status 2).
"""

from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from ..errors import ConfigError

NESTED_KEYS = ("model", "state_dict")  # where training checkpoints keep the weights


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The weights in ``path`` (see the module docstring), safely."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"init_from: {path} not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            saved = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        unsafe = re.search(r"GLOBAL (\S+)", str(exc), flags=re.IGNORECASE)
        if unsafe:
            raise ConfigError(f"init_from: refusing to load {path}: it references {unsafe.group(1)}, and loading it "
                              "could run code (intrain only loads tensors and plain containers)") from None
        raise ConfigError(f"init_from: {path} is corrupt or not a torch file") from None
    except Exception as exc:  # truncated zips, empty files, other formats: many exception types
        raise ConfigError(f"init_from: {path} is not a torch weights file ({type(exc).__name__})") from None
    state = _find_state_dict(saved)
    if state is None:
        raise ConfigError(f"init_from: {path} holds no state dict (a mapping of names to tensors, plain or under "
                          f"'model' or 'state_dict')")
    if state and all(key.startswith("module.") for key in state):
        state = {key[len("module."):]: value for key, value in state.items()}
    return state


def _find_state_dict(saved: Any) -> dict[str, torch.Tensor] | None:
    if not isinstance(saved, Mapping) or not saved:
        return None
    if all(isinstance(k, str) and torch.is_tensor(v) for k, v in saved.items()):
        return dict(saved)
    for key in NESTED_KEYS:
        found = _find_state_dict(saved.get(key))
        if found is not None:
            return found
    return None


def first_misfit(model: nn.Module, state: Mapping[str, torch.Tensor]) -> str | None:
    """What keeps ``state`` from loading into ``model`` exactly, the first one: a key the model needs
    that ``state`` lacks, a shape that differs (in the model's order), or a key the model does not
    have (in the file's order); None when it fits."""
    own = model.state_dict()
    for key, tensor in own.items():
        if key not in state:
            return f"it has no {key}, which the model needs"
        if tuple(state[key].shape) != tuple(tensor.shape):
            return (f"{key} has shape {tuple(state[key].shape)} there and {tuple(tensor.shape)} in the model")
    for key in state:
        if key not in own:
            return f"it has {key}, which the model does not"
    return None


@torch.no_grad()
def load_initial_weights(model: nn.Module, path: str | Path, model_name: str) -> None:
    """Load the weights in ``path`` into ``model`` (in place; the parameters stay the same objects)."""
    state = read_state_dict(path)
    misfit = first_misfit(model, state)
    if misfit is not None:
        raise ConfigError(f"init_from: {path} does not fit model {model_name}: {misfit}")
    model.load_state_dict(state)
