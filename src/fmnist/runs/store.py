"""Save and load trained models without ever unpickling anything from disk.

A run folder holds `model.json` (what the model is, its class names, the package versions that
wrote it, the caller's metadata such as metrics) and exactly one weights file:

* `model.safetensors` for estimators that follow the torch state protocol
  (`state_tensors()`, `state_meta()`, classmethod `from_state(meta, tensors)`); their
  `state_meta()` is kept in `model.json` under `estimator.state_meta`. A `TorchClassifier` run
  loads as `fmnist.models.torch_net.TrainedNet` (`TORCH_CLASSES`): the same network and
  predictions, without importing scikit-learn;
* `model.skops` for everything else (scikit-learn pipelines and fmnist's own classical classes).
  Loading lists every type and loader the file names and trusts only the exact ones fmnist's
  own models produce (`fmnist.runs.skops_types`); anything else is refused, naming the type,
  before a single object is built.

Nothing in a run folder is trusted: `model.json` is size- and depth-bounded and checked
against its schema (`fmnist.runs.meta`) before anything is allocated; the weights file must be
a regular file of exactly the size `model.json` records; and the loaded model must agree with
`model.json` (classes, image shape) and answer a blank image with one probability per class
(`fmnist.runs.model_checks`).

`model.json` is written last, so a folder whose `model.json` exists is a complete run. The
SHA-256 of the weights is recorded there, so a truncated or swapped weights file is reported as
such instead of failing somewhere inside a decoder.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import pkgutil
import platform
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from fmnist.data.dataset import default_class_names
from fmnist.errors import FmnistError
from fmnist.fileio import atomic_write_bytes, json_safe
from fmnist.files import load_json, parse_json, read_bounded
from fmnist.runs import meta as schema
from fmnist.runs.skops_types import refused, schema_types

FORMAT_VERSION = 1
META_FILE = "model.json"
TORCH_FILE = "model.safetensors"
SKOPS_FILE = "model.skops"

WEIGHTS_FILES = {TORCH_FILE: "safetensors", SKOPS_FILE: "skops"}
HISTORY_FILE = "history.json"
# The only classes a model.safetensors run may name (those with the state protocol), and the
# class whose `from_state` loads each: a TorchClassifier run loads as the trained network alone
# (`TrainedNet`, the same predictions), because importing the estimator imports scikit-learn —
# 1.2 s of a 3.45 s cold `fmnist predict` on 2 cores, for an API prediction does not use.
TORCH_CLASSES = {
    "fmnist.models.torch_estimator.TorchClassifier": "fmnist.models.torch_net.TrainedNet",
    "fmnist.models.torch_estimator.BoostedTorchClassifier":
        "fmnist.models.torch_estimator.BoostedTorchClassifier",
}
# Bounds checked before reading. model.json (parameters, metrics, per-epoch history) and
# history.json stay under 100 KB in practice; the largest weights (knn keeping 60k reduced
# images, a forest of deep trees) stay in the hundreds of MB.
MAX_META_BYTES = 8 << 20
MAX_HISTORY_BYTES = 8 << 20
MAX_WEIGHTS_BYTES = 2 << 30
# Tensors in one safetensors file: a ResNet-20 holds 65, a boosted ensemble of 50 VGGs ~4,000.
MAX_TENSORS = 10_000
# Inside a skops archive: how many members, how large and deep its schema.json may be.
MAX_SKOPS_MEMBERS = 100_000
MAX_SCHEMA_BYTES = 64 << 20
MAX_SCHEMA_DEPTH = 400
# What a model expects as input; every model scales its own pixels inside (DESIGN.md).
PREPROCESSING = {
    "input": "raw uint8 pixels [N, H, W], garment bright on a black (0) background",
    "scaling": "inside the model",
    "photos": "fmnist.images.photo.prepare_photo (pipeline v2, docs/photos.md)",
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


def is_torch_network(model: Any) -> bool:
    """A `TorchClassifier`, or AdaBoost over them: what ONNX export and serving take through
    torch (`fmnist.runs.export`), told apart without importing torch."""
    members = getattr(model, "estimators_", None) or [model]
    return all(hasattr(m, "net_") for m in members)


def save(model: Any, run_dir: Path | str, meta: dict | None = None) -> Path:
    """Write a fitted `model` and `meta` into `run_dir` (created if needed); returns the folder.

    `meta` may carry anything JSON-serialisable (model name, params, metrics, dataset checksum,
    `class_names`, `image_shape`); the store adds the format version, class names, the weights'
    file name and digest, the estimator class and package versions.

    What `load` would refuse is refused here, before anything is written: a run fmnist writes
    is always one it reads back (classes outside the skops allow-list, a bad class name).
    """
    run_dir = Path(run_dir)
    meta = dict(meta or {})
    if not hasattr(model, "classes_"):
        raise StoreError(f"cannot save {type(model).__name__}: it is not fitted (no classes_)")
    estimator: dict[str, Any] = {"class": _saved_class(type(model))}
    if uses_torch_protocol(model):
        if estimator["class"] not in TORCH_CLASSES:
            raise StoreError(f"cannot save {estimator['class']}: not one of "
                             f"{', '.join(sorted(TORCH_CLASSES))}")
        weights_name, weights_format = TORCH_FILE, "safetensors"
        payload = _torch_payload(model)
        estimator["state_meta"] = _jsonable(model.state_meta())
    else:
        weights_name, weights_format = SKOPS_FILE, "skops"
        payload = _skops_payload(model)
        check_skops_types(payload, f"cannot save {type(model).__name__}", saving=True)
    classes = [_jsonable(c) for c in np.asarray(model.classes_).tolist()]
    info = {
        "preprocessing": PREPROCESSING,
        **_jsonable(meta),
        "format_version": FORMAT_VERSION,
        "class_names": list(meta.get("class_names") or default_class_names(classes)),
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
        schema.check_model_meta(info, f"cannot save to {run_dir}", WEIGHTS_FILES,
                                MAX_WEIGHTS_BYTES)
    except schema.MetaError as exc:
        raise StoreError(str(exc)) from None
    try:
        atomic_write_bytes(run_dir / weights_name, payload)
        atomic_write_bytes(run_dir / META_FILE,
                           (json.dumps(info, indent=2, allow_nan=False) + "\n").encode())
    except OSError as exc:
        raise StoreError(f"{run_dir}: cannot write the run ({exc.strerror or exc})") from exc
    return run_dir


def load(run_dir: Path | str) -> LoadedRun:
    """Read a run folder written by `save`; every failure is a `StoreError` saying what broke.

    Checks, in order, before the next step allocates anything: model.json's size, nesting and
    schema; the weights file's type and exact size; its SHA-256; for skops, every type it
    names against the allow-list; and after loading, that the model matches model.json.
    """
    from fmnist.runs.model_checks import check_loaded

    run_dir = Path(run_dir)
    if run_dir.is_file() and run_dir.name == META_FILE:
        run_dir = run_dir.parent
    meta = read_meta(run_dir)
    weights = meta["weights"]
    path = run_dir / weights["file"]
    if not path.exists():
        raise StoreError(f"{path}: cannot read the model weights (no such file); the run is "
                         "incomplete — train it again")
    payload = read_bounded(path, weights["bytes"], what="model weights", error=StoreError)
    if len(payload) != weights["bytes"]:
        raise StoreError(f"{path}: the weights are corrupt or were replaced ({len(payload):,} "
                         f"bytes, model.json records {weights['bytes']:,}); train the model "
                         "again")
    digest = hashlib.sha256(payload).hexdigest()
    if digest != weights["sha256"]:
        raise StoreError(f"{path}: the weights are corrupt or were replaced (SHA-256 {digest}, "
                         f"model.json expects {weights['sha256']}); train the model again")
    if weights["format"] == "safetensors":
        model = _load_torch(payload, meta, path)
    else:
        model = _load_skops(payload, path)
    check_loaded(model, meta, str(run_dir / META_FILE), StoreError)
    return LoadedRun(model=model, meta=meta, path=run_dir)


def read_meta(run_dir: Path) -> dict:
    """`model.json` of a run: bounded read, a format version this fmnist reads, and every
    field fmnist acts on checked against the schema (`fmnist.runs.meta`)."""
    meta_path = Path(run_dir) / META_FILE
    if not Path(run_dir).is_dir():
        raise StoreError(f"{run_dir}: no such run folder (expected a folder holding {META_FILE})")
    if not meta_path.exists() and not meta_path.is_symlink():
        raise StoreError(f"{run_dir}: not a saved run — {META_FILE} is missing "
                         "(the training may have been interrupted)")
    meta = load_json(meta_path, MAX_META_BYTES, what="model description", error=StoreError)
    if not isinstance(meta, dict):
        raise StoreError(f"{meta_path}: expected a JSON object, found {type(meta).__name__}")
    version = meta.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:  # not True, not 1.0
        written = (f"format version {_shorten(repr(version))}" if version is not None
                   else "no format version")
        versions = meta.get("versions")
        by = versions.get("fmnist") if isinstance(versions, dict) else None
        raise StoreError(
            f"{meta_path}: written with {written} (by fmnist {_shorten(by or 'unknown')}); "
            f"this fmnist ({_version('fmnist')}) reads format version {FORMAT_VERSION} only — "
            "use the fmnist version that wrote it, or train the model again")
    try:
        return schema.check_model_meta(meta, str(meta_path), WEIGHTS_FILES, MAX_WEIGHTS_BYTES)
    except schema.MetaError as exc:
        raise StoreError(f"{exc}; the file is damaged or was not written by fmnist") from None


def read_history(run_dir: Path | str) -> list[dict] | None:
    """The per-epoch history a neural run keeps in `history.json`, or None when it has none.

    Bounded like every run-folder file; entries must be objects of numbers (what the
    training-curve figures plot), so a damaged file is one clear error, not a plotting crash.
    """
    path = Path(run_dir) / HISTORY_FILE
    if not path.exists() and not path.is_symlink():
        return None
    data = load_json(path, MAX_HISTORY_BYTES, what="training history", error=StoreError)
    history = data.get("history") if isinstance(data, dict) else data
    if history is None:
        return None
    if not isinstance(history, list) or not all(
            isinstance(row, dict) and all(isinstance(v, (int, float, type(None)))
                                          for v in row.values()) for row in history):
        raise StoreError(f"{path}: expected a list of per-epoch objects of numbers; "
                         "the file is damaged")
    return history or None


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages that determine what a saved model computes."""
    versions = {"python": platform.python_version()}
    versions.update({name: v for name in _RECORDED_PACKAGES if (v := _version(name))})
    return versions


def check_skops_types(payload: bytes, source: str = "<skops>", *, saving: bool = False
                      ) -> list[str]:
    """The types to pass as skops' `trusted`, after checking the whole archive.

    Every loader and type named anywhere in the file's schema must be on the allow-list of
    what fmnist's own models produce (`fmnist.runs.skops_types`); otherwise `StoreError` names
    each offending one. Nothing is imported or built here: this reads JSON only.
    """
    sio = skops_io()
    offending = refused(*schema_types(_skops_schema(payload, source)))
    untrusted: list[str] = []
    if not offending:
        try:
            untrusted = sio.get_untrusted_types(data=payload)
        except Exception as exc:  # skops raises zipfile/JSON/key errors on damaged files
            raise StoreError(f"{source}: not a valid skops file ({type(exc).__name__}: "
                             f"{_first_line(exc)})") from None
        offending = refused(set(), set(untrusted))
    if offending:
        shown = ", ".join(offending[:8]) + (f" and {len(offending) - 8} more"
                                            if len(offending) > 8 else "")
        if saving:
            raise StoreError(f"{source}: it holds types outside fmnist's allow-list "
                             f"(fmnist.runs.skops_types), so it could not be loaded back: "
                             f"{shown}")
        raise StoreError(f"{source}: refusing to load — it names types that fmnist's models "
                         f"never use: {shown}. fmnist did not write this file; only load "
                         "models you trust.")
    return untrusted


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
    _check_tensor_count(payload, path)
    try:
        tensors = load_tensors(payload)
    except (SafetensorError, ValueError) as exc:
        raise StoreError(f"{path}: not a valid safetensors file ({exc})") from exc
    try:
        return cls.from_state(estimator.get("state_meta") or {}, tensors)
    except Exception as exc:  # noqa: BLE001 - a crafted state_meta can fail in any way
        raise StoreError(f"{path}: the weights do not fit {estimator.get('class')} "
                         f"({type(exc).__name__}: {_first_line(exc)}); the run is damaged or "
                         "was written by an incompatible fmnist version") from None


def _check_tensor_count(payload: bytes, path: Path) -> None:
    """At most `MAX_TENSORS` tensors, counted in the safetensors header before any is built:
    400,000 one-byte tensors (a 30 MB file) once took 11 s and 1 GB to build, only to be
    refused by the network afterwards. The header is an 8-byte length and a JSON object."""
    size = int.from_bytes(payload[:8], "little") if len(payload) >= 8 else -1
    if not 2 <= size <= len(payload) - 8:
        raise StoreError(f"{path}: not a valid safetensors file (header length {size})")
    header = parse_json(payload[8:8 + size], str(path), what="safetensors header",
                        error=StoreError)
    if not isinstance(header, dict):
        raise StoreError(f"{path}: not a valid safetensors file (the header is not an object)")
    count = len(header) - ("__metadata__" in header)
    if count > MAX_TENSORS:
        raise StoreError(f"{path}: {count:,} tensors, more than any fmnist model holds "
                         f"(at most {MAX_TENSORS:,}); the run was not written by fmnist")


def skops_io() -> ModuleType:
    """`skops.io`, imported without loading torch, dask or cupy on the way.

    When skops is imported it lists scikit-learn's estimators as trusted types with
    `sklearn.utils.all_estimators()`, and that walk imports every scikit-learn *package* it
    passes, including the array-API shims in `sklearn.externals.array_api_compat` for torch,
    dask and cupy, whose import loads those libraries: `import skops.io` took 4.2 s after
    scikit-learn's own modules in a process without torch (AMD EPYC, 2 cores), 0.8 s without
    the shims — paid by every process that saves or loads a classical model. The walk keeps
    nothing from `externals`, so while skops is imported the shims not yet loaded are marked
    absent (`sys.modules[name] = None`, Python's own marker), the walk passes them by, and the
    list comes out the same (a test compares it with `all_estimators()`). fmnist passes skops
    its own allow-list anyway (`check_skops_types`). Should a later scikit-learn need a shim on
    that path, the import is simply done again the plain way.
    """
    if "skops.io" not in sys.modules:
        import sklearn.externals.array_api_compat as shims

        hidden = [f"{shims.__name__}.{info.name}" for info in pkgutil.iter_modules(shims.__path__)
                  if info.ispkg and f"{shims.__name__}.{info.name}" not in sys.modules]
        for name in hidden:
            sys.modules[name] = None  # type: ignore[assignment]
        try:
            import skops.io
        except ImportError:  # a later scikit-learn needs a hidden shim here: import it plainly
            pass
        finally:
            for name in hidden:
                if sys.modules.get(name, ...) is None:
                    sys.modules.pop(name, None)
    import skops.io  # also waits for another thread's import of it to finish

    return skops.io


def _skops_payload(model: Any) -> bytes:
    sio = skops_io()
    try:
        return sio.dumps(model)
    except (TypeError, ValueError, NotImplementedError) as exc:
        raise StoreError(f"cannot save {type(model).__name__} with skops ({exc})") from exc


def _load_skops(payload: bytes, path: Path) -> Any:
    sio = skops_io()
    trusted = check_skops_types(payload, str(path))
    try:
        return sio.loads(payload, trusted=trusted)
    except Exception as exc:  # any failure inside skops means the file does not match this code
        raise StoreError(f"{path}: cannot rebuild the model ({type(exc).__name__}: "
                         f"{_first_line(exc)}); the run was written by an incompatible "
                         "package version") from exc


def _skops_schema(payload: bytes, source: str) -> Any:
    """The archive's schema.json, read only after its members' declared sizes are bounded."""
    import io
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            members = archive.infolist()
            unpacked = sum(m.file_size for m in members)
            if len(members) > MAX_SKOPS_MEMBERS or unpacked > MAX_WEIGHTS_BYTES:
                raise StoreError(f"{source}: the skops archive holds {len(members):,} files of "
                                 f"{unpacked:,} bytes unpacked; refusing to unpack it")
            info = archive.getinfo("schema.json")
            if info.file_size > MAX_SCHEMA_BYTES:
                raise StoreError(f"{source}: its schema.json is {info.file_size:,} bytes")
            data = archive.read(info)
    except (zipfile.BadZipFile, KeyError, OSError, EOFError, ValueError,
            NotImplementedError, RuntimeError) as exc:
        raise StoreError(f"{source}: not a valid skops file ({type(exc).__name__}: "
                         f"{_first_line(exc)})") from None
    return parse_json(data, f"{source} (schema.json)", what="skops schema", error=StoreError,
                      max_depth=MAX_SCHEMA_DEPTH)


def _resolve_fmnist_class(dotted: str, path: Path) -> type:
    """The class that loads a class named in model.json: only one of `TORCH_CLASSES` (importing
    any other module, even one of fmnist's own such as `fmnist.__main__`, could run code)."""
    if dotted not in TORCH_CLASSES:
        raise StoreError(f"{path}: estimator class {dotted!r} is not one of fmnist's "
                         f"tensor-saved models ({', '.join(sorted(TORCH_CLASSES))}); refusing it")
    module_name, _, name = TORCH_CLASSES[dotted].rpartition(".")
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


def _saved_class(cls: type) -> str:
    """The class model.json names: a model loaded as another class (`TORCH_CLASSES`) is saved
    as the class it was written from, so a loaded run saves back to the same run."""
    path = _class_path(cls)
    return next((name for name, loader in TORCH_CLASSES.items()
                 if loader == path and name != path), path)



def _jsonable(value: Any) -> Any:
    """`value` as plain JSON (`fmnist.fileio.json_safe`); a value of any other type is refused,
    since model.json must hold only what loading can read back."""
    return json_safe(value, _refuse)


def _refuse(value: Any) -> Any:
    raise StoreError(f"cannot store {type(value).__name__} value {value!r} in model.json")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return _shorten(text.splitlines()[0] if text else type(exc).__name__, 200)


def _shorten(value: Any, limit: int = 40) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else f"{text[:limit - 3]}..."


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
