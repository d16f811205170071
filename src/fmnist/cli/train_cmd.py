"""`fmnist train MODEL`: fit one registered model, report its test accuracy, save the run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from fmnist.cli import options as opt
from fmnist.cli.app import app
from fmnist.errors import FmnistError

if TYPE_CHECKING:
    from rich.console import Console

    from fmnist.runs.train import RunResult


def parse_assignments(pairs: list[str]) -> dict[str, Any]:
    """`key=value` strings → parameters; values parse as JSON when they can (numbers, lists,
    true/false/null), else stay strings."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise FmnistError(f"--set expects key=value, got {pair!r}")
        try:
            params[key.strip()] = json.loads(raw)
        except ValueError:
            params[key.strip()] = raw
    return params


@app.command("train")
def train(
    model: str = typer.Argument(None, help="A registered model name (see 'fmnist models'). "
                                "Not needed with --resume."),
    epochs: int | None = typer.Option(None, help="Training epochs (neural models)."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Mini-batch size."),
    lr: float | None = typer.Option(None, help="Peak learning rate."),
    seed: int = opt.SeedOption,
    val_fraction: float | None = typer.Option(
        None, "--val-fraction", help="Share of the training data held out for validation."),
    augment: bool | None = typer.Option(None, "--augment/--no-augment",
                                        help="On-device augmentation (neural models)."),
    device: str | None = typer.Option(None, help="auto, cpu, cuda or mps (neural models)."),
    reduce: str | None = typer.Option(None, help="Preprocessing for classical models: none, "
                                      "pca:0.95, pca:50 or lda."),
    train_size: int | None = opt.TrainSizeOption,
    sets: list[str] = typer.Option([], "--set", help="Any other parameter, key=value "
                                   "(repeatable); values parse as JSON."),
    data: Path | None = opt.DataOption,
    test_data: Path | None = opt.TestDataOption,
    size: int = opt.SizeOption,
    data_dir: Path | None = opt.DataDirOption,
    out: Path = typer.Option(Path("runs"), help="Folder that receives the run folder."),
    resume: Path | None = typer.Option(None, help="Continue an interrupted run folder."),
) -> None:
    """Train one model on the training data, print its test accuracy and where it was saved."""
    from rich.console import Console

    from fmnist.models import get_spec
    from fmnist.runs.request import TrainRequest

    console = Console(soft_wrap=True)  # paths and numbers stay on one line, whatever the width
    if resume is not None:
        request = TrainRequest.resume(resume)
    elif model is None:
        raise FmnistError("name a model to train (see 'fmnist models'), or give --resume RUN")
    else:
        options = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "augment": augment,
                   "device": device, "reduce": reduce}
        params = {k: v for k, v in options.items() if v is not None}
        request = TrainRequest(model, {**params, **parse_assignments(sets)}, seed, val_fraction,
                               {"data": data, "test_data": test_data, "size": size,
                                "data_dir": data_dir, "train_size": train_size})
    get_spec(request.model)  # an unknown name fails before any data is loaded
    train_ds, test_ds, description = request.load_data()
    console.print(f"[bold]{request.model}[/] on {description}; "
                  f"parameters: {request.params or 'defaults'}")
    result = request.run(train_ds, test_ds, description, out_root=out)
    _print_result(console, result)
    if result.metrics.get("interrupted"):
        raise typer.Exit(130)  # like any interrupted command: scripts must not see success


def _print_result(console: Console, result: RunResult) -> None:
    """Fit time, validation and test accuracy, model-specific scores, and where it was saved."""
    metrics = result.metrics
    console.print(f"fit: {result.fit_seconds:.1f} s")
    if "val_accuracy" in metrics:
        console.print(f"validation accuracy: {metrics['val_accuracy']:.4f}")
    if "test_accuracy" in metrics:
        console.print(f"[bold green]test accuracy: {metrics['test_accuracy']:.4f}[/] "
                      f"on {metrics['n_test']:,} images "
                      f"({metrics['predict_images_per_s']:,.0f} images/s)")
    for name, value in metrics.get("extra", {}).items():
        console.print(f"{name} (test set): {value:.4f}")
    console.print(f"saved: {result.run_dir}")
    if metrics.get("interrupted"):
        console.print(f"[yellow]training was interrupted; the best weights so far were saved, "
                      f"marked interrupted[/] (continue: fmnist train --resume {result.run_dir})")
