"""A real photo → a 28×28 uint8 image that looks like Fashion-MNIST.

The steps follow the dataset's own recipe (Xiao et al. 2017, section 2), adapted to photos that
are larger, noisier and not always on a light background:

1. `read_image` (`fmnist.images.decode`, shared with the server): decode the first frame of an
   accepted format, refusing files over the pixel limit before decoding (decompression bombs),
   reduced to a bounded working size, turned upright by its EXIF orientation tag and converted
   from any mode (1, P, CMYK, 16-bit, float, …) to 8-bit L/LA/RGB/RGBA;
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

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

# "v2": colour background model and mask (convert_v2.py); "paper": the dataset paper's recipe.
from fmnist.defaults import DEFAULT_PIPELINE, PIPELINES  # noqa: F401  (re-exported)
from fmnist.images.decode import (  # noqa: F401 — re-exported: the decoder's public names
    MAX_PIXELS,
    ImageSource,
    PhotoError,
    apply_orientation,
    read_image,
    source_name,
    to_standard_mode,
)

DEFAULT_SIZE = 28
# One pixel limit for the command line and the server (fmnist.images.decode.MAX_PIXELS).
DEFAULT_MAX_PIXELS = MAX_PIXELS
# The dataset's product-photo background, #fdfdfd.
DATASET_BACKGROUND = 253
# "Trim edges within 5% of the corner pixel's colour."
TOLERANCE = 0.05 * 255



@dataclass
class PhotoResult:
    """The Fashion-MNIST-like image and, when asked for, each intermediate step."""

    image: np.ndarray
    background: float
    inverted: bool
    mirrored: bool = False
    steps: list[tuple[str, np.ndarray]] = field(default_factory=list)


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
                  max_pixels: int = DEFAULT_MAX_PIXELS,
                  pipeline: str = DEFAULT_PIPELINE) -> PhotoResult:
    """Run the whole recipe on one photo; `size` (≥ 28) is the output's edge length.

    `pipeline` is "v2" (default: colour background model and mask, `convert_v2.py`) or "paper"
    (the dataset paper's grey recipe below, kept for comparison)."""
    if size < 8:
        raise PhotoError(f"output size {size} is too small (use 28, the Fashion-MNIST size)")
    if pipeline not in PIPELINES:
        raise PhotoError(f"unknown photo pipeline {pipeline!r}; use {' or '.join(PIPELINES)}")
    name = source_name(source)
    steps: list[tuple[str, np.ndarray]] = []

    def keep(step: str, value: Image.Image | np.ndarray | Callable[[], np.ndarray]) -> None:
        if keep_steps:
            steps.append((step, _to_uint8(value() if callable(value) else value)))

    image = read_image(source, max_pixels)  # upright, 8-bit, at most WORKING_EDGE pixels wide
    keep("original", image)
    if pipeline == "v2":
        return _finish_v2(image, size, name, keep, steps)
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
    fg, mirrored = _frame_like_dataset(fg, size, keep)
    out = stretch(fg)
    keep("final", out)
    return PhotoResult(image=out, background=background, inverted=inverted, mirrored=mirrored,
                       steps=steps)


def _frame_like_dataset(fg: np.ndarray, size: int,
                        keep: Callable[[str, Image.Image | np.ndarray], None]
                        ) -> tuple[np.ndarray, bool]:
    """The framing both pipelines share once the item is cut out: face it the dataset's way,
    scale the longer side, sharpen what resizing blurred, centre it in a `size`² square."""
    fg, mirrored = face_like_dataset(fg)
    if mirrored:
        keep("mirrored", fg)
    fg = resize_longest(fg, size)
    keep("resized", fg)
    fg = sharpen(fg)
    keep("sharpened", fg)
    return centre(fg, size), mirrored


def _finish_v2(image: Image.Image, size: int, name: str,
               keep: Callable[[str, Image.Image | np.ndarray], None],
               steps: list[tuple[str, np.ndarray]]) -> PhotoResult:
    """Pipeline v2's mask and ink (`convert_v2`), then the paper's mirror/resize/sharpen/centre."""
    from fmnist.images.convert_v2 import convert_v2

    ink, mask, inverted = convert_v2(image, keep)
    if not mask.any():
        raise PhotoError(f"{name}: found no object that stands out from the background "
                         "(the photo looks blank or uniform)")
    ink, mirrored = _frame_like_dataset(ink, size, keep)
    out = np.clip(ink, 0, 255).round().astype(np.uint8)
    keep("final", out)
    return PhotoResult(image=out, background=0.0, inverted=inverted, mirrored=mirrored,
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
