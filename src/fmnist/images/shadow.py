"""Shadows and lit patches: background whose lightness changed but whose colour did not.

The background model (`background.py`) is a smooth surface, so a cast shadow (under a shoe, a
garment's shadow on the wall behind its hanger) or a patch of window light on a wall differs from
it by a real ΔE and is kept in the mask, changing the item's silhouette. Such pixels differ from
the fitted background almost only in lightness: their chroma (a*, b*) stays the background's, and
their lightness is a fraction or a multiple of it, not black and not a new colour. An item differs
in colour, or is much darker (a black tee on a grey wall is below half the wall's lightness).

A neutral grey item on a neutral backdrop looks exactly like a shadow by this test, so colour
alone never decides: shadow-like regions are dropped only where they stick out of the convex
hull of the rest of the item (the "core": pixels that differ in colour or are far darker or
lighter, cleaned the usual way), and only when that core holds at least `CORE_SHARE` of the
mask. A grey jumper on a white sheet has almost no core and is left as it was; the grey sole of
a sneaker lies within the outline of its other parts and stays; a black tee whose wall carries
sunlit patches keeps the tee and loses the patches.

Shape alone cannot tell a darker shadow from a grey part that sticks out — a bag's handle, a
sandal's heel — so only *faint* shadows (above 0.9 of the background's lightness) count. With
the floor at 0.5, Fashion-MNIST test images printed as product photos lost their handles and
heels (mean pixel error 24.3 → 26.5) and the real-photo development set scored 29/41 top-1
instead of 30/41 (a dress turned Shirt); nothing there needed the darker arm. A dark cast shadow
therefore stays in the mask on a white or grey backdrop: the price of not cutting items.

On a coloured backdrop colour does tell them apart: a shadow on teal paper is teal, darker and
less saturated along the same hue, while a grey handle or a black sole is near grey. There,
shadows down to half the backdrop's lightness go (a tan sneaker's contact shadow on teal paper
in the development set). The cost: a part of the item in the backdrop's own hue and darker
(a red shoe's dark-red collar on red paper) can be taken for shadow where it sticks out.
"""

from __future__ import annotations

import numpy as np

from fmnist.images.mask import clean_mask, remove_thin, sticking_out

# Largest chroma difference (ΔC*ab, CIE76 on a*, b*) from the background that a shadow may have.
SHADOW_CHROMA = 4.0
# Lightness of a shadow or lit patch relative to the background's (L* ratio), exclusive bounds:
# darker than 0.9 may be a grey part of the item (see the module docstring).
LIGHTNESS_RATIO = (0.9, 1.6)
# On a coloured backdrop (chroma C*ab at least this) colour tells a grey part from a shadow, so
# darker shadows count there: down to DARK_SHADOW_RATIO of the backdrop's lightness, with the
# backdrop's hue and its chroma scaled by a factor in SHADOW_CHROMA_SCALE (less light, less
# colour; exclusive bounds).
COLOURED_BACKDROP_CHROMA = 12.0
DARK_SHADOW_RATIO = 0.5
SHADOW_CHROMA_SCALE = (DARK_SHADOW_RATIO, 1.1)
# Shadows are dropped only if the rest of the mask keeps at least this share of it.
CORE_SHARE = 0.5


def lighting_only(lab: np.ndarray, surface: np.ndarray) -> np.ndarray:
    """Boolean `[H, W]`: pixels whose colour is the background's (`surface`, Lab) and whose
    lightness is between `LIGHTNESS_RATIO` times the background's — shadow or light, not item."""
    chroma = np.hypot(lab[..., 1] - surface[..., 1], lab[..., 2] - surface[..., 2])
    ratio = (lab[..., 0] + 1.0) / (surface[..., 0] + 1.0)
    low, high = LIGHTNESS_RATIO
    faint = (chroma < SHADOW_CHROMA) & (ratio > low) & (ratio < high)
    return faint | (_backdrop_colour_scaled(lab, surface) & (ratio > DARK_SHADOW_RATIO)
                    & (ratio <= low))


def _backdrop_colour_scaled(lab: np.ndarray, surface: np.ndarray) -> np.ndarray:
    """Pixels of a coloured backdrop's hue whose chroma is the backdrop's times
    `SHADOW_CHROMA_SCALE`.

    Darkening a colour shrinks its (a*, b*) towards grey along the same direction, so a shadow
    on teal paper lies on the line from grey to the paper's colour, within `SHADOW_CHROMA` of
    it; a grey handle or a black sole sits near grey, at a small fraction of the way."""
    sa, sb = surface[..., 1], surface[..., 2]
    chroma2 = np.maximum(sa * sa + sb * sb, 1e-6)
    coloured = chroma2 >= COLOURED_BACKDROP_CHROMA ** 2
    along = (lab[..., 1] * sa + lab[..., 2] * sb) / chroma2
    across = np.abs(lab[..., 1] * sb - lab[..., 2] * sa) / np.sqrt(chroma2)
    low, high = SHADOW_CHROMA_SCALE
    return coloured & (across < SHADOW_CHROMA) & (along > low) & (along < high)


def shadow_regions(lighting: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The shadow-like pixels of `mask` that form regions wider than the cleaning's opening.

    The outline of a dark item on a light backdrop blends the two and looks like a shadow one
    or two pixels wide; dropping it would thin the item and cut its straps and laces."""
    return remove_thin(lighting & mask)


def drop_shadows(mask: np.ndarray, raw: np.ndarray, shadows: np.ndarray) -> np.ndarray:
    """The cleaned `mask` without its `shadows` (`shadow_regions`), if the item does not need them.

    `raw` is the uncleaned foreground mask. The core (`raw` minus the shadows) is cleaned like
    any mask (thin bits opened away, main object kept, holes filled — so shadow-like pixels
    enclosed by the item come back); it replaces `mask` when it holds at least `CORE_SHARE` of
    it, otherwise `mask` is returned unchanged."""
    if not shadows.any():
        return mask
    core = clean_mask(raw & ~shadows)
    if core.sum() < CORE_SHARE * mask.sum():
        return mask
    outside = sticking_out(shadows, core, whole=False)
    return clean_mask(raw & ~outside) if outside.any() else mask
