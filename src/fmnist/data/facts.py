"""Facts about the official data for `fmnist data info` / `verify`: sizes, counts, checksums."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fmnist.data.official import SPLITS
from fmnist.data.sources import OFFICIAL_FILES, find_or_download, read_verified


def verify_files(data_dir: Path | None = None, allow_download: bool = True) -> list[dict]:
    """Check every official file's decompressed SHA-256; returns one row per file."""
    rows = []
    for key, spec in OFFICIAL_FILES.items():
        path = find_or_download(key, data_dir, allow_download)
        array, hashed = read_verified(key, path, verify=True)
        rows.append({"file": spec.name, "path": str(path), "shape": list(array.shape),
                     "sha256": spec.sha256, "status": "verified" if hashed else "verified (memo)"})
    return rows


def split_summary(images: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...]) -> dict:
    """Shapes, per-class counts and pixel statistics of one split."""
    counts = np.bincount(labels, minlength=len(class_names))
    pixels = images.reshape(len(images), -1)
    return {
        "images": int(len(images)),
        "shape": list(images.shape[1:]),
        "dtype": str(images.dtype),
        "per_class": {name: int(n) for name, n in zip(class_names, counts, strict=True)},
        "pixel_mean": float(pixels.mean()),
        "pixel_std": float(pixels.std()),
        "pixel_min": int(pixels.min()),
        "pixel_max": int(pixels.max()),
        "ink_fraction": float((pixels > 0).mean()),
    }


__all__ = ["SPLITS", "split_summary", "verify_files"]
