"""An uploaded photo → the uint8 image the model sees, through `fmnist.images`.

Decoding is `fmnist.images.decode.read_image` and the preprocessing `fmnist.images.photo`, the
same as `fmnist predict` uses, with the same formats and the same pixel limit. What this module
adds is the HTTP meaning of each way an upload can be bad, taken from the decoder's error class
so that no message has to be parsed:

* zero bytes → 400;
* not an image, or a format outside the accepted list (judged from the header) → 415;
* more pixels than the limit, judged from the header before anything is decoded → 413;
* more pixels than the request's photos may decode together (`decode.PixelBudget`) → 413;
* a known format whose pixels cannot be decoded (truncated, damaged) → 400;
* a readable image with nothing in it that stands out from the background → 422.

A request's photos are read one by one and each bad one is its own error: the others are still
scored (`photos_to_images`).
"""

from __future__ import annotations

import io

import numpy as np

from fmnist.images import decode, photo
from fmnist.serve.errors import ApiError

MAX_PIXELS = decode.MAX_PIXELS
# What the photos of one request may decode together: two photos at the limit. 16 compressible
# 40 MP RGBA PNGs (2.6 MB) would otherwise hold a decoder slot for 11.7 s; 16 phone JPEGs
# (12 MP, drafted to 3 MP each) are 48 MP.
MAX_REQUEST_PIXELS = 2 * MAX_PIXELS


def photos_to_images(uploads: list[tuple[str, bytes]], shape: tuple[int, int],
                     max_pixels: int = MAX_PIXELS, request_pixels: int = MAX_REQUEST_PIXELS
                     ) -> tuple[np.ndarray, dict[int, ApiError]]:
    """Every upload that can be read as a `[n, *shape]` uint8 batch, and the others' errors by
    their position in `uploads`; a bad photo costs only itself."""
    budget = decode.PixelBudget(request_pixels)
    images, failures = [], {}
    for i, (name, data) in enumerate(uploads):
        try:
            images.append(photo_to_image(data, name, shape, max_pixels, budget))
        except ApiError as exc:
            failures[i] = exc
    return np.stack(images) if images else np.empty((0, *shape), np.uint8), failures


def photo_to_image(data: bytes, name: str, shape: tuple[int, int],
                   max_pixels: int = MAX_PIXELS,
                   budget: decode.PixelBudget | None = None) -> np.ndarray:
    """Decode and preprocess one upload into a `shape` uint8 image, or raise `ApiError`."""
    if not data:
        raise ApiError(400, "empty_file", f"{name}: the upload is empty (0 bytes)")
    source = io.BytesIO(data)
    source.name = name  # the decoder names the source in its messages
    try:
        image = decode.read_image(source, max_pixels, budget)
    except decode.UnsupportedImage as exc:
        raise ApiError(415, "not_an_image", str(exc)) from None
    except decode.BudgetSpent as exc:
        raise ApiError(413, "request_too_many_pixels", str(exc)) from None
    except decode.TooManyPixels as exc:
        raise ApiError(413, "too_many_pixels", str(exc)) from None
    except decode.PhotoError as exc:
        raise ApiError(400, "unreadable_image", str(exc)) from None
    try:
        result = photo.prepare_photo(image, size=shape[0], max_pixels=max_pixels)
    except photo.PhotoError:  # the pixels decoded, so what remains is an empty picture
        raise ApiError(422, "no_object",
                       f"{name}: found no garment that stands out from the background (the "
                       "photo looks blank or uniform)") from None
    return result.image
