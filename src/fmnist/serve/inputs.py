"""Turn a `/predict` request body into uint8 images `[N, H, W]`, or a clear `ApiError`.

Two ways in: a JSON array of pixels (already Fashion-MNIST-like, used by scripts) and multipart
uploads of photos, which go through `fmnist.images` — the same decoder and recipe as
`fmnist predict` — so the web app can never disagree with the command line.

The JSON schema is strict (issue 11 #12, #16): an object may hold exactly one key, `image` or
`images`; the array must be nested exactly 2 or 3 deep; every pixel must be a JSON number —
not a string, not `true`/`false`, not `null`. The structure and the types are checked in Python
before NumPy sees them, and a 400-digit integer (OverflowError) or a 10,000-deep nesting
(RecursionError) is caught as a 4xx, never a 500 and a closed connection. Pixel values then
follow the package's one rule (`fmnist.images.arrays.as_uint8_images`, docs/predict.md), on the
whole array at once: JSON numbers are read as floats, so an array whose largest value is at
most 1 is read as 0..1; values outside 0..255, NaN and infinity are refused.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import orjson

from fmnist.errors import FmnistError
from fmnist.images.arrays import as_uint8_images
from fmnist.serve.errors import ApiError

JSON_HELP = ('send {"image": [[...28 rows of 28 numbers 0-255...]]}, {"images": [...]}, or the '
             "bare array")
PIXEL_HELP = "pixel values must be JSON numbers from 0 (background) to 255 (garment), or 0..1"
# Exactly these types: `bool` is a subclass of `int`, but `type(True)` is `bool`, so it is refused.
NUMBER_TYPES = frozenset((int, float))


def parse_json_images(body: bytes, shape: tuple[int, int], max_images: int) -> np.ndarray:
    """Pixels from a JSON body: one `shape` array, a list of them, or an object holding either."""
    if not body.strip():
        raise ApiError(400, "empty_body", f"the request body is empty; {JSON_HELP}")
    try:
        doc = _load_json(body)
    except RecursionError:
        raise ApiError(400, "invalid_json", "the JSON is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON ({exc})") from None
    if isinstance(doc, dict):
        keys = sorted(doc)
        if keys not in (["image"], ["images"]):
            raise ApiError(422, "invalid_request",
                           f'expected exactly one key, "image" or "images", got '
                           f"{', '.join(map(repr, keys[:5])) or 'none'}; {JSON_HELP}")
        doc = doc["images"] if keys == ["images"] else [doc["image"]]
    return _to_uint8(doc, shape, max_images)


def _load_json(body: bytes) -> Any:
    """The parsed document: orjson where it accepts the text, the standard library otherwise.

    orjson parses a 28×28 request in ~8 µs instead of ~40 (on the event loop's thread, which
    bounds `fmnist serve`'s requests per second; benchmarks/RESULTS.md). It refuses what `json`
    reads (NaN, infinity, a 400-digit integer, a byte-order mark, lone surrogates), so every text
    it refuses is read again by `json`: what is accepted, and every error a client sees, stay
    exactly `json`'s."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


def _to_uint8(doc: Any, shape: tuple[int, int], max_images: int) -> np.ndarray:
    h, w = shape
    depth = _depth(doc)
    if depth == 2:
        doc = [doc]
    elif depth != 3:
        raise ApiError(422, "invalid_shape",
                       f"expected {h}×{w} pixel arrays nested 2 or 3 deep; {JSON_HELP}")
    if not doc:
        raise ApiError(422, "invalid_shape", f"the list of images is empty; {JSON_HELP}")
    _check_image(doc[0], 0, h, w)  # a wrong shape is named before a wrong count
    if len(doc) > max_images:
        raise ApiError(422, "too_many_images",
                       f"{len(doc)} images in one request; the limit is {max_images}")
    for index, image in enumerate(doc[1:], 1):
        _check_image(image, index, h, w)
    try:  # ranges, NaN and infinity: checked on the array, by the package's one rule
        return as_uint8_images(np.array(doc, dtype=np.float64), "the pixels")
    except OverflowError:  # an integer too large for a float (a 400-digit number)
        raise ApiError(422, "invalid_pixels", f"a pixel value is out of range; {PIXEL_HELP}"
                       ) from None
    except FmnistError as exc:
        raise ApiError(422, "invalid_pixels", f"{exc}; {PIXEL_HELP}") from None


def _depth(doc: Any) -> int:
    """How deep the first elements nest (stops at 4: nothing valid is deeper)."""
    depth = 0
    while isinstance(doc, list) and depth < 4:
        depth += 1
        doc = doc[0] if doc else None
    return depth


def _check_image(image: Any, index: int, h: int, w: int) -> None:
    """Exactly `h` rows of `w` numbers each (ints or floats; not bools, strings or null).

    One set test per row, in C (`map(type, row)`): a loop over every value in Python cost a
    single-image request about 30 µs, twice (benchmarks/serve_stages.py)."""
    if not isinstance(image, list) or not all(isinstance(row, list) for row in image):
        raise ApiError(422, "invalid_shape", f"image {index}: expected {h} rows of {w} pixels; "
                       f"{JSON_HELP}")
    lengths = {len(row) for row in image}
    if len(lengths) > 1:
        raise ApiError(422, "invalid_pixels", f"image {index}: ragged rows (of "
                       f"{min(lengths)} to {max(lengths)} pixels); {JSON_HELP}")
    if len(image) != h or lengths != {w}:
        raise ApiError(422, "invalid_shape",
                       f"image {index}: expected {h}×{w} pixels, got {len(image)}×"
                       f"{next(iter(lengths), 0)}; {JSON_HELP}")
    for row in image:
        if not NUMBER_TYPES.issuperset(map(type, row)):
            value = next(v for v in row if type(v) not in NUMBER_TYPES)
            raise ApiError(422, "invalid_pixels",
                           f"image {index}: {_kind(value)} where a pixel value belongs; "
                           f"{PIXEL_HELP}")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    return {str: "a string", type(None): "null", list: "a nested list",
            dict: "an object"}.get(type(value), type(value).__name__)
