"""The accuracy-vs-time figure: labels of nearby models never overlap, and the log axis reads
in plain numbers. Fast tier (no data)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.text import Text
from PIL import Image

from fmnist.reporting.plots import evaluation as plots

# Two models at almost the same place (as decision-tree and adaboost were in the quick report).
NAMES = ["decision-tree", "adaboost", "random-forest", "knn", "logistic", "bayes-3", "cnn"]
SECONDS = [2.0, 2.1, 2.3, 0.05, 2.2, 0.4, 40.0]
ACCURACY = [0.800, 0.801, 0.802, 0.85, 0.799, 0.80, 0.90]


def test_labels_of_close_points_do_not_overlap() -> None:
    fig, ax = plt.subplots(figsize=(8.5, 5))
    ax.scatter(SECONDS, ACCURACY)
    ax.set_xscale("log")
    texts = plots.place_labels(ax, SECONDS, ACCURACY, NAMES)
    renderer = fig.canvas.get_renderer()
    boxes = [Text.get_window_extent(t, renderer) for t in texts]  # words, not leader lines
    assert sorted(t.get_text() for t in texts) == sorted(NAMES)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b)
    plt.close(fig)


def test_log_axis_has_plain_tick_labels(tmp_path: Path) -> None:
    fig, ax = plt.subplots()
    ax.plot([0.3, 3.0], [0, 1])
    ax.set_xscale("log")
    plots.plain_log_ticks(ax.xaxis)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert labels and all("10^" not in s and "times" not in s for s in labels)
    assert "0.5" in labels and "1" in labels and "2" in labels
    assert not [t.get_text() for t in ax.xaxis.get_minorticklabels() if t.get_text()]
    plt.close(fig)
    path = plots.accuracy_vs_time(NAMES, ACCURACY, [(a - 0.01, a + 0.01) for a in ACCURACY],
                                  SECONDS, ["classical"] * 6 + ["neural"], tmp_path / "t.png")
    with Image.open(path) as image:
        assert image.width > 500
