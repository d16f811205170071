"""Photo pipeline v2: a decoded photo → a 28×28 image drawn the way Fashion-MNIST draws items.

Why not the paper's recipe (`photo.py`, kept as `pipeline="paper"`): it negates a grey image and
subtracts one border grey, which works for the dataset's own studio shots but makes white items
on white vanish, keeps shaded or textured backgrounds as a halo, keeps hangers, and turns solid
dark items into flat white silhouettes. v2 instead

1. works on a copy whose longest edge is `WORK_SIZE` (segmentation needs no more, and it keeps
   one photo well under 100 ms);
2. takes the item's mask from the alpha channel when the photo has real transparency, otherwise
   cuts away a uniform frame around the photo (padding, letterbox bars: `frame.py`) and
   fits the background's colour from the border (`background.py`) and thresholds the colour
   distance to it (`mask.py`) — lighter-or-darker does not matter — or, where the border is
   busy (patterned fabric, foliage), cuts the item out with GrabCut (`grabcut.py`);
3. cleans the mask: thin structures (hangers, strings) removed, the main object kept, holes filled,
   shadows and lit patches of the backdrop dropped (`shadow.py`), a wearer's skin outside the
   garment removed;
4. draws the item as ink: its negative luminance, normalised to the dataset's ink mean and
   spread so texture survives (`render.py`);
5. crops to the mask, mirrors footwear the dataset's way round, resizes the longest edge to 28,
   sharpens and centres, as the paper does.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from PIL import Image
from skimage.color import rgb2lab

from fmnist.images.background import fit_background
from fmnist.images.frame import frame_box
from fmnist.images.grabcut import grabcut_mask, is_busy
from fmnist.images.mask import clean_mask, colour_distance, raw_mask, remove_skin
from fmnist.images.render import already_negative, mask_box, render_ink
from fmnist.images.shadow import drop_shadows, lighting_only, shadow_regions

# Longest edge of the working copy the mask is computed on.
WORK_SIZE = 256
# An alpha channel counts as a cut-out when at least this share of pixels is transparent.
MIN_TRANSPARENT = 0.01

# Saves one `--show` step; a step that costs work of its own (the fitted background in colour)
# is passed as a function, called only when steps are kept.
Keep = Callable[[str, "Image.Image | np.ndarray | Callable[[], np.ndarray]"], None]


def working_copy(image: Image.Image, size: int = WORK_SIZE) -> Image.Image:
    """A copy whose longest edge is at most `size` (area-averaged, so no aliasing)."""
    image = image.copy()
    if max(image.size) > size:
        image.thumbnail((size, size), Image.Resampling.BOX)
    return image


def split_alpha(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """RGB pixels `[H, W, 3]` uint8 and the cut-out mask from alpha (None: no transparency).

    Transparent pixels are laid on white before the colour is read, so half-transparent
    edges take a light colour rather than whatever the encoder left under them.
    """
    if image.mode in ("LA", "RGBA"):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32)
        alpha = rgba[..., 3:] / 255.0
        rgb = rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)
        cut_out = alpha[..., 0] < 0.5
        mask = None if cut_out.mean() < MIN_TRANSPARENT else ~cut_out
        return rgb.round().astype(np.uint8), mask
    return np.asarray(image.convert("RGB")), None


def item_mask(rgb: np.ndarray, keep: Keep) -> tuple[np.ndarray, np.ndarray]:
    """The raw foreground mask of an opaque photo, by colour distance to the fitted border (by
    GrabCut where the border is busy), and the pixels that differ from the background only in
    lightness (shadows, lit patches; none on a busy background, where lightness says nothing)."""
    lab = rgb2lab(rgb).astype(np.float32)
    background = fit_background(lab)
    keep("background", lambda: _lab_to_rgb(background.surface))  # 7 ms: only for --show
    if is_busy(background.noise) and (cut := grabcut_mask(rgb)) is not None:
        keep("grabcut", cut.astype(np.float32) * 255)
        return cut, np.zeros_like(cut)
    distance = colour_distance(lab, background)
    keep("distance", np.clip(distance * (255.0 / max(float(distance.max()), 1e-6)), 0, 255))
    return raw_mask(distance, background), lighting_only(lab, background.surface)


def convert_v2(image: Image.Image, keep: Keep) -> tuple[np.ndarray, np.ndarray, bool]:
    """Steps 1–4 on a standard-mode image: (ink `[h, w]` float cropped to the item, its mask,
    whether the luminance was negated)."""
    work = working_copy(image)
    rgb, mask = split_alpha(work)
    if mask is None and (box := frame_box(rgb)) is not None:
        work = working_copy(_crop_scaled(image, box, work.size))  # the photo inside, full detail
        rgb, mask = split_alpha(work)
    keep("working", work)
    cut_out = mask is not None
    if mask is None:
        raw, lighting = item_mask(rgb, keep)
        keep("raw-mask", raw.astype(np.float32) * 255)
        mask = clean_mask(raw)
        shadows = shadow_regions(lighting, mask)
        keep("shadows", shadows.astype(np.float32) * 255)
        mask = remove_skin(drop_shadows(mask, raw, shadows), rgb)
    else:
        keep("raw-mask", mask.astype(np.float32) * 255)
        mask = clean_mask(mask)
    keep("mask", mask.astype(np.float32) * 255)
    invert = cut_out or not already_negative(rgb, mask)
    ink = render_ink(rgb, mask, invert=invert)
    keep("ink", ink)
    top, bottom, left, right = mask_box(mask)
    return ink[top:bottom, left:right], mask[top:bottom, left:right], invert


def _crop_scaled(image: Image.Image, box: tuple[int, int, int, int],
                 work_size: tuple[int, int]) -> Image.Image:
    """`image` cropped to `box` (top, bottom, left, right), given on its working copy."""
    top, bottom, left, right = box
    sx, sy = image.width / work_size[0], image.height / work_size[1]
    return image.crop((round(left * sx), round(top * sy), round(right * sx), round(bottom * sy)))


def _lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """Back to RGB for the `--show` steps; Lab colours outside sRGB are clipped here anyway, so
    scikit-image's note that it clipped some is noise in the user's output, not news."""
    from skimage.color import lab2rgb

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*negative Z values", category=UserWarning)
        rgb = lab2rgb(lab)
    return np.clip(rgb * 255.0, 0, 255)
