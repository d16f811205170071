"""Keep libtiff from writing to the terminal: a damaged TIFF must give one line, ours.

Pillow decodes compressed TIFFs (deflate, LZW, JPEG-in-TIFF, …) with libtiff, whose default
error and warning handlers print straight to the process's stderr ("ZIPDecode: Decoding error at
scanline 0, incorrect data check."), below Python, before Pillow turns the failure into an
`OSError` that `fmnist.images.decode` reports as "damaged or truncated image". A fuzzed batch of
320 files printed 14 such extra lines. libtiff offers `TIFFSetErrorHandler` /
`TIFFSetWarningHandler` for this (Leptonica and OpenSlide do the same); Pillow does not call
them, so this module does, once, on the libtiff that Pillow's `_imaging` has loaded — found in
the process's memory map, so the bundled copy of a wheel and a distribution's shared library are
both handled. Nothing is lost: libtiff still returns the error to Pillow, which raises.

Where there is no `/proc/self/maps` (not Linux) or no libtiff is loaded, nothing happens and
libtiff keeps its own messages.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

from PIL import Image  # noqa: F401 — loads Pillow's `_imaging`, and with it libtiff

MAPS = Path("/proc/self/maps")


def loaded_libtiff() -> str | None:
    """The path of the libtiff shared library mapped into this process, if any."""
    try:
        lines = MAPS.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        path = line.split(maxsplit=5)[-1]
        if Path(path).name.startswith("libtiff") and ".so" in path:
            return path
    return None


def silence_libtiff() -> bool:
    """Turn libtiff's stderr handlers off; True when done."""
    path = loaded_libtiff()
    if path is None:
        return False
    try:
        lib = ctypes.CDLL(path)  # the library already loaded: dlopen returns the same handle
        for name in ("TIFFSetErrorHandler", "TIFFSetWarningHandler"):
            setter = getattr(lib, name)
            setter.restype = ctypes.c_void_p
            setter.argtypes = [ctypes.c_void_p]
            setter(None)
    except (OSError, AttributeError):
        return False
    return True
