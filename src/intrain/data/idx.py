"""Reading and writing IDX files, the format of MNIST and Fashion-MNIST (optionally gzipped).

An IDX file is: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions,
one big-endian uint32 per dimension, then the values in row-major order.
"""

from __future__ import annotations

import gzip
import io
import struct
import zlib
from pathlib import Path

import numpy as np

from intrain.errors import DataError

_UBYTE = 0x08


def decompress(raw: bytes, name: str) -> bytes:
    """Return ``raw`` gunzipped when ``name`` ends in ``.gz``, unchanged otherwise."""
    if not name.endswith(".gz"):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{name} is not a valid gzip file ({exc}); download it again") from None


def parse_idx(data: bytes, name: str, ndim: int) -> np.ndarray:
    """Decode uncompressed IDX bytes into a uint8 array with ``ndim`` dimensions.

    ``name`` is only used in error messages. Raises ``DataError`` for a bad magic number, an
    unexpected number of dimensions or a size that does not match the header.
    """
    if len(data) < 4:
        raise DataError(f"{name} is truncated ({len(data)} bytes); download it again")
    zero, dtype, dims = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != _UBYTE or dims != ndim:
        raise DataError(
            f"{name} has bad IDX magic number 0x{data[:4].hex()} "
            f"(expected 0x0000{_UBYTE:02x}{ndim:02x}); it is not this file or it is corrupt"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name} is truncated inside its header; download it again")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "longer than its header says"
        raise DataError(
            f"{name} is {what} ({len(data)} bytes, expected {expected} for shape {shape}); "
            "download it again"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read an IDX file (raw or ``.gz``) from ``path``; see :func:`parse_idx`."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    return parse_idx(decompress(raw, str(path)), str(path), ndim)


def encode_idx(array: np.ndarray) -> bytes:
    """Encode a uint8 array as IDX bytes (uncompressed)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(f">HBB{array.ndim}I", 0, _UBYTE, array.ndim, *array.shape)
    return header + array.tobytes()


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write ``array`` as IDX; a ``.gz`` path is gzipped reproducibly (mtime 0, no name)."""
    data = encode_idx(array)
    path = Path(path)
    if path.name.endswith(".gz"):
        buffer = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as gz:
            gz.write(data)
        data = buffer.getvalue()
    path.write_bytes(data)
