"""Read `.npy` arrays from untrusted bytes: the header is checked before any array is built.

`numpy.load` trusts the header: a 100-byte file claiming shape (78 GB) makes it allocate first
and fail later (MemoryError), and `allow_pickle=True` would run code. Here the header is
parsed with NumPy's own reader, the dtype must be plain numbers (no objects, so no pickle), and
shape × item size must equal the bytes that follow — so the array is a view of data already
read under a size cap, never a promise.
"""

from __future__ import annotations

import io
import math
import tokenize

import numpy as np

from fmnist.errors import DataError

_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0,
                   (2, 0): np.lib.format.read_array_header_2_0}


def parse_npy(data: bytes, source: str) -> np.ndarray:
    """The array stored in `.npy` bytes (numbers or booleans only), as a read-only view."""
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        reader = _HEADER_READERS.get(version)
        if reader is None:
            raise ValueError(f"format version {version[0]}.{version[1]} is not supported")
        shape, fortran, dtype = reader(stream)
    # What NumPy's header reader raises on hostile bytes: ValueError, EOFError, SyntaxError
    # (ast.literal_eval) and TypeError, and tokenize.TokenError from its header filter on an
    # unclosed bracket (found by fuzzing: it escaped and ended a whole `fmnist predict` batch).
    except (ValueError, EOFError, SyntaxError, TypeError, tokenize.TokenError) as exc:
        text = str(exc.args[0]) if isinstance(exc, tokenize.TokenError) else str(exc)
        reason = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        raise DataError(f"{source}: not a readable .npy array ({reason})") from None
    if dtype.hasobject or dtype.kind not in "biuf":
        raise DataError(f"{source}: holds {dtype} values; only numeric pixels are read "
                        "(object arrays would need pickle)")
    expected = math.prod(shape) * dtype.itemsize  # Python ints: a huge shape cannot overflow
    offset = stream.tell()
    if len(data) - offset != expected:
        raise DataError(f"{source}: the header claims shape {tuple(shape)} ({expected:,} bytes) "
                        f"but the file holds {len(data) - offset:,}; truncated or not an "
                        ".npy file")
    array = np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=offset)
    return array.reshape(shape, order="F" if fortran else "C")
