"""The default model shipped inside the package: `fmnist predict PHOTO` with no run folder.

`default/` is an ordinary run folder (model.json + model.safetensors, written by
`fmnist train`; how it was trained is in docs/photos.md and in its own model.json). The store
already checks the weights against the SHA-256 recorded in model.json; here model.json itself is
checked against `MODEL_JSON_SHA256`, fixed in the code, so an edited or swapped file inside an
installed package is refused rather than trusted. Together they pin every byte of the model.

Beside them lies `model.onnx`, the same network exported by `fmnist.runs.export` (the check of
the export: the same class on ≥ 99.9 % of the official test images, probabilities within 1e-4),
pinned by `MODEL_ONNX_SHA256`. Where ONNX Runtime is installed (the `serve` and `export`
extras, which `make` installs), the default model runs from that graph and torch is never
imported: a cold `fmnist predict PHOTO` saves the 1.0–1.5 s torch's import takes on 2 cores.
Without ONNX Runtime, or when asked for the network itself (`graph=False`: int8 serving is
built from it), the safetensors run is loaded as any other.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from importlib.util import find_spec
from pathlib import Path

from fmnist.files import read_bounded
from fmnist.runs.store import META_FILE, LoadedRun, StoreError, load, read_meta

DEFAULT_NAME = "default"
# SHA-256 of default/model.json (which in turn pins model.safetensors by its SHA-256).
MODEL_JSON_SHA256 = "e73853062b2acc79d66fbe3a0f5183d229e936f95251f44eed25d4458374ccf2"
GRAPH_FILE = "model.onnx"
# SHA-256 of default/model.onnx, the same network as an ONNX graph (written by
# scripts/ship_model.py).
MODEL_ONNX_SHA256 = "bfaadd6b14aaea6fec23c8516c9e9f44806b952b3d83b996a0b032fac3712b9b"
# The shipped graph is about 1 MB; anything far larger is not it.
MAX_GRAPH_BYTES = 32 << 20


def default_run_dir() -> Path:
    """The folder of the shipped model inside the installed package."""
    return Path(str(resources.files(__name__).joinpath(DEFAULT_NAME)))


def load_default(threads: int = 1, graph: bool = True) -> LoadedRun:
    """The shipped model, after checking model.json's checksum; a `StoreError` says what broke.

    With `graph` and ONNX Runtime installed, its pinned ONNX graph on `threads` intra-op
    threads (no torch); otherwise the network from its safetensors run, torch set to `threads`.
    """
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
    if graph and find_spec("onnxruntime") is not None:
        return _load_graph(folder, threads)
    import torch

    torch.set_num_threads(threads)  # before the load, whose check runs a first forward pass
    return load(folder)


def _load_graph(folder: Path, threads: int) -> LoadedRun:
    """The shipped ONNX graph as the model, after checking its SHA-256 against the code."""
    from fmnist.runs.onnx_model import OnnxClassifier

    meta = read_meta(folder)
    path = folder / GRAPH_FILE
    payload = read_bounded(path, MAX_GRAPH_BYTES, what="shipped ONNX graph", error=StoreError)
    digest = hashlib.sha256(payload).hexdigest()
    if digest != MODEL_ONNX_SHA256:
        raise StoreError(f"{path}: the shipped model's graph was changed (SHA-256 {digest}, "
                         f"expected {MODEL_ONNX_SHA256}); reinstall fmnist")
    model = OnnxClassifier(payload, tuple(meta["image_shape"]), threads)
    if len(model.classes_) != len(meta["class_names"]):
        raise StoreError(f"{path}: the graph has {len(model.classes_)} classes, model.json "
                         f"{len(meta['class_names'])}; reinstall fmnist")
    return LoadedRun(model=model, meta=meta, path=folder)


def load_run_or_default(run: Path | str | None, threads: int = 1,
                        graph: bool = True) -> LoadedRun:
    """A run folder when one is given (torch threads are the caller's), else the shipped
    default model (`load_default`)."""
    return load_default(threads, graph) if run is None else load(run)


def is_run_folder(path: Path) -> bool:
    """Whether `path` is a folder holding model.json (the old `predict RUN FILES…` form)."""
    return path.is_dir() and (path / META_FILE).is_file()
