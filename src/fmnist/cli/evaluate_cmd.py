"""`fmnist evaluate RUN`: evaluate one saved run on a test set and write its figures;
`fmnist evaluate [RUN] --photos DIR`: score it (default: the shipped model) on labelled photos."""

from __future__ import annotations

from pathlib import Path

import typer

from fmnist.cli import options as opt
from fmnist.cli.app import app
from fmnist.errors import FmnistError


@app.command("evaluate")
def evaluate_cmd(
    run: Path | None = typer.Argument(None, help="A run folder written by 'fmnist train' or "
                                      "'fmnist compare' (it holds model.json); with --photos "
                                      "it may be left out for the shipped model."),
    photos: Path | None = typer.Option(None, "--photos", help="Score real photos instead: a "
                                       "folder with labels.tsv or one sub-folder per class."),
    pipeline: str = typer.Option("v2", "--pipeline", help="Photo conversion for --photos: v2 "
                                 "or paper."),
    report: Path | None = typer.Option(None, "--report", help="HTML contact sheet for --photos "
                                       "(default: RUN/photos.html, or ./photos.html for the "
                                       "shipped model)."),
    data: Path | None = opt.DataOption,
    test_data: Path | None = opt.TestDataOption,
    size: int = opt.SizeOption,
    data_dir: Path | None = opt.DataDirOption,
) -> None:
    """Evaluate a saved model on the test set: print the report, write figures into the run."""
    from rich.console import Console

    from fmnist.data.resolve import check_classes, resolve_data
    from fmnist.evaluation.metrics import evaluate
    from fmnist.reporting.figures import evaluation_figures
    from fmnist.runs.store import load, read_history
    from fmnist.runs.train import write_json
    from fmnist.weights import default_run_dir

    console = Console(soft_wrap=True)  # paths stay whole when piped
    if photos is not None:
        _evaluate_photos(console, run, photos, pipeline, report)
        return
    if run is None:
        raise FmnistError("name a run folder to evaluate on the test set (or give --photos DIR "
                          "to score the shipped model on labelled photos)")
    if run.resolve() == default_run_dir().resolve():  # package data: pinned, never written
        raise FmnistError(f"{run} is the model shipped inside fmnist, whose files are not "
                          "written to; evaluate a copy of the folder instead")
    loaded = load(run)
    seed = int(loaded.meta.get("seed", 0) or 0)
    _, test, description = resolve_data(data, test_data, data_dir, size, seed)
    check_classes(loaded.class_names or test.class_names, test, f"those of the model in {run}:")
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


def _evaluate_photos(console, run: Path | None, photos: Path, pipeline: str,
                     report: Path | None) -> None:
    """`--photos`: top-1/top-2 with Wilson intervals, per class, and the HTML contact sheet."""
    from fmnist.evaluation.photos import evaluate_photo_folder, summary_text
    from fmnist.images.photo import PIPELINES
    from fmnist.weights import load_run_or_default

    if pipeline not in PIPELINES:
        raise FmnistError(f"--pipeline must be {' or '.join(PIPELINES)}, got {pipeline!r}")
    loaded = load_run_or_default(run)
    report = report or (run / "photos.html" if run is not None else Path("photos.html"))
    evaluation = evaluate_photo_folder(loaded, photos, pipeline=pipeline, report=report)
    console.print(summary_text(evaluation.summary()), highlight=False)
    console.print(f"wrote {report}")
