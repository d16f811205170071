"""Cheap byte-level walks over a JPEG's or PNG's structure, run before Pillow parses the file.

Pillow reads the marker segments of a JPEG and the chunks of a PNG in a Python loop, keeping
every APP segment and private chunk, and libjpeg re-walks every coefficient block of the image
once per scan of a progressive JPEG. Nothing in either bounds how many there are, so a small
file made of nothing but empty segments, chunks or repeated scans costs seconds of CPU and
hundreds of MB (docs/security.md, "Images and photos"). These walks count them first, reading
only headers and seeking over data, and stop as soon as a limit is passed, so the walk itself
stays cheap: microseconds on a baseline photo, ~ 0.2 ms per MB of a progressive one (whose
decoding costs ~ 100× that).

A walk only refuses; whatever it does not understand (truncation, a bad length, an unknown
marker) is left to Pillow to report, so a damaged file gets the same message as before.
`Refused` carries the reason without the file's name; `fmnist.images.decode` adds it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

# Scans (SOS markers) in a multi-scan JPEG. A baseline file has 1 (or one per colour
# component); libjpeg's default progressive script has 10 for colour and 6 for grey, and
# mozjpeg's or jpegtran's scripts stay in the tens. libjpeg walks every block of the image on
# each scan, so 2,000 repeated refinement scans (a 9 MB upload) cost 67 s of CPU; 100 scans of a
# 36 MP grey image cost ~ 1.1 s (a 200-scan one 1.8 s), and leave ample room for real scripts.
MAX_JPEG_SCANS = 100
# Marker segments (APPn, COM, DQT, DHT, …) before the first scan. A camera JPEG has ≈ 10–20 (an
# MPO or a file with a long ICC profile split over APP2 segments a few dozen); Pillow parses and
# keeps each one, so 2.5 M empty APP1 segments in a 10 MB upload cost 3.6 s and 357 MB.
MAX_JPEG_SEGMENTS = 1_000
# Bytes skipped between JPEG markers (junk, 0xFF fill). Pillow skips them one byte at a time in
# Python (10 MB of 0xFF fill: 4.4 s); real writers emit at most a handful. 64 KB costs < 30 ms.
MAX_JPEG_SKIPPED_BYTES = 65_536
# PNG chunks other than image data (IDAT, fdAT, and an APNG's later frame headers). A PNG has a
# handful (IHDR, PLTE, tRNS, gAMA, pHYs, iCCP, a few tEXt/iTXt/eXIf, IEND); Pillow parses each in
# Python and keeps unknown ones, so 830 k empty private chunks cost 2.65 s.
MAX_PNG_METADATA_CHUNKS = 1_000
# All PNG chunks, data included. A 40 MP PNG written with 8 KB IDAT chunks (libpng's default)
# needs ~ 6,400; Pillow feeds each IDAT to zlib through a Python loop.
MAX_PNG_CHUNKS = 50_000

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOI = b"\xff\xd8\xff"
# Markers Pillow and libjpeg read without a length field: JPG, RST0–7, SOI, EOI, JPG0–13.
_STANDALONE = frozenset({0xC8, *range(0xD0, 0xDA), *range(0xF0, 0xFE)})
# Start-of-frame markers (the frame header holds the size and the component count), and the
# progressive ones among them.
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_PROGRESSIVE_SOF = frozenset({0xC2, 0xC6, 0xCA, 0xCE})
_BLOCK = 1 << 20  # read size when counting scans (numpy's compares pay off from ~ 1 MB)


class Refused(Exception):
    """The file's structure is over one of the limits above; the message says which and why."""


@dataclass(frozen=True)
class JpegLayout:
    """What the walk up to the first scan learnt about a JPEG."""

    size: tuple[int, int] | None  # width, height from the frame header (None: no frame seen)
    progressive: bool  # a progressive frame (SOF2/6/10/14)
    multi_scan: bool  # progressive, or the first scan leaves out some components
    scans: int  # SOS markers counted in a multi-scan file (an upper bound), else 1 (0: no scan)


def check_structure(handle: BinaryIO, head: bytes) -> JpegLayout | None:
    """Walk a JPEG or PNG (judged by `head`, the first bytes) and raise `Refused` if over a limit.

    Returns the JPEG's layout (None for anything else). Leaves the position of `handle` wherever
    the walk stopped: the caller seeks back before Pillow reads it.
    """
    if head.startswith(_JPEG_SOI):
        return walk_jpeg(handle)
    if head.startswith(_PNG_SIGNATURE):
        walk_png(handle)
    return None


def walk_jpeg(handle: BinaryIO) -> JpegLayout:
    """Count the marker segments before the first scan, then the scans; refuse too many of either.

    The segments are walked the way Pillow's parser walks them (skipping junk and fill bytes,
    standalone markers without a length). The scans are counted as the bytes 0xFF 0xDA from the
    first scan on: inside entropy-coded data a 0xFF is always followed by 0x00 or a RSTn marker,
    so 0xFF 0xDA is a real SOS marker or a byte pair inside a table segment — an upper bound.
    They are counted only in a multi-scan file (progressive, or a first scan without every
    component), the only kind libjpeg decodes scan after scan: a baseline file's data is not
    read twice (counting costs ~ 0.2 ms per MB).
    """
    handle.seek(2)
    segments = skipped = 0
    size: tuple[int, int] | None = None
    components = 0
    progressive = False
    while True:
        byte = handle.read(1)
        if not byte:
            return JpegLayout(size, progressive, progressive, 0)  # no scan: Pillow will say
        if byte != b"\xff":
            skipped = _skip(skipped)
            continue
        marker = handle.read(1)
        while marker == b"\xff":  # fill bytes before a marker
            skipped = _skip(skipped)
            marker = handle.read(1)
        if not marker:
            return JpegLayout(size, progressive, progressive, 0)
        code = marker[0]
        if code == 0x00:  # an escaped 0xFF outside a scan: junk to Pillow
            skipped = _skip(skipped)
            continue
        segments += 1
        if segments > MAX_JPEG_SEGMENTS:
            raise Refused(f"more than {MAX_JPEG_SEGMENTS:,} JPEG marker segments before the image "
                          "data (a camera writes about 20; each costs parsing time and memory)")
        if code in _STANDALONE:
            continue
        if code < 0xC0:  # not a marker Pillow knows: it reports the damage itself
            return JpegLayout(size, progressive, progressive, 0)
        raw = handle.read(2)
        if len(raw) < 2 or (length := struct.unpack(">H", raw)[0]) < 2:
            return JpegLayout(size, progressive, progressive, 0)
        body = handle.read(min(length - 2, 6)) if code in _SOF or code == 0xDA else b""
        if code in _SOF and len(body) == 6:
            height, width = struct.unpack(">HH", body[1:5])
            size, components = (width, height), body[5]
            progressive = progressive or code in _PROGRESSIVE_SOF
        if code == 0xDA:
            multi_scan = progressive or (bool(body) and body[0] < components)
            if not multi_scan:  # libjpeg stops at a second scan of a single-scan file
                return JpegLayout(size, progressive, multi_scan, 1)
            start = handle.tell() - len(body) - 4
            return JpegLayout(size, progressive, multi_scan, _count_scans(handle, start))
        handle.seek(length - 2 - len(body), 1)


def _skip(skipped: int) -> int:
    """One more byte skipped between markers; refuse past `MAX_JPEG_SKIPPED_BYTES`."""
    skipped += 1
    if skipped > MAX_JPEG_SKIPPED_BYTES:
        raise Refused(f"more than {MAX_JPEG_SKIPPED_BYTES:,} stray bytes between JPEG markers "
                      "(the file is damaged or made to be slow to parse)")
    return skipped


def _count_scans(handle: BinaryIO, start: int) -> int:
    """SOS markers from `start` (the first one) to the end, read in blocks; stops past the limit."""
    handle.seek(start)
    count = 0
    last = b""
    while block := handle.read(_BLOCK):
        count += _count_sos(block) + (last == b"\xff" and block[:1] == b"\xda")
        if count > MAX_JPEG_SCANS:
            raise Refused(f"more than {MAX_JPEG_SCANS} scans in a JPEG (a progressive JPEG has "
                          "about 10; the decoder walks the whole image once per scan)")
        last = block[-1:]
    return count


def _count_sos(block: bytes) -> int:
    """The byte pairs 0xFF 0xDA in `block`: two vector compares, ~ 5× faster than `bytes.count`."""
    values = np.frombuffer(block, np.uint8)
    return int(np.count_nonzero((values[:-1] == 0xFF) & (values[1:] == 0xDA)))


def walk_png(handle: BinaryIO) -> None:
    """Walk the chunk list (length and type, seeking over the data) up to IEND or the end.

    Refuses more than `MAX_PNG_METADATA_CHUNKS` chunks that are not image data, or more than
    `MAX_PNG_CHUNKS` in all. An APNG's frame headers (fcTL) after the first IDAT are counted as
    image data: Pillow stops at the next frame, so an animation's length does not count against
    the metadata limit.
    """
    handle.seek(len(_PNG_SIGNATURE))
    chunks = metadata = 0
    seen_idat = False
    while len(header := handle.read(8)) == 8:
        length, kind = struct.unpack(">I4s", header)
        chunks += 1
        if kind == b"IEND":
            return
        if kind == b"IDAT":
            seen_idat = True
        elif kind != b"fdAT" and not (kind == b"fcTL" and seen_idat):
            metadata += 1
        if metadata > MAX_PNG_METADATA_CHUNKS:
            raise Refused(f"more than {MAX_PNG_METADATA_CHUNKS:,} PNG metadata chunks (a PNG has "
                          "a handful; each costs parsing time and memory)")
        if chunks > MAX_PNG_CHUNKS:
            raise Refused(f"more than {MAX_PNG_CHUNKS:,} PNG chunks (a 40 MP PNG needs about "
                          "6,400; each costs parsing time)")
        handle.seek(length + 4, 1)  # data and CRC
