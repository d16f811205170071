"""Figures of the data itself, one function each: every axis speaks in class names.

Each function takes plain arrays (already computed by `fmnist.reporting.explore`), draws one
figure, saves
it as a PNG at `path` and returns that path; none of them computes statistics of its own, so the
numbers on a figure are exactly the numbers in `stats.json`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from fmnist.reporting.plots import class_colors, plain, plain_all, save, style


def sample_grid(images: np.ndarray, labels: np.ndarray, class_names: Sequence[str],
                path: str | Path, per_class: int = 10) -> Path:
    """One row per class, `per_class` examples in it, the class name at the start of the row.

    `images`/`labels` are the examples to show, already chosen (the first `per_class` of each
    class are drawn, in the given order). Pixels are shown as stored: a bright garment on black,
    separated by white gutters. The grid is one mosaic image (one `imshow`, not a hundred axes),
    which keeps the figure fast to draw.
    """
    class_names = plain_all(class_names)
    n = len(class_names)
    h, w = images.shape[1:3]
    gap = max(2, h // 10)
    mosaic = np.ma.masked_all((n * (h + gap) - gap, per_class * (w + gap) - gap))
    for c in range(n):
        for j, i in enumerate(np.flatnonzero(labels == c)[:per_class]):
            top, left = c * (h + gap), j * (w + gap)
            mosaic[top:top + h, left:left + w] = images[i]
    cmap = plt.get_cmap("gray").with_extremes(bad="white")
    with style():
        fig, ax = plt.subplots(figsize=(0.72 * per_class + 1.4, 0.72 * n + 0.5))
        ax.imshow(mosaic, cmap=cmap, vmin=0, vmax=255, interpolation="nearest")
        ax.set_yticks([c * (h + gap) + h / 2 - 0.5 for c in range(n)], class_names)
        ax.set_xticks([])
        ax.tick_params(left=False)
        ax.spines[:].set_visible(False)
        ax.set_title("Random training examples, one row per class")
        return save(fig, path)


def class_balance(counts: Mapping[str, Sequence[int]], class_names: Sequence[str],
                  path: str | Path) -> Path:
    """Images per class in each split (`counts`: split name → count per class), side by side."""
    splits = list(counts)
    class_names = plain_all(class_names)
    colors = ["#4c72b0", "#dd8452", "#55a868", "#c44e52"]
    y = np.arange(len(class_names))
    with style():
        fig, axes = plt.subplots(1, len(splits), figsize=(4.2 * len(splits) + 1.5, 4.2),
                                 sharey=True, squeeze=False)
        for k, (split, ax) in enumerate(zip(splits, axes[0], strict=True)):
            values = np.asarray(counts[split])
            total = values.sum()
            ax.barh(y, values, color=colors[k % len(colors)], height=0.7)
            for yi, v in zip(y, values, strict=True):
                share = 100.0 * v / total if total else 0.0
                ax.text(v, yi, f" {v:,} ({share:.1f}%)", va="center", fontsize=8.5)
            ax.set_xlim(0, max(values.max(), 1) * 1.38)
            ax.set_title(f"{plain(split)}: {total:,} images")
            ax.set_xlabel("images")
        axes[0, 0].set_yticks(y, class_names)
        axes[0, 0].invert_yaxis()
        fig.suptitle("Class balance", y=1.02)
        return save(fig, path)


def class_mean_std(mean_images: np.ndarray, std_images: np.ndarray,
                   class_names: Sequence[str], path: str | Path) -> Path:
    """Top row: each class's mean image; bottom row: its per-pixel standard deviation.

    Both rows share one colour scale each (intensity 0–255), so classes compare directly.
    """
    class_names = plain_all(class_names)
    n = len(class_names)
    with style():
        fig, axes = plt.subplots(2, n, figsize=(1.25 * n + 1.2, 3.4), squeeze=False,
                                 gridspec_kw={"wspace": 0.06, "hspace": 0.12})
        rows = [("mean", mean_images, "gray"), ("std. dev.", std_images, "magma")]
        for r, (label, stack, cmap) in enumerate(rows):
            vmax = float(stack.max()) or 1.0
            for c, ax in enumerate(axes[r]):
                im = ax.imshow(stack[c], cmap=cmap, vmin=0, vmax=vmax, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                ax.spines[:].set_visible(False)
                if r == 0:
                    ax.set_title(class_names[c], fontsize=9)
            axes[r, 0].set_ylabel(label, fontsize=10)
            fig.colorbar(im, ax=list(axes[r]), fraction=0.012, pad=0.01)
        fig.suptitle("Mean and standard-deviation image per class (training set, 0–255)",
                     y=1.03)
        return save(fig, path)


def pixel_histogram(split_hist: Mapping[str, np.ndarray], class_hist: np.ndarray,
                    class_names: Sequence[str], path: str | Path) -> Path:
    """Left: share of pixels at each intensity 0–255 per split (log scale, background dominates).
    Right: per class, the distribution of the non-zero ("ink") intensities, in 16-level bins."""
    colors = class_colors(len(class_names))
    class_names = plain_all(class_names)
    with style():
        fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
        for split, hist in split_hist.items():
            hist = np.asarray(hist, dtype=float)
            left.step(np.arange(256), hist / hist.sum(), where="mid", label=plain(split),
                      lw=1.2)
        left.set_yscale("log")
        left.set_xlim(-2, 257)
        left.set_xlabel("pixel intensity (0 = background)")
        left.set_ylabel("share of all pixels (log scale)")
        left.set_title("Pixel intensities, all classes")
        left.legend()
        width = 16
        centers = np.arange(0, 256, width) + width / 2
        for c, name in enumerate(class_names):
            ink = np.asarray(class_hist[c], dtype=float).copy()
            ink[0] = 0.0  # background pixels are the left panel's story
            binned = np.add.reduceat(ink, np.arange(0, 256, width))
            share = binned / max(binned.sum(), 1.0)
            right.plot(centers, share, color=colors[c], lw=1.6, label=name)
        right.set_xlim(0, 256)
        right.set_xlabel("intensity of non-zero pixels")
        right.set_ylabel(f"share of the class's ink pixels (per {width} levels)")
        right.set_title("Ink intensity per class (training set)")
        right.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=9)
        return save(fig, path)


def projection(points: np.ndarray, labels: np.ndarray, class_names: Sequence[str],
               path: str | Path, title: str, axis_labels: tuple[str, str]) -> Path:
    """A 2-D scatter coloured by class with a legend of class names (points already subsampled)."""
    colors = class_colors(len(class_names))
    class_names, title = plain_all(class_names), plain(title, 160)
    axis_labels = (plain(axis_labels[0], 160), plain(axis_labels[1], 160))
    with style():
        fig, ax = plt.subplots(figsize=(8.6, 6.2))
        for c, name in enumerate(class_names):
            mask = labels == c
            ax.scatter(points[mask, 0], points[mask, 1], s=7, alpha=0.55, color=colors[c],
                       label=name, linewidths=0, rasterized=True)
        present = [c for c in range(len(class_names)) if (labels == c).any()]
        centres = np.array([np.median(points[labels == c], axis=0) for c in present])
        spots = _spread_labels(centres, ax) if len(present) else centres
        for c, (cx, cy) in zip(present, spots, strict=True):
            ax.annotate(class_names[c], (cx, cy), ha="center", va="center", fontsize=8.5,
                        fontweight="bold", color="black",
                        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": colors[c],
                              "alpha": 0.85})
        ax.set_xlabel(axis_labels[0])
        ax.set_ylabel(axis_labels[1])
        ax.set_title(title)
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=3.5,
                  handletextpad=0.3)
        return save(fig, path)


def _spread_labels(centres: np.ndarray, ax, min_dx: float = 0.13,
                   min_dy: float = 0.05) -> np.ndarray:
    """Nudge label positions (data units) apart vertically so class labels do not overlap:
    a few rounds of pushing any two closer than `min_dx`×`min_dy` (axes fractions) apart."""
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    scale = np.array([x1 - x0, y1 - y0])
    pos = centres / scale  # now in axes fractions (offsets cancel in differences)
    for _ in range(50):
        moved = False
        for i in range(len(pos)):
            for j in range(i + 1, len(pos)):
                dx, dy = pos[j] - pos[i]
                if abs(dx) < min_dx and abs(dy) < min_dy:
                    push = (min_dy - abs(dy)) / 2 + 1e-3
                    sign = 1.0 if dy >= 0 else -1.0
                    pos[i, 1] -= sign * push
                    pos[j, 1] += sign * push
                    moved = True
        if not moved:
            break
    return pos * scale


def explained_variance(cumulative: np.ndarray, marks: Mapping[float, int],
                       path: str | Path) -> Path:
    """Cumulative explained variance of PCA against components (log axis, so the steep start
    is visible); each threshold in `marks` (fraction → components needed) is marked."""
    k = np.arange(1, len(cumulative) + 1)
    with style():
        fig, ax = plt.subplots(figsize=(8, 4.6))
        ax.plot(k, cumulative, color="#4c72b0", lw=2, label="cumulative explained variance")
        palette = ["#55a868", "#dd8452", "#c44e52", "#8172b3"]
        for i, (threshold, n) in enumerate(sorted(marks.items())):
            color = palette[i % len(palette)]
            ax.plot([1, n, n], [threshold, threshold, 0], color=color, ls="--", lw=1.2,
                    label=f"{threshold:.0%} of variance: {n} components")
            ax.plot([n], [cumulative[n - 1]], "o", color=color)
            ax.annotate(str(n), (n, 0), xytext=(3, 4), textcoords="offset points",
                        color=color, fontsize=9.5, fontweight="bold")
        ax.set_xscale("log")
        ticks = [t for t in (1, 2, 5, 10, 20, 50, 100, 200, 500) if t < len(cumulative)]
        ax.set_xticks(ticks + [len(cumulative)], [str(t) for t in ticks + [len(cumulative)]])
        ax.minorticks_off()
        ax.set_xlim(1, len(cumulative))
        ax.set_ylim(0, 1.01)
        ax.set_xlabel("number of principal components (log scale)")
        ax.set_ylabel("cumulative share of variance")
        ax.set_title(f"PCA explained variance (of {len(cumulative)} pixel dimensions)")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", bbox_to_anchor=(0.62, 0.03))
        return save(fig, path)


def class_distances(distances: np.ndarray, class_names: Sequence[str], path: str | Path) -> Path:
    """Heat map of distances between class mean images; each row's nearest other class boxed.
    NaN entries (a class without images) stay blank."""
    class_names = plain_all(class_names)
    n = len(class_names)
    masked = distances.astype(float).copy()
    np.fill_diagonal(masked, np.nan)
    with style():
        fig, ax = plt.subplots(figsize=(7.6, 6.4))
        im = ax.imshow(masked, cmap="viridis_r")
        ax.set_xticks(range(n), class_names, rotation=40, ha="right")
        ax.set_yticks(range(n), class_names)
        ax.spines[:].set_visible(False)
        finite = masked[np.isfinite(masked)]
        mid = float(np.median(finite)) if finite.size else 0.0
        for i in range(n):
            for j in range(n):
                if np.isfinite(masked[i, j]):
                    ax.text(j, i, f"{masked[i, j]:.1f}", ha="center", va="center", fontsize=8,
                            color="black" if masked[i, j] < mid else "white")
            if np.isfinite(masked[i]).any():
                nearest = int(np.nanargmin(masked[i]))
                ax.add_patch(plt.Rectangle((nearest - 0.5, i - 0.5), 1, 1, fill=False,
                                           ec="red", lw=2))
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03,
                     label="Euclidean distance between mean images (pixels scaled to 0–1)")
        ax.set_title("How alike the class mean images are (red box: nearest other class)")
        return save(fig, path)
