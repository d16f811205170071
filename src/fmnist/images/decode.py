"""Image files and bytes → a bounded, upright, 8-bit Pillow image: the one decoder of the package.

Every way an image enters fmnist — `fmnist predict`, `--data` photo folders, `fmnist serve`
uploads, the Python API — comes through `read_image`, so they accept the same formats, refuse
the same files with the same message and share one pixel limit. Why each guard exists:

* **One list of formats** (`ACCEPTED_FORMATS`): PNG, JPEG, WebP, BMP, GIF and TIFF. Pillow is
  told to try only these decoders (`Image.open(formats=...)`), so the parsers of the thirty-odd
  other formats it knows (AVIF, JPEG 2000, PPM, ICO, PCX, TGA, …) never see hostile input; a
  refused format is named in the message rather than called "not an image".
* **Regular files only**: a FIFO, a device or a process substitution would block `open` or
  stream forever; it is refused before a byte is read (opened non-blocking, then `fstat`).
* **One pixel limit** (`MAX_PIXELS`), judged from the header before any pixel is decoded. A
  JPEG is decoded straight at 1/2, 1/4 or 1/8 scale (`Image.draft`, free in libjpeg) when that
  still leaves `WORKING_EDGE` pixels on the long side, and the limit applies to what is decoded
  — except for a progressive (multi-scan) JPEG, whose every coefficient libjpeg keeps in memory
  at full size whatever the scale: there half the limit applies to the full size.
* **Bounded structure** (`fmnist.images.structure`), walked before Pillow parses the file: at
  most `MAX_JPEG_SCANS` scans and `MAX_JPEG_SEGMENTS` marker segments in a JPEG, at most
  `MAX_PNG_METADATA_CHUNKS` / `MAX_PNG_CHUNKS` chunks in a PNG, at most `MAX_TIFF_ENTRIES`
  entries, `MAX_TIFF_BLOCKS` strips or tiles and `MAX_TIFF_TAG_VALUES` / `MAX_TIFF_RATIONALS`
  values per tag in a TIFF (and `MAX_SCAN_PIXELS` scans × pixels in a JPEG-compressed one), at
  most `MAX_GIF_BLOCKS` extension blocks and `MAX_GIF_SUB_BLOCKS` sub-blocks before a GIF's
  first image — Pillow parses each in Python and libjpeg walks the whole image once per scan.
  From the parsed header, before decoding: a TIFF tile no larger than its image needs
  (`MAX_TIFF_BLOCK_PIXELS`; libtiff allocates a whole tile), an RLE-compressed BMP (decoded by
  Pillow in pure Python) at most `MAX_RLE_BMP_PIXELS`, and a WebP canvas (decoded at ~15 bytes
  a pixel) at most `MAX_WEBP_PIXELS`.
* **Bounded work after decoding**: the image is box-reduced (`Image.reduce`) to at most
  `WORKING_EDGE` pixels on its long side before any float copy is made — the photo recipe ends
  at 28×28, and the float steps of a 40 MP photo cost about a gigabyte.
* **Orientation** from EXIF, read defensively: a damaged EXIF block means "no rotation", never
  an exception that escapes the per-file guard.
* **Mode**: every Pillow mode → L, LA, RGB or RGBA, with a documented scaling rule for 16/32-bit
  integer and float images (docs/predict.md, "Image formats and modes").

Every failure is a `PhotoError` (an `FmnistError`) that names the source; the subclasses tell the
HTTP server which status to answer without parsing messages.
"""

from __future__ import annotations

import io
import math
import os
import stat
import struct
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from fmnist.defaults import MAX_PIXELS  # the one pixel limit (40 MP); re-exported
from fmnist.errors import FmnistError
from fmnist.images import structure
from fmnist.images.libtiff import silence_libtiff
from fmnist.images.structure import (  # noqa: F401 — the structure limits, re-exported
    MAX_GIF_BLOCKS,
    MAX_GIF_SUB_BLOCKS,
    MAX_JPEG_SCANS,
    MAX_JPEG_SEGMENTS,
    MAX_PNG_CHUNKS,
    MAX_PNG_METADATA_CHUNKS,
    MAX_SCAN_PIXELS,
    MAX_TIFF_BLOCKS,
    MAX_TIFF_ENTRIES,
    MAX_TIFF_RATIONALS,
    MAX_TIFF_TAG_VALUES,
)

# Pillow warns of "decompression bombs" (this module bounds pixels and memory itself, before
# anything is decoded) and of bad metadata (the photo is still read, or refused in one line).
# Both are silenced once, at import, as `images/background.py` silences SciPy's: photos are
# decoded on several threads, and a `catch_warnings` block here, ending on one thread, put back
# a filter list that lacked filters imported meanwhile on another.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
warnings.filterwarnings("ignore", category=UserWarning, module="PIL")
# libtiff prints its own errors to stderr below Python (fmnist.images.libtiff): off, once.
silence_libtiff()

# Long edge of the image handed to the photo recipe; ≥ 36× the 28-pixel output.
WORKING_EDGE = 1024
# Pixels of one TIFF tile allowed beyond the image's own area. libtiff allocates (and inflates
# into) a whole tile however small the image, so a 16×16 image declaring one 16384×16384 tile
# costs 1 GB; a real tile is 256×256 or 512×512, and a 1024×1024 floor keeps any tiling of a
# small image legal.
MAX_TIFF_BLOCK_PIXELS = 1024 * 1024
# Pixels of an RLE8/RLE4-compressed BMP. Pillow decodes these in pure Python, up to
# 0.13–0.16 s per megapixel when the runs are short (40 MP of a 5 KB file: 5.9 s); the format
# is for small palette images (icons, old screenshots), never photos. 2 MP costs ≤ ~ 0.3 s.
MAX_RLE_BMP_PIXELS = 2_000_000
# Canvas pixels of a WebP. Pillow decodes every WebP (still or animated) through libwebp's
# animation decoder, which keeps two RGBA canvases, then copies the frame out twice: ≈ 15 bytes
# a pixel (peak RSS, 28 MB of it start-up: 10 MP 186 MB, 12 MP 217 MB, 16 MP 278 MB, 40 MP
# 644 MB — even for a 138-byte animation of one 60×40 frame on a 40 MP canvas). 12.5 MP keeps a
# 12 MP phone photo (4032×3024) at ≈ 225 MB.
MAX_WEBP_PIXELS = 12_500_000
# Pillow's names of the decoders we allow (its JPEG opener also reads MPO, the multi-picture
# JPEG some phones write).
ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")
ACCEPTED_NAMES = "PNG, JPEG, WebP, BMP, GIF, TIFF"
# File name endings picked up inside folders (by `--data` folders and `fmnist predict DIR`).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
# Image files we recognise and refuse, so a folder of them is not called "empty".
REFUSED_SUFFIXES = {
    ".avif": "AVIF", ".heic": "HEIC", ".heif": "HEIF", ".jp2": "JPEG 2000",
    ".j2k": "JPEG 2000", ".jpx": "JPEG 2000", ".jpf": "JPEG 2000", ".ppm": "PPM", ".pgm": "PGM",
    ".pbm": "PBM", ".pnm": "PNM", ".pfm": "PFM", ".ico": "ICO", ".cur": "CUR", ".pcx": "PCX",
    ".tga": "TGA", ".psd": "PSD", ".svg": "SVG", ".qoi": "QOI", ".dds": "DDS", ".eps": "EPS",
    ".icns": "ICNS", ".xbm": "XBM", ".xpm": "XPM", ".jxl": "JPEG XL", ".sgi": "SGI",
    ".ras": "Sun raster", ".im": "IM", ".msp": "MSP", ".dib": "DIB",
}
# Leading bytes of refused formats, for a file whose name does not say what it is.
_REFUSED_MAGIC = (
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"), (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"8BPS", "PSD"),
    (b"qoif", "QOI"), (b"DDS ", "DDS"), (b"icns", "ICNS"), (b"\xff\x0a", "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL ", "JPEG XL"), (b"%!PS", "EPS"), (b"\x01\xda", "SGI"),
    (b"%PDF", "PDF"), (b"DanM", "MSP"), (b"LinS", "MSP"),
)
# What Pillow's decoders raise on malformed input (found by tests/test_security_images.py's
# fuzzing); anything in this list becomes "damaged or truncated image".
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError,
                  KeyError, TypeError, ZeroDivisionError, OverflowError, AttributeError)
# EXIF orientation tag value → the transpose that displays the image upright.
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90,
}

ImageSource = str | Path | bytes | BinaryIO | Image.Image


class PhotoError(FmnistError):
    """A photo cannot be read or contains nothing recognisable as an object."""


class UnsupportedImage(PhotoError):
    """Not an image, or a format outside `ACCEPTED_FORMATS` (HTTP 415)."""


class TooManyPixels(PhotoError):
    """The header declares more pixels than the limit (HTTP 413)."""


class UnreadableImage(PhotoError):
    """An empty, damaged or truncated file, or not a regular file (HTTP 400)."""


class BudgetSpent(TooManyPixels):
    """The images read before this one used up their shared `PixelBudget` (HTTP 413)."""


@dataclass
class PixelBudget:
    """Pixels that a group of images — the photos of one server request — may decode together.

    Why: each image is held to the pixel limit on its own, but one upload may carry sixteen; 16
    compressible 40 MP RGBA PNGs (2.6 MB in all) once held a decoder slot for 11.7 s.
    An image is charged after its header checks and before any pixel is decoded, with what the
    decoder will actually produce (a drafted JPEG its reduced size; a multi-scan JPEG, whose
    coefficients libjpeg keeps at full size, its full size); one that does not fit in what is
    left is refused and the group's later, smaller images may still fit.
    """

    total: int
    spent: int = 0

    def charge(self, size: tuple[int, int], name: str) -> None:
        pixels = size[0] * size[1]
        if self.spent + pixels > self.total:
            raise BudgetSpent(
                f"{name}: not decoded, {pixels:,} pixels would take the photos of this request "
                f"over their shared limit of {self.total:,} ({self.spent:,} decoded before it); "
                "send it in a request of its own")
        self.spent += pixels


def source_name(source: ImageSource) -> str:
    """A name for error messages: the path, or a description of the in-memory object."""
    if isinstance(source, (str, Path)):
        return str(source)
    if isinstance(source, Image.Image):
        return f"<{source.mode} image {source.width}×{source.height}>"
    name = getattr(source, "name", None)
    return name if isinstance(name, str) else "<bytes>"


def read_image(source: ImageSource, max_pixels: int = MAX_PIXELS,
               budget: PixelBudget | None = None) -> Image.Image:
    """Decode the first frame: format-checked, size-bounded, upright, in mode L/LA/RGB/RGBA.

    The result's long edge is at most `WORKING_EDGE`. With a `budget`, the pixels decoded are
    charged to it first (`BudgetSpent` when they do not fit). Every failure is a `PhotoError`
    naming the source; nothing else escapes.
    """
    name = source_name(source)
    if isinstance(source, Image.Image):  # opened by the caller, perhaps not loaded yet
        check_pixels(source.size, name, max_pixels)
        try:
            if getattr(source, "tile", None) or source.format == "WEBP":  # not decoded yet
                # (a WebP has no tile until loaded): the same checks as a file
                _check_opened(source, name, max_pixels, _walk_opened(source, name))
            if budget is not None:
                budget.charge(source.size, name)
            return _finish(source, name, _orientation(source))
        except _DECODE_ERRORS as exc:
            raise UnreadableImage(f"{name}: damaged or truncated image ({exc})") from None
    if isinstance(source, (str, Path)):
        with open_regular(source) as handle:
            return _decode(handle, name, max_pixels, budget)
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(bytes(source))
    if not (hasattr(source, "read") and hasattr(source, "seek")):
        raise UnsupportedImage(f"expected a path, bytes, a binary file or a PIL image, got "
                               f"{type(source).__name__}")
    return _decode(source, name, max_pixels, budget)


def open_regular(path: str | Path) -> BinaryIO:
    """Open a regular, non-empty file for reading; refuse FIFOs, devices and sockets unread.

    Opened with `O_NONBLOCK` so that a FIFO without a writer cannot block the open itself.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise UnreadableImage(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UnreadableImage(f"{path}: is a folder, not a file") from None
    except OSError as exc:
        raise UnreadableImage(f"{path}: cannot open ({exc.strerror or exc})") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise UnreadableImage(f"{path}: not a regular file (a pipe, FIFO, socket or device); "
                              "save the image to a file first")
    if info.st_size == 0:
        os.close(fd)
        raise UnreadableImage(f"{path}: empty file (0 bytes)")
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def _decode(handle: BinaryIO, name: str, max_pixels: int,
            budget: PixelBudget | None) -> Image.Image:
    head = handle.read(16)
    if not isinstance(head, bytes):
        raise UnsupportedImage(f"{name}: a text-mode file; open images in binary mode ('rb')")
    if not head:
        raise UnreadableImage(f"{name}: empty file (0 bytes)")
    layout = _check_structure(handle, name, head)
    handle.seek(0)
    try:
        with Image.open(handle, formats=ACCEPTED_FORMATS) as image:
            _check_opened(image, name, max_pixels, layout)
            full_size = image.size
            _draft(image)
            check_pixels(image.size, name, max_pixels)
            if budget is not None:
                budget.charge(full_size if _multi_scan_jpeg(image, layout) else image.size, name)
            orientation = _orientation(image)
            image.seek(0)  # the first frame of an animation
            image.load()
            return _finish(image, name, orientation)
    except PhotoError:
        raise
    except Image.DecompressionBombError as exc:
        raise TooManyPixels(f"{name}: refused, far too many pixels ({exc})") from None
    except UnidentifiedImageError:
        raise UnsupportedImage(_unsupported_message(name, head)) from None
    except MemoryError:
        raise TooManyPixels(f"{name}: not enough memory to decode this image") from None
    except _DECODE_ERRORS as exc:
        raise UnreadableImage(f"{name}: damaged or truncated image ({exc})") from None


def check_pixels(size: tuple[int, int], name: str, max_pixels: int = MAX_PIXELS, *,
                 kind: str = "", why: str = "a guard against decompression bombs",
                 advice: str = "shrink the photo first") -> None:
    """Refuse an image over `max_pixels` (decompression bombs) or with no pixels at all; `kind`,
    `why` and `advice` word the refusal for a format held to a lower limit of its own."""
    width, height = size
    if width * height > max_pixels:
        raise TooManyPixels(f"{name}: {width}×{height} = {width * height:,} pixels is over the "
                            f"limit of {max_pixels:,}{kind} ({why}); {advice}")
    if width <= 0 or height <= 0:
        raise UnreadableImage(f"{name}: the image has no pixels ({width}×{height})")


def _check_structure(handle: BinaryIO, name: str, head: bytes) -> structure.JpegLayout | None:
    """Walk a JPEG's segments and scans, a PNG's chunks, a TIFF's first directory or the blocks
    before a GIF's first image, before Pillow parses them.

    Pillow's parsers loop over these in Python and libjpeg walks the whole image once per scan,
    with no bound on how many a file holds (see `fmnist.images.structure`); the walk reads only
    headers, so a file over a limit is refused in microseconds, before Pillow allocates anything.
    """
    try:
        return structure.check_structure(handle, head)
    except structure.Refused as exc:
        raise UnreadableImage(f"{name}: refused, {exc}") from None
    except OSError as exc:
        raise UnreadableImage(f"{name}: cannot read ({exc})") from None


def _walk_opened(image: Image.Image, name: str) -> structure.JpegLayout | None:
    """`_check_structure` on the file behind an image the caller opened but has not loaded."""
    handle = getattr(image, "fp", None)
    if handle is None or image.format not in ("JPEG", "MPO", "PNG", "TIFF"):
        return None
    position = handle.tell()
    try:
        handle.seek(0)
        return _check_structure(handle, name, handle.read(16))
    finally:
        handle.seek(position)


def _check_opened(image: Image.Image, name: str, max_pixels: int,
                  layout: structure.JpegLayout | None) -> None:
    """The checks on Pillow's parsed header that must come before anything is decoded."""
    _check_multi_scan_jpeg(image, name, max_pixels, layout)
    _check_tiff_tiles(image, name)
    _check_rle_bmp(image, name)
    _check_webp(image, name)


def _check_multi_scan_jpeg(image: Image.Image, name: str, max_pixels: int,
                           layout: structure.JpegLayout | None) -> None:
    """Apply half the pixel limit to the full size of a progressive or multi-scan JPEG.

    `draft` makes libjpeg output 1/8 of the pixels, but for a file of several scans it still
    keeps every DCT coefficient of the full image (2 bytes × pixels × components) until the last
    scan: a 13000×13000 progressive JPEG of 0.7 MB, drafted to 1625², peaked at 1.2–1.6 GB,
    and a 40 MP one (6300²) still at 268 MB; at half the limit it stays near the ~160 MB any
    image may cost (docs/security.md).
    """
    if not _multi_scan_jpeg(image, layout):
        return
    # 2 bytes × 3 components a pixel: 20 MP ≈ 120 MB of coefficients
    check_pixels(image.size, name, max_pixels // 2, kind=" for a progressive JPEG",
                 why="decoding one keeps the whole full-size image in memory at any scale",
                 advice="shrink the photo or save it as a baseline JPEG")
    width, height = image.size
    scans = layout.scans if layout is not None else 1
    if scans * width * height > MAX_SCAN_PIXELS:
        raise UnreadableImage(f"{name}: refused, {scans} scans of a {width}×{height} JPEG are "
                              f"over the limit of {MAX_SCAN_PIXELS:,} scans × pixels (the "
                              "decoder walks the whole image once per scan)")


def _multi_scan_jpeg(image: Image.Image, layout: structure.JpegLayout | None) -> bool:
    """A progressive or multi-scan JPEG: libjpeg keeps its coefficients at full size."""
    if image.format not in ("JPEG", "MPO"):
        return False
    progressive = image.info.get("progressive") or image.info.get("progression")
    return bool(progressive or (layout is not None and layout.multi_scan))


def _check_tiff_tiles(image: Image.Image, name: str) -> None:
    """Refuse a TIFF tile much larger than its image: libtiff allocates and fills a whole tile.

    A tile may cover the image or `MAX_TIFF_BLOCK_PIXELS`, whichever is more; a 16×16 image with
    one declared 16384×16384 deflate tile (1 MB) otherwise cost 1 GB and 2.9 s. (Strips need no
    such check: libtiff clamps RowsPerStrip to the image's height.)
    """
    if image.format != "TIFF":
        return
    tile_width, tile_length = image.tag_v2.get(322), image.tag_v2.get(323)  # TileWidth/Length
    if not (isinstance(tile_width, int) and isinstance(tile_length, int)):
        return
    width, height = image.size
    if tile_width * tile_length > max(width * height, MAX_TIFF_BLOCK_PIXELS):
        raise UnreadableImage(f"{name}: refused, a {width}×{height} TIFF declares "
                              f"{tile_width}×{tile_length} tiles (a tile may cover at most the "
                              f"image or {MAX_TIFF_BLOCK_PIXELS:,} pixels; the decoder allocates "
                              "whole tiles)")


def _check_rle_bmp(image: Image.Image, name: str) -> None:
    """Cap an RLE8/RLE4 BMP at `MAX_RLE_BMP_PIXELS`: Pillow decodes RLE in pure Python.

    A 5 KB 40000×1000 RLE8 file took 5.9 s; eight in one upload request 28.5 s.
    """
    if image.format != "BMP" or not image.tile or image.tile[0][0] != "bmp_rle":
        return
    check_pixels(image.size, name, MAX_RLE_BMP_PIXELS, kind=" for an RLE-compressed BMP",
                 why="decoded slowly", advice="save it as PNG or an uncompressed BMP")


def _check_webp(image: Image.Image, name: str) -> None:
    """Cap a WebP's canvas at `MAX_WEBP_PIXELS`: Pillow decodes WebP at ~15 bytes a pixel.

    libwebp's animation decoder (Pillow's only WebP path) keeps two RGBA canvases and Pillow
    copies the frame twice more: a still 40 MP WebP of 72 KB peaked at 644 MB, and so did a
    138-byte animation whose one 60×40 frame sits on a 40 MP canvas.
    """
    if image.format != "WEBP":
        return
    check_pixels(image.size, name, MAX_WEBP_PIXELS, kind=" for a WebP",
                 why="decoding one takes about 15 bytes a pixel",
                 advice="shrink the photo or save it as PNG or JPEG")


def _draft(image: Image.Image) -> None:
    """Let libjpeg decode at 1/2, 1/4 or 1/8 scale while the long edge stays ≥ WORKING_EDGE.

    The scale is chosen by the working size, not by the limit, so the result does not depend
    on whether the photo is near the limit.
    """
    if image.format not in ("JPEG", "MPO"):
        return
    width, height = image.size
    scale = min(1.0, WORKING_EDGE / max(width, height, 1))
    if scale < 1.0:
        image.draft(None, (max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))))


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation tag, 1 ("upright") when absent or unreadable.

    Pillow's EXIF parser raises a range of exception types on a damaged block (issue 11 #7);
    a photo with a broken EXIF block is still a photo, so the tag is simply not honoured.
    """
    try:
        value = image.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 — any failure inside the EXIF parser means "no tag"
        return 1
    return value if isinstance(value, int) and value in _ORIENTATION else 1


def _finish(image: Image.Image, name: str, orientation: int) -> Image.Image:
    """Reduce to the working size, convert to a standard mode, and turn upright."""
    image = _reduce(image)
    image = to_standard_mode(image, name)
    if orientation in _ORIENTATION:
        image = image.transpose(_ORIENTATION[orientation])
    return image


def _reduce(image: Image.Image) -> Image.Image:
    """A box-filtered integer reduction to ≤ WORKING_EDGE on the long side (a copy either way)."""
    if image.mode == "1":
        image = image.convert("L")
    elif image.mode in ("P", "PA"):
        image = image.convert("RGBA" if image.mode == "PA" or "transparency" in image.info
                              else "RGB")
    elif image.mode.startswith("I;16"):
        image = image.convert("I")
    factor = math.ceil(max(image.size) / WORKING_EDGE)
    return image.reduce(factor) if factor > 1 else image.copy()


def apply_orientation(image: Image.Image) -> Image.Image:
    """Rotate/flip as the EXIF orientation tag says (an unreadable tag leaves it as it is)."""
    orientation = _orientation(image)
    if orientation in _ORIENTATION:
        return image.transpose(_ORIENTATION[orientation])
    return image


def to_standard_mode(image: Image.Image, name: str = "image") -> Image.Image:
    """Convert any Pillow mode to 8-bit L, LA, RGB or RGBA, keeping transparency.

    Integer images of more than 8 bits are scaled by the smallest of the 8-, 16- or 32-bit
    ranges that holds their largest value (so neither a 16-bit nor a 32-bit photo saturates);
    float images are 0..1 when their largest value is at most 1 and 0..255 otherwise. Negative,
    NaN or out-of-range values are refused: they are measurements, not a photo.
    """
    mode = image.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        return image
    if mode.startswith("I") or mode == "F":
        return Image.fromarray(_scale_to_uint8(np.asarray(image), name), "L")
    if mode == "1":
        return image.convert("L")
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in image.info
        return image.convert("RGBA" if has_alpha else "RGB")
    if mode == "La":
        return image.convert("LA")
    if mode in ("RGBa", "RGBX"):
        return image.convert("RGBA" if mode == "RGBa" else "RGB")
    return image.convert("RGB")  # CMYK, YCbCr, LAB, HSV


def _scale_to_uint8(values: np.ndarray, name: str) -> np.ndarray:
    is_float = np.issubdtype(values.dtype, np.floating)
    values = values.astype(np.float64)
    if not np.isfinite(values).all():
        raise UnreadableImage(f"{name}: the image holds NaN or infinite pixel values")
    low, high = float(values.min(initial=0)), float(values.max(initial=0))
    if low < 0:
        raise UnreadableImage(f"{name}: the image holds negative pixel values ({low:g})")
    # floats: 0..1 or 0..255; integers: by the smallest 8/16/32-bit range holding the maximum
    scale = (255.0 if high <= 1.0 else 1.0) if is_float else 255.0 / _integer_range(high)
    if high * scale > 255.0 + 1e-6:
        raise UnreadableImage(f"{name}: float pixel values above 255 ({high:g})")
    return np.clip(values * scale, 0, 255).round().astype(np.uint8)


def _integer_range(high: float) -> float:
    for top in (255.0, 65535.0, 4294967295.0):
        if high <= top:
            return top
    return high


def _unsupported_message(name: str, head: bytes) -> str:
    kind = _refused_kind(name, head)
    if kind:
        return (f"{name}: {kind} images are not accepted (accepted: {ACCEPTED_NAMES}); "
                "convert it to PNG or JPEG first")
    return f"{name}: not an image in an accepted format ({ACCEPTED_NAMES})"


def _refused_kind(name: str, head: bytes) -> str | None:
    """Which known-but-refused format a file is, from its name or else its first bytes."""
    if kind := REFUSED_SUFFIXES.get(Path(name).suffix.lower()):
        return kind
    if head[:4] in (b"\x00\x00\x01\x00", b"\x00\x00\x02\x00") and head[4:6] != b"\x00\x00":
        return "ICO" if head[2] == 1 else "CUR"  # a TGA header can start the same way
    if head[4:12] in (b"ftypavif", b"ftypavis"):
        return "AVIF"
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"hevc"):
        return "HEIC"
    for magic, kind in _REFUSED_MAGIC:
        if head.startswith(magic):
            return kind
    if len(head) >= 2 and head[:1] == b"P" and head[1:2] in b"1234567f" and \
            head[2:3] in (b"\n", b"\r", b" ", b"\t"):
        return "PPM/PGM/PBM"
    if head[:1] == b"\x0a" and head[1:2] in b"\x00\x02\x03\x04\x05" and head[2:3] == b"\x01":
        return "PCX"
    return None


def refused_note(paths: Iterable[Path]) -> str:
    """A note "; it holds AVIF, ICO files, which are not accepted …" for refused image files among
    `paths`, else "" — so a folder of them is not reported as holding no images (issue 11 #18).
    """
    kinds = sorted({kind for p in paths if (kind := REFUSED_SUFFIXES.get(p.suffix.lower()))
                    and p.is_file()})
    if not kinds:
        return ""
    return (f"; it holds {', '.join(kinds)} files, which are not accepted (accepted: "
            f"{ACCEPTED_NAMES}; convert them to PNG or JPEG)")
