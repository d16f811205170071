"""`PixelClassifier`: the base of every classical model — raw uint8 images in, one estimator out.

A classical model is `scale → reduce → classifier`, but it must look like ONE scikit-learn
classifier whose `reduce`, `scale` and the classifier's own hyper-parameters are plain constructor
parameters (so `fmnist train knn --reduce lda --set n_neighbors=7` and grid searches just work,
and saved `model.json` parameters are flat). Each subclass lists its parameters in `__init__` and
says how to build its final step in `_classifier()`; the base builds, fits and uses a
`sklearn.pipeline.Pipeline` (`pipeline_`), which holds only sklearn/numpy state, so skops can
save it once the fmnist classes are trusted.

Input: images `[N, H, W]` (any size; pixels by the package's one rule,
`fmnist.images.arrays.as_uint8_images`, so floats in 0..1 and uint8 give the same answers), or an
already flattened 2-D matrix — the latter lets scikit-learn's estimator checks run on these
classes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.sparse import issparse
from scipy.special import expit, softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.pipeline import Pipeline
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, has_fit_parameter, validate_data

from fmnist.data.dataset import stratified_indices
from fmnist.images.arrays import as_uint8_images
from fmnist.models.features import PixelScaler, as_matrix, parse_reduce, reduce_steps


class PixelClassifier(ClassifierMixin, BaseEstimator):
    """Scale → reduce → classify, as one estimator on raw uint8 images `[N, H, W]`.

    The base of every classical model: a subclass lists its classifier's parameters flat in its
    constructor and builds the classifier in `_classifier`.

    Parameters
    ----------
    scale : {"unit", "standard", "none"}
        "unit" divides by 255, "standard" is a per-pixel z-score.
    reduce : str
        "none", "pca:0.95" (share of variance), "pca:50" (components), "pca:mse=0.002" or
        "lda" (see `fmnist.models.features`).
    max_train : int or None
        Fit on a stratified random subset of at most this many images (None: all); the
        comparison's quick preset uses it to keep slow models within their time budget.
    random_state : int or None
        Seeds the subset and any randomness in the classifier.

    Attributes
    ----------
    pipeline_ : sklearn.pipeline.Pipeline
        The fitted scale → reduce → classifier steps.
    classes_ : ndarray
        The class labels seen in `fit`.
    image_shape_ : tuple of int or None
        `(H, W)` of the training images (None when fitted on a flat feature matrix).
    """

    scale: str
    reduce: str
    max_train: int | None
    random_state: int | None

    def _classifier(self) -> BaseEstimator:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def _feature_steps(self) -> list[tuple[str, BaseEstimator]]:
        """Steps before the classifier; subclasses with other features (HOG) override this."""
        return [("scale", PixelScaler(self.scale)), *reduce_steps(self.reduce)]

    def _build_pipeline(self) -> Pipeline:
        return Pipeline([*self._feature_steps(), ("clf", self._classifier())])

    def check_params(self) -> None:
        """Check the settings — `reduce` and the classifier's declared scikit-learn constraints —
        without fitting, so a bad `--set n_neighbors=0` fails before a run folder is made."""
        parse_reduce(self.reduce)
        classifier = self._classifier()
        if hasattr(classifier, "_parameter_constraints"):
            classifier._validate_params()

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> PixelClassifier:
        """Fit the whole pipeline; `sample_weight` goes to the classifier (when it takes one)."""
        parse_reduce(self.reduce)  # a bad setting fails before any work is done
        X = X if issparse(X) else np.asarray(X)
        self.image_shape_ = tuple(int(s) for s in X.shape[1:]) if X.ndim == 3 else None
        if self.image_shape_ is not None:
            X = as_uint8_images(X)  # the package's one pixel rule (floats in 0..1 → ×255)
        X = validate_data(self, as_matrix(X), dtype=None, ensure_min_samples=2)
        check_classification_targets(y)
        y = np.asarray(y)
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=np.float64)
        X, y, sample_weight = self._subset(X, y, sample_weight)
        self.classes_ = np.unique(y)
        pipeline = self._build_pipeline()
        params = {}
        if sample_weight is not None:
            if not has_fit_parameter(pipeline.steps[-1][1], "sample_weight"):
                raise ValueError(f"{type(self).__name__} cannot weight samples "
                                 f"({type(pipeline.steps[-1][1]).__name__} has no sample_weight)")
            params["clf__sample_weight"] = sample_weight
        self.pipeline_ = pipeline.fit(X, y, **params)
        return self

    def _subset(self, X: np.ndarray, y: np.ndarray, w: np.ndarray | None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """A stratified subset of `max_train` rows (all rows when unset or not smaller)."""
        if self.max_train is None or self.max_train >= len(y):
            return X, y, w
        index = stratified_indices(y, int(self.max_train), self.random_state)
        return X[index], y[index], None if w is None else w[index]

    def _matrix(self, X: Any) -> np.ndarray:
        """Images fitted as images are read by the one pixel rule, flat or not; a model fitted
        on a plain feature matrix (scikit-learn's estimator checks) takes its input as is."""
        check_is_fitted(self, "pipeline_")
        if getattr(self, "image_shape_", None) is not None and not issparse(X):
            X = as_uint8_images(X)
        return validate_data(self, as_matrix(X), dtype=None, reset=False)

    def predict(self, X: Any) -> np.ndarray:
        X = self._matrix(X)
        return self.pipeline_.predict(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities in the order of `classes_`.

        Classifiers without probabilities (SVC without Platt scaling, linear SVM, perceptron)
        give a softmax of their decision values: the ranking is the classifier's own, but the
        numbers are scores, not calibrated probabilities.
        """
        X = self._matrix(X)
        if hasattr(self.pipeline_, "predict_proba"):
            return self.pipeline_.predict_proba(X)
        scores = self.pipeline_.decision_function(X)
        if scores.ndim == 1:  # two classes: the score of the second one
            p1 = expit(scores)
            return np.column_stack([1 - p1, p1])
        return softmax(scores, axis=1)
