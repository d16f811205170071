"""Read files that someone else may have written, with every size bounded before allocation.

A run folder, a data folder or an input array may come from anywhere: a name can be a symlink
to `/dev/zero`, a FIFO that never ends, or a 50 GB file. `read_bounded` reads only regular
files, checks the size the file system reports before reading, and never reads more than the
cap (a file that grows while being read is caught too). `load_json` adds what JSON needs on
top: a cap on nesting (Python's parser recurses, so 100,000 brackets would raise
`RecursionError`) and no `NaN`/`Infinity`, which are not JSON.

Every failure is one line naming the file, raised as the caller's `FmnistError` subclass.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from pathlib import Path
from typing import Any

import numpy as np

from fmnist.errors import FmnistError

# Nesting deeper than this is refused before parsing; fmnist's own files nest at most ~8 deep.
MAX_JSON_DEPTH = 64
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_CHUNK = 4 << 20


def read_bounded(path: Path | str, max_bytes: int, *, what: str = "file",
                 error: type[FmnistError] = FmnistError) -> bytes:
    """The bytes of the regular file `path`, refused without reading when over `max_bytes`."""
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc.strerror or exc})") from exc
    _check_regular(path, info, max_bytes, what, error)
    try:  # O_NONBLOCK: a file swapped for a FIFO after the check cannot hang the open
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc.strerror or exc})") from exc
    with os.fdopen(fd, "rb") as handle:
        _check_regular(path, os.fstat(handle.fileno()), max_bytes, what, error)
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise error(f"{path}: the {what} grew past {max_bytes:,} bytes while being read")
    return data


def load_json(path: Path | str, max_bytes: int, *, what: str = "JSON file",
              error: type[FmnistError] = FmnistError, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse a JSON file of at most `max_bytes` and `max_depth` nested arrays/objects."""
    return parse_json(read_bounded(path, max_bytes, what=what, error=error), str(path),
                      what=what, error=error, max_depth=max_depth)


def parse_json(data: bytes, source: str, *, what: str = "JSON file",
               error: type[FmnistError] = FmnistError, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """`json.loads` for untrusted bytes: depth checked first, NaN/Infinity refused."""
    depth = json_depth(data)
    if depth > max_depth:
        raise error(f"{source}: the {what} nests {depth} levels deep (at most {max_depth}); "
                    "it was not written by fmnist")
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_no_constant,
                          parse_float=_finite_float)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise error(f"{source}: the {what} cannot be read as JSON ({reason}); "
                    "the file is damaged") from None


def json_depth(data: bytes) -> int:
    """The deepest nesting of `[`/`{` in JSON text (brackets inside strings do not count).

    Vectorised in chunks of 4 MiB, so a 64 MiB file costs milliseconds and little memory.
    """
    skeleton = np.frombuffer(_JSON_STRING.sub(b'""', data), dtype=np.uint8)
    depth = deepest = 0
    for start in range(0, len(skeleton), _CHUNK):
        chunk = skeleton[start:start + _CHUNK]
        step = ((chunk == ord("[")) | (chunk == ord("{"))).astype(np.int32) \
            - ((chunk == ord("]")) | (chunk == ord("}")))
        levels = np.cumsum(step, dtype=np.int64) + depth
        deepest = max(deepest, int(levels.max(initial=depth)))
        depth = int(levels[-1])
    return deepest


def _check_regular(path: Path, info: os.stat_result, max_bytes: int, what: str,
                   error: type[FmnistError]) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{path}: the {what} is not a regular file (a device, FIFO or folder); "
                    "refusing to read it")
    if info.st_size > max_bytes:
        raise error(f"{path}: the {what} is {info.st_size:,} bytes, more than the "
                    f"{max_bytes:,} allowed; refusing to read it")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    """A JSON number as a float, refusing literals that overflow to ±inf (`1e999`): NaN and
    Infinity are refused by name above, and an overflowing literal is the same value."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is out of range for a number")
    return value
