"""Tilted shoes in photos: a footwear photo is also scored turned by ±15° and ±30°.

Why: Fashion-MNIST draws every shoe from the side, sole level, heel to the right, so a model
trained on it calls a sneaker photographed at a 30° tilt a Sandal. Deskewing the photo was
measured twice and dropped (docs/photos.md: the tilt of a shoe's *sole* is what matters and
neither the principal axis nor the minimum-area rectangle finds it). Averaging the model's
probabilities over turned copies of the 28×28 does not need the tilt: the turned copy closest
to level counts in the mean. Doing it for every photo was measured and dropped too (it cost an
upright easy photo); doing it only when the plain view already puts at least `GATE` of its
probability on footwear changes nothing for garments and bags, and on the official test set
(3,000 images) left accuracy unchanged while the same images with their shoes turned ±40° went
0.9327 → 0.9390 (`benchmarks/photos_rotation_tta.py`, benchmarks/RESULTS.md).

Only converted photos go through this (`fmnist.predict`, `fmnist.evaluation.photos`,
`fmnist.serve`); arrays in the dataset's own format are drawn upright already and are scored
as they are. A model whose classes do not include the dataset's footwear names is left alone.

The work is split in two so that the web server can send the turned copies through its
micro-batcher like any other images: `turned_views` says which photos get views and makes
them, `merge_views` averages their probabilities in. `with_footwear_views` does both for
callers that hold the model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

FOOTWEAR = ("sandal", "sneaker", "ankle boot")  # compared case-insensitively
# The plain view must give footwear at least this much probability for the turned views to be
# scored (0.8 was measured too: one of the two tilted development sneakers won instead of two).
GATE = 0.5
# Degrees, counter-clockwise; the plain view (0°) is the fifth, already scored. ±40° in 10°
# steps was measured as well: no photo more, nine model inputs instead of five.
ANGLES = (-30.0, -15.0, 15.0, 30.0)


@dataclass(frozen=True)
class TurnedViews:
    """The rows of a batch whose photos get turned copies, and those copies in row order:
    `images[k * len(ANGLES) + j]` is row `rows[k]` turned by `ANGLES[j]`."""

    rows: np.ndarray
    images: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)


def footwear_columns(class_names: Sequence[str]) -> list[int]:
    """The probability columns of the footwear classes (empty if the model has none)."""
    return [i for i, name in enumerate(class_names) if name.casefold() in FOOTWEAR]


def turned_views(images: np.ndarray, proba: np.ndarray,
                 class_names: Sequence[str]) -> TurnedViews:
    """The turned copies to score for the photos that the plain view calls footwear."""
    columns = footwear_columns(class_names)
    rows = (np.flatnonzero(proba[:, columns].sum(axis=1) >= GATE) if columns
            else np.empty(0, dtype=np.intp))
    turned = [turn(images[row], angle) for row in rows for angle in ANGLES]
    shape = (0, *images.shape[1:])
    return TurnedViews(rows, np.stack(turned) if turned else np.empty(shape, images.dtype))


def turn(image: np.ndarray, degrees: float) -> np.ndarray:
    """`image` turned about its centre, same size, bilinear, the uncovered corners black (the
    dataset's background)."""
    return np.asarray(Image.fromarray(image).rotate(degrees, resample=Image.BILINEAR))


def merge_views(proba: np.ndarray, views: TurnedViews, view_proba: np.ndarray) -> np.ndarray:
    """`proba` with each turned row replaced by the mean over its plain and turned views."""
    if not len(views):
        return proba
    merged = np.array(proba, dtype=np.float64)
    turned = np.asarray(view_proba, dtype=np.float64).reshape(len(views), len(ANGLES), -1)
    merged[views.rows] = (merged[views.rows] + turned.sum(axis=1)) / (len(ANGLES) + 1)
    return merged


def with_footwear_views(proba: np.ndarray, images: np.ndarray, class_names: Sequence[str],
                        predict_proba: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """`proba` (the plain views' probabilities of the converted photos `images`) with footwear
    averaged over its turned views, which `predict_proba` scores in one call."""
    views = turned_views(images, proba, class_names)
    return merge_views(proba, views, predict_proba(views.images)) if len(views) else proba
