"""`fmnist compare`: train (or reuse) a suite of models and rank them in one report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from fmnist.cli import options as opt
from fmnist.cli.app import app
from fmnist.errors import FmnistError

if TYPE_CHECKING:
    from rich.console import Console

    from fmnist.evaluation.compare import Comparison


@app.command("compare")
def compare_cmd(
    preset: str = typer.Option("quick", help="quick (every family in ~5 min on 2 CPU cores), "
                               "standard (all models, full data) or best (long; for a GPU)."),
    models: str | None = typer.Option(None, help="Comma-separated model names to run instead "
                                      "of the preset's list, e.g. knn,svm,cnn."),
    out: Path = typer.Option(Path("reports/compare"), help="Folder for the report, results and "
                             "the best model."),
    runs: Path | None = typer.Option(None, help="Folder of the comparison's runs (default: "
                                     "OUT/runs); finished runs with the same settings are reused."),
    train_size: int | None = opt.TrainSizeOption,
    seed: int = opt.SeedOption,
    explore: bool = typer.Option(True, "--explore/--no-explore",
                                 help="Put the data analysis first in the report."),
    jobs: int = typer.Option(1, "--jobs", min=1, max=64, help="Train this many models at once, "
                             "each in its own worker process on this machine (Dask)."),
    scheduler: str | None = typer.Option(None, "--scheduler", help="Train on the Dask cluster "
                                         "whose scheduler listens here, e.g. "
                                         "tcp://10.0.0.1:8786 (docs/distributed.md)."),
    data: Path | None = opt.DataOption,
    test_data: Path | None = opt.TestDataOption,
    size: int = opt.SizeOption,
    data_dir: Path | None = opt.DataDirOption,
) -> None:
    """Train (or reuse) a suite of models, rank them on the test set, write report.html."""
    from rich.console import Console

    from fmnist.data.resolve import resolve_data, training_subset
    from fmnist.evaluation.compare import PRESETS, compare, resolve_models
    from fmnist.evaluation.executors import start_executor

    if preset not in PRESETS:
        raise FmnistError(f"unknown preset {preset!r}; use one of {', '.join(PRESETS)}")
    names = [m.strip() for m in models.split(",") if m.strip()] if models else None
    if models is not None and not names:
        raise FmnistError("--models is empty; give comma-separated names (see 'fmnist models')")
    resolve_models(PRESETS[preset], names)  # a typo fails now, not after loading the data
    console = Console(soft_wrap=True)  # paths stay whole when piped
    train, test, description = resolve_data(data, test_data, data_dir, size, seed)
    train, note = training_subset(train, train_size, seed)
    description += note
    data_args = {"data": data, "test_data": test_data, "data_dir": data_dir, "size": size,
                 "train_size": train_size}  # how each worker loads the same data itself
    with start_executor(jobs, scheduler, data_args) as executor:
        result = compare(train, test, out, preset=preset, models=names, runs_dir=runs,
                         seed=seed, data_description=description, with_explore=explore,
                         log=lambda line: console.print(line, highlight=False),
                         executor=executor)
    _print_leaderboard(console, result)
    console.print(f"report: [bold]{out / 'report.html'}[/] (also report.md, results.json, "
                  f"results.csv); total {result.seconds:.0f} s")
    if result.best_dir is not None:
        console.print(f"best model: [bold]{result.best.name}[/], saved in {result.best_dir} "
                      f"(use: fmnist predict {result.best_dir} PHOTO)")
    else:
        raise FmnistError("every model failed; see the errors above and in the report")


def _print_leaderboard(console: Console, result: Comparison) -> None:
    """A compact leaderboard for the terminal (the report has every column)."""
    from rich.table import Table

    from fmnist.reporting.compare_report import LEADERBOARD_COLUMNS, leaderboard_rows

    keys = ("rank", "model", "accuracy", "ci", "mcnemar_p", "fit_seconds", "train_images")
    titles = {**LEADERBOARD_COLUMNS, "mcnemar_p": "p vs best", "train_images": "trained on"}
    table = Table(title=f"Leaderboard ({result.preset.name})")
    for key in keys:
        table.add_column(titles[key], no_wrap=key in ("ci", "model"))
    for row in leaderboard_rows(result):
        table.add_row(*(str(row.get(k, "")) for k in keys))
    console.print(table)
