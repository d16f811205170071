"""A uniform frame around a photo — padding to a square, letterbox bars, a mount — cut away
before the background is read from the border.

Why: pipeline v2 fits the backdrop's colour on the photo's outer band (`background.py`). A photo
padded with white, black or grey has that padding as its border, so the whole inner photo —
its own backdrop included — reads as the item: on the development photos padded by 10 % of
their long edge, top-1 fell from 32 of 41 to 14 (white padding) and 6 (black), and 25 % grey
padding to 7 (benchmarks/RESULTS.md, 2026-11-27 13:22).

A frame is told from an item's surroundings by where it ends: the padding stops at a straight
edge across the whole inner photo, while a backdrop stops at the item's outline, which covers
only part of any row or column of its bounding box. So a side is cut only when the first rows
(or columns) past the uniform band differ from the band's colour almost everywhere, only if
every side that has a band passes, and only if the part inside has a subject (its lines near the
edge and its centre differ in colour: a rectangular item of one material also ends at straight
edges); otherwise the photo is left as it is.
"""

from __future__ import annotations

import numpy as np

# A pixel belongs to the frame's colour when no channel differs from it by more than this
# (JPEG ringing beside the frame's edge stays within it).
TOLERANCE = 16
# A row or column is part of the frame when this share of it has the frame's colour...
FRAME_SHARE = 0.98
# ...and the inner photo's first row or column past it must differ from that colour, by more than
# EDGE_TOLERANCE, over this share of its length (an item's outline never covers that much of its
# bounding box's edge). The tighter tolerance lets a backdrop with some pixels of nearly the
# frame's colour (grey stones beside grey padding) still count as different.
EDGE_SHARE = 0.95
EDGE_TOLERANCE = 6
# The framed part's outer lines and its central ninth must differ by this much (median colours,
# largest channel difference) for it to be a photo of something rather than one flat item.
SUBJECT_GAP = 8
# What is left must keep at least this share of the photo's height and of its width...
MIN_INNER = 0.3
# ...and a photo smaller than this on either side is never taken for a framed one (a thumbnail
# or an icon: the frame would leave a few pixels).
MIN_SIDE = 32


def frame_box(rgb: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) of the photo inside a uniform frame, or None (no frame).

    `rgb` is `[H, W, 3]` uint8.
    """
    height, width = rgb.shape[:2]
    if min(height, width) < MIN_SIDE:
        return None
    sides = (rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1])
    colour = np.median(np.concatenate(sides), axis=0)
    if not any((_channel_difference(side, colour) <= TOLERANCE).mean() >= FRAME_SHARE
               for side in sides):
        return None  # no outer row or column has one colour: no frame (most photos stop here)
    difference = _channel_difference(rgb, colour)
    near = difference <= TOLERANCE
    rows, cols = near.mean(axis=1) >= FRAME_SHARE, near.mean(axis=0) >= FRAME_SHARE
    top, bottom = _band(rows), height - _band(rows[::-1])
    left, right = _band(cols), width - _band(cols[::-1])
    if top == 0 and bottom == height and left == 0 and right == width:
        return None
    if bottom - top < max(MIN_INNER * height, 8) or right - left < max(MIN_INNER * width, 8):
        return None  # mostly uniform: a small item on a plain backdrop, not a framed photo
    inner = difference[top:bottom, left:right] > EDGE_TOLERANCE
    edges = [(top > 0, inner[:2]), (bottom < height, inner[-2:]),
             (left > 0, inner[:, :2].T), (right < width, inner[:, -2:].T)]
    if not all(_straight(lines) for has_band, lines in edges if has_band):
        return None
    if not _has_a_subject(rgb[top:bottom, left:right]):
        return None  # one material edge to edge: an item on a plain backdrop, not a photo
    # one pixel more on each cut side: the row the resampling blended with the frame
    return (top + (top > 0), bottom - (bottom < height), left + (left > 0),
            right - (right < width))


def _has_a_subject(inner: np.ndarray) -> bool:
    """Whether the framed part looks like a photo of something: its lines near the edge (a
    backdrop) and its central ninth (the subject) differ in colour. An axis-aligned rectangular
    item on a plain backdrop also ends at straight edges, but rim and middle are one material."""
    height, width = inner.shape[:2]
    # lines 2 and 3 in from each side: the outermost ones blend with the frame when resampled
    rim = np.concatenate([inner[2:4].reshape(-1, 3), inner[-4:-2].reshape(-1, 3),
                          inner[:, 2:4].reshape(-1, 3), inner[:, -4:-2].reshape(-1, 3)])
    centre = inner[height // 3: height - height // 3, width // 3: width - width // 3]
    gap = np.abs(np.median(rim, axis=0) - np.median(centre.reshape(-1, 3), axis=0)).max()
    return bool(gap >= SUBJECT_GAP)


def _channel_difference(rgb: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """The largest per-channel difference from `colour`, per pixel (uint8, no int copy)."""
    reference = colour.astype(np.uint8)
    channels = np.maximum(rgb, reference) - np.minimum(rgb, reference)
    return np.maximum(np.maximum(channels[..., 0], channels[..., 1]), channels[..., 2])


def _band(is_frame: np.ndarray) -> int:
    """How many leading rows (or columns) are frame."""
    stops = np.flatnonzero(~is_frame)
    return int(stops[0]) if len(stops) else len(is_frame)


def _straight(lines: np.ndarray) -> bool:
    """Either of the first two lines past the band differs from the frame almost everywhere."""
    return bool((lines.mean(axis=1) >= EDGE_SHARE).any())
