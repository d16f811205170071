"""Which pixels are the item: a foreground mask from colour distance, then cleaned.

The mask does not care whether the item is lighter or darker than the background: it thresholds
the colour difference (CIE ΔE, Euclidean in Lab) between each pixel and the fitted background
surface (`background.py`), so a white tee on a white sheet (small ΔE but above the sheet's own
texture), a black boot on black and a red shoe on a red wall are all treated alike. The
threshold sits above the background's own texture measured on the border (`Background.noise`),
and hysteresis lets faint parts of the item (a white collar) join the mask only when they touch
clearly different parts.

Cleaning, in order: an opening removes thin structures (hanger hooks, strings, straps thinner
than about 3% of the frame), the largest object is kept (with any part at least a third as large),
the parts the opening shaved off the kept object's outline are restored, and holes are filled.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.filters import apply_hysteresis_threshold, threshold_otsu
from skimage.morphology import convex_hull_image

from fmnist.images import morphology
from fmnist.images.background import Background

# ΔE below this is never foreground (JPEG noise and soft shadows on a flat backdrop).
MIN_THRESHOLD = 6.0
# The high threshold is this many times the border's texture spread.
NOISE_SIGMAS = 4.0
# Smoothing of the distance map, as a fraction of the short edge (averages out texture).
SMOOTH_FRACTION = 0.006
# Opening radius as a fraction of the short edge: thinner structures are removed.
OPEN_FRACTION = 0.015
# Other components at least this fraction of the largest are kept (a garment split in two).
KEEP_FRACTION = 0.33


def colour_distance(lab: np.ndarray, background: Background) -> np.ndarray:
    """ΔE (CIE76) of every pixel from the background surface, lightly smoothed."""
    distance = background.distance(lab)
    sigma = SMOOTH_FRACTION * min(lab.shape[:2])
    return ndimage.gaussian_filter(distance, sigma) if sigma >= 0.5 else distance


def thresholds(distance: np.ndarray, background: Background) -> tuple[float, float]:
    """(low, high) hysteresis thresholds: above the border's texture and, where the histogram
    has two clear modes, no higher than Otsu's split between them."""
    high = max(MIN_THRESHOLD * 1.5, NOISE_SIGMAS * background.noise)
    try:
        otsu = float(threshold_otsu(distance))
    except ValueError:  # a constant image
        otsu = high
    high = min(high, max(otsu, MIN_THRESHOLD * 1.5))
    low = max(MIN_THRESHOLD, 0.5 * high)
    return low, high


def raw_mask(distance: np.ndarray, background: Background) -> np.ndarray:
    """Pixels clearly different from the background, plus faint ones connected to them."""
    low, high = thresholds(distance, background)
    return apply_hysteresis_threshold(distance, low, high)


def remove_thin(mask: np.ndarray, fraction: float = OPEN_FRACTION) -> np.ndarray:
    """Morphological opening with a disk: drops hooks, strings and straps thinner than it."""
    return morphology.opening(mask, max(1, round(fraction * min(mask.shape))))


def main_object(mask: np.ndarray, keep_fraction: float = KEEP_FRACTION) -> np.ndarray:
    """The largest connected component, with any other at least `keep_fraction` its size."""
    labels, count = ndimage.label(mask)
    if count <= 1:
        return mask.copy()
    sizes = np.bincount(labels.ravel())[1:]
    kept = np.flatnonzero(sizes >= keep_fraction * sizes.max()) + 1
    return np.isin(labels, kept)


def restore_outline(cleaned: np.ndarray, original: np.ndarray,
                    fraction: float = OPEN_FRACTION) -> np.ndarray:
    """Give back the outline detail the opening shaved off, but only next to the kept object
    (within the opening radius), so a removed hook stays removed."""
    near = morphology.dilation(cleaned, max(1, round(fraction * min(cleaned.shape))))
    return cleaned | (original & near)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill enclosed holes (a white chest panel inside a garment's outline)."""
    return morphology.fill_holes(mask)


def clean_mask(mask: np.ndarray) -> np.ndarray:
    """Opening → main object → outline restored → holes filled. Empty stays empty."""
    if not mask.any():
        return mask
    opened = remove_thin(mask)
    if not opened.any():
        opened = mask
    kept = main_object(opened)
    return fill_holes(restore_outline(kept, mask))


def sticking_out(parts: np.ndarray, rest: np.ndarray, whole: bool = True) -> np.ndarray:
    """The pieces of `parts` wider than the cleaning's opening that lie outside the convex hull
    of `rest`; with `whole`, every connected region of `parts` that has such a piece, whole.

    Why a hull: what a photo adds to an item (a wearer's head and legs, a shadow cast beside it)
    extends its outline, while an item's own parts of the same kind (tan panels of a shoe, a
    grey band across a jumper) lie within the outline of its other parts. Whole regions suit
    coherent ones (an arm partly inside the hull, under a sleeve, must still go whole); loose
    ones (shadow-like patches of a grey item) are safer cut at the hull."""
    if not rest.any() or not parts.any():
        return np.zeros_like(parts)
    outside = remove_thin(parts & ~convex_hull_image(rest))
    if not outside.any() or not whole:
        return outside
    labels, _ = ndimage.label(parts)
    return np.isin(labels, np.unique(labels[outside]))


# Skin is removed only when it is a minor part of the mask: more means a tan or brown item.
MAX_SKIN_SHARE = 0.3


def skin(rgb: np.ndarray) -> np.ndarray:
    """Skin-coloured pixels by the Kovač–Peer–Solina rule for daylight (RGB thresholds)."""
    r, g, b = (rgb[..., i].astype(np.int16) for i in range(3))
    spread = rgb.max(axis=-1).astype(np.int16) - rgb.min(axis=-1)
    return ((r > 95) & (g > 40) & (b > 20) & (spread > 15) & (np.abs(r - g) > 15)
            & (r > g) & (r > b))


def remove_skin(mask: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """Take a wearer's head, neck, arms and legs out of a worn garment's mask.

    Skin-coloured regions are removed only where they stick out of the rest of the item: a
    region goes, whole, when a part of it wider than the cleaning's opening lies outside the
    convex hull of the mask's other pixels (their thin rims — blended outline pixels around a
    face or an arm — opened away first). A head above a collar, arms hanging past a hem or legs
    below it stick out; the tan suede panels of a sneaker, the brown straps of a sandal or a
    bag's leather trim lie within the outline of the item's other parts and stay (skin-coloured
    items are common, and the colour rule alone took half of a tan sneaker away). Nothing
    happens when skin covers more than `MAX_SKIN_SHARE` of the mask (a tan boot, a brown bag).
    What stays is cleaned again, so a head that the neck joined to the garment falls away as a
    separate, smaller object."""
    found = skin(rgb) & mask
    if not found.any() or found.sum() > MAX_SKIN_SHARE * mask.sum():
        return mask
    body = sticking_out(found, remove_thin(mask & ~found))
    if not body.any():
        return mask
    return fill_holes(main_object(mask & ~morphology.dilation(body, 1)))
