"""The official Fashion-MNIST splits as `Dataset`s."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from fmnist.data.dataset import CLASS_NAMES, Dataset
from fmnist.data.sources import OFFICIAL_FILES, find_or_download, read_verified
from fmnist.errors import DataError

SPLITS = ("train", "test")


def load_fashion_mnist(split: str = "train", data_dir: str | Path | None = None,
                       verify: bool = True, allow_download: bool = True) -> Dataset:
    """Load the official train (60k) or test (10k) split, verified by checksum.

    Looks in `data_dir` only when given; otherwise in `$FMNIST_DATA`, the user cache and
    `/usr/share/datasets/fashion-mnist`, then downloads into the cache.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    folder = Path(data_dir) if data_dir is not None else None
    return _load_cached(split, folder, verify, allow_download)


@lru_cache(maxsize=4)
def _load_cached(split: str, data_dir: Path | None, verify: bool, allow_download: bool) -> Dataset:
    arrays, paths = {}, {}
    for part in ("images", "labels"):
        key = f"{split}-{part}"
        path = find_or_download(key, data_dir, allow_download)
        arrays[part], _ = read_verified(key, path, verify)
        paths[part] = path
    images, labels = arrays["images"], arrays["labels"]
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(
            f"{paths['images']} and {paths['labels']}: shapes {images.shape} and {labels.shape} "
            "do not form one dataset"
        )
    checksum = OFFICIAL_FILES[f"{split}-images"].sha256 if verify else ""
    images.flags.writeable = False
    labels = labels.astype("int64")
    labels.flags.writeable = False
    return Dataset(images, labels, CLASS_NAMES, source=str(paths["images"].parent),
                   checksum=checksum, info={"split": split, "verified": verify,
                                            "files": {k: str(v) for k, v in paths.items()}})
