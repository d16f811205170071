"""`fmnist evaluate RUN`: evaluate one saved run on a test set and write its figures."""

from __future__ import annotations

from pathlib import Path

import typer

from fmnist.cli.app import app
from fmnist.cli.options import DataDirOption, DataOption, SizeOption, TestDataOption
from fmnist.errors import FmnistError


@app.command("evaluate")
def evaluate_cmd(
    run: Path = typer.Argument(..., help="A run folder written by 'fmnist train' or "
                               "'fmnist compare' (it holds model.json)."),
    data: Path | None = DataOption,
    test_data: Path | None = TestDataOption,
    size: int = SizeOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Evaluate a saved model on the test set: print the report, write figures into the run."""
    from rich.console import Console

    from fmnist.data.resolve import resolve_data
    from fmnist.evaluation.metrics import evaluate
    from fmnist.reporting.figures import evaluation_figures, read_history
    from fmnist.runs.store import load
    from fmnist.runs.train import write_json

    console = Console(soft_wrap=True)  # paths stay whole when piped
    loaded = load(run)
    seed = int(loaded.meta.get("seed", 0) or 0)
    _, test, description = resolve_data(data, test_data, data_dir, size, seed)
    names = tuple(loaded.meta.get("class_names") or test.class_names)
    if names != tuple(test.class_names):
        raise FmnistError(f"{run}: the model knows the classes {list(names)} but the test data "
                          f"has {list(test.class_names)}; pass the matching --data/--test-data")
    model_name = loaded.meta.get("model", run.name)
    fit_seconds = loaded.meta.get("metrics", {}).get("fit_seconds")
    ev = evaluate(loaded.model, test, model_name=model_name, fit_seconds=fit_seconds,
                  run_dir=loaded.path)
    console.print(f"[dim]test data: {description}[/]")
    console.print(ev.text(), highlight=False)

    figures = evaluation_figures(ev, test.images, loaded.path,
                                 history=read_history(loaded.path))
    write_json(loaded.path / "evaluation.json", {**ev.to_dict(), "test_data": description})
    written = [*figures.values(), loaded.path / "evaluation.json"]
    console.print("wrote " + ", ".join(str(p) for p in written))
