"""`fmnist explore`: figures, statistics and a self-contained page about the data."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from fmnist.cli.app import app
from fmnist.data import load_csv, load_fashion_mnist
from fmnist.errors import FmnistError


@app.command("explore")
def explore_cmd(
    out: Path = typer.Option(
        Path("explore"), "--out", "-o",
        help="Folder for the PNG figures, index.html, summary.md and stats.json."),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Folder with the four official .gz files (default: $FMNIST_DATA, "
        "the cache, /usr/share/datasets/fashion-mnist)."),
    data: Path | None = typer.Option(
        None, "--data", help="Training images as a Kaggle-layout CSV (label,pixel1..) instead of "
        "the official files."),
    test_data: Path | None = typer.Option(
        None, "--test-data", help="Test images as a Kaggle-layout CSV; with --data and without "
        "this, only the CSV's own split is analysed."),
    points: int = typer.Option(200, "--points", min=1,
                               help="Points per class in the PCA/LDA scatter plots."),
    seed: int = typer.Option(0, "--seed", help="Seed for the sampled examples and points."),
) -> None:
    """Analyse the data: sample grid, class balance, mean/std images, pixel histogram, PCA and
    Fisher-LDA projections, per-class statistics. Writes PNGs, index.html, summary.md and
    stats.json."""
    from fmnist.reporting.explore import explore  # matplotlib/sklearn load only for this command

    if test_data is not None and data is None:
        raise FmnistError("--test-data needs --data (the training CSV) as well")
    if data is not None:
        train = load_csv(data)
        test = load_csv(test_data) if test_data is not None else None
    else:
        train = load_fashion_mnist("train", data_dir)
        test = load_fashion_mnist("test", data_dir)
    console = Console(soft_wrap=True)  # paths stay whole when piped
    with console.status("analysing the data…"):
        result = explore(train, test, out, points_per_class=points, seed=seed)
    pca = result.stats["pca"]["components_for"]
    console.print(f"[green]wrote[/] {len(result.figures)} figures, index.html, summary.md and "
                  f"stats.json to {out}  ({result.stats['seconds']['total']:.1f} s)")
    console.print("PCA components for " + ", ".join(f"{t}: {n}" for t, n in pca.items()))
    for row in result.stats["per_class"]:
        console.print(f"  {row['class']:12s} ink {row['ink_fraction']:.3f}  nearest "
                      f"{row['nearest_class']} ({row['nearest_distance']:.2f})", highlight=False)
    console.print(f"open {result.files['html']}")
