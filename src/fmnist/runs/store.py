"""Save and load trained models without ever unpickling anything from disk.

A run folder holds `model.json` (what the model is, its class names, the package versions that
wrote it, the caller's metadata such as metrics) and exactly one weights file:

* `model.safetensors` for estimators that follow the torch state protocol
  (`state_tensors()`, `state_meta()`, classmethod `from_state(meta, tensors)`); their
  `state_meta()` is kept in `model.json` under `estimator.state_meta`;
* `model.skops` for everything else (scikit-learn pipelines and fmnist's own classical classes).
  Loading computes the types the file would create and trusts only those from scikit-learn,
  NumPy, SciPy and fmnist; anything else is refused before a single object is built.

`model.json` is written last, so a folder whose `model.json` exists is a complete run. The
SHA-256 of the weights is recorded there, so a truncated or swapped weights file is reported as
such instead of failing somewhere inside a decoder.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from fmnist.data.dataset import CLASS_NAMES
from fmnist.data.idx import atomic_write_bytes
from fmnist.errors import FmnistError

FORMAT_VERSION = 1
META_FILE = "model.json"
TORCH_FILE = "model.safetensors"
SKOPS_FILE = "model.skops"

# Top-level packages whose types a skops file may instantiate.
TRUSTED_PACKAGES = ("sklearn", "numpy", "scipy", "fmnist")
# What a model expects as input; every model scales its own pixels inside (DESIGN.md).
PREPROCESSING = {
    "input": "raw uint8 pixels [N, H, W], garment bright on a black (0) background",
    "scaling": "inside the model",
    "photos": "fmnist.images.photo.prepare_photo (the Fashion-MNIST paper's recipe, section 2)",
}
# Packages whose versions are recorded with every run (the ones that shape a model's output).
_RECORDED_PACKAGES = ("fmnist", "numpy", "scipy", "scikit-learn", "torch", "skops",
                      "safetensors", "pillow")


class StoreError(FmnistError):
    """A run folder cannot be written or read back."""


@dataclass
class LoadedRun:
    """A fitted estimator read back from a run folder, with its `model.json` contents."""

    model: Any
    meta: dict
    path: Path
    class_names: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.class_names:
            self.class_names = tuple(self.meta.get("class_names") or ())


def uses_torch_protocol(model: Any) -> bool:
    """Whether `model` saves its own tensors (see the module docstring) instead of via skops."""
    return all(callable(getattr(model, name, None))
               for name in ("state_tensors", "state_meta", "from_state"))


def save(model: Any, run_dir: Path | str, meta: dict | None = None) -> Path:
    """Write a fitted `model` and `meta` into `run_dir` (created if needed); returns the folder.

    `meta` may carry anything JSON-serialisable (model name, params, metrics, dataset checksum,
    `class_names`, `image_shape`); the store adds the format version, class names, the weights'
    file name and digest, the estimator class and package versions.
    """
    run_dir = Path(run_dir)
    meta = dict(meta or {})
    if not hasattr(model, "classes_"):
        raise StoreError(f"cannot save {type(model).__name__}: it is not fitted (no classes_)")
    estimator: dict[str, Any] = {"class": _class_path(type(model))}
    if uses_torch_protocol(model):
        weights_name, weights_format = TORCH_FILE, "safetensors"
        payload = _torch_payload(model)
        estimator["state_meta"] = _jsonable(model.state_meta())
    else:
        weights_name, weights_format = SKOPS_FILE, "skops"
        payload = _skops_payload(model)
    classes = [_jsonable(c) for c in np.asarray(model.classes_).tolist()]
    info = {
        "preprocessing": PREPROCESSING,
        **_jsonable(meta),
        "format_version": FORMAT_VERSION,
        "class_names": list(meta.get("class_names") or _default_class_names(classes)),
        "classes": classes,
        "estimator": estimator,
        "weights": {"file": weights_name, "format": weights_format,
                    "sha256": hashlib.sha256(payload).hexdigest(), "bytes": len(payload)},
        "versions": package_versions(),
        "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if len(info["class_names"]) != len(classes):
        raise StoreError(f"{len(info['class_names'])} class names for {len(classes)} classes")
    try:
        atomic_write_bytes(run_dir / weights_name, payload)
        atomic_write_bytes(run_dir / META_FILE,
                           (json.dumps(info, indent=2, allow_nan=False) + "\n").encode())
    except OSError as exc:
        raise StoreError(f"{run_dir}: cannot write the run ({exc.strerror or exc})") from exc
    return run_dir


def load(run_dir: Path | str) -> LoadedRun:
    """Read a run folder written by `save`; every failure is a `StoreError` saying what broke."""
    run_dir = Path(run_dir)
    if run_dir.is_file() and run_dir.name == META_FILE:
        run_dir = run_dir.parent
    meta = read_meta(run_dir)
    weights = meta.get("weights")
    if not isinstance(weights, dict) or weights.get("format") not in ("safetensors", "skops"):
        raise StoreError(f"{run_dir / META_FILE}: no valid 'weights' entry; the file is damaged")
    path = run_dir / str(weights.get("file"))
    if path.parent != run_dir:
        raise StoreError(f"{run_dir / META_FILE}: weights file name {weights.get('file')!r} "
                         "points outside the run folder")
    try:
        payload = path.read_bytes()
    except OSError as exc:
        raise StoreError(f"{path}: cannot read the model weights ({exc.strerror or exc}); "
                         "the run is incomplete — train it again") from exc
    digest = hashlib.sha256(payload).hexdigest()
    if digest != weights.get("sha256"):
        raise StoreError(f"{path}: the weights are corrupt or were replaced (SHA-256 {digest}, "
                         f"model.json expects {weights.get('sha256')}); train the model again")
    if weights["format"] == "safetensors":
        model = _load_torch(payload, meta, path)
    else:
        model = _load_skops(payload, path)
    return LoadedRun(model=model, meta=meta, path=run_dir)


def read_meta(run_dir: Path) -> dict:
    """`model.json` of a run, checked for a format version this fmnist can read."""
    meta_path = Path(run_dir) / META_FILE
    if not Path(run_dir).is_dir():
        raise StoreError(f"{run_dir}: no such run folder (expected a folder holding {META_FILE})")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StoreError(f"{run_dir}: not a saved run — {META_FILE} is missing "
                         "(the training may have been interrupted)") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise StoreError(f"{meta_path}: cannot be read as JSON ({exc}); "
                         "the file is damaged") from exc
    if not isinstance(meta, dict):
        raise StoreError(f"{meta_path}: expected a JSON object, found {type(meta).__name__}")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        written = (f"format version {version!r}" if version is not None
                   else "no format version")
        by = meta.get("versions", {}).get("fmnist", "an unknown fmnist")
        raise StoreError(
            f"{meta_path}: written with {written} (by fmnist {by}); this fmnist "
            f"({_version('fmnist')}) reads format version {FORMAT_VERSION} only — use the "
            "fmnist version that wrote it, or train the model again")
    return meta


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages that determine what a saved model computes."""
    versions = {"python": platform.python_version()}
    versions.update({name: v for name in _RECORDED_PACKAGES if (v := _version(name))})
    return versions


def trusted_skops_types(untrusted: list[str], source: str = "<skops>") -> list[str]:
    """The subset of `untrusted` (from `skops.io.get_untrusted_types`) that fmnist accepts.

    Raises `StoreError` naming every type from outside scikit-learn, NumPy, SciPy and fmnist:
    such a file was not written by fmnist, and loading it could run foreign code.
    """
    foreign = [name for name in untrusted if name.split(".", 1)[0] not in TRUSTED_PACKAGES]
    if foreign:
        raise StoreError(
            f"{source}: refusing to load — it contains types from outside "
            f"{', '.join(TRUSTED_PACKAGES)}: {', '.join(sorted(foreign))}. "
            "Only load model files you trust; fmnist never writes these.")
    return list(untrusted)


def _torch_payload(model: Any) -> bytes:
    from safetensors.torch import save as save_tensors

    tensors = model.state_tensors()
    # safetensors wants contiguous CPU tensors that share no storage.
    tensors = {name: t.detach().to("cpu").contiguous().clone() for name, t in tensors.items()}
    return save_tensors(tensors)


def _load_torch(payload: bytes, meta: dict, path: Path) -> Any:
    from safetensors import SafetensorError
    from safetensors.torch import load as load_tensors

    estimator = meta.get("estimator") or {}
    cls = _resolve_fmnist_class(str(estimator.get("class", "")), path)
    if not callable(getattr(cls, "from_state", None)):
        raise StoreError(f"{path}: {estimator.get('class')} cannot be restored from tensors "
                         "(it has no from_state); this fmnist version cannot read the run")
    try:
        tensors = load_tensors(payload)
    except (SafetensorError, ValueError) as exc:
        raise StoreError(f"{path}: not a valid safetensors file ({exc})") from exc
    try:
        return cls.from_state(estimator.get("state_meta") or {}, tensors)
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise StoreError(f"{path}: the weights do not fit {estimator.get('class')} ({exc}); the "
                         "run was written by an incompatible fmnist version") from exc


def _skops_payload(model: Any) -> bytes:
    import skops.io as sio

    try:
        return sio.dumps(model)
    except (TypeError, ValueError, NotImplementedError) as exc:
        raise StoreError(f"cannot save {type(model).__name__} with skops ({exc})") from exc


def _load_skops(payload: bytes, path: Path) -> Any:
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(data=payload)
    except Exception as exc:  # skops raises zipfile/JSON/key errors on damaged files
        raise StoreError(f"{path}: not a valid skops file ({type(exc).__name__}: {exc})") from exc
    trusted = trusted_skops_types(untrusted, str(path))
    try:
        return sio.loads(payload, trusted=trusted)
    except Exception as exc:  # any failure inside skops means the file does not match this code
        raise StoreError(f"{path}: cannot rebuild the model ({type(exc).__name__}: {exc}); the "
                         "run was written by an incompatible package version") from exc


def _resolve_fmnist_class(dotted: str, path: Path) -> type:
    """Import a class named in model.json, but only from fmnist's own modules."""
    module_name, _, name = dotted.rpartition(".")
    if not module_name.startswith("fmnist.") or not name.isidentifier():
        raise StoreError(f"{path}: estimator class {dotted!r} is not part of fmnist; refusing it")
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise StoreError(f"{path}: estimator class {dotted!r} does not exist in this fmnist "
                         "version; use the version that wrote the run") from exc
    if not isinstance(cls, type):
        raise StoreError(f"{path}: {dotted!r} is not a class")
    return cls


def _class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _default_class_names(classes: list) -> list[str]:
    """Fashion-MNIST's names when the classes are its labels 0..9, else the classes as text."""
    if classes == list(range(len(CLASS_NAMES))):
        return list(CLASS_NAMES)
    return [str(c) for c in classes]


def _jsonable(value: Any) -> Any:
    """`value` with NumPy scalars/arrays and tuples turned into plain JSON types."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise StoreError(f"cannot store {type(value).__name__} value {value!r} in model.json")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
