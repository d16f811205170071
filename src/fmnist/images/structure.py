"""Cheap byte-level walks over a JPEG's, PNG's, TIFF's or GIF's structure, run before Pillow
parses the file.

Pillow reads the marker segments of a JPEG, the chunks of a PNG, the extension blocks of a GIF
and the tag arrays of a TIFF in Python loops (a raw TIFF's every strip or tile becomes a Python
tile decoded on its own), and libjpeg re-walks every coefficient block of the image once per
scan of a progressive JPEG — a JPEG-compressed TIFF's strips included. Nothing bounds how many
there are, so a small file made of nothing but empty segments, chunks, sub-blocks, strips or
repeated scans costs seconds of CPU and hundreds of MB (docs/security.md, "Images and photos").
These walks count them first, reading only headers and seeking over data, and stop as soon as
a limit is passed, so the walk itself stays cheap: microseconds on a baseline photo, a TIFF or a
GIF, ~ 0.2 ms per MB of a progressive JPEG or a JPEG-compressed TIFF (whose decoding costs
~ 100× that).

A walk only refuses; whatever it does not understand (truncation, a bad length, an unknown
marker) is left to Pillow to report, so a damaged file gets the same message as before.
`Refused` carries the reason without the file's name; `fmnist.images.decode` adds it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
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

# Scans × full-size pixels of a multi-scan JPEG (and, strip by strip, of a JPEG-compressed TIFF).
# libjpeg walks the whole image once per scan, ≈ 0.3 ns per pixel and scan on 2 cores (96 scans
# of 36 MP: 1.1 s); a progressive photo of 20 MP with libjpeg's 10 scans is 200 M, and 400 M
# bounds any file at ≈ 0.15 s of scans.
MAX_SCAN_PIXELS = 400_000_000
# Entries in a TIFF's first IFD. A TIFF has 10–30, a GeoTIFF or a DNG at most a few hundred;
# Pillow reads each in Python, twice (65,535 entries: 0.52 s).
MAX_TIFF_ENTRIES = 1_000
# Strips or tiles of a TIFF (StripOffsets/TileOffsets values, every plane). Pillow turns each
# strip of an uncompressed TIFF into a Python tile decoded on its own (reading 64 KB each): a
# 1×1,000,000 grey image in one-row strips (8 MB) cost 8.3 s and 366 MB, 2.4 M strips 21 s and
# 791 MB, 9.5 M BYTE-typed offsets > 60 s and 2.9 GB. A 40 MP scan in one-row strips needs
# ≤ ~40,000; 65,536 one-row strips cost 0.44 s and 56 MB.
MAX_TIFF_BLOCKS = 65_536
# Values of one numeric TIFF tag (SHORT, LONG, FLOAT, …): Pillow unpacks a tag it reads into a
# tuple of Python numbers (a 4.5 M-entry ColorMap: 0.85 s, 269 MB). The largest real array is
# a 16-bit ColorMap or TransferFunction, 3 × 65,536.
MAX_TIFF_TAG_VALUES = 196_608
# Values of one RATIONAL/SRATIONAL TIFF tag: Pillow builds an `IFDRational` object per value,
# ≈ 2.6 µs each (1.2 M XResolution values: 3.2 s, 227 MB; 196 k still 0.8 s). Real ones hold
# 1–9 (resolutions, white point, chromaticities, a DNG's colour matrices).
MAX_TIFF_RATIONALS = 1_024
# Extension blocks (and stray bytes, which Pillow skips one per Python loop) before a GIF's first
# image. A GIF has a handful (NETSCAPE loop, graphic control, comment, XMP, ICC); Pillow parses
# each in Python (500 k NETSCAPE extensions: 1.22 s; 1.8 M empty comments 0.62 s).
MAX_GIF_BLOCKS = 1_000
# Data sub-blocks of those extensions, all together. Pillow reads and keeps each one (4.5 M
# one-byte comment sub-blocks in 9 MB: 1.31 s and 415 MB); 65,536 full ones are 16 MB, far
# more than any comment, XMP packet or ICC profile, and cost ~ 20 ms.
MAX_GIF_SUB_BLOCKS = 65_536

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TIFF_MAGIC = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")  # classic and BigTIFF, both orders
_GIF_MAGIC = (b"GIF87a", b"GIF89a")
# TIFF tags whose count is the number of strips or tiles: Strip/TileOffsets, Strip/TileByteCounts.
_TIFF_BLOCK_TAGS = frozenset({273, 279, 324, 325})
# TIFF field types: RATIONAL and SRATIONAL; ASCII and UNDEFINED, kept as one `bytes`/`str`.
_TIFF_RATIONAL_TYPES = frozenset({5, 10})
_TIFF_BLOB_TYPES = frozenset({2, 7})
# BYTE-typed tags that hold a blob Pillow keeps as `bytes` (XMP, IPTC, Photoshop resources).
_TIFF_BLOB_TAGS = frozenset({700, 33723, 34377})
# Inline integer types (SHORT, LONG, LONG8) → struct code, for the few values the walk reads.
_TIFF_INT_CODES = {3: "H", 4: "I", 16: "Q"}
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
    """Walk a JPEG, PNG, TIFF or GIF (judged by `head`, the first bytes); `Refused` if over a limit.

    Returns the JPEG's layout (None for anything else). Leaves the position of `handle` wherever
    the walk stopped: the caller seeks back before Pillow reads it.
    """
    if head.startswith(_JPEG_SOI):
        return walk_jpeg(handle)
    if head.startswith(_PNG_SIGNATURE):
        walk_png(handle)
    elif head.startswith(_TIFF_MAGIC):
        walk_tiff(handle)
    elif head.startswith(_GIF_MAGIC):
        walk_gif(handle)
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
    """SOS markers from `start` (the first one) to the end; `Refused` past `MAX_JPEG_SCANS`."""
    count = _sos_markers(handle, start, MAX_JPEG_SCANS)
    if count > MAX_JPEG_SCANS:
        raise Refused(f"more than {MAX_JPEG_SCANS} scans in a JPEG (a progressive JPEG has "
                      "about 10; the decoder walks the whole image once per scan)")
    return count


def _sos_markers(handle: BinaryIO, start: int, limit: int) -> int:
    """The byte pairs 0xFF 0xDA from `start` to the end; stops once over `limit`."""
    count = 0
    for markers in _marker_bytes(handle, start):
        count += int(np.count_nonzero(markers == 0xDA))
        if count > limit:
            break
    return count


def _marker_bytes(handle: BinaryIO, start: int) -> Iterator[np.ndarray]:
    """For each block read from `start` on, the bytes that follow a 0xFF in it (a pair split
    across two blocks included): vector compares, ~ 5× faster than `bytes.count`."""
    handle.seek(start)
    last = b""
    while block := handle.read(_BLOCK):
        values = np.frombuffer(last + block, np.uint8)
        yield values[1:][values[:-1] == 0xFF]
        last = block[-1:]


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


def walk_tiff(handle: BinaryIO) -> None:
    """Read the first IFD's entries (tag, type, count) and refuse arrays Pillow would expand.

    Refuses more than `MAX_TIFF_ENTRIES` entries, `MAX_TIFF_BLOCKS` strips or tiles,
    `MAX_TIFF_TAG_VALUES` values in a numeric tag or `MAX_TIFF_RATIONALS` in a rational one
    (Pillow reads all of these in Python before or while decoding). Only the first IFD is read:
    Pillow decodes the first page alone, and follows no SubIFD. In a JPEG-compressed TIFF
    (old- or new-style) every strip or tile is a JPEG of its own, and libjpeg walks a strip once
    per scan: 375 strips sharing one 96-scan progressive JPEG (5 KB) cost 2.45 s. No TIFF writer
    makes progressive strips, so a progressive frame marker anywhere in such a file is refused,
    and the 0xFF 0xDA pairs of the whole file, an upper bound on the scans of unshared strips,
    are held to `MAX_SCAN_PIXELS` per pixel of a strip.
    """
    handle.seek(0)
    header = handle.read(16)
    order = "<" if header[:2] == b"II" else ">"
    big = header[2:4] in (b"+\0", b"\0+")  # BigTIFF: 8-byte counts and offsets
    if len(header) < (16 if big else 8):
        return  # truncated: Pillow reports it
    if big:
        first, count_code, entry_code = struct.unpack(order + "Q", header[8:16])[0], "Q", "HHQ8s"
    else:
        first, count_code, entry_code = struct.unpack(order + "I", header[4:8])[0], "H", "HHI4s"
    handle.seek(first)
    raw = handle.read(struct.calcsize(count_code))
    if len(raw) < struct.calcsize(count_code):
        return  # Pillow reports the damage
    entries = struct.unpack(order + count_code, raw)[0]
    if entries > MAX_TIFF_ENTRIES:
        raise Refused(f"{entries:,} entries in a TIFF's first directory, over the limit of "
                      f"{MAX_TIFF_ENTRIES:,} (a TIFF has about 20; each costs parsing time)")
    size = struct.calcsize(order + entry_code)
    table = handle.read(entries * size)
    values: dict[int, int] = {}
    for at in range(0, len(table) - size + 1, size):
        tag, kind, count, field = struct.unpack_from(order + entry_code, table, at)
        _check_tiff_count(tag, kind, count)
        if count == 1 and kind in _TIFF_INT_CODES:
            values[tag] = struct.unpack_from(order + _TIFF_INT_CODES[kind], field)[0]
    if values.get(259) in (6, 7):  # old- and new-style JPEG compression
        _check_tiff_jpeg_scans(handle, values)


def _check_tiff_count(tag: int, kind: int, count: int) -> None:
    """Refuse one IFD entry whose count is over the limit for its tag or type."""
    if tag in _TIFF_BLOCK_TAGS:
        if count > MAX_TIFF_BLOCKS:
            raise Refused(f"{count:,} strips or tiles in a TIFF, over the limit of "
                          f"{MAX_TIFF_BLOCKS:,} (each is read and decoded on its own)")
    elif kind in _TIFF_RATIONAL_TYPES and count > MAX_TIFF_RATIONALS:
        raise Refused(f"a TIFF tag ({tag}) holds {count:,} fractions, over the limit of "
                      f"{MAX_TIFF_RATIONALS:,} (real tags hold a few; each costs parsing time)")
    elif (count > MAX_TIFF_TAG_VALUES and kind not in _TIFF_BLOB_TYPES
          and not (kind in (1, 6) and tag in _TIFF_BLOB_TAGS)):
        raise Refused(f"a TIFF tag ({tag}) holds {count:,} values, over the limit of "
                      f"{MAX_TIFF_TAG_VALUES:,} (each is unpacked into memory)")


def _check_tiff_jpeg_scans(handle: BinaryIO, values: dict[int, int]) -> None:
    """Bound the scans × strip pixels of a JPEG-compressed TIFF by `MAX_SCAN_PIXELS`."""
    width, height = values.get(256, 0), values.get(257, 0)
    if 322 in values and 323 in values:  # tiles
        block_pixels = values[322] * values[323]
    else:
        block_pixels = width * min(values.get(278, height) or height, height)
    if block_pixels <= 0:
        return
    limit = max(1, MAX_SCAN_PIXELS // block_pixels)
    scans = 0
    for marker in _marker_bytes(handle, 0):  # one pass: progressive frames and SOS markers
        if np.any((marker & 0xF3) == 0xC2):  # SOF2, SOF6, SOF10, SOF14
            raise Refused("a progressive JPEG inside a TIFF (no TIFF writer makes one, and "
                          "the decoder walks each strip once per scan); save it as PNG or JPEG")
        scans += int(np.count_nonzero(marker == 0xDA))
        if scans > limit:
            raise Refused(f"more than {limit:,} JPEG scans in a JPEG-compressed TIFF of "
                          f"{block_pixels:,}-pixel strips or tiles, over the limit of "
                          f"{MAX_SCAN_PIXELS:,} scans × pixels (the decoder walks a strip once "
                          "per scan)")


def walk_gif(handle: BinaryIO) -> None:
    """Walk the blocks before a GIF's first image (the ones Pillow parses on opening it).

    Refuses more than `MAX_GIF_BLOCKS` extension blocks or stray bytes, or more than
    `MAX_GIF_SUB_BLOCKS` data sub-blocks in them; stops at the first image descriptor (the
    image's own LZW sub-blocks are read by Pillow's C decoder) or the trailer.
    """
    handle.seek(6)
    screen = handle.read(7)
    if len(screen) < 7:
        return
    if screen[4] & 0x80:  # a global colour table
        handle.seek(3 << ((screen[4] & 7) + 1), 1)
    blocks = sub_blocks = 0
    while (intro := handle.read(1)) and intro not in (b",", b";"):
        blocks += 1
        if blocks > MAX_GIF_BLOCKS:
            raise Refused(f"more than {MAX_GIF_BLOCKS:,} extension blocks or stray bytes "
                          "before a GIF's first image (a GIF has a handful; each costs parsing "
                          "time)")
        if intro != b"!":
            continue  # a stray byte: Pillow skips it
        handle.read(1)  # the label
        while (length := handle.read(1)) and length != b"\0":
            sub_blocks += 1
            if sub_blocks > MAX_GIF_SUB_BLOCKS:
                raise Refused(f"more than {MAX_GIF_SUB_BLOCKS:,} data sub-blocks before a "
                              "GIF's first image (each is read and kept on its own)")
            handle.seek(length[0], 1)
