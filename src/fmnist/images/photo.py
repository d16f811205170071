"""A real photo → a 28×28 uint8 image that looks like Fashion-MNIST.

The steps follow the dataset's own recipe (Xiao et al. 2017, section 2), adapted to photos that
are larger, noisier and not always on a light background:

1. `read_image`: decode the first frame, refusing files over a pixel limit before decoding
   (decompression bombs) and naming the file in every error;
2. `apply_orientation`: honour the EXIF orientation tag (phones store photos sideways);
3. `to_standard_mode`: any mode (1, L, P, RGB, RGBA, CMYK, 16-bit, float) → 8-bit L/LA/RGB/RGBA;
4. `composite_alpha`: transparent pixels are laid on the dataset's light-grey background #fdfdfd;
5. `to_grayscale`: ITU-R 601 luma, as float;
6. `estimate_background`: the median of a thin ring of border pixels;
7. `to_foreground`: garment bright, background 0 — inverted when the background is light (the
   paper's "negate"), kept when it is dark, so both kinds of photo end up the same way round;
   pixels within 5% of the background become exactly 0, as in the dataset;
8. `trim`: crop to the bounding box of what differs from the background by more than 5%;
9. `face_like_dataset`: mirror wide objects (footwear) so the heel is on the right, the way
   every shoe in the dataset was photographed;
10. `resize_longest`: longest edge → 28 keeping the aspect ratio (antialiased, because photos are
   far larger than the paper's 51×73 thumbnails, which it could simply subsample);
11. `sharpen`: Gaussian unsharp mask, radius 1, sigma 1;
12. `centre`: pad the short edge so the bounding box sits in the middle of a square canvas;
13. `stretch`: scale so the brightest pixel is 255 (99% of Fashion-MNIST images peak at ≥ 254).

The order differs from the paper's list in one place: the negation happens at step 7 rather than
last, so trimming, resampling and padding all see a background of 0, which is what the dataset's
padding is. Each step is a small function; `prepare_photo(..., keep_steps=True)` keeps every
intermediate image so `save_steps` can show a user what the model saw.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy.ndimage import gaussian_filter

from fmnist.errors import FmnistError

DEFAULT_SIZE = 28
# 64 megapixels: larger than any phone photo; a 20000×20000 "image" is refused unread.
DEFAULT_MAX_PIXELS = 64_000_000
# The dataset's product-photo background, #fdfdfd.
DATASET_BACKGROUND = 253
# "Trim edges within 5% of the corner pixel's colour."
TOLERANCE = 0.05 * 255

ImageSource = str | Path | bytes | BinaryIO | Image.Image


class PhotoError(FmnistError):
    """A photo cannot be read or contains nothing recognisable as an object."""


@dataclass
class PhotoResult:
    """The Fashion-MNIST-like image and, when asked for, each intermediate step."""

    image: np.ndarray
    background: float
    inverted: bool
    mirrored: bool = False
    steps: list[tuple[str, np.ndarray]] = field(default_factory=list)


def source_name(source: ImageSource) -> str:
    """A name for error messages: the path, or a description of the in-memory object."""
    if isinstance(source, (str, Path)):
        return str(source)
    if isinstance(source, Image.Image):
        return f"<{source.mode} image {source.width}×{source.height}>"
    return getattr(source, "name", None) or "<bytes>"


def read_image(source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode the first frame of an image file, checking its size before decoding the pixels.

    Pillow reads only the header on `open`, so a huge declared size is refused without
    allocating it. Every failure is a `PhotoError` that names the source and says why.
    """
    name = source_name(source)
    if isinstance(source, Image.Image):
        image = source
        _check_pixels(image, name, max_pixels)
        return image.copy()
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    try:
        if isinstance(source, (str, Path)) and Path(source).stat().st_size == 0:
            raise PhotoError(f"{name}: empty file (0 bytes)")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as image:
                _check_pixels(image, name, max_pixels)
                image.seek(0)  # first frame of an animation
                image.load()
                return image.copy()
    except PhotoError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PhotoError(f"{name}: refused, too many pixels ({exc})") from exc
    except UnidentifiedImageError:
        raise PhotoError(f"{name}: not an image Pillow can read "
                         "(supported: PNG, JPEG, WebP, BMP, GIF, TIFF)") from None
    except FileNotFoundError:
        raise PhotoError(f"{name}: no such file") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise PhotoError(f"{name}: damaged or truncated image ({exc})") from exc


def _check_pixels(image: Image.Image, name: str, max_pixels: int) -> None:
    width, height = image.size
    if width * height > max_pixels:
        raise PhotoError(f"{name}: {width}×{height} = {width * height:,} pixels is over the limit "
                         f"of {max_pixels:,} (a guard against decompression bombs); "
                         "shrink the photo first")
    if width == 0 or height == 0:
        raise PhotoError(f"{name}: the image has no pixels ({width}×{height})")


def apply_orientation(image: Image.Image) -> Image.Image:
    """Rotate/flip as the EXIF orientation tag says, so the garment stands the right way up."""
    return ImageOps.exif_transpose(image) or image


def to_standard_mode(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit L, LA, RGB or RGBA, keeping transparency.

    16-bit and 32-bit integer images are scaled by their bit depth (not clipped, which would turn
    a 16-bit photo white); float images are taken as 0..1 when their maximum is at most 1.
    """
    mode = image.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        return image
    if mode.startswith("I") or mode == "F":
        values = np.asarray(image, dtype=np.float64)
        if mode == "F":
            scale = 255.0 if values.max(initial=0) <= 1.0 else 1.0
        else:
            scale = 255.0 / 65535.0 if values.max(initial=0) > 255 else 1.0
        return Image.fromarray(np.clip(values * scale, 0, 255).round().astype(np.uint8), "L")
    if mode == "1":
        return image.convert("L")
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in image.info
        return image.convert("RGBA" if has_alpha else "RGB")
    if mode in ("La",):
        return image.convert("LA")
    if mode in ("RGBa", "RGBX"):
        return image.convert("RGBA" if mode == "RGBa" else "RGB")
    return image.convert("RGB")  # CMYK, YCbCr, LAB, HSV


def composite_alpha(image: Image.Image, background: int = DATASET_BACKGROUND) -> Image.Image:
    """Lay a transparent image on a flat background (L or RGB result, no alpha)."""
    if image.mode not in ("LA", "RGBA"):
        return image
    base = Image.new(image.mode, image.size, (background,) * (len(image.mode) - 1) + (255,))
    base.alpha_composite(image)
    return base.convert(image.mode[:-1])


def to_grayscale(image: Image.Image) -> np.ndarray:
    """Luma (ITU-R 601: 0.299 R + 0.587 G + 0.114 B) as float32 in 0..255."""
    values = np.asarray(image, dtype=np.float32)
    if values.ndim == 2:
        return values
    return values[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def estimate_background(gray: np.ndarray) -> float:
    """The median of a ring of border pixels, about 2% of the short edge wide (at least 1).

    The median ignores a garment that touches one edge, where the corner pixel alone (the
    paper's choice, fine for studio thumbnails) can land on the garment or on JPEG noise.
    """
    width = max(1, round(0.02 * min(gray.shape)))
    ring = np.concatenate([gray[:width].ravel(), gray[-width:].ravel(),
                           gray[:, :width].ravel(), gray[:, -width:].ravel()])
    return float(np.median(ring))


def to_foreground(gray: np.ndarray, background: float,
                  tolerance: float = TOLERANCE) -> tuple[np.ndarray, bool]:
    """Garment bright on 0: distance from the background, scaled to fill 0..255.

    A light background (≥ 128) is negated, the paper's step; a dark one is not, so a garment
    photographed on a dark floor comes out the same way round. Values within `tolerance` of the
    background become 0. Returns the image and whether it was inverted.
    """
    inverted = background >= 128
    if inverted:
        fg = (background - gray) * (255.0 / max(background, 1.0))
    else:
        fg = (gray - background) * (255.0 / max(255.0 - background, 1.0))
    fg = np.clip(fg, 0, 255).astype(np.float32)
    fg[fg <= tolerance] = 0
    return fg, inverted


def bounding_box(fg: np.ndarray, tolerance: float = TOLERANCE,
                 min_fraction: float = 0.01) -> tuple[int, int, int, int]:
    """(top, bottom, left, right), end-exclusive, of the rows and columns holding the object.

    A row or column counts when more than `min_fraction` of its pixels (at least one) exceed
    `tolerance`, so isolated specks of sensor noise do not stretch the box.
    """
    mask = fg > tolerance
    rows = np.flatnonzero(mask.sum(axis=1) >= max(1, min_fraction * fg.shape[1]))
    cols = np.flatnonzero(mask.sum(axis=0) >= max(1, min_fraction * fg.shape[0]))
    if rows.size == 0 or cols.size == 0:
        raise PhotoError("found no object that stands out from the background "
                         "(the photo looks blank or uniform)")
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def trim(fg: np.ndarray, tolerance: float = TOLERANCE) -> np.ndarray:
    """Crop to the object's bounding box."""
    top, bottom, left, right = bounding_box(fg, tolerance)
    return fg[top:bottom, left:right]


def face_like_dataset(fg: np.ndarray, min_aspect: float = 1.2) -> tuple[np.ndarray, bool]:
    """Mirror a wide object whose taller end is on the left; returns the image and whether.

    Zalando photographs footwear from the side with the toe to the left: the heel or shaft (the
    taller end) is on the right in 99.5% of the dataset's sneakers, 100% of its ankle boots and
    91% of its sandals (measured on the training set). A photo of a right shoe is the mirror
    image, and a model trained without flips reads it poorly. Only objects at least
    `min_aspect` times wider than tall are considered; garments (taller than wide) never flip.
    """
    height, width = fg.shape
    if width < min_aspect * height:
        return fg, False
    present = fg > TOLERANCE
    profile = np.where(present.any(axis=0), height - present.argmax(axis=0), 0)
    half = width // 2
    left, right = profile[:half].mean(), profile[width - half:].mean()
    if left > right + 0.02 * height:
        return fg[:, ::-1].copy(), True
    return fg, False


def resize_longest(fg: np.ndarray, size: int = DEFAULT_SIZE) -> np.ndarray:
    """Scale so the longest edge is `size`, keeping the aspect ratio (Lanczos, antialiased)."""
    height, width = fg.shape
    scale = size / max(height, width)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = Image.fromarray(fg.astype(np.float32), "F").resize(
        new_size, Image.Resampling.LANCZOS)
    return np.clip(np.asarray(resized, dtype=np.float32), 0, 255)


def sharpen(fg: np.ndarray, sigma: float = 1.0, radius: float = 1.0,
            amount: float = 1.0) -> np.ndarray:
    """Gaussian unsharp mask (the paper's "sharpen, radius 1.0, sigma 1.0")."""
    blurred = gaussian_filter(fg, sigma=sigma, truncate=radius / sigma, mode="nearest")
    return np.clip(fg + amount * (fg - blurred), 0, 255).astype(np.float32)


def centre(fg: np.ndarray, size: int = DEFAULT_SIZE) -> np.ndarray:
    """Place the (trimmed) object in the middle of a black `size`×`size` canvas."""
    height, width = fg.shape
    if height > size or width > size:
        raise ValueError(f"{height}×{width} does not fit a {size}×{size} canvas")
    canvas = np.zeros((size, size), dtype=np.float32)
    top, left = (size - height) // 2, (size - width) // 2
    canvas[top:top + height, left:left + width] = fg
    return canvas


def stretch(fg: np.ndarray) -> np.ndarray:
    """Scale so the brightest pixel is 255 and round to uint8."""
    peak = float(fg.max(initial=0))
    scaled = fg * (255.0 / peak) if peak > 0 else fg
    return np.clip(scaled, 0, 255).round().astype(np.uint8)


def prepare_photo(source: ImageSource, size: int = DEFAULT_SIZE, *, keep_steps: bool = False,
                  max_pixels: int = DEFAULT_MAX_PIXELS) -> PhotoResult:
    """Run the whole recipe on one photo; `size` (≥ 28) is the output's edge length."""
    if size < 8:
        raise PhotoError(f"output size {size} is too small (use 28, the Fashion-MNIST size)")
    name = source_name(source)
    steps: list[tuple[str, np.ndarray]] = []

    def keep(step: str, value: Image.Image | np.ndarray) -> None:
        if keep_steps:
            steps.append((step, _to_uint8(value)))

    image = read_image(source, max_pixels)
    keep("original", to_standard_mode(image))
    image = to_standard_mode(apply_orientation(image))
    keep("oriented", image)
    image = composite_alpha(image)
    keep("composited", image)
    gray = to_grayscale(image)
    keep("grayscale", gray)
    background = estimate_background(gray)
    fg, inverted = to_foreground(gray, background)
    keep("foreground", fg)
    try:
        fg = trim(fg)
    except PhotoError as exc:
        raise PhotoError(f"{name}: {exc}") from None
    keep("trimmed", fg)
    fg, mirrored = face_like_dataset(fg)
    if mirrored:
        keep("mirrored", fg)
    fg = resize_longest(fg, size)
    keep("resized", fg)
    fg = sharpen(fg)
    keep("sharpened", fg)
    fg = centre(fg, size)
    out = stretch(fg)
    keep("final", out)
    return PhotoResult(image=out, background=background, inverted=inverted, mirrored=mirrored,
                       steps=steps)


def save_steps(result: PhotoResult, folder: Path | str, stem: str) -> list[Path]:
    """Write each kept step as `folder/stem/NN-step.png`.

    Images smaller than 280 pixels are enlarged by an integer factor with nearest-neighbour
    resampling, so a 28×28 result is visible as pixels rather than a dot.
    """
    out_dir = Path(folder) / stem
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for index, (step, array) in enumerate(result.steps, start=1):
        image = Image.fromarray(array)
        factor = max(1, 280 // max(image.size))
        if factor > 1:
            image = image.resize((image.width * factor, image.height * factor),
                                 Image.Resampling.NEAREST)
        path = out_dir / f"{index:02d}-{step}.png"
        image.save(path)
        written.append(path)
    return written


def _to_uint8(value: Image.Image | np.ndarray) -> np.ndarray:
    if isinstance(value, Image.Image):
        return np.asarray(value.convert("RGBA" if "A" in value.mode else "RGB"))
    return np.clip(value, 0, 255).round().astype(np.uint8)
