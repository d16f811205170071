"""The default model shipped inside the package: `fmnist predict PHOTO` with no run folder.

`default/` is an ordinary run folder (model.json + model.safetensors, written by
`fmnist train`; how it was trained is in docs/photos.md and in its own model.json). The store
already checks the weights against the SHA-256 recorded in model.json; here model.json itself is
checked against `MODEL_JSON_SHA256`, fixed in the code, so an edited or swapped file inside an
installed package is refused rather than trusted. Together they pin every byte of the model.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

from fmnist.runs.store import META_FILE, LoadedRun, StoreError, load

DEFAULT_NAME = "default"
# SHA-256 of default/model.json (which in turn pins model.safetensors by its SHA-256).
MODEL_JSON_SHA256 = "bc4495760481529858dc79b2ae57d93bcfb568fbe29915a78d8eabb2d045cd7d"


def default_run_dir() -> Path:
    """The folder of the shipped model inside the installed package."""
    return Path(str(resources.files(__name__).joinpath(DEFAULT_NAME)))


def load_default() -> LoadedRun:
    """The shipped model, after checking model.json's checksum; a `StoreError` says what broke."""
    folder = default_run_dir()
    meta_path = folder / META_FILE
    try:
        digest = hashlib.sha256(meta_path.read_bytes()).hexdigest()
    except OSError as exc:
        raise StoreError(f"{meta_path}: the shipped model is missing ({exc.strerror or exc}); "
                         "reinstall fmnist or pass a run folder with --run") from exc
    if digest != MODEL_JSON_SHA256:
        raise StoreError(f"{meta_path}: the shipped model's model.json was changed (SHA-256 "
                         f"{digest}, expected {MODEL_JSON_SHA256}); reinstall fmnist")
    return load(folder)


def load_run_or_default(run: Path | str | None) -> LoadedRun:
    """A run folder when one is given, else the shipped default model."""
    return load_default() if run is None else load(run)


def is_run_folder(path: Path) -> bool:
    """Whether `path` is a folder holding model.json (the old `predict RUN FILES…` form)."""
    return path.is_dir() and (path / META_FILE).is_file()
