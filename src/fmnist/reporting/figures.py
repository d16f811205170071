"""The figures of one evaluated model, written by one function for every caller.

`fmnist evaluate RUN` writes them into the run folder, `fmnist compare` writes the best model's
into its `figures/` folder (names prefixed `best_`): same figures, same titles, one code path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from fmnist.evaluation.metrics import Evaluation


def evaluation_figures(ev: Evaluation, images: np.ndarray, out_dir: str | Path, *,
                       prefix: str = "", history: Sequence[dict] | None = None,
                       test_name: str = "test set") -> dict[str, Path]:
    """Confusion matrix, random predictions, most confident mistakes and (when `history` is
    given) training curves of `ev` on `images` (the images `ev` was computed on).

    Returns `{prefix + name: path}`, each PNG saved as `out_dir/<prefix><name>.png`.
    """
    from fmnist.reporting.plots import evaluation as plots  # matplotlib only when drawing

    out = Path(out_dir)
    name, classes = ev.model_name, ev.class_names
    figures = {
        "confusion": plots.confusion_heatmap(
            ev.confusion, classes, out / f"{prefix}confusion.png",
            title=f"Confusion matrix of {name} ({test_name})"),
        "predictions": plots.prediction_grid(
            images, ev.y_true, ev.y_pred, classes, out / f"{prefix}predictions.png",
            title=f"{name} on random test images"),
        "mistakes": plots.confident_mistakes(
            images, ev.y_true, ev.y_pred, ev.proba, classes, out / f"{prefix}mistakes.png",
            title=f"{name}: most confident mistakes"),
    }
    if history:
        figures["training_curves"] = plots.training_curves(
            history, out / f"{prefix}training_curves.png", title=f"{name}: training curves")
    return {prefix + key: path for key, path in figures.items()}
