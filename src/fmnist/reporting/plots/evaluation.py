"""Figures of how models perform, one function each; every axis speaks in class names.

Each function takes numbers already computed by `fmnist.evaluation.metrics` (or a model's training
history), draws one figure, saves it as a PNG at `path` and returns that path, so what a figure
shows is exactly what the report's tables say.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.text import Text
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from fmnist.reporting.plots import plain, plain_all, save, style

TITLE_CHARS = 160

WRONG = "#c0392b"
RIGHT = "#1e7d32"


def confusion_heatmap(confusion: np.ndarray, class_names: Sequence[str], path: str | Path,
                      title: str = "Confusion matrix") -> Path:
    """Rows = actual class, columns = predicted; colour is the row share (so rare and common
    classes read alike) and each cell prints its count."""
    cm = np.asarray(confusion)
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    class_names, title = plain_all(class_names), plain(title, TITLE_CHARS)
    n = len(class_names)
    with style():
        fig, ax = plt.subplots(figsize=(0.62 * n + 3.2, 0.55 * n + 2.2))
        im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    ax.text(j, i, f"{cm[i, j]:,}", ha="center", va="center", fontsize=8,
                            color="white" if share[i, j] > 0.55 else "#222")
        ax.set_xticks(range(n), class_names, rotation=45, ha="right")
        ax.set_yticks(range(n), class_names)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("actual class")
        ax.set_title(title)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the actual class")
        return save(fig, path)


def _image_panel(ax, image: np.ndarray, top: str, bottom: str, wrong: bool) -> None:
    ax.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    color = WRONG if wrong else RIGHT
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_color(color)
        spine.set_linewidth(3 if wrong else 1)
    ax.set_title(top, fontsize=8, pad=2)
    ax.set_xlabel(bottom, fontsize=8, color=color, labelpad=2)


def _image_grid(n: int, cols: int = 6) -> tuple[plt.Figure, np.ndarray]:
    """A figure of `n` image panels in rows of `cols`, every axis hidden until a panel uses it."""
    rows = max(1, int(np.ceil(n / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.75, rows * 2.05), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    return fig, axes


def prediction_grid(images: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray,
                    class_names: Sequence[str], path: str | Path, n: int = 24,
                    seed: int = 0, title: str = "Predictions on test images") -> Path:
    """A random sample of test images titled "Actual: X" over "Predicted: Y"; wrong ones get a
    thick red frame and a ✗ so they stand out."""
    rng = np.random.default_rng(seed)
    picks = np.sort(rng.choice(len(images), size=min(n, len(images)), replace=False))
    class_names, title = plain_all(class_names), plain(title, TITLE_CHARS)
    with style():
        fig, axes = _image_grid(len(picks))
        for ax, k in zip(axes.flat, picks, strict=False):
            ax.axis("on")
            wrong = y_true[k] != y_pred[k]
            mark = "✗ " if wrong else ""
            _image_panel(ax, images[k], f"Actual: {class_names[y_true[k]]}",
                         f"{mark}Predicted: {class_names[y_pred[k]]}", wrong)
        n_wrong = int(np.sum(y_true[picks] != y_pred[picks]))
        fig.suptitle(f"{title} ({n_wrong} of {len(picks)} wrong, framed red)")
        fig.tight_layout()
        return save(fig, path)


def confident_mistakes(images: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray,
                       proba: np.ndarray | None, class_names: Sequence[str], path: str | Path,
                       n: int = 18, title: str = "Most confident mistakes") -> Path:
    """The wrong predictions the model was surest of (highest probability on the wrong class):
    where it fails with conviction. Without probabilities, the first mistakes are shown."""
    wrong = np.flatnonzero(y_true != y_pred)
    if proba is not None and len(wrong):
        confidence = proba[wrong, y_pred[wrong]]
        order = np.argsort(-confidence, kind="stable")
        wrong, confidence = wrong[order], confidence[order]
    else:
        confidence = None
    wrong = wrong[:n]
    class_names, title = plain_all(class_names), plain(title, TITLE_CHARS)
    with style():
        fig, axes = _image_grid(len(wrong))
        for idx, (ax, k) in enumerate(zip(axes.flat, wrong, strict=False)):
            ax.axis("on")
            conf = f" ({confidence[idx]:.0%})" if confidence is not None else ""
            _image_panel(ax, images[k], f"Actual: {class_names[y_true[k]]}",
                         f"Predicted: {class_names[y_pred[k]]}{conf}", True)
        if not len(wrong):
            axes[0, 0].text(0, 0.5, "no mistakes", fontsize=12)
        fig.suptitle(title)
        fig.tight_layout()
        return save(fig, path)


def _history_series(history: Sequence[Mapping[str, float]], metric: str) -> dict[str, list]:
    """Split per-epoch dicts into train/validation series for `metric` ("loss" or "acc").

    Engines name keys differently ("train_loss", "val_acc", "loss", "accuracy"...), so any key
    mentioning the metric counts; one mentioning "val" is validation, otherwise training.
    """
    series: dict[str, list] = {}
    keys = {k for row in history for k in row}
    for key in sorted(keys):
        low = key.lower()
        if metric not in low:
            continue
        label = "validation" if "val" in low else "train"
        if label in series:  # keep the first matching key per side
            continue
        series[label] = [row.get(key, np.nan) for row in history]
    return series


def training_curves(history: Sequence[Mapping[str, float]], path: str | Path,
                    title: str = "Training curves") -> Path:
    """Loss (left) and accuracy (right) per epoch, training vs validation: over-fitting shows as
    the validation curve turning away from the training one."""
    epochs = np.arange(1, len(history) + 1)
    title = plain(title, TITLE_CHARS)
    with style():
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        for ax, metric, name in ((axes[0], "loss", "loss"), (axes[1], "acc", "accuracy")):
            for label, values in _history_series(history, metric).items():
                ax.plot(epochs, values, marker="o", ms=3,
                        ls="--" if label == "validation" else "-", label=label)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel(name)
            ax.set_title(name)
            if ax.has_data():
                ax.legend()
            else:
                ax.text(0.5, 0.5, f"no {name} recorded", ha="center", transform=ax.transAxes)
        fig.suptitle(title)
        fig.tight_layout()
        return save(fig, path)


def accuracy_vs_time(names: Sequence[str], accuracy: Sequence[float],
                     ci: Sequence[tuple[float, float]], fit_seconds: Sequence[float],
                     families: Sequence[str], path: str | Path,
                     title: str = "Test accuracy vs training time") -> Path:
    """One point per model, with its 95% CI as an error bar; training time on a log axis because
    models span milliseconds (kNN) to minutes (CNNs)."""
    acc = np.asarray(accuracy, dtype=float)
    secs = np.maximum(np.asarray(fit_seconds, dtype=float), 1e-2)
    bounds = np.asarray(ci, dtype=float).reshape(-1, 2)
    err = np.abs(np.stack([acc - bounds[:, 0], bounds[:, 1] - acc]))
    palette = {"neural": "#c44e52", "classical": "#4c72b0"}
    names, title = plain_all(names), plain(title, TITLE_CHARS)
    with style():
        fig, ax = plt.subplots(figsize=(8.5, 5))
        for fam in sorted(set(families)):
            m = np.array([f == fam for f in families])
            ax.errorbar(secs[m], acc[m], yerr=err[:, m], fmt="o", capsize=3,
                        color=palette.get(fam, "#55a868"), label=plain(fam))
        ax.set_xscale("log")
        plain_log_ticks(ax.xaxis)
        ax.set_xlabel("training time, seconds (log scale)")
        ax.set_ylabel("test accuracy (95% CI)")
        ax.set_title(title)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(title="family")
        place_labels(ax, secs, acc, names)
        return save(fig, path)


def plain_log_ticks(axis) -> None:
    """Ticks of a log axis at 1-2-5 steps, labelled as plain numbers ("0.5", "20", not
    "2×10^0"), and no labels on the minor ticks."""
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


LEADER = {"arrowstyle": "-", "lw": 0.5, "color": "#888", "shrinkA": 0, "shrinkB": 2}
#: Where a point's label may go, in points from the point, tried in order.
LABEL_OFFSETS = [(6, 4), (6, -12), (6, 16), (6, -24), (6, 28), (-6, 4), (-6, -12), (-6, 16),
                 (6, -36), (6, 40), (-6, -24), (-6, 28)]


def place_labels(ax, xs: Sequence[float], ys: Sequence[float],
                 names: Sequence[str]) -> list:
    """Label each point without two labels overlapping: each label takes the first offset
    (`LABEL_OFFSETS`, nearest first) whose box overlaps no label placed before it, with a
    thin leader line when it had to move; labels are placed top to bottom. Returns the texts."""
    renderer = ax.figure.canvas.get_renderer()
    placed, texts = [], []
    for i in sorted(range(len(names)), key=lambda k: -ys[k]):
        for n, (dx, dy) in enumerate([*LABEL_OFFSETS, LABEL_OFFSETS[0]]):
            text = ax.annotate(names[i], (xs[i], ys[i]), textcoords="offset points",
                               xytext=(dx, dy), fontsize=8, ha="left" if dx > 0 else "right",
                               arrowprops=LEADER if n else None)
            box = Text.get_window_extent(text, renderer)  # the words, not the leader line
            if n == len(LABEL_OFFSETS) or not any(box.overlaps(o) for o in placed):
                break  # a free place, or none left: the nearest one, overlapping
            text.remove()
        placed.append(box)
        texts.append(text)
    return texts


def f1_heatmap(f1: np.ndarray, model_names: Sequence[str], class_names: Sequence[str],
               path: str | Path, title: str = "F1 per class and model") -> Path:
    """Models × classes, F1 in each cell: shows which garments every model finds hard (a pale
    column) and where one model beats the others."""
    f1 = np.asarray(f1, dtype=float)
    model_names, class_names = plain_all(model_names), plain_all(class_names)
    title = plain(title, TITLE_CHARS)
    with style():
        fig, ax = plt.subplots(figsize=(0.75 * len(class_names) + 3,
                                        0.42 * len(model_names) + 2.2))
        im = ax.imshow(f1, cmap="viridis", vmin=max(0.0, np.nanmin(f1) - 0.05), vmax=1.0,
                       aspect="auto")
        for i in range(f1.shape[0]):
            for j in range(f1.shape[1]):
                ax.text(j, i, f"{f1[i, j]:.2f}", ha="center", va="center", fontsize=7.5,
                        color="white" if f1[i, j] < np.nanmean(f1) else "black")
        ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
        ax.set_yticks(range(len(model_names)), model_names)
        ax.set_xlabel("class")
        ax.set_ylabel("model")
        ax.set_title(title)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="F1")
        return save(fig, path)
