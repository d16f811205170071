"""Name the garment: a saved run (or a fitted model) applied to photos, arrays or IDX files.

Inputs, recognised by their content rather than their name:
* images (PNG, JPEG, WebP, BMP, GIF first frame, TIFF; any mode) go through `fmnist.images.photo`,
  the Fashion-MNIST recipe, so a product photo looks like the training data, and a photo the
  model calls footwear is also scored turned by ±15° and ±30° (`fmnist.footwear_views`: the
  dataset's shoes are all level, photographed ones often tilted);
* `.npy` arrays and IDX files (optionally .gz) are taken to be in the dataset's own format
  already — uint8 `[H, W]`, `[N, H, W]` or flat `[N, H*W]` with the model's image size — and
  are used as they are, their pixel values read by the package's one rule
  (`fmnist.images.arrays.as_uint8_images`: uint8 as is, floats in 0..1 scaled by 255).

Every prediction carries its top-k classes and is flagged "not sure" when the top probability is
below `UNSURE_BELOW`: Fashion-MNIST has no "none of these" class, so a photo of a cat still gets
a garment name, and a low probability is the only honest signal.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from fmnist.concurrency import default_workers, ordered_map
from fmnist.data.dataset import default_class_names
from fmnist.data.idx import gunzip_idx, parse_idx
from fmnist.data.npy import parse_npy
from fmnist.defaults import DEFAULT_BATCH, UNSURE_BELOW
from fmnist.errors import DataError, FmnistError
from fmnist.files import read_bounded
from fmnist.footwear_views import with_footwear_views
from fmnist.images.arrays import as_uint8_images
from fmnist.images.decode import IMAGE_SUFFIXES, open_regular, refused_note
from fmnist.images.photo import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_PIPELINE,
    PhotoError,
    prepare_photo,
    save_steps,
)
from fmnist.runs.store import LoadedRun, load

# Classes at or above this probability are named in a "not sure: could be …" message.
CANDIDATE_FLOOR = 0.1
ARRAY_SUFFIXES = frozenset({".npy", ".gz", ".idx"})
# Array files larger than this are refused (an IDX/npy header can promise any size).
MAX_ARRAY_BYTES = 1 << 30


@dataclass
class Prediction:
    """One image's answer: the top-k classes with probabilities, and whether it is unsure."""

    source: str
    top_k: list[tuple[str, float]]
    unsure: bool

    @property
    def label(self) -> str:
        return self.top_k[0][0]

    @property
    def probability(self) -> float:
        return self.top_k[0][1]

    @property
    def message(self) -> str:
        """The class name, or "not sure: could be X or Y" when the model hesitates."""
        if not self.unsure:
            return self.label
        names = [name for name, p in self.top_k if p >= CANDIDATE_FLOOR] or [self.label]
        if len(names) == 1 and len(self.top_k) > 1:
            names.append(self.top_k[1][0])
        listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
        return f"not sure: could be {listed}"

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "label": self.label, "probability": self.probability,
                "unsure": self.unsure, "message": self.message,
                "top_k": [{"class": n, "probability": p} for n, p in self.top_k]}


@dataclass
class InputFailure:
    """An input that could not be read; the others are still predicted."""

    source: str
    error: str

    def to_dict(self) -> dict[str, str]:
        return {"source": self.source, "error": self.error}


class InputImage(NamedTuple):
    """One image to score; `photo` says it was converted from a photo (and so may be tilted)."""

    name: str
    image: np.ndarray
    photo: bool


@dataclass
class ResolvedModel:
    """A fitted estimator with the class names and image shape it was trained with."""

    model: Any
    class_names: tuple[str, ...]
    image_shape: tuple[int, int] | None

    @property
    def size(self) -> int:
        return self.image_shape[0] if self.image_shape else 28


def resolve_model(model_or_run: Any, class_names: Sequence[str] | None = None) -> ResolvedModel:
    """Accept a run folder path, a `LoadedRun`, a fitted estimator, or a `ResolvedModel`."""
    if isinstance(model_or_run, ResolvedModel) and class_names is None:
        return model_or_run
    if isinstance(model_or_run, (str, Path)):
        model_or_run = load(model_or_run)
    if isinstance(model_or_run, LoadedRun):
        shape = model_or_run.meta.get("image_shape")
        return ResolvedModel(model_or_run.model,
                             tuple(class_names or model_or_run.class_names),
                             tuple(shape[-2:]) if shape else None)
    model = model_or_run
    if not hasattr(model, "classes_"):
        raise FmnistError(f"{type(model).__name__} is not fitted (no classes_); fit it first")
    classes = np.asarray(model.classes_).tolist()
    if class_names is None:
        class_names = default_class_names(classes)
    if len(class_names) != len(classes):
        raise FmnistError(f"{len(class_names)} class names for {len(classes)} classes")
    return ResolvedModel(model, tuple(class_names), None)


def predict(model_or_run: Any, images: Any, *, top_k: int = 3,
            class_names: Sequence[str] | None = None, unsure_below: float = UNSURE_BELOW,
            batch_size: int = DEFAULT_BATCH,
            pipeline: str = DEFAULT_PIPELINE) -> list[Prediction]:
    """Top-k predictions for `images`: an array `[N, H, W]` / `[H, W]` of uint8 pixels, or a
    photo/array/IDX path, a PIL image, raw bytes, or a list of those. Photos are converted by
    `pipeline` ("v2" or "paper", `fmnist.images.photo.PIPELINES`).

    Unlike the command line, the first unreadable input raises its `PhotoError`.
    """
    resolved = resolve_model(model_or_run, class_names)
    items = images if isinstance(images, (list, tuple)) else [images]
    arrays: list[InputImage] = []
    for item in items:
        if isinstance(item, np.ndarray):
            arrays += [InputImage(f"[{i}]", img, False) for i, img in
                       enumerate(as_image_batch(item, None, "array"))]
            continue
        for entry in read_input(item, resolved.size, pipeline=pipeline):
            if isinstance(entry, InputFailure):
                raise PhotoError(entry.error)
            arrays.append(entry)
    return list(_predict_batches(resolved, iter(arrays), top_k, unsure_below, batch_size))


def predict_paths(model_or_run: Any, paths: Iterable[Path | str], *, top_k: int = 3,
                  batch_size: int = DEFAULT_BATCH, unsure_below: float = UNSURE_BELOW,
                  show_dir: Path | None = None, max_pixels: int = DEFAULT_MAX_PIXELS,
                  pipeline: str = DEFAULT_PIPELINE,
                  workers: int | None = None) -> Iterator[Prediction | InputFailure]:
    """Predict files and folders (searched recursively) in batches, in input order.

    A file that cannot be read yields an `InputFailure` and the rest carry on. Photos are
    converted on `workers` threads (default: one per core, `fmnist.concurrency`); with
    `show_dir` on one, so that the step folders are named in input order.
    """
    resolved = resolve_model(model_or_run)
    if isinstance(paths, (str, Path)):
        paths = [paths]
    stems: set[str] = set()

    def convert(path: Path | InputFailure) -> list[InputImage | InputFailure]:
        if isinstance(path, InputFailure):
            return [path]
        return read_input(path, resolved.size, max_pixels=max_pixels, show_dir=show_dir,
                          stems=stems, pipeline=pipeline)

    threads = 1 if show_dir is not None else workers or default_workers()
    entries = (entry for converted in ordered_map(convert, expand_paths(paths), threads)
               for entry in converted)
    return _predict_batches(resolved, entries, top_k, unsure_below, batch_size)


def expand_paths(paths: Iterable[Path | str]) -> Iterator[Path | InputFailure]:
    """Files as given; folders replaced by the image and array files inside them (sorted)."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and _is_input_file(p))
            if not found:
                note = refused_note(path.rglob("*"))
                yield InputFailure(str(path), f"{path}: folder holds no images or arrays{note}")
            yield from found
        elif path.exists():
            yield path
        else:
            yield InputFailure(str(path), f"{path}: no such file or folder")


def _is_input_file(path: Path) -> bool:
    if path.name.startswith("."):
        return False
    name = path.name.lower()
    return path.suffix.lower() in IMAGE_SUFFIXES | ARRAY_SUFFIXES or "ubyte" in name


def read_input(source: Any, size: int, *, max_pixels: int = DEFAULT_MAX_PIXELS,
               show_dir: Path | None = None, stems: set[str] | None = None,
               pipeline: str = DEFAULT_PIPELINE) -> list[InputImage | InputFailure]:
    """One input → its uint8 `[size, size]` images, or one `InputFailure`."""
    name = str(source) if isinstance(source, (str, Path)) else "<image>"
    try:
        if isinstance(source, (str, Path)):
            head = _head(Path(source))
            if _looks_like_array(head):
                batch = as_image_batch(_read_array(Path(source), head), size, name)
                if len(batch) == 1:
                    return [InputImage(name, batch[0], False)]
                return [InputImage(f"{name}[{i}]", img, False) for i, img in enumerate(batch)]
        result = prepare_photo(source, size, keep_steps=show_dir is not None,
                               max_pixels=max_pixels, pipeline=pipeline)
        if show_dir is not None:
            save_steps(result, show_dir, _unique_stem(name, stems if stems is not None else set()))
        return [InputImage(name, result.image, True)]
    except FmnistError as exc:
        message = str(exc)
        return [InputFailure(name, message if name in message else f"{name}: {message}")]


def _head(path: Path) -> bytes:
    """The first bytes, read only from a regular file (a FIFO or device is refused unread)."""
    try:
        with open_regular(path) as handle:
            return handle.read(8)
    except OSError as exc:
        raise PhotoError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def _looks_like_array(head: bytes) -> bool:
    """NumPy's magic, gzip (IDX files are published gzipped), or an IDX header."""
    return (head.startswith(b"\x93NUMPY") or head.startswith(b"\x1f\x8b")
            or (len(head) >= 4 and head[:2] == b"\x00\x00" and head[2] in (8, 9, 11, 12, 13, 14)
                and 1 <= head[3] <= 4))


def _read_array(path: Path, head: bytes) -> np.ndarray:
    """An .npy or (gzipped) IDX array: file, inflated bytes and header shape all bounded."""
    data = read_bounded(path, MAX_ARRAY_BYTES, what="array file", error=DataError)
    if head.startswith(b"\x93NUMPY"):
        return parse_npy(data, str(path))
    if head.startswith(b"\x1f\x8b"):
        data = gunzip_idx(data, str(path), MAX_ARRAY_BYTES)
    return parse_idx(data, str(path))


def as_image_batch(array: np.ndarray, size: int | None, name: str) -> np.ndarray:
    """An array as uint8 `[N, size, size]`: accepts `[H, W]`, `[N, H, W]` and flat `[N, H*W]`.

    `size=None` accepts any square-or-not `H×W` (the Python API on in-memory arrays).
    """
    array = np.asarray(array)
    if array.dtype.kind not in "biuf":
        raise DataError(f"{name}: expected numeric pixels, got dtype {array.dtype}")
    if size is not None and array.ndim == 2 and array.shape[-1] == size * size \
            and array.shape != (size, size):
        array = array.reshape(-1, size, size)
    elif array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or (size is not None and array.shape[1:] != (size, size)):
        want = f"{size}×{size}" if size else "H×W"
        raise DataError(f"{name}: expected images of {want} as [H, W], [N, H, W] or flat "
                        f"[N, H*W], got shape {tuple(array.shape)}")
    if len(array) == 0:
        raise DataError(f"{name}: holds no images (shape {tuple(array.shape)})")
    return as_uint8_images(array, name)


def _unique_stem(name: str, used: set[str]) -> str:
    stem = Path(name).stem or "image"
    candidate, n = stem, 1
    while candidate in used:
        n += 1
        candidate = f"{stem}-{n}"
    used.add(candidate)
    return candidate


def _predict_batches(resolved: ResolvedModel,
                     entries: Iterator[InputImage | InputFailure], top_k: int,
                     unsure_below: float, batch_size: int) -> Iterator[Prediction | InputFailure]:
    """Collect images into batches, score each batch once, and keep the input order."""
    pending: list[InputImage | InputFailure] = []
    n_images = 0
    for entry in entries:
        pending.append(entry)
        n_images += not isinstance(entry, InputFailure)
        if n_images >= batch_size:
            yield from _score(resolved, pending, top_k, unsure_below)
            pending, n_images = [], 0
    if pending:
        yield from _score(resolved, pending, top_k, unsure_below)


def _score(resolved: ResolvedModel, pending: list[InputImage | InputFailure],
           top_k: int, unsure_below: float) -> Iterator[Prediction | InputFailure]:
    """One batch; converted photos also get their footwear views (`fmnist.footwear_views`)."""
    scored = [e for e in pending if not isinstance(e, InputFailure)]
    proba = np.empty((0, 0))
    if scored:
        proba = predict_proba(resolved, np.stack([e.image for e in scored]))
        photos = [row for row, e in enumerate(scored) if e.photo]
        if photos:
            proba[photos] = photo_views(resolved, proba[photos],
                                        np.stack([scored[row].image for row in photos]))
    rows = iter(proba)
    for entry in pending:
        if isinstance(entry, InputFailure):
            yield entry
            continue
        yield make_prediction(entry.name, next(rows), resolved.class_names, top_k, unsure_below)


def predict_proba(resolved: ResolvedModel, images: np.ndarray) -> np.ndarray:
    """Class probabilities `[N, n_classes]`, checking the image size the model expects."""
    if resolved.image_shape and images.shape[1:] != tuple(resolved.image_shape):
        raise DataError(f"the model expects {resolved.image_shape[0]}×{resolved.image_shape[1]} "
                        f"images, got {images.shape[1]}×{images.shape[2]}")
    if not hasattr(resolved.model, "predict_proba"):
        raise FmnistError(f"{type(resolved.model).__name__} gives no probabilities")
    return np.asarray(resolved.model.predict_proba(images), dtype=np.float64)


def photo_views(resolved: ResolvedModel, proba: np.ndarray, images: np.ndarray) -> np.ndarray:
    """`proba`, the plain probabilities of converted photos `images`, with the footwear among
    them averaged over their turned views (`fmnist.footwear_views`): how every photo is scored."""
    return with_footwear_views(proba, images, resolved.class_names,
                               lambda views: predict_proba(resolved, views))


def make_prediction(source: str, proba: np.ndarray, class_names: Sequence[str], top_k: int,
                    unsure_below: float = UNSURE_BELOW) -> Prediction:
    """The top-k (class, probability) pairs of one probability row."""
    k = max(1, min(top_k, len(proba)))
    order = np.argsort(-proba, kind="stable")[:k]
    pairs = [(class_names[i], float(proba[i])) for i in order]
    return Prediction(source=source, top_k=pairs, unsure=bool(proba[order[0]] < unsure_below))
