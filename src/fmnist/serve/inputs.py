"""Turn a `/predict` request body into uint8 images `[N, H, W]`, or a clear `ApiError`.

Two ways in: a JSON array of pixels (already Fashion-MNIST-like, used by the drawing canvas and by
scripts) and multipart uploads of photos, which go through `fmnist.images.photo` — the same
pipeline as
`fmnist predict` — so the web app can never disagree with the command line.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from fmnist.serve.errors import ApiError

JSON_HELP = ('send {"image": [[...28 rows of 28 numbers 0-255...]]}, {"images": [...]}, or the '
             "bare array")


def parse_json_images(body: bytes, shape: tuple[int, int], max_images: int) -> np.ndarray:
    """Pixels from a JSON body: one `shape` array, a list of them, or an object holding either."""
    if not body.strip():
        raise ApiError(400, "empty_body", f"the request body is empty; {JSON_HELP}")
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON ({exc})") from None
    if isinstance(doc, dict):
        keys = [k for k in ("image", "images") if k in doc]
        if len(keys) != 1:
            raise ApiError(422, "invalid_request",
                           f'expected exactly one of the keys "image" or "images"; {JSON_HELP}')
        doc = doc[keys[0]] if keys[0] == "images" else [doc["image"]]
    return _to_uint8(doc, shape, max_images)


def _to_uint8(doc: Any, shape: tuple[int, int], max_images: int) -> np.ndarray:
    h, w = shape
    try:
        arr = np.array(doc, dtype=np.float64)
    except (ValueError, TypeError):
        raise ApiError(422, "invalid_pixels",
                       f"the array is ragged or holds non-numbers; {JSON_HELP}") from None
    sent = list(arr.shape)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1:] != (h, w) or len(arr) == 0:
        raise ApiError(422, "invalid_shape",
                       f"expected {h}×{w} pixel arrays, got an array of shape {sent}; {JSON_HELP}")
    if len(arr) > max_images:
        raise ApiError(422, "too_many_images",
                       f"{len(arr)} images in one request; the limit is {max_images}")
    if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 255:
        raise ApiError(422, "invalid_pixels",
                       "pixel values must be finite numbers from 0 (background) to 255 (garment)")
    return np.rint(arr).astype(np.uint8)

