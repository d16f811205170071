"""Checks of a model just read from a run folder, before anyone predicts with it.

The skops allow-list (`fmnist.runs.skops_types`) bounds *which* types a file may build, not
what their arrays hold. Some scikit-learn structures are walked by compiled code without bounds
checks, so a crafted file of allowed types could still read memory out of bounds:

* decision trees (`sklearn.tree._tree.Tree`: forests, AdaBoost) and histogram-boosting trees
  (`TreePredictor`): every child index must point forward inside the tree (so a walk ends) and
  every split feature must exist — in the columns scikit-learn checks the input against
  (`n_features_in_` of the tree, equal to that of the ensemble holding it);
* the SVM's support-vector bookkeeping (libsvm indexes vectors by the per-class counts) and
  k-means centres (their width must be the input's);
* the HOG parameters, which size skimage's histograms (a crafted `orientations` would allocate
  gigabytes per image);
* the k-d tree of k-nearest-neighbours: not checked but rebuilt from the stored training
  points, which gives the same neighbours and cannot be inconsistent.

Then the model must agree with `model.json` (same classes, same image shape) and answer a blank
image with one finite probability per class, so `predict`/`serve` never fail later on a run
that loaded.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

import numpy as np

from fmnist.errors import FmnistError
from fmnist.runs.meta import MetaError, image_shape

# Objects visited when looking for the structures above; a fitted model holds a few thousand.
MAX_OBJECTS = 200_000


def check_loaded(model: Any, meta: dict, source: str, error: type[FmnistError]) -> None:
    """Raise `error` (one line naming `source`) unless `model` is safe to run and matches meta."""
    classes = getattr(model, "classes_", None)
    if classes is None or np.asarray(classes).tolist() != meta["classes"]:
        raise error(f"{source}: the model's classes do not match model.json's 'classes'; the "
                    "run is damaged")
    shape = _image_shape(model, meta, source, error)
    try:
        problems = _structure_problems(model)
    except (AttributeError, TypeError, ValueError, IndexError) as exc:
        problems = [f"fitted attributes missing or of the wrong type ({type(exc).__name__})"]
    for problem in problems:
        raise error(f"{source}: the saved model is inconsistent ({problem}); refusing to run "
                    "it — the file is damaged or was crafted")
    _smoke(model, shape, len(meta["classes"]), source, error)


def _image_shape(model: Any, meta: dict, source: str,
                 error: type[FmnistError]) -> tuple[int, int]:
    """The image size both model.json and the model itself agree on."""
    own = getattr(model, "input_shape_", None) or getattr(model, "image_shape_", None)
    members = getattr(model, "estimators_", None)
    if own is None and isinstance(members, list) and members:
        own = getattr(members[0], "input_shape_", None)
    declared = meta.get("image_shape")
    try:
        own = image_shape(list(own), source, "the model's input shape") if own else None
    except (MetaError, TypeError) as exc:
        raise error(f"{exc}; the run is damaged") from None
    if own and declared and tuple(declared) != own:
        raise error(f"{source}: 'image_shape' says {declared[0]}×{declared[1]} but the model "
                    f"was fitted on {own[0]}×{own[1]} images; the run is damaged")
    return tuple(declared) if declared else (own or (28, 28))


def _smoke(model: Any, shape: tuple[int, int], n_classes: int, source: str,
           error: type[FmnistError]) -> None:
    if not callable(getattr(model, "predict_proba", None)):
        raise error(f"{source}: the saved model gives no probabilities")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            proba = np.asarray(model.predict_proba(np.zeros((1, *shape), np.uint8)), float)
    except Exception as exc:  # noqa: BLE001 - whatever breaks, the run is unusable
        message = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise error(f"{source}: the saved model fails on a blank {shape[0]}×{shape[1]} image "
                    f"({type(exc).__name__}: {message}); the run is damaged") from None
    if proba.shape != (1, n_classes) or not np.isfinite(proba).all():
        raise error(f"{source}: the saved model gives {proba.shape[-1]} outputs for "
                    f"{n_classes} classes; the run is damaged")


def _structure_problems(model: Any) -> list[str]:
    """What is wrong with the compiled-code structures inside `model` (empty when nothing)."""
    if "sklearn" not in sys.modules:  # no object can be of a type below (features.py imports
        return []  # sklearn too): a torch run loads without importing scikit-learn for this
    from sklearn.cluster import KMeans
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    from fmnist.models.features import HOGTransformer

    problems: list[str] = []
    for obj in _objects(model):
        members = getattr(obj, "estimators_", None)
        if isinstance(members, list) and any(
                getattr(m, "n_features_in_", None) != getattr(obj, "n_features_in_", None)
                for m in members if isinstance(m, DecisionTreeClassifier)):
            problems.append("an ensemble whose trees expect another input width")
        if isinstance(obj, DecisionTreeClassifier) and hasattr(obj, "tree_"):
            tree = obj.tree_
            problems += _tree_problems(tree.children_left, tree.children_right, tree.feature,
                                       min(tree.n_features, obj.n_features_in_),
                                       "decision tree")
        elif isinstance(obj, HistGradientBoostingClassifier) and hasattr(obj, "_predictors"):
            for predictor in (p for row in obj._predictors for p in row):
                problems += _predictor_problems(predictor, obj.n_features_in_)
        elif isinstance(obj, SVC) and hasattr(obj, "support_vectors_"):
            problems += _svc_problems(obj)
        elif isinstance(obj, KMeans) and hasattr(obj, "cluster_centers_"):
            if np.shape(obj.cluster_centers_)[1:] != (obj.n_features_in_,):
                problems.append("k-means centres of another width than the input")
        elif isinstance(obj, HOGTransformer) and not _hog_is_sane(obj):
            problems.append("HOG parameters outside any sane range")
        elif isinstance(obj, KNeighborsClassifier) and getattr(obj, "_tree", None) is not None:
            problems += _rebuild_neighbour_tree(obj)
    return problems


def _objects(root: Any) -> list[Any]:
    """Every object reachable from `root` through attributes, lists, tuples and dicts."""
    seen: set[int] = set()
    found: list[Any] = []
    stack = [root]
    while stack and len(seen) < MAX_OBJECTS:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, (np.ndarray, str, bytes, int, float, type(None))):
            continue
        seen.add(id(obj))
        found.append(obj)
        if isinstance(obj, (list, tuple)):
            stack.extend(obj)
        elif isinstance(obj, dict):
            stack.extend(obj.values())
        elif type(obj).__module__.split(".")[0] in ("fmnist", "sklearn"):
            stack.extend(getattr(obj, "__dict__", {}).values())
    return found


def _tree_problems(left: np.ndarray, right: np.ndarray, feature: np.ndarray, n_features: int,
                   what: str, leaf: np.ndarray | None = None) -> list[str]:
    n = len(left)
    ids = np.arange(n)
    leaf = (left == -1) if leaf is None else leaf.astype(bool)
    inner = ~leaf
    if len(right) != n or len(feature) != n:
        return [f"{what} arrays of different lengths"]
    if (not ((left[inner] > ids[inner]) & (left[inner] < n)).all()
            or not ((right[inner] > ids[inner]) & (right[inner] < n)).all()):
        return [f"{what} with a child index outside the tree"]
    if not ((feature[inner] >= 0) & (feature[inner] < n_features)).all():
        return [f"{what} splitting on a feature that does not exist"]
    return []


def _predictor_problems(predictor: Any, n_features: int) -> list[str]:
    nodes = getattr(predictor, "nodes", None)
    names = getattr(getattr(nodes, "dtype", None), "names", None) or ()
    if not {"left", "right", "feature_idx", "is_leaf", "is_categorical"} <= set(names):
        return ["a boosting tree without its node table"]
    if nodes["is_categorical"].any():  # fmnist's pixels are never categorical
        return ["a boosting tree with categorical splits"]
    return _tree_problems(nodes["left"].astype(np.int64), nodes["right"].astype(np.int64),
                          nodes["feature_idx"].astype(np.int64), n_features, "boosting tree",
                          nodes["is_leaf"])


def _hog_is_sane(hog: Any) -> bool:
    sizes = (hog.orientations, hog.pixels_per_cell, hog.cells_per_block,
             getattr(hog, "n_features_out_", 1))
    return (all(isinstance(v, int) and not isinstance(v, bool) for v in sizes)
            and 1 <= hog.orientations <= 360 and 1 <= hog.pixels_per_cell <= 64
            and 1 <= hog.cells_per_block <= 16 and 1 <= sizes[-1] <= 10_000_000)


def _svc_problems(svc: Any) -> list[str]:
    try:
        counts = np.asarray(svc._n_support, dtype=np.int64)
        k = len(svc.classes_)
        vectors, dual = svc.support_vectors_, svc._dual_coef_
        ok = (len(counts) == k and (counts >= 0).all() and counts.sum() == len(vectors)
              == dual.shape[1] == len(svc.support_) and dual.shape[0] == k - 1
              and len(svc._intercept_) == k * (k - 1) // 2
              and vectors.shape[1] == svc.shape_fit_[1])
    except (AttributeError, TypeError, ValueError, IndexError):
        ok = False
    return [] if ok else ["an SVM whose support-vector counts do not match its vectors"]


def _rebuild_neighbour_tree(knn: Any) -> list[str]:
    """Replace the stored k-d tree by one built from the stored points (same neighbours)."""
    from sklearn.neighbors import KDTree

    try:
        knn._tree = KDTree(np.asarray(knn._fit_X, dtype=np.float64), leaf_size=knn.leaf_size,
                           metric=knn.effective_metric_, **(knn.effective_metric_params_ or {}))
    except Exception as exc:  # noqa: BLE001 - crafted parameters fail in many ways
        return [f"a neighbour index that cannot be rebuilt ({type(exc).__name__})"]
    return []
