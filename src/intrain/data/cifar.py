"""Reading the CIFAR-10/100 "python version" files through a restricted unpickler.

The files are pickles, and unpickling an untrusted pickle can run arbitrary code. The
:class:`SafeUnpickler` below resolves only the handful of globals a CIFAR batch needs (numpy's
array reconstruction) and refuses every other global with ``DataError`` before anything runs.
"""

from __future__ import annotations

import builtins
import codecs
import pickle
from pathlib import Path

import numpy as np

from intrain.errors import DataError

try:  # numpy >= 2
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray  # type: ignore[no-redef]
    from numpy.core import numeric as _numeric  # type: ignore[no-redef]

CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles of ``bytes`` use it, limited to latin-1."""
    if codecs.lookup(encoding).name != "iso8859-1":
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1")


def _allowed_globals() -> dict[tuple[str, str], object]:
    """The only globals a CIFAR pickle may reference, keyed by (module, name)."""
    allowed: dict[tuple[str, str], object] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,  # bytes in protocol-2 pickles written by Python 3
    }
    for module in ("numpy.core", "numpy._core"):  # numpy 1.x and 2.x spell the module differently
        allowed[(f"{module}.multiarray", "_reconstruct")] = _multiarray._reconstruct
        allowed[(f"{module}.numeric", "_frombuffer")] = _numeric._frombuffer  # protocol 5
    for name in ("dict", "list", "bytes", "str", "int"):
        allowed[("builtins", name)] = getattr(builtins, name)
    return allowed


_ALLOWED = _allowed_globals()


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that only resolves the globals in ``_ALLOWED``; ``source`` names the file."""

    def __init__(self, file, source: str) -> None:
        super().__init__(file, encoding="bytes")
        self.source = source

    def find_class(self, module: str, name: str) -> object:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise DataError(
                f"{self.source} refers to {module}.{name}, which a CIFAR file never does; "
                f"refusing to load it (get the original files from {CIFAR_URL})"
            ) from None


def load_pickle(path: Path) -> object:
    """Unpickle ``path`` with :class:`SafeUnpickler`; any failure becomes ``DataError``."""
    try:
        with open(path, "rb") as handle:
            return SafeUnpickler(handle, str(path)).load()
    except DataError:
        raise
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    except Exception as exc:  # truncated or malformed pickles raise many different types
        raise DataError(
            f"{path} is not a valid CIFAR pickle ({type(exc).__name__}: {exc}); "
            f"download it again from {CIFAR_URL}"
        ) from None


def _field(batch: dict, key: str, path: Path) -> object:
    """``batch[key]`` whether the pickle stored the key as bytes (the originals) or str."""
    for candidate in (key.encode(), key):
        if candidate in batch:
            return batch[candidate]
    raise DataError(f"{path} has no {key!r} entry; it is not a CIFAR python-version batch")


def read_cifar_batch(path: Path, label_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR batch file into (uint8 images [N, 3, 32, 32], int64 labels [N])."""
    batch = load_pickle(path)
    if not isinstance(batch, dict):
        raise DataError(f"{path} does not hold a dict; it is not a CIFAR python-version batch")
    data = _field(batch, "data", path)
    labels = np.asarray(_field(batch, label_key, path))
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
            and data.shape[1] == 3 * 32 * 32):
        raise DataError(f"{path} has malformed image data; expected uint8 of shape [N, 3072]")
    if labels.shape != (data.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{path} has {labels.shape} labels for {data.shape[0]} images")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(f"{path} has labels outside 0..{num_classes - 1}")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)
