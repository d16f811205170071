"""Pick the train/test data a command works on: the official splits, a Kaggle CSV, or a folder
of the user's own photos.

The official test set is always the official 10k. A user's own data has no official test set,
so unless a separate test source is given, a stratified 20% is held out (seeded), and the
description says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fmnist.data.dataset import Dataset, split
from fmnist.data.official import load_fashion_mnist
from fmnist.data.sources import load_csv
from fmnist.errors import ConfigError, DataError

HOLDOUT_FRACTION = 0.2
DEFAULT_SIZE = 28
MAX_SIZE = 512  # the largest image side a run folder may record (fmnist.runs.meta)


def load_source(path: Path, size: int = DEFAULT_SIZE) -> Dataset:
    """A Kaggle-layout CSV file, or a folder with one sub-folder of photos per class.

    `size` (the side photos are rendered at) is bounded before any photo is read: every image
    costs size² floats while it is prepared. It means nothing for a CSV, whose rows carry their
    own size, so another value there is refused rather than ignored."""
    path = Path(path)
    if not 8 <= size <= MAX_SIZE:
        raise ConfigError(f"--size {size}: use a side between 8 and {MAX_SIZE} pixels")
    if path.is_dir():
        from fmnist.data.folder import load_image_folder

        return load_image_folder(path, size=size)
    if path.suffix.lower() == ".csv":
        if size != DEFAULT_SIZE:
            raise ConfigError(f"--size {size} applies to photo folders; {path} is a CSV, whose "
                              "pixel columns give the image size")
        return load_csv(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    raise DataError(f"{path}: expected a .csv file (Kaggle layout) or a folder of class folders")


def check_classes(expected: Sequence[str], data: Dataset, whose: str) -> None:
    """The one class-name check: `data` must name exactly the classes `expected` (those of the
    training data, or of a saved model, said by `whose`), in the same order — label 3 must mean
    the same garment on both sides."""
    if tuple(data.class_names) != tuple(expected):
        raise DataError(f"{data.source or 'the data'}: classes {list(data.class_names)} differ "
                        f"from {whose} {list(expected)}; pass data with the same classes")


def check_compatible(train: Dataset, test: Dataset) -> None:
    """A test set must name the same classes and hold images of the same size as the training
    set, or no model trained on one can be scored on the other."""
    check_classes(train.class_names, test, "the training data's")
    if test.images.shape[1:] != train.images.shape[1:]:
        shape = "×".join(map(str, train.images.shape[1:]))
        raise DataError(f"{test.source}: {'×'.join(map(str, test.images.shape[1:]))} images, "
                        f"but the training data's are {shape}; give both sets one image size")


def _check_choice(data: Path | None, test_data: Path | None, size: int) -> None:
    """Options that only mean something with `--data` are refused without it, not ignored."""
    if data is None and test_data is not None:
        raise ConfigError("--test-data is the test set for --data; give --data too (the "
                          "official data has its own test set)")
    if data is None and size != DEFAULT_SIZE:
        raise ConfigError(f"--size {size} applies to --data photo folders; the official images "
                          "are 28×28")


def resolve_data(data: Path | None = None, test_data: Path | None = None,
                 data_dir: Path | None = None, size: int = 28,
                 seed: int = 0) -> tuple[Dataset, Dataset, str]:
    """(train, test, description of where they came from)."""
    _check_choice(data, test_data, size)
    if data is None:
        train = load_fashion_mnist("train", data_dir)
        test = load_fashion_mnist("test", data_dir)
        return train, test, f"official Fashion-MNIST ({train.source}), 60k train / 10k test"
    train = load_source(data, size)
    if test_data is not None:
        test = load_source(test_data, size)
        check_compatible(train, test)
        return train, test, f"{data} (train) / {test_data} (test)"
    train, test = split(train, HOLDOUT_FRACTION, seed)
    return train, test, (f"{data}: {len(train)} train / {len(test)} test "
                         f"(stratified {HOLDOUT_FRACTION:.0%} held out, seed {seed})")


def training_subset(train: Dataset, train_size: int | None,
                    seed: int = 0) -> tuple[Dataset, str]:
    """`train` cut to a stratified subset of `train_size` images (`--train-size`), with a note
    to append to the data description ("" when nothing was cut). Fewer than two images per class
    cannot be stratified, so that is refused."""
    if train_size is None or train_size >= len(train):
        return train, ""
    if train_size < 2 * train.n_classes:
        raise DataError(f"--train-size {train_size} is too small; use at least "
                        f"{2 * train.n_classes} (two images per class)")
    note = f"; trained on a stratified subset of {train_size}"
    return train.head(n=train_size, seed=seed), note


def explore_data(data: Path | None = None, test_data: Path | None = None,
                 data_dir: Path | None = None, size: int = 28) -> tuple[Dataset, Dataset | None]:
    """The data `fmnist explore` analyses: the official splits, or `data` (and `test_data`)
    in any form `resolve_data` takes. Nothing is held out, because nothing is trained."""
    _check_choice(data, test_data, size)
    if data is None:
        return load_fashion_mnist("train", data_dir), load_fashion_mnist("test", data_dir)
    train = load_source(data, size)
    return train, (load_source(test_data, size) if test_data is not None else None)
