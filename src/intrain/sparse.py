"""Sparse export of a weight-pruned model: values + bitmask positions, in a compressed ``.npz``.

Each tensor of the state_dict is stored in one of three forms:

- ``masked`` — a weight with a ``<layer>.weight_mask`` buffer (RA, scratch): the mask as a bitmask
  (``numpy.packbits``) and the values of the kept positions. Loading gives back the mask and the
  *effective* weight ``W ⊙ T`` (the dense values under pruned positions are training state only:
  the straight-through update keeps changing them, the model never uses them);
- ``sparse`` — any other floating tensor that is mostly zeros: a bitmask of its non-zeros and their
  values;
- ``dense`` — everything else (biases, BatchNorm statistics, counters), as is.

The bitmasks of a highly sparse network are long runs of zeros, which the archive's deflate
compression shrinks well below one bit per weight; the values are stored in their own dtype
(fp32 for a model trained in fp32), bit-exact. The file is a plain ``.npz`` archive plus a JSON
header, read with ``allow_pickle=False``: loading it never executes code.

``load_sparse(path)`` returns exactly ``materialize(state_dict)`` of what was saved: the state_dict
with every masked weight replaced by ``W ⊙ T``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
from torch import nn

from .masks import WEIGHT_MASK

MASK_SUFFIX = "." + WEIGHT_MASK
HEADER = "__header__"
FORMAT = "intrain-sparse-1"
SPARSE_BELOW_DENSITY = 0.5  # a non-masked floating tensor is stored sparse below this non-zero fraction

StateDict = Mapping[str, torch.Tensor]


def _as_state_dict(state_dict_or_model: StateDict | nn.Module) -> dict[str, torch.Tensor]:
    if isinstance(state_dict_or_model, nn.Module):
        return dict(state_dict_or_model.state_dict())
    return dict(state_dict_or_model)


def _mask_of(state: StateDict, key: str) -> torch.Tensor | None:
    if not key.endswith(".weight"):
        return None
    mask = state.get(key[: -len(".weight")] + MASK_SUFFIX)
    return mask if mask is not None and mask.shape == state[key].shape else None


def materialize(state_dict_or_model: StateDict | nn.Module) -> dict[str, torch.Tensor]:
    """The state_dict with each masked weight replaced by the weight the forward pass uses, ``W ⊙ T``."""
    state = _as_state_dict(state_dict_or_model)
    result = {}
    for key, value in state.items():
        mask = _mask_of(state, key)
        result[key] = value.detach().cpu() * mask.cpu() if mask is not None else value.detach().cpu()
    return result


def _encode(value: torch.Tensor, positions: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """A bitmask of ``positions`` (bool, same shape) and the values there, flattened in C order."""
    flat = positions.reshape(-1).numpy()
    return np.packbits(flat), value.reshape(-1).numpy()[flat]


def _decode(bits: np.ndarray, values: np.ndarray, shape: list[int], dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    count = int(np.prod(shape, dtype=np.int64))
    positions = np.unpackbits(bits, count=count).astype(bool)
    dense = np.zeros(count, dtype=dtype)
    dense[positions] = values
    return dense.reshape(shape), positions.reshape(shape)


def _is_sparse(value: torch.Tensor) -> bool:
    return (value.is_floating_point() and value.numel() > 0
            and int(value.count_nonzero()) < SPARSE_BELOW_DENSITY * value.numel())


def save_sparse(state_dict_or_model: StateDict | nn.Module, path: str | Path) -> int:
    """Write the model (or state_dict) in the sparse form above to ``path``; return the file's bytes."""
    state = materialize(state_dict_or_model)
    arrays: dict[str, np.ndarray] = {}
    header: dict[str, dict] = {}
    masked_keys = {k for k in state if _mask_of(state, k) is not None}
    for i, (key, value) in enumerate(state.items()):
        entry = {"key": key, "shape": list(value.shape), "dtype": str(value.numpy().dtype)}
        if key in masked_keys or (key.endswith(MASK_SUFFIX) and key[: -len(MASK_SUFFIX)] + ".weight" in masked_keys):
            if key.endswith(MASK_SUFFIX):
                entry["form"] = "mask-of"  # rebuilt from its weight's bitmask
            else:
                entry["form"] = "masked"
                entry["mask_dtype"] = str(state[key[: -len(".weight")] + MASK_SUFFIX].numpy().dtype)
                arrays[f"{i}.bits"], arrays[f"{i}.values"] = _encode(value, _mask_of(state, key).bool())
        elif _is_sparse(value):
            entry["form"] = "sparse"
            arrays[f"{i}.bits"], arrays[f"{i}.values"] = _encode(value, value != 0)
        else:
            entry["form"] = "dense"
            arrays[f"{i}.values"] = value.numpy()
        header[str(i)] = entry
    arrays[HEADER] = np.frombuffer(json.dumps({"format": FORMAT, "tensors": header}).encode(), dtype=np.uint8)
    path = Path(path)
    with path.open("wb") as f:  # a file object: numpy would otherwise append ".npz" to the name
        np.savez_compressed(f, **arrays)
    return path.stat().st_size


def load_sparse(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a file written by :func:`save_sparse` back into a dense state_dict (no pickle involved)."""
    with np.load(Path(path), allow_pickle=False) as archive:
        header = json.loads(archive[HEADER].tobytes().decode()) if HEADER in archive.files else {}
        if header.get("format") != FORMAT:
            raise ValueError(f"{path} is not an intrain sparse file (format {header.get('format')!r})")
        state: dict[str, torch.Tensor] = {}
        masks: dict[str, torch.Tensor] = {}
        for index, entry in header["tensors"].items():
            key, shape, dtype = entry["key"], entry["shape"], np.dtype(entry["dtype"])
            if entry["form"] == "dense":
                state[key] = torch.from_numpy(archive[f"{index}.values"].copy()).reshape(shape)
            elif entry["form"] == "mask-of":
                state[key] = torch.empty(0)  # placeholder keeps the key order; filled below
            else:
                dense, positions = _decode(archive[f"{index}.bits"], archive[f"{index}.values"], shape, dtype)
                state[key] = torch.from_numpy(dense)
                if entry["form"] == "masked":
                    mask_key = key[: -len(".weight")] + MASK_SUFFIX
                    masks[mask_key] = torch.from_numpy(positions.astype(np.dtype(entry["mask_dtype"])))
    state.update(masks)
    return state


def dense_file_bytes(state_dict_or_model: StateDict | nn.Module) -> int:
    """Bytes of the plain dense file of the same model (``torch.save`` of the materialised state_dict
    without mask buffers): what the sparse file is compared with."""
    state = {k: v for k, v in materialize(state_dict_or_model).items() if not k.endswith(MASK_SUFFIX)}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getbuffer().nbytes
