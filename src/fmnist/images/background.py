"""The background of a photo, modelled from its border in colour (CIE Lab).

Real photos rarely sit on a flat backdrop: studio walls fall off into shadow, floors recede,
window light leaves gradients. The paper's recipe takes one grey value (the corner pixel), so any
shading is kept as a grey halo and a coloured wall turned grey loses the item's outline.

Here each Lab channel of the border ring is fitted with a quadratic surface in (x, y) — enough
for a gradient, a vignette or a falling-off backdrop, too stiff to follow an item — by robust
least squares: border pixels that disagree strongly with the fit (an item that touches the
frame, a hanger hook, a shadow) are dropped and the surface is fitted again. The spread of the
remaining border residuals is the background's own texture (concrete, turf, wood, JPEG noise),
which `mask.py` uses as the noise floor of its threshold.

A textured backdrop (turf, a patterned rug, planks) is not one colour plus noise but a few
colours: a small palette of the border's main colours (k-means, each kept colour covering at
least `PALETTE_SHARE` of the ring, so an item touching one edge is not taken for background)
complements the surface, and a pixel's distance to the background is the smaller of the two.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.cluster.vq import kmeans2

# A flat backdrop leaves k-means clusters empty, which `border_palette` expects; SciPy warns
# each time. Only this warning is silenced, by its message, once at import — not with
# `catch_warnings` around the call: photos are converted on several threads
# (`fmnist.concurrency`, the server's decoders), and overlapping `catch_warnings` blocks, which
# are not thread-safe, restore each other's filters (the warning then slipped through on a
# 2-thread `fmnist predict`, and a catch-all filter could have been left behind for the whole
# process). The test suite installs the same filter (pyproject.toml), as pytest resets them.
EMPTY_CLUSTER = "One of the clusters is empty"
warnings.filterwarnings("ignore", message=EMPTY_CLUSTER, category=UserWarning)

# Border ring width as a fraction of the short edge (at least 2 pixels).
RING_FRACTION = 0.03
# Robust refits: points with a residual above this many robust sigmas are dropped.
TRIM_SIGMAS = 2.5
REFITS = 3
# Border palette: k-means colours, each kept only if it covers this share of the ring.
PALETTE_SIZE = 6
PALETTE_SHARE = 0.05


@dataclass
class Background:
    """The fitted background colour at every pixel and its texture on the border.

    `surface` is `[H, W, 3]` Lab; `palette` `[k, 3]` the border's main colours; `noise` is a
    robust spread (ΔE) of the border around the model; `inlier_fraction` how much of the border
    the surface explains (low: the item fills the frame or the backdrop is textured).
    """

    surface: np.ndarray
    palette: np.ndarray
    noise: float
    inlier_fraction: float

    def distance(self, lab: np.ndarray) -> np.ndarray:
        """ΔE (CIE76) of each pixel from the background: the nearer of surface and palette."""
        squared = np.square(lab - self.surface).sum(axis=-1)
        for colour in self.palette:
            np.minimum(squared, np.square(lab - colour).sum(axis=-1), out=squared)
        return np.sqrt(squared)


def ring_mask(shape: tuple[int, int], fraction: float = RING_FRACTION) -> np.ndarray:
    """Boolean `[H, W]`: True on a ring along the four edges."""
    height, width = shape
    width_px = max(2, round(fraction * min(height, width)))
    ring = np.zeros(shape, dtype=bool)
    ring[:width_px] = ring[-width_px:] = True
    ring[:, :width_px] = ring[:, -width_px:] = True
    return ring


def _design(ys: np.ndarray, xs: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Quadratic terms in coordinates scaled to -1..1 (well conditioned at any image size)."""
    y = ys / max(shape[0] - 1, 1) * 2 - 1
    x = xs / max(shape[1] - 1, 1) * 2 - 1
    return np.stack([np.ones_like(x), x, y, x * y, x * x, y * y], axis=-1)


def fit_background(lab: np.ndarray, fraction: float = RING_FRACTION) -> Background:
    """Fit a quadratic colour surface to the border ring of `lab` (`[H, W, 3]`), robustly."""
    shape = lab.shape[:2]
    ys, xs = np.nonzero(ring_mask(shape, fraction))
    values = lab[ys, xs].astype(np.float64)
    design = _design(ys.astype(np.float64), xs.astype(np.float64), shape)
    keep = np.ones(len(values), dtype=bool)
    coef = np.zeros((design.shape[1], 3))
    for _ in range(REFITS):
        coef = _least_squares(design[keep], values[keep])
        residual = np.linalg.norm(values - design @ coef, axis=1)
        sigma = 1.4826 * np.median(residual[keep]) + 1e-6
        new_keep = residual <= max(TRIM_SIGMAS * sigma, 2.0)
        if new_keep.sum() < design.shape[1] * 4 or np.array_equal(new_keep, keep):
            break
        keep = new_keep
    grid_y, grid_x = np.mgrid[0:shape[0], 0:shape[1]]
    surface = _design(grid_y.astype(np.float64), grid_x.astype(np.float64), shape) @ coef
    palette = border_palette(values, _sides(ys, xs, shape))
    background = Background(surface=surface.astype(np.float32), palette=palette, noise=0.0,
                            inlier_fraction=float(keep.mean()))
    residual = background.distance(lab)[ys, xs]
    background.noise = float(1.4826 * np.median(residual))
    return background


def _least_squares(design: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Normal equations with a tiny ridge: 6 unknowns, so this is exact enough and ~50× faster
    than an SVD-based `lstsq` on a few thousand rows."""
    gram = design.T @ design + 1e-6 * np.eye(design.shape[1])
    return np.linalg.solve(gram, design.T @ values)


def border_palette(values: np.ndarray, sides: np.ndarray, size: int = PALETTE_SIZE,
                   share: float = PALETTE_SHARE) -> np.ndarray:
    """The border's main colours `[k, 3]` (k ≤ `size`): k-means centres that cover at least
    `share` of the ring on each of its four sides (`sides`: 0..3 for each value), so the colours
    of an item that touches one or two edges are not taken for background."""
    if len(values) < size * 4:
        return np.zeros((0, 3), dtype=np.float32)
    rng = np.random.default_rng(0)  # deterministic: the same photo, the same palette
    pick = rng.permutation(len(values))[:4000]
    centres, labels = kmeans2(values[pick], size, minit="points", seed=rng)
    covered = np.zeros(size, dtype=int)
    for side in range(4):
        on_side = labels[sides[pick] == side]
        if on_side.size:
            covered += np.bincount(on_side, minlength=size) / on_side.size >= share
    return centres[covered >= 4].astype(np.float32)


def _sides(ys: np.ndarray, xs: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Which edge (0 top, 1 bottom, 2 left, 3 right) each ring pixel is nearest to."""
    gaps = np.stack([ys, shape[0] - 1 - ys, xs, shape[1] - 1 - xs])
    return gaps.argmin(axis=0)
