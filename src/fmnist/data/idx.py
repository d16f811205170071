"""Read and write IDX files (the format of the official MNIST / Fashion-MNIST files).

Every check names the file, so a truncated download or a wrong file says exactly what broke.
Sizes are bounded before anything is allocated: the file itself (`MAX_IDX_BYTES`), what a
gzip member inflates to (a 1 MB bomb can claim gigabytes), and the shape a header promises.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from fmnist.errors import DataError
from fmnist.fileio import atomic_write_bytes
from fmnist.files import read_bounded

# The largest IDX file (after gunzip) fmnist reads; the official training images are 47 MB.
MAX_IDX_BYTES = 1 << 30

# IDX type codes → numpy big-endian dtypes.
_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("="): code for code, dt in _DTYPES.items()}
# The longest IDX header: magic, then a 4-byte size for each of up to 255 dimensions.
_MAX_HEADER = 4 + 4 * 255


def read_bytes(path: Path, max_bytes: int = MAX_IDX_BYTES) -> bytes:
    """The file's content, gunzipped when the name ends in .gz; corrupt gzip is a DataError.

    Only regular files of at most `max_bytes`, inflating to at most `max_bytes`.
    """
    path = Path(path)
    raw = read_bounded(path, max_bytes, what="data file", error=DataError)
    if path.suffix != ".gz":
        return raw
    return gunzip_idx(raw, str(path), max_bytes)


def gunzip_idx(raw: bytes, source: str, max_bytes: int = MAX_IDX_BYTES) -> bytes:
    """Inflate a gzipped IDX file no further than its header says it is long: the header is
    inflated first, so a 1 MB bomb behind a bad or small header is refused after a few bytes
    instead of after inflating (and holding) `max_bytes`."""
    try:
        head = zlib.decompressobj(wbits=31).decompress(raw, _MAX_HEADER)
    except zlib.error as exc:
        raise DataError(f"{source}: not a valid gzip file ({exc}); the file is truncated or "
                        "corrupt — delete it and download or reinstall the dataset") from None
    _, _, header, expected = idx_layout(head, source, complete=False)
    if expected > max_bytes:
        raise DataError(f"{source}: its IDX header announces {expected:,} bytes, more than "
                        f"{max_bytes:,}; refusing to inflate it")
    return gunzip(raw, source, expected)


def gunzip(raw: bytes, source: str, max_bytes: int = MAX_IDX_BYTES) -> bytes:
    """Inflate gzip data (every member), refusing output beyond `max_bytes` as it inflates."""
    out: list[bytes] = []
    size = 0
    try:
        while raw:
            inflater = zlib.decompressobj(wbits=31)
            chunk = inflater.decompress(raw, max_bytes + 1 - size)
            size += len(chunk)
            out.append(chunk)
            if size > max_bytes:
                raise DataError(f"{source}: decompresses to more than {max_bytes:,} bytes; "
                                "refusing to inflate it")
            if not inflater.eof:
                raise EOFError("compressed data ended before the end-of-stream marker")
            raw = inflater.unused_data
    except (EOFError, zlib.error) as exc:
        raise DataError(
            f"{source}: not a valid gzip file ({exc}); the file is truncated or corrupt — "
            "delete it and download or reinstall the dataset"
        ) from None
    return b"".join(out)


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode IDX bytes into an array, checking magic number, type code, and exact length."""
    shape, dtype, header, _ = idx_layout(data, source)
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=True)


def idx_layout(data: bytes, source: str, complete: bool = True
               ) -> tuple[tuple[int, ...], np.dtype, int, int]:
    """(shape, dtype, header bytes, total bytes) from an IDX header; with `complete`, `data`
    must be the whole file, exactly that long."""
    if len(data) < 4:
        raise DataError(f"{source}: too short to be an IDX file ({len(data)} bytes)")
    zero, type_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or type_code not in _DTYPES or ndim == 0:
        raise DataError(
            f"{source}: bad IDX magic number 0x{data[:4].hex()} "
            "(expected 0x0000, a type code and a dimension count) — not an IDX file"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{source}: IDX header truncated ({len(data)} of {header} bytes)")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = _DTYPES[type_code]
    expected = header + math.prod(shape) * dtype.itemsize  # Python ints: never overflow
    if complete and len(data) != expected:
        raise DataError(
            f"{source}: IDX size mismatch: header says shape {tuple(shape)} "
            f"({expected:,} bytes) but the file has {len(data):,} bytes — truncated or wrong file"
        )
    return shape, dtype, header, expected


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally .gz) into a native-endian numpy array."""
    return parse_idx(read_bytes(path), str(path))


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode an array as IDX bytes (header + big-endian payload)."""
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _CODES:
        raise ValueError(f"IDX cannot store dtype {array.dtype}")
    code = _CODES[native]
    header = struct.pack(">HBB", 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(_DTYPES[code], copy=False).tobytes()


def write_idx(array: np.ndarray, path: Path) -> Path:
    """Write an IDX file atomically (gzip-compressed when the name ends in .gz)."""
    path = Path(path)
    payload = idx_bytes(array)
    if path.suffix == ".gz":
        payload = gzip.compress(payload, compresslevel=6, mtime=0)
    atomic_write_bytes(path, payload)
    return path

