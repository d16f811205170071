"""The item's mask on a busy background (patterned fabric, foliage, floorboards): GrabCut.

Why: v2's mask (`mask.py`) is each pixel's colour distance to a background fitted on the border.
That works while the backdrop is a surface with a little texture; on a busy one (a floral
bedspread, leaves, a rug, planks) the border's own spread is as large as the item's difference
from it, so the threshold either takes half the backdrop or loses the item. GrabCut (Rother et
al., 2004; OpenCV's implementation) instead learns a colour mixture for the frame's border and
one for its centre and cuts between them with a smoothness term, so a backdrop of many colours
is still one model. Measured (benchmarks/RESULTS.md, "Busy backgrounds"): the development
photos' items pasted on six backdrops cut from its busy photos, top-1 of the shipped model
62/192 → 141/192; on the 41 development photos themselves 30 → 31 (the backpack among leaves),
nothing lost; a synthetic shirt on a patchwork, mask IoU 0.01–0.39 → 0.97–1.0.

Only where the border is busy (`noise` ≥ `BUSY_NOISE`): used on every photo, GrabCut gained two
development photos (a worn white puffer, a tilted sandal) but lost five the colour distance
names right (a tee, trousers, a dress, two sneakers: 28/41), and its 60–300 ms a photo would
break the 100 ms budget. Where GrabCut finds
almost nothing (under `MIN_SHARE` of the frame), the colour-distance mask stands. OpenCV sees
only the decoded, size-checked pixels, never a file.
"""

from __future__ import annotations

import numpy as np

# Border texture (robust ΔE spread, `Background.noise`) from which a background counts as busy:
# studio walls, sheets and shaded backdrops measure 0–4; a dark vignette 5, leaves 7.6, turf,
# planks and patterned fabric 8–15.
BUSY_NOISE = 4.0
# The frame's outer margin, per side, that GrabCut takes as background for sure.
MARGIN = 0.05
# GrabCut's rounds of re-fitting the two colour models (5 gave the same answers on the busy
# development photos, 1.5× slower).
ITERATIONS = 3
# Below this share of the frame, GrabCut's answer is taken as "found nothing".
MIN_SHARE = 0.02


def is_busy(noise: float) -> bool:
    """Whether a border with this texture spread (ΔE) is too busy for the colour distance."""
    return noise >= BUSY_NOISE


def grabcut_mask(rgb: np.ndarray, seed: int = 0) -> np.ndarray | None:
    """The item's mask in `rgb` (`[H, W, 3]` uint8) by GrabCut from the frame minus its margin,
    or None when it finds almost nothing. Seeded: GrabCut's k-means start is random."""
    import cv2

    height, width = rgb.shape[:2]
    dx, dy = max(1, round(MARGIN * width)), max(1, round(MARGIN * height))
    if width <= 2 * dx + 1 or height <= 2 * dy + 1:
        return None
    labels = np.zeros((height, width), np.uint8)
    background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(seed)
    try:
        cv2.grabCut(np.ascontiguousarray(rgb[..., ::-1]), labels,
                    (dx, dy, width - 2 * dx, height - 2 * dy), background, foreground,
                    ITERATIONS, cv2.GC_INIT_WITH_RECT)
    except cv2.error:  # e.g. too few distinct colours to fit a mixture: keep the distance mask
        return None
    mask = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    return mask if mask.mean() >= MIN_SHARE else None
