"""Data analysis: the statistics and figures a person wants before training anything.

`explore(train, test, out_dir)` computes everything once (class counts, per-class mean and
standard-deviation images, pixel histograms, PCA and Fisher-LDA), draws one PNG per figure
from those numbers, and writes `stats.json`, `summary.md` and a self-contained `index.html`.
The returned `ExploreResult` carries the same numbers and an HTML section that the comparison
report embeds as its first part, so the data analysis is never computed two different ways.

Decisions where the issue was silent:
- "Ink" is any pixel > 0 (the images are bright garments on an exactly-0 background), the same
  definition `fmnist data info` uses.
- Per-class statistics describe the training split; the test split contributes its counts and
  the projected points.
- PCA and LDA are fitted on the whole training split (pixels scaled to 0–1); the scatter plots
  show a stratified subsample of the *test* split projected by them, so the LDA picture is not
  flattered by points the projection was fitted on.
- LDA uses scikit-learn's eigen solver with Ledoit–Wolf shrinkage: border pixels that are
  always 0 make the plain within-class scatter singular, which shrinkage handles exactly.
- Mean-image distance is Euclidean between class mean images with pixels scaled to 0–1.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fmnist.data import Dataset
from fmnist.data.dataset import per_class_indices
from fmnist.data.resolve import check_compatible
from fmnist.errors import FmnistError
from fmnist.fileio import atomic_write_text
from fmnist.reporting.document import Document, Figure, Paragraph, Section, Table
from fmnist.reporting.render import write_document

VARIANCE_THRESHOLDS = (0.90, 0.95, 0.99)

# name → (title, caption); the order is the order of the page.
FIGURES: dict[str, tuple[str, str]] = {
    "samples": ("Examples", "Random training examples, one row per class."),
    "class_balance": ("Class balance", "Images per class in each split."),
    "class_mean_std": ("Mean and standard-deviation images",
                       "Mean image (top) and per-pixel standard deviation (bottom) of each class "
                       "in the training split."),
    "pixel_histogram": ("Pixel intensities",
                        "Share of all pixels at each intensity per split (log scale), and the "
                        "intensity distribution of each class's ink pixels."),
    "class_distances": ("Distances between class mean images",
                        "Euclidean distance between class mean images (pixels 0–1); the red "
                        "box marks each class's nearest other class."),
    "pca_variance": ("PCA explained variance",
                     "Cumulative explained variance of PCA on the training pixels, with the "
                     "components needed for 90/95/99%."),
    "pca_projection": ("PCA projection",
                       "Test images projected on the first two principal components (fitted on "
                       "the training split), coloured by class."),
    "lda_projection": ("Fisher-LDA projection",
                       "Test images projected on the first two Fisher-LDA discriminants (fitted "
                       "on the training split), coloured by class; the percentages are each "
                       "discriminant's share of the Fisher criterion."),
}

TABLE_FORMATS = {"mean_intensity": ".1f", "ink_fraction": ".3f", "nearest_distance": ".2f"}

TABLE_CAPTION = ("Per-class statistics of the training split: ink = pixels > 0; distance = "
                 "Euclidean between mean images, pixels scaled to 0–1")

TABLE_COLUMNS = {
    "class": "class",
    "train_images": "train images",
    "test_images": "test images",
    "mean_intensity": "mean intensity (0–255)",
    "ink_fraction": "ink fraction",
    "nearest_class": "nearest other class",
    "nearest_distance": "mean-image distance",
}


@dataclass
class ExploreResult:
    """What `explore` produced: figure paths by name, the statistics, and the written files."""

    out_dir: Path
    figures: dict[str, Path]
    stats: dict
    files: dict[str, Path] = field(default_factory=dict)

    def section(self, title: str = "The data") -> Section:
        """The whole analysis as one section (facts, per-class table, every figure), for this
        page and for the comparison report, which includes it as it is."""
        return Section(title, [Paragraph(text) for text in self.facts()]
                       + [Table(self.stats["per_class"], TABLE_COLUMNS, TABLE_CAPTION,
                                TABLE_FORMATS)]
                       + [Figure(self.figures[name], caption, fig_title)
                          for name, (fig_title, caption) in FIGURES.items()
                          if name in self.figures], anchor="data")

    def document(self) -> Document:
        """`index.html` / `summary.md`: the section on a page of its own."""
        return Document("Fashion-MNIST: data exploration", sections=[self.section()])

    def facts(self) -> list[str]:
        """The analysis in sentences: splits, pixels, PCA, LDA and the most alike classes."""
        s = self.stats
        lines = [f"{split}: {row['images']:,} images of {'×'.join(map(str, row['shape']))} "
                 f"pixels, pixel mean {row['pixel_mean']:.2f} / std {row['pixel_std']:.2f} "
                 f"(0–255), ink fraction {row['ink_fraction']:.3f} (source: {row['source']})."
                 for split, row in s["splits"].items()]
        if "test" not in s["splits"]:
            lines.append("There is no test split: no test data was given.")
        pca = s["pca"]
        lines.append("PCA (fitted on the training split): "
                     + ", ".join(f"{t} of the variance kept by {n} components"
                                 for t, n in pca["components_for"].items())
                     + f"; the first two components explain "
                     f"{sum(pca['explained_variance_ratio'][:2]):.1%}.")
        lda = s["lda"]["criterion_share"]
        lines.append(f"Fisher-LDA ({len(lda)} discriminants): the first two carry "
                     f"{sum(lda[:2]):.1%} of the class separation (Fisher criterion).")
        lines.append("Most alike class pairs (mean-image distance): "
                     + "; ".join(f"{a} ↔ {b} ({d:.2f})" for a, b, d in self.closest_pairs())
                     + ".")
        return lines

    def closest_pairs(self, n: int = 3) -> list[tuple[str, str, float]]:
        """The `n` class pairs whose mean images are nearest, each pair once."""
        names = self.stats["class_names"]
        dist = self.stats["mean_image_distances"]
        pairs = [(dist[i][j], i, j) for i in range(len(names)) for j in range(i + 1, len(names))
                 if dist[i][j] is not None]
        return [(names[i], names[j], float(d)) for d, i, j in sorted(pairs)[:n]]


def split_stats(ds: Dataset) -> dict:
    """Size, shape, counts per class and pixel statistics of one split."""
    counts = np.bincount(ds.labels, minlength=ds.n_classes)
    pixels = ds.images.reshape(len(ds), -1)
    return {
        "images": int(len(ds)),
        "shape": list(ds.images.shape[1:]),
        "source": ds.source,
        "checksum": ds.checksum,
        "per_class": {name: int(n) for name, n in zip(ds.class_names, counts, strict=True)},
        "pixel_mean": float(pixels.mean(dtype=np.float64)),
        "pixel_std": float(pixels.std(dtype=np.float64)),
        "ink_fraction": float(np.count_nonzero(pixels) / pixels.size) if pixels.size else 0.0,
        "histogram": np.bincount(pixels.ravel(), minlength=256).tolist(),
    }


def class_images(ds: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Per-class mean and standard-deviation images, float64 `[C, H, W]` in 0–255 units."""
    shape = (ds.n_classes, *ds.images.shape[1:])
    means, stds = np.zeros(shape), np.zeros(shape)
    for c in range(ds.n_classes):
        members = ds.images[ds.labels == c]
        if len(members):
            means[c] = members.mean(axis=0, dtype=np.float64)
            stds[c] = members.std(axis=0, dtype=np.float64)
    return means, stds


def mean_image_distances(means: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Pairwise Euclidean distances between class mean images, pixels scaled to 0–1; NaN for
    a class with no images (`present` False), which has no mean image to compare."""
    flat = means.reshape(len(means), -1) / 255.0
    diff = flat[:, None, :] - flat[None, :, :]
    distances = np.sqrt((diff ** 2).sum(axis=-1))
    distances[~present, :] = np.nan
    distances[:, ~present] = np.nan
    return distances


def nearest_other(distances: np.ndarray, c: int) -> int | None:
    """The class whose mean image is nearest to class `c`'s, or None when there is none."""
    others = np.where(np.arange(len(distances)) == c, np.nan, distances[c])
    return None if np.all(np.isnan(others)) else int(np.nanargmin(others))


def per_class_table(ds: Dataset, test: Dataset | None, means: np.ndarray,
                    distances: np.ndarray) -> list[dict]:
    """One row per class: counts, mean intensity, ink fraction, nearest other class."""
    test_counts = (np.bincount(test.labels, minlength=ds.n_classes) if test is not None
                   else None)
    rows = []
    for c, name in enumerate(ds.class_names):
        members = ds.images[ds.labels == c]
        nearest = nearest_other(distances, c)
        row = {
            "label": c,
            "class": name,
            "train_images": int(len(members)),
            "test_images": int(test_counts[c]) if test_counts is not None else None,
            "mean_intensity": float(means[c].mean()) if len(members) else None,
            "ink_fraction": (float(np.count_nonzero(members) / members.size)
                             if len(members) else None),
            "nearest_class": ds.class_names[nearest] if nearest is not None else None,
            "nearest_distance": float(distances[c, nearest]) if nearest is not None else None,
        }
        rows.append(row)
    return rows


def fisher_ratio_shares(projected: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each discriminant's share of the total Fisher criterion (between- over within-class
    variance along it). scikit-learn's eigen solver normalises its ratios over all pixel
    dimensions, which makes them meaningless here, so they are measured on the projection."""
    overall = projected.mean(axis=0)
    between = np.zeros(projected.shape[1])
    within = np.zeros(projected.shape[1])
    for c in np.unique(labels):
        members = projected[labels == c]
        centre = members.mean(axis=0)
        between += len(members) * (centre - overall) ** 2
        within += ((members - centre) ** 2).sum(axis=0)
    criterion = between / np.maximum(within, np.finfo(float).tiny)
    return criterion / criterion.sum()


def _scaled(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


def _check(train: Dataset, test: Dataset | None) -> None:
    """Refuse what cannot be analysed, before any work or any file."""
    if len(train) == 0:
        raise FmnistError("the training set is empty: nothing to explore")
    if test is not None:
        check_compatible(train, test)
    if len(np.unique(train.labels)) < 2:
        raise FmnistError("the training set holds fewer than two classes: PCA/LDA projections "
                          "and class comparisons need at least two")


@dataclass
class Projections:
    """PCA and Fisher-LDA fitted on the training pixels, and the shown points projected."""

    explained: np.ndarray  # PCA explained-variance ratio per component
    cumulative: np.ndarray
    needed: dict[float, int]  # components needed for each VARIANCE_THRESHOLDS share
    lda_shares: np.ndarray  # each discriminant's share of the Fisher criterion
    pca_points: np.ndarray  # [n, 2]
    lda_points: np.ndarray  # [n, 2]
    labels: np.ndarray  # the shown points' labels


def project(train: Dataset, shown: Dataset, pick: np.ndarray) -> Projections:
    """Fit PCA and LDA on `train` and project `shown.images[pick]` on two axes of each."""
    from sklearn.decomposition import PCA
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    X = _scaled(train.images)
    pca = PCA(svd_solver="covariance_eigh").fit(X)  # eigh of the 784×784 covariance: fast
    cumulative = np.cumsum(pca.explained_variance_ratio_)
    needed = {t: int(min(np.searchsorted(cumulative, t) + 1, len(cumulative)))
              for t in VARIANCE_THRESHOLDS}
    lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage="auto",
                                     n_components=len(np.unique(train.labels)) - 1)
    lda.fit(X, train.labels)
    lda_shares = fisher_ratio_shares(lda.transform(X), train.labels)
    del X
    shown_X = _scaled(shown.images[pick])
    lda_points = lda.transform(shown_X)[:, :2]
    if lda_points.shape[1] == 1:  # two classes: one discriminant, drawn at y = 0
        lda_points = np.column_stack([lda_points[:, 0], np.zeros(len(lda_points))])
    return Projections(pca.explained_variance_ratio_, cumulative, needed, lda_shares,
                       pca.transform(shown_X)[:, :2], lda_points, shown.labels[pick])


def _draw(train: Dataset, split_rows: dict, means: np.ndarray, stds: np.ndarray,
          distances: np.ndarray, proj: Projections, shown_split: str, points: int,
          samples: int, seed: int, out: Path) -> dict[str, Path]:
    """Every figure of the analysis, one PNG each, from the numbers already computed."""
    from fmnist.reporting.plots import data as plots  # matplotlib only when figures are wanted

    names, evr, lda = train.class_names, proj.explained, proj.lda_shares
    grid = per_class_indices(train.labels, train.n_classes, samples, seed)
    class_hist = np.stack([np.bincount(train.images[train.labels == c].ravel(), minlength=256)
                           for c in range(train.n_classes)])
    shown = f"{shown_split} images on the first two"
    return {
        "samples": plots.sample_grid(train.images[grid], train.labels[grid], names,
                                     out / "samples.png", samples),
        "class_balance": plots.class_balance(
            {k: list(v["per_class"].values()) for k, v in split_rows.items()}, names,
            out / "class_balance.png"),
        "class_mean_std": plots.class_mean_std(means, stds, names, out / "class_mean_std.png"),
        "pixel_histogram": plots.pixel_histogram(
            {k: np.asarray(v["histogram"]) for k, v in split_rows.items()}, class_hist, names,
            out / "pixel_histogram.png"),
        "class_distances": plots.class_distances(distances, names, out / "class_distances.png"),
        "pca_variance": plots.explained_variance(proj.cumulative, proj.needed,
                                                 out / "pca_variance.png"),
        "pca_projection": plots.projection(
            proj.pca_points, proj.labels, names, out / "pca_projection.png",
            f"PCA: {shown} components ({points} per class)",
            (f"PC 1 ({evr[0]:.1%} of variance)", f"PC 2 ({evr[1]:.1%} of variance)")),
        "lda_projection": plots.projection(
            proj.lda_points, proj.labels, names, out / "lda_projection.png",
            f"Fisher-LDA: {shown} discriminants ({points} per class)",
            (f"LD 1 ({lda[0]:.1%} of the class separation)",
             f"LD 2 ({lda[1]:.1%})" if len(lda) > 1 else "(one discriminant only)")),
    }


def _stats(train: Dataset, split_rows: dict, table: list[dict], distances: np.ndarray,
           proj: Projections, shown: str) -> dict:
    """stats.json: every number the page shows, and how it was computed."""
    return {
        "class_names": list(train.class_names),
        "splits": split_rows,
        "per_class": table,
        "mean_image_distances": [[None if np.isnan(v) else round(float(v), 6) for v in row]
                                 for row in distances],
        "pca": {
            "fitted_on": f"train ({len(train):,} images, pixels scaled to 0-1)",
            "components_for": {f"{t:.0%}": n for t, n in proj.needed.items()},
            "explained_variance_ratio": np.round(proj.explained[:50], 6).tolist(),
            "cumulative_variance": np.round(proj.cumulative, 6).tolist(),
        },
        "lda": {
            "fitted_on": f"train ({len(train):,} images), eigen solver, Ledoit-Wolf shrinkage",
            "criterion_share": np.round(proj.lda_shares, 6).tolist(),
        },
        "projections_show": shown,
        "seconds": {"statistics": None, "total": None},
    }


def explore(train: Dataset, test: Dataset | None, out_dir: str | Path, *,
            points_per_class: int = 200, samples_per_class: int = 10,
            seed: int = 0) -> ExploreResult:
    """Analyse `train` (and `test`, when given) and write figures, stats.json, summary.md and
    index.html into `out_dir`. Projections show `points_per_class` test points per class (train
    points when there is no test split); the sample grid shows `samples_per_class` per class."""
    _check(train, test)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FmnistError(f"cannot create the output folder {out}: {exc}") from exc

    started = time.perf_counter()
    splits = {"train": train} | ({"test": test} if test is not None else {})
    split_rows = {k: split_stats(ds) for k, ds in splits.items()}
    means, stds = class_images(train)
    distances = mean_image_distances(means, np.bincount(train.labels,
                                                        minlength=train.n_classes) > 0)
    table = per_class_table(train, test, means, distances)
    shown, shown_split = (test, "test") if test is not None else (train, "train")
    pick = per_class_indices(shown.labels, shown.n_classes, points_per_class, seed)
    proj = project(train, shown, pick)
    stats = _stats(train, split_rows, table, distances, proj,
                   f"{shown_split}: {len(pick)} images, up to {points_per_class} per class, "
                   f"seed {seed}")
    stats["seconds"]["statistics"] = round(time.perf_counter() - started, 2)

    figures = _draw(train, split_rows, means, stds, distances, proj, shown_split,
                    points_per_class, samples_per_class, seed, out)
    result = ExploreResult(out, figures, stats)
    written = write_document(result.document(), out / "index.html", out / "summary.md")
    result.files = {"summary": written["markdown"], "html": written["html"]}
    stats["seconds"]["total"] = round(time.perf_counter() - started, 2)
    result.files["stats"] = atomic_write_text(out / "stats.json", json.dumps(stats, indent=2))
    return result
