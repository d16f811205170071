"""`fmnist data info|verify`: what the data is, where it came from, and whether it is intact."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from fmnist.cli.app import app
from fmnist.cli.options import DataDirOption

data_app = typer.Typer(help="Inspect and verify the official Fashion-MNIST files.",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")

JsonOption = typer.Option(False, "--json", help="Print JSON instead of tables.")


@data_app.command("verify")
def verify(data_dir: Path | None = DataDirOption) -> None:
    """Check the SHA-256 of every official file (decompressed content)."""
    from rich.console import Console

    from fmnist.data.facts import verify_files

    console = Console(soft_wrap=True)  # paths stay whole when piped
    for row in verify_files(data_dir):
        console.print(f"[green]ok[/] {row['file']:28s} {row['status']:16s} {row['path']}")


@data_app.command("info")
def info(data_dir: Path | None = DataDirOption, as_json: bool = JsonOption) -> None:
    """Shapes, class counts per split, pixel statistics, file locations and checksum status."""
    from rich.console import Console
    from rich.table import Table

    from fmnist.data.facts import split_summary, verify_files
    from fmnist.data.official import SPLITS, load_fashion_mnist

    files = verify_files(data_dir)
    summaries = {}
    for split_name in SPLITS:
        ds = load_fashion_mnist(split_name, data_dir)
        summaries[split_name] = split_summary(ds.images, ds.labels, ds.class_names)
    if as_json:
        typer.echo(json.dumps({"splits": summaries, "files": files}, indent=2))
        return
    console = Console(soft_wrap=True)  # paths stay whole when piped
    table = Table(title="Fashion-MNIST: images per class")
    table.add_column("label", justify="right")
    table.add_column("class")
    for split_name in SPLITS:
        table.add_column(split_name, justify="right")
    names = list(summaries["train"]["per_class"])
    for i, name in enumerate(names):
        table.add_row(str(i), name, *(f"{summaries[s]['per_class'][name]:,}" for s in SPLITS))
    table.add_row("", "[bold]total", *(f"[bold]{summaries[s]['images']:,}" for s in SPLITS))
    console.print(table)
    stats = Table(title="Pixels (uint8, 0 = background)")
    for col in ("split", "shape", "mean", "std", "min", "max", "ink fraction"):
        stats.add_column(col, justify="right")
    for s in SPLITS:
        row = summaries[s]
        stats.add_row(s, "×".join(map(str, row["shape"])), f"{row['pixel_mean']:.2f}",
                      f"{row['pixel_std']:.2f}", str(row["pixel_min"]), str(row["pixel_max"]),
                      f"{row['ink_fraction']:.3f}")
    console.print(stats)
    for row in files:
        console.print(f"[green]{row['status']}[/] {row['file']}  sha256 {row['sha256'][:16]}…  "
                      f"{row['path']}")


@data_app.command("download")
def download_files() -> None:
    """Download the official files into the user cache (MD5-checked, atomic), with progress."""
    from rich.console import Console
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    from fmnist.data.sources import OFFICIAL_FILES, cache_dir, download, locate

    console = Console(soft_wrap=True)  # paths stay whole when piped
    with Progress(*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn(),
                  console=console) as progress:
        for key, spec in OFFICIAL_FILES.items():
            found = locate(key)
            if found is not None:
                console.print(f"[green]present[/] {spec.name}: {found}")
                continue
            task = progress.add_task(spec.name, total=None)
            path = download(key, progress=lambda done, total, t=task: progress.update(
                t, completed=done, total=total or None))
            console.print(f"[green]downloaded[/] {spec.name} → {path}")
    console.print(f"cache: {cache_dir()}")
