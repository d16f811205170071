"""Metrics for any fitted classifier on any `Dataset`, and McNemar's test between two models.

One evaluation path serves every model (torch or scikit-learn), because every model takes raw
uint8 images and follows the scikit-learn classifier API. The numbers come from libraries:
scikit-learn for precision/recall/F1, confusion matrix, log-loss and top-k accuracy; SciPy's
exact binomial test (`scipy.stats.binomtest`) for the confidence interval of the accuracy and for
McNemar's exact test (the same numbers statsmodels gives, without its pandas/patsy stack).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import binomtest
from sklearn.base import BaseEstimator
from sklearn.metrics import (
    confusion_matrix,
    log_loss,
    precision_recall_fscore_support,
    top_k_accuracy_score,
)

from fmnist.data import Dataset
from fmnist.errors import FmnistError

#: SciPy's names for the two interval methods we offer: Wilson's score interval (good coverage,
#: the default) and the conservative exact Clopper-Pearson interval.
CI_METHODS = {"wilson": "wilson", "clopper-pearson": "exact"}

#: File names of saved weights (fmnist.runs.store); their total is a run's "saved size".
MODEL_FILES = ("model.safetensors", "model.skops", "model.json")


@dataclass
class McNemarResult:
    """McNemar's exact test on two models' paired correctness.

    `only_a` counts images model A gets right and B wrong, `only_b` the reverse; only these
    discordant pairs carry information, and under "equally accurate" each is a fair coin flip.
    """

    only_a: int
    only_b: int
    both_right: int
    both_wrong: int
    pvalue: float

    def significant(self, alpha: float = 0.05) -> bool:
        return self.pvalue < alpha

    def to_dict(self) -> dict[str, Any]:
        return {"only_a": self.only_a, "only_b": self.only_b, "both_right": self.both_right,
                "both_wrong": self.both_wrong, "pvalue": self.pvalue}


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> McNemarResult:
    """McNemar's exact (binomial) test: do models A and B differ in accuracy on the same images?

    Two accuracies on one test set are not independent samples, so a difference of CIs would be
    wrong; the paired test looks only at images where exactly one model is right. Under "equally
    accurate" each discordant image is a fair coin flip, so the p-value is the two-sided exact
    binomial test of `only_a` successes in `only_a + only_b` trials at p = 1/2.
    """
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"correctness vectors must be 1-D and equal length, got {a.shape} "
                         f"and {b.shape}")
    table = np.array([[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]])
    only_a, only_b = int(table[0, 1]), int(table[1, 0])
    # With no discordant pair the models agree everywhere: no evidence of a difference.
    pvalue = 1.0 if only_a + only_b == 0 else float(binomtest(only_a, only_a + only_b).pvalue)
    return McNemarResult(only_a, only_b, int(table[0, 0]), int(table[1, 1]), min(pvalue, 1.0))


def accuracy_ci(correct: int, total: int, method: str = "wilson",
                alpha: float = 0.05) -> tuple[float, float]:
    """The (1 - alpha) confidence interval of an accuracy of `correct` out of `total`."""
    if method not in CI_METHODS:
        raise FmnistError(f"unknown CI method {method!r}; use one of {', '.join(CI_METHODS)}")
    if total <= 0:
        raise ValueError("cannot compute a confidence interval on zero images")
    interval = binomtest(correct, total).proportion_ci(1 - alpha, CI_METHODS[method])
    return float(interval.low), float(interval.high)


@dataclass
class Evaluation:
    """Every number about one model on one dataset, plus the raw predictions behind them.

    The arrays (`y_true`, `y_pred`, `proba`) feed the figures and McNemar's test; `to_dict`
    leaves them out so results stay small JSON.
    """

    model_name: str
    dataset: str
    class_names: tuple[str, ...]
    n_images: int
    accuracy: float
    ci_low: float
    ci_high: float
    ci_method: str
    macro: dict[str, float]
    weighted: dict[str, float]
    per_class: list[dict[str, Any]]
    confusion: np.ndarray
    confused_pairs: list[dict[str, Any]]
    predict_seconds: float
    images_per_second: float
    log_loss: float | None = None
    top2_accuracy: float | None = None
    fit_seconds: float | None = None
    n_params: int | None = None
    size_bytes: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    y_true: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False)
    y_pred: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False)
    proba: np.ndarray | None = field(default=None, repr=False)

    @property
    def correct(self) -> np.ndarray:
        """Per-image correctness, the input to McNemar's test."""
        return self.y_true == self.y_pred

    @property
    def confusion_normalized(self) -> np.ndarray:
        """Each row divided by its class's count: row i is where class i's images went."""
        rows = self.confusion.sum(axis=1, keepdims=True)
        return np.divide(self.confusion, rows, out=np.zeros(self.confusion.shape), where=rows > 0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no per-image arrays)."""
        return {
            "model": self.model_name, "dataset": self.dataset, "n_images": self.n_images,
            "class_names": list(self.class_names),
            "accuracy": self.accuracy, "ci_low": self.ci_low, "ci_high": self.ci_high,
            "ci_method": self.ci_method, "macro": self.macro, "weighted": self.weighted,
            "per_class": self.per_class, "confusion": self.confusion.tolist(),
            "confusion_normalized": np.round(self.confusion_normalized, 6).tolist(),
            "confused_pairs": self.confused_pairs, "log_loss": self.log_loss,
            "top2_accuracy": self.top2_accuracy, "fit_seconds": self.fit_seconds,
            "predict_seconds": self.predict_seconds,
            "images_per_second": self.images_per_second, "n_params": self.n_params,
            "size_bytes": self.size_bytes, "extra": self.extra,
        }

    def text(self) -> str:
        """A plain-text report for the terminal."""
        lines = [
            f"{self.model_name} on {self.dataset} ({self.n_images:,} images)",
            f"  accuracy      {self.accuracy:.4f}  (95% CI {self.ci_low:.4f}–{self.ci_high:.4f},"
            f" {self.ci_method})",
            f"  macro    P/R/F1 {self.macro['precision']:.4f} / {self.macro['recall']:.4f} / "
            f"{self.macro['f1']:.4f}",
            f"  weighted P/R/F1 {self.weighted['precision']:.4f} / "
            f"{self.weighted['recall']:.4f} / {self.weighted['f1']:.4f}",
        ]
        if self.log_loss is not None:
            lines.append(f"  log-loss      {self.log_loss:.4f}   top-2 accuracy "
                         f"{self.top2_accuracy:.4f}")
        if self.fit_seconds is not None:
            lines.append(f"  fit           {self.fit_seconds:.1f} s")
        lines.append(f"  predict       {self.images_per_second:,.0f} images/s")
        if self.n_params is not None:
            lines.append(f"  parameters    {self.n_params:,}")
        if self.size_bytes is not None:
            lines.append(f"  saved size    {self.size_bytes / 1e6:.2f} MB")
        for key, value in self.extra.items():
            lines.append(f"  {key:13s} {value:.4f}" if isinstance(value, float)
                         else f"  {key:13s} {value}")
        width = max(len(n) for n in self.class_names)
        lines.append("")
        lines.append(f"  {'class':{width}s}  precision  recall      f1  support")
        for row in self.per_class:
            lines.append(f"  {row['class']:{width}s}  {row['precision']:9.4f}  {row['recall']:6.4f}"
                         f"  {row['f1']:6.4f}  {row['support']:7d}")
        if self.confused_pairs:
            lines.append("")
            lines.append("  most confused (actual → predicted):")
            for pair in self.confused_pairs:
                lines.append(f"    {pair['actual']} → {pair['predicted']}: {pair['count']} "
                             f"({pair['rate']:.1%} of {pair['actual']})")
        return "\n".join(lines)


def evaluate(model: BaseEstimator, data: Dataset, *, model_name: str | None = None,
             fit_seconds: float | None = None, run_dir: str | Path | None = None,
             ci_method: str = "wilson", top_pairs: int = 5) -> Evaluation:
    """Evaluate a fitted classifier on `data` (raw uint8 images, as every model takes them).

    Labels are what `predict` returns (see `predictions`); images/s is timed on one full
    pass. Log-loss and top-2 accuracy need `predict_proba`. `run_dir` (a saved run) gives the
    saved size.
    """
    if len(data) == 0:
        raise FmnistError("cannot evaluate on an empty dataset")
    labels = np.arange(data.n_classes)
    y_pred, proba, predict_seconds = predictions(model, data, labels)
    y_true = data.labels
    n_right = int(np.sum(y_pred == y_true))
    low, high = accuracy_ci(n_right, len(data), ci_method)

    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    per_class = [{"class": name, "precision": float(p[i]), "recall": float(r[i]),
                  "f1": float(f[i]), "support": int(s[i])}
                 for i, name in enumerate(data.class_names)]
    averages = {}
    for avg in ("macro", "weighted"):
        ap, ar, af, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels,
                                                        average=avg, zero_division=0)
        averages[avg] = {"precision": float(ap), "recall": float(ar), "f1": float(af)}
    cm = confusion_matrix(y_true, y_pred, labels=labels)

    loss = top2 = None
    if proba is not None:
        loss = float(log_loss(y_true, proba, labels=labels))
        top2 = float(top_k_accuracy_score(y_true, proba, k=2, labels=labels))

    return Evaluation(
        model_name=model_name or type(model).__name__, dataset=data.source or "dataset",
        class_names=tuple(data.class_names), n_images=len(data),
        accuracy=n_right / len(data), ci_low=low, ci_high=high, ci_method=ci_method,
        macro=averages["macro"], weighted=averages["weighted"], per_class=per_class,
        confusion=cm, confused_pairs=most_confused(cm, data.class_names, top_pairs),
        predict_seconds=predict_seconds,
        images_per_second=len(data) / predict_seconds if predict_seconds > 0 else math.inf,
        log_loss=loss, top2_accuracy=top2, fit_seconds=fit_seconds,
        n_params=count_parameters(model),
        size_bytes=saved_size(run_dir) if run_dir is not None else None,
        extra=_extra_metrics(model, data), y_true=y_true, y_pred=y_pred, proba=proba,
    )


#: How many images `predictions` checks `predict` against argmax(`predict_proba`) on.
CONSISTENCY_SAMPLE = 200


def predictions(model: BaseEstimator, data: Dataset, labels: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray | None, float]:
    """(predicted labels, probabilities or None, seconds for the timed pass).

    Predicting twice doubles the slowest part of an evaluation (HOG features, a CNN, an SVM's
    kernel sums), so when the model has probabilities the labels are their argmax — the top
    class `fmnist predict` and the web app show — after checking that `predict` agrees on a
    sample. Where it does not (Platt-scaled SVM probabilities can disagree with the SVM's own
    vote), the labels come from a full `predict` pass, scikit-learn's definition.
    """
    start = time.perf_counter()
    proba = _full_proba(model, data, labels)
    seconds = time.perf_counter() - start
    if proba is not None:
        y_pred = labels[np.argmax(proba, axis=1)]
        sample = slice(0, min(CONSISTENCY_SAMPLE, len(data)))
        if np.array_equal(np.asarray(model.predict(data.images[sample])), y_pred[sample]):
            return y_pred.astype(np.int64), proba, seconds
    start = time.perf_counter()
    y_pred = np.asarray(model.predict(data.images)).astype(np.int64)
    return y_pred, proba, time.perf_counter() - start


def _full_proba(model: BaseEstimator, data: Dataset, labels: np.ndarray) -> np.ndarray | None:
    """`predict_proba` with one column per dataset class, even if the model saw fewer classes
    (a tiny subset can miss one): absent classes get probability 0."""
    if not hasattr(model, "predict_proba"):
        return None
    try:
        proba = np.asarray(model.predict_proba(data.images), dtype=np.float64)
    except (AttributeError, NotImplementedError):
        # e.g. SVC(probability=False) exposes the method but refuses to run it.
        return None
    # float32 outputs (torch) sum to 1 only within ~1e-7, which log_loss rejects as "not
    # probabilities": renormalise in float64.
    sums = proba.sum(axis=1, keepdims=True)
    proba = np.divide(proba, sums, out=np.full_like(proba, 1.0 / proba.shape[1]), where=sums > 0)
    classes = np.asarray(getattr(model, "classes_", labels))
    if proba.shape[1] == len(labels) and np.array_equal(classes, labels):
        return proba
    full = np.zeros((len(proba), len(labels)))
    full[:, classes.astype(np.int64)] = proba
    return full


def most_confused(cm: np.ndarray, class_names: Sequence[str], top: int = 5) -> list[dict]:
    """The largest off-diagonal cells: which class is most often taken for which."""
    off = cm.astype(np.int64).copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(off, axis=None)[::-1][:top]
    support = cm.sum(axis=1)
    pairs = []
    for flat in order:
        i, j = np.unravel_index(flat, off.shape)
        if off[i, j] == 0:
            break
        pairs.append({"actual": class_names[i], "predicted": class_names[j],
                      "count": int(off[i, j]), "rate": float(off[i, j] / support[i])})
    return pairs


def count_parameters(model: Any) -> int | None:
    """Learned numbers in a fitted model.

    Torch estimators report `n_params_`. For scikit-learn models we add up the public fitted
    arrays (names ending in `_`), tree nodes, and the steps of pipelines and ensembles; models
    whose "parameters" are the stored training set (kNN) count those images' features. Returns
    None when nothing countable is found rather than a misleading 0.
    """
    n_params = getattr(model, "n_params_", None)
    if n_params is not None:
        return int(n_params)
    total = _count_sklearn(model, depth=0)
    return total or None


def _count_sklearn(obj: Any, depth: int) -> int:
    if depth > 6:
        return 0
    if getattr(obj, "n_params_", None) is not None:  # a torch member of an ensemble
        return int(obj.n_params_)
    total = 0
    if hasattr(obj, "steps"):  # Pipeline
        return sum(_count_sklearn(step, depth + 1) for _, step in obj.steps
                   if step not in (None, "passthrough"))
    tree = getattr(obj, "tree_", None)
    if tree is not None and hasattr(tree, "node_count"):
        # Each node stores a feature index, a threshold and its class-value vector.
        total += int(tree.node_count) * (2 + int(np.prod(tree.value.shape[1:])))
    for per_iteration in getattr(obj, "_predictors", None) or []:  # histogram boosting
        # Each node: a feature index, a threshold and a value.
        total += sum(3 * len(tree.nodes) for tree in per_iteration)
    fit_x = getattr(obj, "_fit_X", None)  # kNN keeps its training set as its model
    if isinstance(fit_x, np.ndarray):
        total += fit_x.size
    for name, value in vars(obj).items():
        if not name.endswith("_") or name.startswith("_"):
            continue
        if isinstance(value, np.ndarray) and value.dtype.kind in "fc":
            total += value.size
        elif isinstance(value, list | tuple | np.ndarray):
            total += sum(_count_sklearn(v, depth + 1) for v in np.ravel(np.asarray(value,
                         dtype=object)) if isinstance(v, BaseEstimator))
        elif isinstance(value, BaseEstimator):
            total += _count_sklearn(value, depth + 1)
    return total


def saved_size(run_dir: str | Path) -> int | None:
    """Bytes on disk of a saved run's model files, or None if none are there."""
    run_dir = Path(run_dir)
    files = [run_dir / name for name in MODEL_FILES if (run_dir / name).is_file()]
    return sum(f.stat().st_size for f in files) if files else None


def _extra_metrics(model: Any, data: Dataset) -> dict[str, Any]:
    """Model-specific numbers a model chooses to expose (e.g. k-means ARI/NMI): measured on
    `data` through `extra_metrics(X, y)` when the model offers it, plus its own training-set
    `extra_metrics_` under a `train_` prefix."""
    extra: dict[str, Any] = {}
    trained = getattr(model, "extra_metrics_", None)
    if isinstance(trained, dict):
        extra.update({f"train_{k}": v for k, v in trained.items()})
    if callable(getattr(model, "extra_metrics", None)):
        extra.update(model.extra_metrics(data.images, data.labels))
    return {str(k): (float(v) if isinstance(v, np.floating | float) else v)
            for k, v in extra.items()}
