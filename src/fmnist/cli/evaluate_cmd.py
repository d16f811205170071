"""`fmnist evaluate RUN` and `fmnist compare`: evaluate one saved run, or rank a suite of models."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from fmnist.cli.app import app
from fmnist.compare import PRESETS, compare, resolve_models
from fmnist.data.resolve import resolve_data
from fmnist.errors import FmnistError

DataOption = typer.Option(None, help="Your own data: a Kaggle CSV or a folder with one "
                          "sub-folder of photos per class (default: official Fashion-MNIST).")
TestDataOption = typer.Option(None, "--test-data",
                              help="Test set for --data (default: the same 20% hold-out as "
                                   "training, chosen by the seed).")
SizeOption = typer.Option(28, help="Image side for --data photo folders.")
DataDirOption = typer.Option(None, "--data-dir",
                             help="Folder with the official Fashion-MNIST files.")


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
    from fmnist.evaluate import evaluate
    from fmnist.plots import evaluation as plots
    from fmnist.runs import write_json
    from fmnist.store import load

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

    out = loaded.path
    written = [
        plots.confusion_heatmap(ev.confusion, names, out / "confusion.png",
                                title=f"Confusion matrix of {model_name}"),
        plots.prediction_grid(test.images, ev.y_true, ev.y_pred, names, out / "predictions.png",
                              title=f"{model_name} on random test images"),
        plots.confident_mistakes(test.images, ev.y_true, ev.y_pred, ev.proba, names,
                                 out / "mistakes.png",
                                 title=f"{model_name}: most confident mistakes"),
    ]
    history_path = out / "history.json"
    if history_path.is_file():
        history = json.loads(history_path.read_text(encoding="utf-8"))
        history = history.get("history") if isinstance(history, dict) else history
        if history:
            written.append(plots.training_curves(history, out / "training_curves.png",
                                                 title=f"{model_name}: training curves"))
    write_json(out / "evaluation.json", {**ev.to_dict(), "test_data": description})
    written.append(out / "evaluation.json")
    console.print("wrote " + ", ".join(str(p) for p in written))


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
    train_size: int | None = typer.Option(None, "--train-size", help="Use a stratified subset "
                                          "of this many training images for every model."),
    seed: int = typer.Option(0, help="Random seed for subsets, splits and models."),
    explore: bool = typer.Option(True, "--explore/--no-explore",
                                 help="Put the data analysis first in the report."),
    data: Path | None = DataOption,
    test_data: Path | None = TestDataOption,
    size: int = SizeOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Train (or reuse) a suite of models, rank them on the test set, write report.html."""
    if preset not in PRESETS:
        raise FmnistError(f"unknown preset {preset!r}; use one of {', '.join(PRESETS)}")
    names = [m.strip() for m in models.split(",") if m.strip()] if models else None
    if models is not None and not names:
        raise FmnistError("--models is empty; give comma-separated names (see 'fmnist models')")
    resolve_models(PRESETS[preset], names)  # a typo fails now, not after loading the data
    console = Console(soft_wrap=True)  # paths stay whole when piped
    train, test, description = resolve_data(data, test_data, data_dir, size, seed)
    if train_size is not None:
        if train_size < 2 * train.n_classes:
            raise FmnistError(f"--train-size {train_size} is too small; use at least "
                              f"{2 * train.n_classes}")
        if train_size < len(train):
            train = train.head(n=train_size, seed=seed)
            description += f"; every model trained on a stratified subset of {train_size:,}"
    result = compare(train, test, out, preset=preset, models=names, runs_dir=runs, seed=seed,
                     data_description=description, with_explore=explore,
                     log=lambda line: console.print(line, highlight=False))
    _print_leaderboard(console, result)
    console.print(f"report: [bold]{out / 'report.html'}[/] (also report.md, results.json, "
                  f"results.csv); total {result.seconds:.0f} s")
    if result.best_dir is not None:
        console.print(f"best model: [bold]{result.best.name}[/], saved in {result.best_dir} "
                      f"(use: fmnist predict {result.best_dir} PHOTO)")
    else:
        raise FmnistError("every model failed; see the errors above and in the report")


def _print_leaderboard(console: Console, result) -> None:
    """A compact leaderboard for the terminal (the report has every column)."""
    from fmnist.report import LEADERBOARD_COLUMNS, leaderboard_rows

    keys = ("rank", "model", "accuracy", "ci", "mcnemar_p", "fit_seconds", "train_images")
    titles = {**LEADERBOARD_COLUMNS, "mcnemar_p": "p vs best", "train_images": "trained on"}
    table = Table(title=f"Leaderboard ({result.preset.name})")
    for key in keys:
        table.add_column(titles[key], no_wrap=key in ("ci", "model"))
    for row in leaderboard_rows(result):
        table.add_row(*(str(row.get(k, "")) for k in keys))
    console.print(table)
