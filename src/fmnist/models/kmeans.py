"""k-means as a classifier: cluster without labels, then name each cluster by its majority label.

k-means itself never sees a label; the labels are used only afterwards, to call each cluster by
the class most of its training members belong to. So the model answers two questions:
how well do the natural clusters of the data line up with the classes (adjusted Rand index and
normalised mutual information between cluster ids and true labels, both 1 for a perfect match
and ~0 for chance), and how well does "nearest centroid, then the centroid's name" classify
(accuracy). With k = 10 the clusters compete one-to-one with the classes; a larger k lets
several clusters share a class (e.g. sandals with and without heels), which raises accuracy and
lowers ARI.

Extra metrics: after `fit`, `extra_metrics_` holds the training ARI/NMI/purity;
`extra_metrics(X, y)` computes them on any labelled set (the evaluation helper shows them).
"""

from __future__ import annotations

from numbers import Integral
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from fmnist.models.pixel import PixelClassifier


def cluster_scores(clusters: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """ARI, NMI and purity (share of samples whose cluster's majority label is their own)."""
    _, cluster_index = np.unique(clusters, return_inverse=True)
    _, label_index = np.unique(labels, return_inverse=True)
    counts = np.zeros((cluster_index.max() + 1, label_index.max() + 1))
    np.add.at(counts, (cluster_index, label_index), 1)
    return {
        "ari": float(adjusted_rand_score(labels, clusters)),
        "nmi": float(normalized_mutual_info_score(labels, clusters)),
        "purity": float(counts.max(axis=1).sum() / len(labels)),
    }


class MajorityKMeans(ClassifierMixin, BaseEstimator):
    """k-means (sklearn `KMeans`, k-means++ starts) whose clusters carry their majority label.

    Fitted: `kmeans_`, `cluster_distribution_` ([k, n_classes], the label shares of each
    cluster's training members, which `predict_proba` returns for the sample's cluster),
    `cluster_labels_` (each cluster's majority label), `n_iter_` and `extra_metrics_` (training
    scores).
    """

    # scikit-learn's declared constraints: checked by `_validate_params` before any fitting.
    _parameter_constraints: ClassVar[dict] = {
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, n_clusters: int = 10, n_init: int = 3, max_iter: int = 100,
                 random_state: int | None = 0) -> None:
        self.n_clusters = n_clusters
        self.n_init = n_init
        self.max_iter = max_iter
        self.random_state = random_state

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MajorityKMeans:
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        w = _check_sample_weight(sample_weight, X, dtype=np.float64)
        self.classes_, index = np.unique(y, return_inverse=True)
        k = min(int(self.n_clusters), len(X))
        self.kmeans_ = KMeans(n_clusters=k, n_init=self.n_init, max_iter=self.max_iter,
                              random_state=self.random_state).fit(X, sample_weight=w)
        clusters = self.kmeans_.labels_
        counts = np.zeros((k, len(self.classes_)))
        np.add.at(counts, (clusters, index), w)
        empty = counts.sum(axis=1) == 0
        counts[empty] = np.bincount(index, weights=w, minlength=len(self.classes_))
        self.cluster_distribution_ = counts / counts.sum(axis=1, keepdims=True)
        self.cluster_labels_ = np.argmax(self.cluster_distribution_, axis=1)
        self.n_iter_ = self.kmeans_.n_iter_
        self.extra_metrics_ = cluster_scores(clusters, y)
        return self

    def clusters(self, X: Any) -> np.ndarray:
        """The nearest centroid's index for each sample."""
        check_is_fitted(self, "kmeans_")
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return self.kmeans_.predict(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        clusters = self.clusters(X)
        return self.cluster_distribution_[clusters]

    def predict(self, X: Any) -> np.ndarray:
        clusters = self.clusters(X)
        return self.classes_[self.cluster_labels_[clusters]]


class KMeansClassifier(PixelClassifier):
    """k-means clusters named by majority label, on scaled, optionally reduced pixels.

    `extra_metrics(X, y)` → {"ari", "nmi", "purity"} of the cluster ids against `y`.

    Parameters
    ----------
    n_clusters : int, default 10
        Clusters; each is named by the majority label of its training images.
    n_init : int, default 3
        k-means runs from different seeds; the best (lowest inertia) is kept.
    max_iter : int, default 100
        Iterations of each run.

    Attributes
    ----------
    n_iter_ : int
        Iterations the kept run took.
    extra_metrics_ : dict
        ARI, NMI and purity of the clusters on the training data.

    The common parameters (`reduce`, `scale`, `max_train`, `random_state`) and the fitted
    attributes (`pipeline_`, `classes_`, `image_shape_`) are those of `PixelClassifier`.
    """

    def __init__(self, n_clusters: int = 10, n_init: int = 3, max_iter: int = 100,
                 reduce: str = "pca:50", scale: str = "unit", max_train: int | None = None,
                 random_state: int | None = 0) -> None:
        self.n_clusters = n_clusters
        self.n_init = n_init
        self.max_iter = max_iter
        self.reduce = reduce
        self.scale = scale
        self.max_train = max_train
        self.random_state = random_state

    def _classifier(self) -> BaseEstimator:
        return MajorityKMeans(n_clusters=self.n_clusters, n_init=self.n_init,
                              max_iter=self.max_iter, random_state=self.random_state)

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> KMeansClassifier:
        super().fit(X, y, sample_weight=sample_weight)
        self.n_iter_ = self.pipeline_[-1].n_iter_
        self.extra_metrics_ = dict(self.pipeline_[-1].extra_metrics_)
        return self

    def clusters(self, X: Any) -> np.ndarray:
        """Each image's cluster index (before naming)."""
        features = self.pipeline_[:-1].transform(self._matrix(X))
        return self.pipeline_[-1].clusters(features)

    def extra_metrics(self, X: Any, y: Any) -> dict[str, float]:
        """Unsupervised scores of the clustering on a labelled set: ARI, NMI, purity."""
        return cluster_scores(self.clusters(X), np.asarray(y))
