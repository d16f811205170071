"""One rule for pixel arrays: what `as_uint8_images` accepts, and how it reads each dtype.

Four places used to disagree (issue 14 #1): `TorchClassifier` refused floats in 0..1,
`fmnist.predict` multiplied them by 255, `PixelClassifier` took them as they were and divided by
255 again (so a kNN fitted on uint8 images answered at chance, without a warning, when asked
about the same images as floats), and the server's JSON accepted 0..255 only. Every one of them
now calls `as_uint8_images`, whose rule is written in docs/predict.md ("Arrays: one rule"):

* `uint8`: taken as it is;
* other integers: must lie in 0..255 (a 16-bit *array* is refused, not guessed at: unlike a
  16-bit PNG it carries no bit depth);
* floats: must be finite and ≥ 0; if the largest value is at most 1 the array is read as 0..1 and
  multiplied by 255, otherwise it must lie in 0..255 and is rounded;
* booleans, complex numbers, strings and objects are refused.

The one ambiguity is a float array in 0..255 that is almost black (largest value ≤ 1): it is read
as 0..1. No Fashion-MNIST-like image is that dark, so the rule never changes an answer for data
that looks like the dataset, and everything it cannot read is an `FmnistError`, never a silent
chance-level guess.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fmnist.errors import DataError


def as_uint8_images(array: Any, name: str = "images") -> np.ndarray:
    """Pixels of any numeric dtype as uint8 0..255, by the one rule above (shape unchanged).

    Raises `DataError` (an `FmnistError` and the CLI's one-line error) naming `name`.
    """
    arr = np.asarray(array)
    if arr.dtype == np.uint8:
        return arr
    kind = arr.dtype.kind
    if kind == "b":
        raise DataError(f"{name}: boolean arrays are not images; convert them to uint8 "
                        "(0 and 255)")
    if kind not in "iuf":
        raise DataError(f"{name}: expected numeric pixels, got dtype {arr.dtype}")
    if arr.size == 0:
        return arr.astype(np.uint8)
    if kind == "f":
        if not np.isfinite(arr).all():
            raise DataError(f"{name}: contains NaN or infinite values")
        low, high = float(arr.min()), float(arr.max())
        scale = 255.0 if high <= 1.0 else 1.0
    else:
        low, high = int(arr.min()), int(arr.max())
        scale = 1.0
    if low < 0 or high * scale > 255:
        rule = "0..255, or 0..1 for floats" if kind == "f" else "0..255"
        raise DataError(f"{name}: pixel values must lie in {rule}, got {low:g}..{high:g}")
    if kind != "f":
        return arr.astype(np.uint8)
    return np.rint(arr.astype(np.float32) * np.float32(scale)).astype(np.uint8)
