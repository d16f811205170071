"""Preprocessing transformers for the classical models, usable in scikit-learn pipelines.

Every classical model takes raw uint8 images `[N, H, W]`; these steps turn them into feature
vectors inside the model, so a saved model carries its own preprocessing:

- `PixelScaler`: flatten to `[N, H*W]` and scale (÷255, or standardise per pixel);
- `PCAReducer`: PCA whose size is a count, a fraction of variance kept, or the smallest size whose
  mean squared reconstruction error stays under a bound (the seed's "maximum error" rule);
- `fisher_lda()`: scikit-learn's `LinearDiscriminantAnalysis` as a c−1-dimensional projection,
  with Ledoit-Wolf shrinkage so the singular within-class scatter of pixel data is handled;
- `HOGTransformer`: histograms of oriented gradients (scikit-image), per image;
- `reduce_steps("none" | "pca:0.95" | "pca:50" | "pca:mse=0.002" | "lda")`: the pipeline steps a
  model's `reduce` parameter names.

All transformers also accept a 2-D float matrix (one row per sample), so they compose with any
scikit-learn step and pass scikit-learn's estimator checks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.sparse import issparse
from skimage.feature import hog
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.utils.validation import check_is_fitted, validate_data

from fmnist.errors import ConfigError, FmnistError

SCALES = ("unit", "standard", "none")


def as_matrix(X: object) -> np.ndarray:
    """Images `[N, H, W]` → `[N, H*W]` (a view, same dtype); anything else unchanged.

    Only 3-D input is flattened, so 1-D or 4-D input still fails validation with sklearn's error
    (and sparse input gets sklearn's "sparse data not supported" message).
    """
    if issparse(X):
        return X
    arr = np.asarray(X)
    return arr.reshape(len(arr), -1) if arr.ndim == 3 else arr


class PixelScaler(TransformerMixin, BaseEstimator):
    """Flatten images and scale them.

    `scale="unit"` divides by 255 (the seed's normalisation: pixels in [0, 1]); `"standard"`
    subtracts each pixel's training mean and divides by its standard deviation (pixels that never
    vary keep a divisor of 1, so they map to 0 rather than NaN); `"none"` only converts to float.
    Output is float32: half the memory of float64, and every downstream model accepts it.
    """

    def __init__(self, scale: str = "unit") -> None:
        self.scale = scale

    def __sklearn_tags__(self):  # noqa: ANN204 - sklearn's Tags type
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]  # always float32 out, by design
        return tags

    def fit(self, X: object, y: object = None) -> PixelScaler:
        if self.scale not in SCALES:
            raise ConfigError(f"unknown scale {self.scale!r}; choose one of {', '.join(SCALES)}")
        X = validate_data(self, as_matrix(X), dtype=np.float32)
        if self.scale == "standard":
            self.mean_ = X.mean(axis=0, dtype=np.float64).astype(np.float32)
            std = X.std(axis=0, dtype=np.float64)
            self.scale_ = np.where(std > 1e-8, std, 1.0).astype(np.float32)
        elif self.scale == "unit":
            self.mean_ = np.zeros(X.shape[1], dtype=np.float32)
            self.scale_ = np.full(X.shape[1], 255.0, dtype=np.float32)
        else:
            self.mean_ = np.zeros(X.shape[1], dtype=np.float32)
            self.scale_ = np.ones(X.shape[1], dtype=np.float32)
        return self

    def transform(self, X: object) -> np.ndarray:
        check_is_fitted(self, "scale_")
        X = validate_data(self, as_matrix(X), dtype=np.float32, reset=False)
        return (X - self.mean_) / self.scale_


class PCAReducer(TransformerMixin, BaseEstimator):
    """PCA whose number of components is chosen from the training data.

    Exactly one rule applies, in this order:
    - `max_error` set: the fewest components whose mean squared reconstruction error per feature
      (the discarded eigenvalues summed, divided by the number of features) is ≤ `max_error`;
    - `n_components` a float in (0, 1): the fewest components keeping that fraction of variance;
    - `n_components` an int: that many (clamped to what the data allows).
    The eigen-decomposition of the covariance matrix (`svd_solver="covariance_eigh"`) is used
    when samples outnumber features (60,000 × 784 pixels: about a second), a full SVD otherwise.
    """

    def __init__(self, n_components: float | int = 0.95, max_error: float | None = None,
                 whiten: bool = False) -> None:
        self.n_components = n_components
        self.max_error = max_error
        self.whiten = whiten

    def fit(self, X: object, y: object = None) -> PCAReducer:
        X = validate_data(self, as_matrix(X), dtype=[np.float32, np.float64],
                          ensure_min_samples=2)
        limit = min(X.shape)
        # the covariance route is fast when samples outnumber features; otherwise (few large
        # images) a direct SVD of the smaller data matrix is
        solver = "covariance_eigh" if X.shape[0] >= X.shape[1] else "full"
        full = PCA(svd_solver=solver).fit(X)
        variances = full.explained_variance_
        if self.max_error is not None:
            if self.max_error < 0:
                raise ConfigError(f"PCA max_error must be ≥ 0, got {self.max_error}")
            # error after keeping m components = sum of the eigenvalues from m on, per feature
            tail = np.concatenate([np.cumsum(variances[::-1])[::-1], [0.0]]) / X.shape[1]
            m = int(np.argmax(tail <= self.max_error + 1e-12))
        elif isinstance(self.n_components, float) and not float(self.n_components).is_integer():
            if not 0 < self.n_components < 1:
                raise ConfigError(
                    f"PCA variance fraction must lie in (0, 1), got {self.n_components}")
            kept = np.cumsum(full.explained_variance_ratio_)
            m = int(np.searchsorted(kept, self.n_components - 1e-12) + 1)
        else:
            if int(self.n_components) < 1:
                raise ConfigError(f"PCA needs at least 1 component, got {self.n_components}")
            m = int(self.n_components)
        m = max(1, min(m, limit))
        self.pca_ = PCA(n_components=m, whiten=self.whiten, svd_solver=solver).fit(X)
        self.n_components_ = m
        self.explained_variance_ratio_ = self.pca_.explained_variance_ratio_
        self.reconstruction_error_ = float(variances[m:].sum() / X.shape[1])
        return self

    def transform(self, X: object) -> np.ndarray:
        check_is_fitted(self, "pca_")
        X = validate_data(self, as_matrix(X), dtype=[np.float32, np.float64], reset=False)
        return self.pca_.transform(X)

    def inverse_transform(self, Z: np.ndarray) -> np.ndarray:
        """Back to the input space: what the kept components can reconstruct."""
        check_is_fitted(self, "pca_")
        return self.pca_.inverse_transform(Z)


def fisher_lda(n_components: int | None = None, shrinkage: str | float = "auto"
               ) -> LinearDiscriminantAnalysis:
    """Fisher's linear discriminant as a transformer: projects onto at most c−1 directions.

    The eigen solver maximises between-class over within-class scatter (the seed's
    W = eig(S_W⁻¹ S_B)); shrinkage ("auto" = Ledoit-Wolf) keeps S_W invertible when pixels never
    vary, as the border pixels of Fashion-MNIST nearly do.
    """
    return LinearDiscriminantAnalysis(solver="eigen", shrinkage=shrinkage,
                                      n_components=n_components)


class HOGTransformer(TransformerMixin, BaseEstimator):
    """Histogram-of-oriented-gradients features of each image (`skimage.feature.hog`).

    Input is images `[N, H, W]`, or flattened rows with `image_shape` given (square images are
    inferred). Defaults (9 orientations, 4×4-pixel cells, 2×2-cell blocks, L2-Hys) give 1,296
    features for a 28×28 image.
    """

    def __init__(self, orientations: int = 9, pixels_per_cell: int = 4,
                 cells_per_block: int = 2, block_norm: str = "L2-Hys",
                 image_shape: tuple[int, int] | None = None) -> None:
        self.orientations = orientations
        self.pixels_per_cell = pixels_per_cell
        self.cells_per_block = cells_per_block
        self.block_norm = block_norm
        self.image_shape = image_shape

    def _images(self, X: object, reset: bool) -> np.ndarray:
        arr = np.asarray(X)
        shape = arr.shape[1:] if arr.ndim == 3 else self.image_shape
        flat = validate_data(self, as_matrix(arr), dtype=np.float32, reset=reset)
        if shape is None:
            side = math.isqrt(flat.shape[1])
            if side * side != flat.shape[1]:
                raise FmnistError(f"HOG needs images; rows of {flat.shape[1]} values are not "
                                  "square: pass image_shape=(H, W)")
            shape = (side, side)
        if reset:
            self.image_shape_ = tuple(int(s) for s in shape)
        elif tuple(shape) != self.image_shape_:
            raise FmnistError(f"HOG was fitted on {self.image_shape_} images, got {tuple(shape)}")
        return flat.reshape(len(flat), *shape)

    def fit(self, X: object, y: object = None) -> HOGTransformer:
        images = self._images(X, reset=True)
        self.n_features_out_ = len(self._hog(images[0]))
        return self

    def _hog(self, image: np.ndarray) -> np.ndarray:
        return hog(image, orientations=self.orientations,
                   pixels_per_cell=(self.pixels_per_cell,) * 2,
                   cells_per_block=(self.cells_per_block,) * 2,
                   block_norm=self.block_norm, feature_vector=True)

    def transform(self, X: object) -> np.ndarray:
        check_is_fitted(self, "n_features_out_")
        images = self._images(X, reset=False)
        out = np.empty((len(images), self.n_features_out_), dtype=np.float32)
        for i, image in enumerate(images):
            out[i] = self._hog(image)
        return out


@dataclass(frozen=True)
class ReduceSpec:
    """A parsed `reduce` string: kind "none", "pca" or "lda", with PCA's rule."""

    kind: str
    n_components: float | int | None = None
    max_error: float | None = None


REDUCE_HELP = ("reduce must be 'none', 'lda', 'pca:<fraction of variance>' (pca:0.95), "
               "'pca:<count>' (pca:50) or 'pca:mse=<max mean squared error>' (pca:mse=0.002)")


def parse_reduce(reduce: str) -> ReduceSpec:
    """Parse a `reduce` string, or raise a user error that lists the forms accepted."""
    text = str(reduce).strip().lower()
    if text in ("none", ""):
        return ReduceSpec("none")
    if text == "lda":
        return ReduceSpec("lda")
    if text.startswith("pca:"):
        arg = text[4:]
        try:
            if arg.startswith("mse="):
                value = float(arg[4:])
                if value >= 0:
                    return ReduceSpec("pca", max_error=value)
            elif arg.isdigit() and int(arg) >= 1:
                return ReduceSpec("pca", n_components=int(arg))
            elif 0 < float(arg) < 1:
                return ReduceSpec("pca", n_components=float(arg))
        except ValueError:
            pass
    raise ConfigError(f"bad reduce {reduce!r}: {REDUCE_HELP}")


def reduce_steps(reduce: str) -> list[tuple[str, BaseEstimator]]:
    """The pipeline steps for a `reduce` setting (empty for "none")."""
    spec = parse_reduce(reduce)
    if spec.kind == "pca":
        if spec.max_error is not None:
            return [("pca", PCAReducer(max_error=spec.max_error))]
        return [("pca", PCAReducer(n_components=spec.n_components))]
    if spec.kind == "lda":
        return [("lda", fisher_lda())]
    return []
