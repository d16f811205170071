"""The classical models (their registry entries are in `fmnist.models.families`).

Each model is a `PixelClassifier` subclass (raw uint8 images in, `scale → reduce → classifier`
inside) whose constructor lists its parameters flat, so `fmnist train svm --reduce pca:0.9
--set C=5` sets real estimator parameters. Defaults were chosen by measurement on the full
60k/10k split on 2 CPU cores (benchmarks/classical.py, numbers in benchmarks/RESULTS.md);
`quick` settings keep each model's fit + 10k predictions around 20 s for the comparison's quick
preset, mostly by training on a subset (`max_train`).
"""

from __future__ import annotations

from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import (
    AdaBoostClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import FeatureUnion
from sklearn.svm import SVC, LinearSVC
from sklearn.tree import DecisionTreeClassifier

from fmnist.models.features import HOGTransformer, PixelScaler, reduce_steps
from fmnist.models.pixel import PixelClassifier


class KNNClassifier(PixelClassifier):
    """k nearest neighbours (Euclidean by default) on scaled, optionally reduced pixels.

    Parameters
    ----------
    n_neighbors : int, default 5
        Neighbours that vote.
    weights : {"distance", "uniform"}, default "distance"
        Nearer neighbours count more ("distance") or all count alike.
    p : int, default 2
        Minkowski power: 2 is Euclidean, 1 Manhattan.
    n_jobs : int or None, default -1
        Processes for the neighbour search (-1: every core).

    The common parameters (`reduce`, `scale`, `max_train`, `random_state`) and the fitted
    attributes (`pipeline_`, `classes_`, `image_shape_`) are those of `PixelClassifier`.
    """

    def __init__(self, n_neighbors: int = 5, weights: str = "distance", p: int = 2,
                 reduce: str = "pca:50", scale: str = "unit", max_train: int | None = None,
                 random_state: int | None = 0, n_jobs: int | None = -1) -> None:
        self.n_neighbors = n_neighbors
        self.weights = weights
        self.p = p
        self.reduce = reduce
        self.scale = scale
        self.max_train = max_train
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _classifier(self) -> BaseEstimator:
        return KNeighborsClassifier(n_neighbors=self.n_neighbors, weights=self.weights,
                                    p=self.p, n_jobs=self.n_jobs)


class SVMClassifier(PixelClassifier):
    """Support vector machine with an RBF kernel (libsvm, one-vs-one).

    Parameters
    ----------
    C : float, default 10.0
        Inverse regularisation strength.
    gamma : "scale" or float, default "scale"
        RBF kernel width ("scale": 1 / (n_features · variance of the input)).
    probability : bool, default False
        Calibrate the scores with Platt's sigmoid (`CalibratedClassifierCV`, 3-fold: about
        three times slower); otherwise `predict_proba` is a softmax of the one-vs-rest decision
        values, which ranks classes exactly as the SVM does.
    cache_size : float, default 1000.0
        Kernel cache of libsvm, in MB.

    The common parameters (`reduce`, `scale`, `max_train`, `random_state`) and the fitted
    attributes (`pipeline_`, `classes_`, `image_shape_`) are those of `PixelClassifier`.
    """

    def __init__(self, C: float = 10.0, gamma: str | float = "scale", probability: bool = False,
                 reduce: str = "pca:100", scale: str = "unit", max_train: int | None = None,
                 random_state: int | None = 0, cache_size: float = 1000.0) -> None:
        self.C = C
        self.gamma = gamma
        self.probability = probability
        self.reduce = reduce
        self.scale = scale
        self.max_train = max_train
        self.random_state = random_state
        self.cache_size = cache_size

    def _classifier(self) -> BaseEstimator:
        svc = SVC(C=self.C, kernel="rbf", gamma=self.gamma, cache_size=self.cache_size,
                  random_state=self.random_state)
        if self.probability:
            return CalibratedClassifierCV(svc, method="sigmoid", cv=3, ensemble=False)
        return svc


class HOGSVMClassifier(SVMClassifier):
    """RBF SVM on histogram-of-oriented-gradients features joined with the scaled pixels.

    HOG describes local edge directions (what separates shirts from pullovers and coats better
    than intensities); the pixels add what HOG's per-block normalisation throws away: absolute
    brightness and filled areas. `reduce` then applies to the joined vector (PCA keeps the
    SVM's kernel evaluations cheap). `C`, `gamma`, `probability`, `cache_size`: as in
    `SVMClassifier`.

    Parameters
    ----------
    orientations : int, default 9
        Gradient-direction bins of each HOG histogram.
    pixels_per_cell : int, default 4
        Side of a HOG cell, in pixels.
    cells_per_block : int, default 2
        Side of a normalisation block, in cells.
    pixel_weight : float, default 1.0
        Weight of the scaled pixels joined to the HOG features (0: HOG only).

    The common parameters (`reduce`, `scale`, `max_train`, `random_state`) and the fitted
    attributes (`pipeline_`, `classes_`, `image_shape_`) are those of `PixelClassifier`.
    """

    def __init__(self, C: float = 10.0, gamma: str | float = "scale", probability: bool = False,
                 orientations: int = 9, pixels_per_cell: int = 4, cells_per_block: int = 2,
                 pixel_weight: float = 1.0, reduce: str = "pca:200", scale: str = "unit",
                 max_train: int | None = None, random_state: int | None = 0,
                 cache_size: float = 1000.0) -> None:
        super().__init__(C=C, gamma=gamma, probability=probability, reduce=reduce, scale=scale,
                         max_train=max_train, random_state=random_state, cache_size=cache_size)
        self.orientations = orientations
        self.pixels_per_cell = pixels_per_cell
        self.cells_per_block = cells_per_block
        self.pixel_weight = pixel_weight

    def _feature_steps(self) -> list[tuple[str, BaseEstimator]]:
        hog = HOGTransformer(orientations=self.orientations,
                             pixels_per_cell=self.pixels_per_cell,
                             cells_per_block=self.cells_per_block,
                             image_shape=self.image_shape_)
        pixels = PixelScaler(self.scale) if self.pixel_weight else "drop"
        union = FeatureUnion([("hog", hog), ("pixels", pixels)],
                             transformer_weights={"pixels": self.pixel_weight or 1.0})
        return [("features", union), *reduce_steps(self.reduce)]


class LinearSVMClassifier(PixelClassifier):
    """Linear support vector machine (liblinear, one-vs-rest, squared hinge).

    Parameters
    ----------
    C : float, default 0.1
        Inverse regularisation strength.
    max_iter : int, default 1000
        Iterations of liblinear's solver.

    The common parameters (`reduce`, `scale`, `max_train`, `random_state`) and the fitted
    attributes (`pipeline_`, `classes_`, `image_shape_`) are those of `PixelClassifier`.
    """

    def __init__(self, C: float = 0.1, max_iter: int = 1000, reduce: str = "none",
                 scale: str = "unit", max_train: int | None = None,
                 random_state: int | None = 0) -> None:
        self.C = C
        self.max_iter = max_iter
        self.reduce = reduce
        self.scale = scale
        self.max_train = max_train
        self.random_state = random_state

    def _classifier(self) -> BaseEstimator:
        return LinearSVC(C=self.C, max_iter=self.max_iter, dual="auto",
                         random_state=self.random_state)


class LogisticClassifier(PixelClassifier):
    """Multinomial logistic regression (L-BFGS, L2 penalty).

    Parameters
    ----------
    C : float, default 1.0
        Inverse regularisation strength.
    max_iter : int, default 200
        L-BFGS iterations; a fit that stops at the cap warns (ConvergenceWarning).

    The common parameters (`reduce`, `scale`, `max_train`, `random_state`) and the fitted
    attributes (`pipeline_`, `classes_`, `image_shape_`) are those of `PixelClassifier`.
    """

    def __init__(self, C: float = 1.0, max_iter: int = 200, reduce: str = "none",
                 scale: str = "unit", max_train: int | None = None,
                 random_state: int | None = 0) -> None:
        self.C = C
        self.max_iter = max_iter
        self.reduce = reduce
        self.scale = scale
        self.max_train = max_train
        self.random_state = random_state

    def _classifier(self) -> BaseEstimator:
        return LogisticRegression(C=self.C, max_iter=self.max_iter,
                                  random_state=self.random_state)


class PerceptronClassifier(PixelClassifier):
    """The perceptron (one-vs-rest), trained by stochastic gradient descent on its own loss.

    Parameters
    ----------
    max_iter : int, default 20
        Passes over the training data.
    average : bool, default True
        Keep the average of the weights over all updates (the averaged perceptron): same model
        class, far less sensitive to the last few noisy updates.

    The common parameters (`reduce`, `scale`, `max_train`, `random_state`) and the fitted
    attributes (`pipeline_`, `classes_`, `image_shape_`) are those of `PixelClassifier`.
    """

    def __init__(self, max_iter: int = 20, average: bool = True, reduce: str = "none",
                 scale: str = "unit", max_train: int | None = None,
                 random_state: int | None = 0) -> None:
        self.max_iter = max_iter
        self.average = average
        self.reduce = reduce
        self.scale = scale
        self.max_train = max_train
        self.random_state = random_state

    def _classifier(self) -> BaseEstimator:
        return SGDClassifier(loss="perceptron", penalty=None, learning_rate="constant", eta0=1.0,
                             max_iter=self.max_iter, tol=None, average=self.average,
                             random_state=self.random_state)


class DecisionTreeModel(PixelClassifier):
    """One CART decision tree.

    Parameters
    ----------
    criterion : {"entropy", "gini", "log_loss"}, default "entropy"
        Impurity a split minimises.
    max_depth : int or None, default 12
        Deepest level of the tree (None: until the leaves are pure).
    min_samples_leaf : int, default 1
        Fewest training images in a leaf.

    The common parameters (`reduce`, `scale`, `max_train`, `random_state`) and the fitted
    attributes (`pipeline_`, `classes_`, `image_shape_`) are those of `PixelClassifier`.
    """

    def __init__(self, criterion: str = "entropy", max_depth: int | None = 12,
                 min_samples_leaf: int = 1, reduce: str = "none", scale: str = "unit",
                 max_train: int | None = None, random_state: int | None = 0) -> None:
        self.criterion = criterion
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.reduce = reduce
        self.scale = scale
        self.max_train = max_train
        self.random_state = random_state

    def _classifier(self) -> BaseEstimator:
        return DecisionTreeClassifier(criterion=self.criterion, max_depth=self.max_depth,
                                      min_samples_leaf=self.min_samples_leaf,
                                      random_state=self.random_state)


class RandomForestModel(PixelClassifier):
    """Random forest: bagged trees with √d features tried per split.

    Parameters
    ----------
    n_estimators : int, default 100
        Trees in the forest.
    max_depth : int or None, default None
        Deepest level of each tree (None: until the leaves are pure).
    max_features : "sqrt", "log2" or float, default "sqrt"
        Features tried at each split.
    n_jobs : int or None, default -1
        Processes that grow and apply the trees (-1: every core).

    The common parameters (`reduce`, `scale`, `max_train`, `random_state`) and the fitted
    attributes (`pipeline_`, `classes_`, `image_shape_`) are those of `PixelClassifier`.
    """

    def __init__(self, n_estimators: int = 100, max_depth: int | None = None,
                 max_features: str | float = "sqrt", reduce: str = "none", scale: str = "unit",
                 max_train: int | None = None, random_state: int | None = 0,
                 n_jobs: int | None = -1) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.max_features = max_features
        self.reduce = reduce
        self.scale = scale
        self.max_train = max_train
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _classifier(self) -> BaseEstimator:
        return RandomForestClassifier(n_estimators=self.n_estimators, max_depth=self.max_depth,
                                      max_features=self.max_features, n_jobs=self.n_jobs,
                                      random_state=self.random_state)


class AdaBoostModel(PixelClassifier):
    """AdaBoost (multi-class SAMME, scikit-learn's only algorithm) on shallow decision trees.

    Parameters
    ----------
    n_estimators : int, default 100
        Boosting rounds (trees).
    learning_rate : float, default 0.5
        Shrinks each tree's vote.
    max_depth : int, default 6
        Depth of every tree.

    The common parameters (`reduce`, `scale`, `max_train`, `random_state`) and the fitted
    attributes (`pipeline_`, `classes_`, `image_shape_`) are those of `PixelClassifier`.
    """

    def __init__(self, n_estimators: int = 100, learning_rate: float = 0.5, max_depth: int = 6,
                 reduce: str = "pca:50", scale: str = "unit", max_train: int | None = None,
                 random_state: int | None = 0) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.reduce = reduce
        self.scale = scale
        self.max_train = max_train
        self.random_state = random_state

    def _classifier(self) -> BaseEstimator:
        tree = DecisionTreeClassifier(max_depth=self.max_depth, random_state=self.random_state)
        return AdaBoostClassifier(estimator=tree, n_estimators=self.n_estimators,
                                  learning_rate=self.learning_rate,
                                  random_state=self.random_state)


class GradientBoostingModel(PixelClassifier):
    """Histogram gradient boosting (scikit-learn's LightGBM-style trees, multinomial loss).

    Parameters
    ----------
    max_iter : int, default 100
        Boosting rounds (one tree per class each).
    learning_rate : float, default 0.2
        Shrinks each round's trees.
    max_leaf_nodes : int, default 31
        Leaves of each tree.
    early_stopping : bool, default False
        Stop when a held-out 10% stops improving.

    The common parameters (`reduce`, `scale`, `max_train`, `random_state`) and the fitted
    attributes (`pipeline_`, `classes_`, `image_shape_`) are those of `PixelClassifier`.
    """

    def __init__(self, max_iter: int = 100, learning_rate: float = 0.2,
                 max_leaf_nodes: int = 31, early_stopping: bool = False,
                 reduce: str = "none", scale: str = "none", max_train: int | None = None,
                 random_state: int | None = 0) -> None:
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.early_stopping = early_stopping
        self.reduce = reduce
        self.scale = scale
        self.max_train = max_train
        self.random_state = random_state

    def _classifier(self) -> BaseEstimator:
        return HistGradientBoostingClassifier(
            max_iter=self.max_iter, learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes, early_stopping=self.early_stopping,
            random_state=self.random_state)

