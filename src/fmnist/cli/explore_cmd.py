"""`fmnist explore`: figures, statistics and a self-contained page about the data."""

from __future__ import annotations

from pathlib import Path

import typer

from fmnist.cli import options as opt
from fmnist.cli.app import app
from fmnist.errors import FmnistError


@app.command("explore")
def explore_cmd(
    out: Path = typer.Option(
        Path("explore"), "--out", "-o",
        help="Folder for the PNG figures, index.html, summary.md and stats.json."),
    data: Path | None = opt.DataOption,
    test_data: Path | None = typer.Option(
        None, "--test-data", help="Test set for --data, in the same forms; without it only "
        "--data itself is analysed (nothing is held out: explore trains nothing)."),
    size: int = opt.SizeOption,
    data_dir: Path | None = opt.DataDirOption,
    points: int = typer.Option(200, "--points", min=1,
                               help="Points per class in the PCA/LDA scatter plots."),
    seed: int = opt.SeedOption,
) -> None:
    """Analyse the data: sample grid, class balance, mean/std images, pixel histogram, PCA and
    Fisher-LDA projections, per-class statistics. Writes PNGs, index.html, summary.md and
    stats.json."""
    from rich.console import Console

    from fmnist.data.resolve import explore_data
    from fmnist.reporting.explore import explore

    if test_data is not None and data is None:
        raise FmnistError("--test-data needs --data (the training data) as well")
    train, test = explore_data(data, test_data, data_dir, size)
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
