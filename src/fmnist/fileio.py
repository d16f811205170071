"""Atomic file writes — the one helper every writer of results, runs, reports and caches uses —
and the one conversion of values to plain JSON (`json_safe`).

A reader (another command, a browser, a second `fmnist compare` in the same folder) must never
see half a file, and two writers of the same file must never share a temporary name — a fixed
`name.tmp` lets one process rename the other's half-written file into place. So each write goes
to a uniquely named temporary file in the target's own folder (same file system: the rename is
atomic) and is renamed over the target; a failed write removes its temporary file.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def json_safe(value: Any, other: Callable[[Any], Any] = str) -> Any:
    """`value` as plain JSON types: dicts (keys as text), lists (tuples too), NumPy arrays and
    scalars as lists and numbers, paths as text. Anything else goes through `other`: its text
    by default (a record of settings), or a caller's function that refuses it (a model file
    must not hold a value it cannot read back) or keeps it."""
    if isinstance(value, dict):
        return {str(k): json_safe(v, other) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v, other) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist(), other)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return other(value)


def atomic_write_bytes(path: str | Path, payload: bytes) -> Path:
    """Write `payload` to a unique temporary file beside `path`, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """`atomic_write_bytes` of UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, payload: Any) -> Path:
    """`atomic_write_bytes` of indented JSON (the payload must already be JSON values)."""
    return atomic_write_bytes(path, json.dumps(payload, indent=2).encode("utf-8"))


def atomic_copy_tree(source: str | Path, target: str | Path,
                     ignore: Any = None) -> Path:
    """Replace the folder `target` by a copy of `source`.

    The copy is built in a unique temporary folder beside `target`, then swapped in by two
    renames (old target aside, copy in); a concurrent writer doing the same makes one of the
    renames fail, which is retried a few times rather than mixing two copies' files.
    """
    source, target = Path(source), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        shutil.copytree(source, staging, ignore=ignore, dirs_exist_ok=True)
        for _ in range(5):
            old = None
            if target.exists():
                old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.",
                                            suffix=".old"))
                os.replace(target, old)  # an empty folder may be replaced by rename
            try:
                os.rename(staging, target)
            except OSError:  # another writer put its copy in between: set it aside, retry
                continue
            finally:
                if old is not None:
                    shutil.rmtree(old, ignore_errors=True)
            return target
        raise OSError(f"could not replace {target}: other processes keep writing it")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
