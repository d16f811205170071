"""Exactly what a `model.skops` may contain: the types fmnist's own classical models produce.

A skops file is a zip with `schema.json`, a tree of nodes that each name a loader (how skops
rebuilds the object) and a type. skops refuses types it does not trust by default unless the
caller lists them, but its defaults are broad (every scikit-learn estimator, every NumPy and
SciPy ufunc), and trusting a whole package is worse: NumPy and SciPy hold functions that reach
`eval` (issue 11: a `Pipeline` of `FunctionTransformer`s ran a shell command on predict).

So fmnist checks the whole tree against two explicit lists before skops builds anything:

* `ALLOWED_LOADERS`: the node kinds our models need. Notably absent: `FunctionNode`,
  `PartialNode`, `MethodNode`, `OperatorFuncNode` — no fmnist model stores a function, so no
  function or ufunc reference is ever loaded.
* `MODEL_TYPES` ∪ `NUMPY_SCALAR_TYPES`: every type named anywhere in the tree. `MODEL_TYPES` is
  derived from what `fmnist.runs.store.save` writes for every registered model and its
  documented variants; `tests/test_security_store.py::test_allow_list_is_exactly_what_models_need`
  saves them all and fails when a model needs a type that is not listed, or when a listed type
  is no longer needed. NumPy scalar types are plain numbers (a model may hold any of them as a
  fitted value), so they are listed as one group instead of one by one.

Adding a model whose file needs a new type means adding the type here, in review.
"""

from __future__ import annotations

ALLOWED_LOADERS = frozenset({
    "ObjectNode", "DictNode", "ListNode", "TupleNode", "JsonNode", "NdArrayNode", "TypeNode",
    "TreeNode", "LossNode", "RandomGeneratorNode", "CachedNode",
})

_FMNIST = {
    "fmnist.models.bayes": ["BayesClassifier", "IsotropicGaussianBayes"],
    "fmnist.models.classical": [
        "AdaBoostModel", "DecisionTreeModel", "GradientBoostingModel", "HOGSVMClassifier",
        "KNNClassifier", "LinearSVMClassifier", "LogisticClassifier", "PerceptronClassifier",
        "RandomForestModel", "SVMClassifier"],
    "fmnist.models.features": ["HOGTransformer", "PCAReducer", "PixelScaler"],
    "fmnist.models.kmeans": ["KMeansClassifier", "MajorityKMeans"],
}
_SKLEARN = {
    "sklearn._loss._loss": ["CyHalfBinomialLoss", "CyHalfMultinomialLoss"],
    "sklearn._loss.link": ["Interval", "LogitLink", "MultinomialLogit"],
    "sklearn._loss.loss": ["HalfBinomialLoss", "HalfMultinomialLoss"],
    "sklearn.calibration": ["CalibratedClassifierCV", "_CalibratedClassifier",
                            "_SigmoidCalibration"],
    "sklearn.cluster._kmeans": ["KMeans"],
    "sklearn.decomposition._pca": ["PCA"],
    "sklearn.discriminant_analysis": ["LinearDiscriminantAnalysis",
                                      "QuadraticDiscriminantAnalysis"],
    "sklearn.ensemble._forest": ["RandomForestClassifier"],
    "sklearn.ensemble._hist_gradient_boosting.binning": ["_BinMapper"],
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting": [
        "HistGradientBoostingClassifier"],
    "sklearn.ensemble._hist_gradient_boosting.predictor": ["TreePredictor"],
    "sklearn.ensemble._weight_boosting": ["AdaBoostClassifier"],
    "sklearn.linear_model._logistic": ["LogisticRegression"],
    "sklearn.linear_model._sgd_fast": ["Hinge"],
    "sklearn.linear_model._stochastic_gradient": ["SGDClassifier"],
    "sklearn.metrics._dist_metrics": ["EuclideanDistance64", "ManhattanDistance64",
                                      "MinkowskiDistance64"],
    "sklearn.neighbors._classification": ["KNeighborsClassifier"],
    "sklearn.neighbors._kd_tree": ["KDTree"],
    "sklearn.pipeline": ["FeatureUnion", "Pipeline"],
    "sklearn.preprocessing._label": ["LabelEncoder"],
    "sklearn.svm._classes": ["LinearSVC", "SVC"],
    "sklearn.tree._classes": ["DecisionTreeClassifier"],
    "sklearn.tree._tree": ["Tree"],
}
_BASIC = {
    "builtins": ["dict", "list", "str", "tuple"],
    "numpy": ["ndarray"],
    "numpy.random._generator": ["Generator"],
}

MODEL_TYPES = frozenset(f"{module}.{name}" for table in (_FMNIST, _SKLEARN, _BASIC)
                        for module, names in table.items() for name in names)
NUMPY_SCALAR_TYPES = frozenset(f"numpy.{name}" for name in (
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "longdouble", "complex64", "complex128"))
ALLOWED_TYPES = MODEL_TYPES | NUMPY_SCALAR_TYPES


def schema_types(schema: object) -> tuple[set[str], set[str]]:
    """(loaders, types) named anywhere in a skops `schema.json` tree, without building it.

    Every object in the tree that names a module and class counts, wherever it sits, so a
    type cannot hide in a part of the tree a given loader happens not to read.
    """
    loaders: set[str] = set()
    types: set[str] = set()
    stack = [schema]
    while stack:  # iterative: the nesting depth was bounded when the JSON was parsed
        node = stack.pop()
        if isinstance(node, dict):
            if "__loader__" in node:
                loaders.add(str(node["__loader__"]))
            if "__module__" in node or "__class__" in node:
                types.add(f"{node.get('__module__')}.{node.get('__class__')}")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return loaders, types


def refused(loaders: set[str], types: set[str]) -> list[str]:
    """What in (loaders, types) is outside the allow-lists, as sorted display names."""
    return sorted({f"{name} (loader)" for name in loaders - ALLOWED_LOADERS}
                  | (types - ALLOWED_TYPES))
