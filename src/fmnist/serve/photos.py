"""An uploaded photo → the uint8 image the model sees, through `fmnist.images.photo`.

The preprocessing is `fmnist.images.photo.prepare_photo`, the same as `fmnist predict` uses. What
this
module adds is the HTTP meaning of each way an upload can be bad, decided in stages so that no
error message has to be parsed:

* zero bytes → 400;
* not an image format Pillow knows (judged from the header alone) → 415;
* more pixels than the limit, judged from the header before anything is decoded → 413;
* a known format whose pixels cannot be decoded (truncated, damaged) → 400;
* a readable image with nothing in it that stands out from the background → 422.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from fmnist.images import photo
from fmnist.serve.errors import ApiError

# 40 megapixels: a full-resolution phone photo, while a decode stays under ~120 MB of RAM.
MAX_PIXELS = 40_000_000


def photo_to_image(data: bytes, name: str, shape: tuple[int, int],
                   max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode and preprocess one upload into a `shape` uint8 image, or raise `ApiError`."""
    if not data:
        raise ApiError(400, "empty_file", f"{name}: the upload is empty (0 bytes)")
    _check_header(data, name, max_pixels)
    source = io.BytesIO(data)
    source.name = name  # fmnist.images.photo names the source in its messages
    try:
        image = photo.read_image(source, max_pixels)
    except photo.PhotoError as exc:
        raise ApiError(400, "unreadable_image", str(exc)) from None
    try:
        result = photo.prepare_photo(image, size=shape[0], max_pixels=max_pixels)
    except photo.PhotoError:  # the pixels decoded, so what remains is an empty picture
        raise ApiError(422, "no_object",
                       f"{name}: found no garment that stands out from the background (the "
                       "photo looks blank or uniform)") from None
    return result.image


def _check_header(data: bytes, name: str, max_pixels: int) -> None:
    """Format and size from the header only: Pillow's `open` decodes no pixels."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
    except UnidentifiedImageError:
        raise ApiError(415, "not_an_image",
                       f"{name}: not an image (supported: PNG, JPEG, WebP, BMP, GIF, TIFF)"
                       ) from None
    except Image.DecompressionBombError:
        raise ApiError(413, "too_many_pixels",
                       f"{name}: the image declares far more pixels than the limit of "
                       f"{max_pixels:,}; shrink it first") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ApiError(400, "unreadable_image", f"{name}: damaged image header ({exc})") from None
    if width * height > max_pixels:
        raise ApiError(413, "too_many_pixels",
                       f"{name}: {width}×{height} = {width * height:,} pixels is over the limit "
                       f"of {max_pixels:,} (a guard against decompression bombs); shrink it first")
