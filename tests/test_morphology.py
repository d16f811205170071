"""The masks' binary morphology (OpenCV, `fmnist.images.morphology`) is SciPy's, bit for bit.

SciPy's binary morphology is the reference the photo pipeline was measured with; the OpenCV
versions are only faster. Random blobs of several sizes, touching the frame's edges (where the
border rule matters), with holes open and enclosed.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from fmnist.images import morphology


def _blobs(seed: int, shape: tuple[int, int]) -> np.ndarray:
    noise = np.random.default_rng(seed).random(shape)
    mask = ndimage.gaussian_filter(noise, 3) > 0.5
    mask[:, :3] = True  # an item cut by the left edge
    return mask


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("shape", [(256, 171), (64, 256), (9, 7)])
def test_opening_dilation_and_holes_match_scipy(seed: int, shape: tuple[int, int]) -> None:
    mask = _blobs(seed, shape)
    for radius in (1, 2, 4, 6):
        structure = morphology.disk(radius).astype(bool)
        assert np.array_equal(morphology.opening(mask, radius),
                              ndimage.binary_opening(mask, structure=structure))
        assert np.array_equal(morphology.dilation(mask, radius),
                              ndimage.binary_dilation(mask, structure=structure))
    assert np.array_equal(morphology.dilation(mask, 1), ndimage.binary_dilation(mask))
    assert np.array_equal(morphology.fill_holes(mask), ndimage.binary_fill_holes(mask))


def test_fill_holes_fills_only_what_is_enclosed() -> None:
    ring = np.zeros((20, 20), bool)
    ring[4:16, 4:16] = True
    ring[7:13, 7:13] = False  # enclosed: filled
    ring[0:3, 8:12] = True
    ring[0:2, 9:11] = False  # a notch open to the frame's edge: stays
    filled = morphology.fill_holes(ring)
    assert filled[7:13, 7:13].all() and not filled[0:2, 9:11].any()
    assert filled.dtype == bool and filled.shape == ring.shape
