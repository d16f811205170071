"""The one in-memory currency between parts: uint8 images, int labels, class names."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from fmnist.errors import ConfigError, DataError

CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


@dataclass
class Dataset:
    """Images `uint8 [N, H, W]`, labels `int64 [N]`, and the name of each label.

    `source` says where the data came from (a path or description) and `checksum` is a digest of
    the content, recorded in saved runs so a model can be traced to the data it saw.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...] = CLASS_NAMES
    source: str = ""
    checksum: str = ""
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim != 3:
            raise ValueError(
                f"images must be uint8 [N, H, W], got {self.images.dtype} {self.images.shape}"
            )
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.labels.shape != (len(self.images),):
            raise ValueError(
                f"{len(self.images)} images but labels have shape {self.labels.shape}"
            )
        n_classes = len(self.class_names)
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= n_classes):
            raise ValueError(f"labels must lie in 0..{n_classes - 1} for {n_classes} classes")
        self.class_names = tuple(self.class_names)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def check_trainable(self) -> None:
        """A `DataError` unless a classifier can learn from this data: images with at least one
        pixel, and images of every class, at least two (a one-class set would train, then fail
        or answer one class; a missing class failed only when the model was saved)."""
        if len(self) == 0:
            raise DataError(f"{self.source or 'the training data'}: no images to train on")
        if self.images.shape[1] * self.images.shape[2] == 0:
            raise DataError(f"{self.source or 'the training data'}: the images have no pixels "
                            f"(shape {self.images.shape[1]}×{self.images.shape[2]})")
        present = np.unique(self.labels)
        if len(present) < 2:
            only = self.class_names[int(present[0])]
            raise DataError(f"{self.source or 'the training data'}: every image is of one class "
                            f"({only!r}); a classifier needs images of at least two classes")
        absent = [name for c, name in enumerate(self.class_names) if c not in set(present)]
        if absent:  # a model cannot answer a class it never saw (its outputs would not match)
            listed = ", ".join(repr(a) for a in absent[:5]) + (" …" if len(absent) > 5 else "")
            raise DataError(f"{self.source or 'the training data'}: no training images of "
                            f"{len(absent)} of its {self.n_classes} classes ({listed}); every "
                            "class needs images (a CSV's labels name the ten Fashion-MNIST "
                            "classes 0..9)")

    def subset(self, index: np.ndarray, note: str = "") -> Dataset:
        """A view of some rows, keeping class names and provenance."""
        source = f"{self.source} [{note}]" if note else self.source
        return Dataset(self.images[index], self.labels[index], self.class_names, source,
                       self.checksum, dict(self.info))

    def head(self, n_per_class: int | None = None, n: int | None = None, seed: int = 0) -> Dataset:
        """A stratified random subset: `n` rows in all, or `n_per_class` of each class."""
        if n_per_class is not None:
            index = np.sort(per_class_indices(self.labels, self.n_classes, n_per_class, seed))
        elif n is not None and n < len(self):
            index = stratified_indices(self.labels, n, seed)
        else:
            return self
        return self.subset(index, f"subset of {len(index)}")


def default_class_names(classes: Sequence[object]) -> tuple[str, ...]:
    """Names for a model's classes when nobody gave any: Fashion-MNIST's when the classes are
    its labels 0..9, else each class as text."""
    classes = list(classes)
    if classes == list(range(len(CLASS_NAMES))):
        return CLASS_NAMES
    return tuple(str(c) for c in classes)


def data_fingerprint(data: Dataset) -> str:
    """SHA-256 of the images, labels and class names: two subsets of the same size with the
    same labels but different images must not share runs. (~0.1 s for all 60k images.)"""
    digest = hashlib.sha256()
    digest.update(json.dumps([list(data.images.shape), list(data.class_names)]).encode())
    digest.update(np.ascontiguousarray(data.images).tobytes())
    digest.update(np.ascontiguousarray(data.labels).tobytes())
    return digest.hexdigest()


def stratified_indices(labels: np.ndarray, n: int, seed: int | None = 0) -> np.ndarray:
    """Sorted row indices of a stratified random subset of `n` rows (every class keeps its
    share; scikit-learn's `train_test_split`), or of a plain random subset when a class is too
    rare to stratify. The one subset rule of `--train-size`, `max_train` and `Dataset.head`."""
    from sklearn.model_selection import train_test_split  # ~1 s: only when cutting

    index = np.arange(len(labels))
    try:
        index, _ = train_test_split(index, train_size=int(n), random_state=seed,
                                    stratify=labels)
    except ValueError:  # a class with a single image cannot be split: plain random subset
        index = np.random.default_rng(seed).permutation(index)[:int(n)]
    return np.sort(index)


def per_class_indices(labels: np.ndarray, n_classes: int, per_class: int,
                      seed: int = 0) -> np.ndarray:
    """Indices of up to `per_class` random rows of each class, grouped by class (sample grids,
    scatter plots, small balanced subsets)."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:per_class]
                           for c in range(n_classes)])


def split(dataset: Dataset, val_fraction: float = 0.2, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Stratified, deterministic train/validation split (the seed's 48k/12k for 0.2 of 60k)."""
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}")
    index = np.arange(len(dataset))
    counts = np.bincount(dataset.labels, minlength=dataset.n_classes)
    present = counts[counts > 0]
    n_val = int(np.ceil(val_fraction * len(dataset)))
    if len(present) and (present.min() < 2 or not len(present) <= n_val <= len(dataset)
                         - len(present)):
        raise DataError(
            f"{dataset.source or 'the data'}: {len(dataset)} images in {len(present)} classes "
            f"(the rarest has {present.min()}) are too few to hold out a stratified "
            f"{val_fraction:.0%} with every class on both sides; give more images per class "
            "(or a separate --test-data)")
    from sklearn.model_selection import train_test_split  # ~1 s: only when splitting

    train_idx, val_idx = train_test_split(index, test_size=val_fraction, random_state=seed,
                                          stratify=dataset.labels)
    return (dataset.subset(np.sort(train_idx), "train split"),
            dataset.subset(np.sort(val_idx), "validation split"))
