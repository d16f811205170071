"""The schema of `model.json`, checked before anything is built from it.

A run folder may come from someone else, so every field fmnist acts on is checked for type and
range first: `image_shape` decides how much memory a prediction allocates, `class_names` are
indexed by the model's outputs and printed to the terminal, `weights` names the file to read
and its size. Hand-written rather than `jsonschema`: the rules are few, cross-field (as many
class names as classes) and the messages must name the field and say what is wrong in one line.

Fields fmnist never acts on (free-form metadata such as `dataset` or `versions`) may hold any
JSON; their size and nesting are bounded when the file is read (`fmnist.files`).
"""

from __future__ import annotations

import math
import re
from typing import Any

from fmnist.errors import FmnistError

MAX_CLASSES = 1000
MAX_NAME_CHARS = 200
# The largest image side a model may declare; --size and the photo recipe stay far below it.
MAX_IMAGE_SIDE = 512
MAX_SEED = 2**32 - 1  # NumPy's legacy seeding range
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")


class MetaError(FmnistError):
    """A `model.json` field has the wrong type or an impossible value."""


def check_model_meta(meta: Any, source: str, weights_files: dict[str, str],
                     max_weights_bytes: int) -> dict:
    """`meta` (a parsed model.json of the current format version) if every field is sane.

    `weights_files` maps each allowed weights file name to its format.
    """
    meta = _object(meta, source, "the file")
    names = check_class_names(meta.get("class_names"), source)
    classes = _list(meta.get("classes"), source, "classes")
    if len(classes) != len(names):
        _fail(source, "classes", f"has {len(classes)} entries for {len(names)} class names")
    if any(not _is_int(c) and not isinstance(c, str) for c in classes) \
            or len(set(map(repr, classes))) != len(classes):
        _fail(source, "classes", "must be distinct integers or strings")
    weights = _object(meta.get("weights"), source, "weights")
    file = weights.get("file")
    if not isinstance(file, str) or weights_files.get(file) != weights.get("format"):
        _fail(source, "weights", f"names file {weights.get('file')!r} in format "
              f"{weights.get('format')!r}; expected one of {sorted(weights_files)}")
    if not isinstance(weights.get("sha256"), str) or not _SHA256.fullmatch(weights["sha256"]):
        _fail(source, "weights.sha256", "must be 64 lowercase hex digits")
    _int(weights.get("bytes"), source, "weights.bytes", 1, max_weights_bytes)
    estimator = _object(meta.get("estimator"), source, "estimator")
    if not isinstance(estimator.get("class"), str) or len(estimator["class"]) > MAX_NAME_CHARS \
            or not _DOTTED.fullmatch(estimator["class"]):
        _fail(source, "estimator.class", "must be a dotted class name")
    if "state_meta" in estimator or weights["format"] == "safetensors":
        _object(estimator.get("state_meta"), source, "estimator.state_meta")
    if meta.get("image_shape") is not None:
        image_shape(meta["image_shape"], source)
    _optional(meta, source)
    return meta


def image_shape(value: Any, source: str, field: str = "image_shape") -> tuple[int, int]:
    """`[height, width]`: two integers in 1..MAX_IMAGE_SIDE."""
    shape = _list(value, source, field)
    if len(shape) != 2:
        _fail(source, field, f"must be [height, width], got {len(shape)} numbers")
    return (_int(shape[0], source, field, 1, MAX_IMAGE_SIDE),
            _int(shape[1], source, field, 1, MAX_IMAGE_SIDE))


def check_class_names(value: Any, source: str) -> list[str]:
    """2..MAX_CLASSES unique, non-empty, printable names (what `save` will accept): a
    training preflight can call this before fitting, so a bad folder name never costs a run."""
    names = _list(value, source, "class_names")
    if not 2 <= len(names) <= MAX_CLASSES:
        _fail(source, "class_names", f"must list 2 to {MAX_CLASSES} names, got {len(names)}")
    for name in names:
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_CHARS \
                or _CONTROL.search(name):
            _fail(source, "class_names", f"holds {_show(name)}; each must be a non-empty "
                  f"string of at most {MAX_NAME_CHARS} printable characters")
    if len(set(names)) != len(names):
        _fail(source, "class_names", "holds the same name twice")
    return names


def _optional(meta: dict, source: str) -> None:
    """Fields that commands read when present: `fmnist evaluate`, `serve`'s /info."""
    for key in ("model", "family", "saved_at"):
        if meta.get(key) is not None and (not isinstance(meta[key], str)
                                          or len(meta[key]) > MAX_NAME_CHARS):
            _fail(source, key, f"must be a string of at most {MAX_NAME_CHARS} characters")
    if meta.get("seed") is not None:
        _int(meta["seed"], source, "seed", 0, MAX_SEED)
    if meta.get("n_parameters") is not None:
        _int(meta["n_parameters"], source, "n_parameters", 0, 2**53)
    for key in ("params", "metrics"):
        if meta.get(key) is not None:
            _object(meta[key], source, key)
    fit = (meta.get("metrics") or {}).get("fit_seconds")
    if fit is not None and not (_is_number(fit) and fit >= 0):
        _fail(source, "metrics.fit_seconds", "must be a number of seconds")


def _object(value: Any, source: str, field: str) -> dict:
    if not isinstance(value, dict):
        _fail(source, field, f"must be a JSON object, found {_kind(value)}")
    return value


def _list(value: Any, source: str, field: str) -> list:
    if not isinstance(value, list):
        _fail(source, field, f"must be a list, found {_kind(value)}")
    return value


def _int(value: Any, source: str, field: str, low: int, high: int) -> int:
    if not _is_int(value) or not low <= value <= high:
        _fail(source, field, f"must be an integer from {low:,} to {high:,}, found {_show(value)}")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), "a number")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _fail(source: str, field: str, problem: str) -> None:
    raise MetaError(f"{source}: field '{field}' {problem}")
