"""`fmnist train MODEL`: fit one registered model, report its test accuracy, save the run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from fmnist.cli.app import app
from fmnist.data.resolve import resolve_data
from fmnist.errors import FmnistError
from fmnist.models import get_spec
from fmnist.runs.train import read_run_request, train_run


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
    seed: int = typer.Option(0, help="Random seed: same seed, same model."),
    val_fraction: float | None = typer.Option(
        None, "--val-fraction", help="Share of the training data held out for validation."),
    augment: bool | None = typer.Option(None, "--augment/--no-augment",
                                        help="On-device augmentation (neural models)."),
    device: str | None = typer.Option(None, help="auto, cpu, cuda or mps (neural models)."),
    reduce: str | None = typer.Option(None, help="Preprocessing for classical models: none, "
                                      "pca:0.95, pca:50 or lda."),
    train_size: int | None = typer.Option(None, "--train-size",
                                          help="Train on a stratified subset of this many images."),
    sets: list[str] = typer.Option([], "--set", help="Any other parameter, key=value "
                                   "(repeatable); values parse as JSON."),
    data: Path | None = typer.Option(None, help="Your own data: a Kaggle CSV or a folder with "
                                     "one sub-folder of photos per class."),
    test_data: Path | None = typer.Option(None, "--test-data",
                                          help="Test set for --data (default: hold out 20%)."),
    size: int = typer.Option(28, help="Image side for --data photo folders."),
    data_dir: Path | None = typer.Option(None, "--data-dir",
                                         help="Folder with the official Fashion-MNIST files."),
    out: Path = typer.Option(Path("runs"), help="Folder that receives the run folder."),
    resume: Path | None = typer.Option(None, help="Continue an interrupted run folder."),
) -> None:
    """Train one model on the training data, print its test accuracy and where it was saved."""
    console = Console(soft_wrap=True)  # paths and numbers stay on one line, whatever the width
    run_dir = None
    data_args = {"data": data, "test_data": test_data, "size": size, "data_dir": data_dir,
                 "train_size": train_size}
    if resume is not None:
        request = read_run_request(resume)
        model, params = request["model"], dict(request["params"])
        seed, val_fraction, run_dir = request.get("seed", seed), request.get("val_fraction"), resume
        data_args = {**data_args, **request.get("data_args", {})}
    else:
        if model is None:
            raise FmnistError("name a model to train (see 'fmnist models'), or give --resume RUN")
        options = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "augment": augment,
                   "device": device, "reduce": reduce}
        params = {k: v for k, v in options.items() if v is not None}
        params.update(parse_assignments(sets))
    get_spec(model)  # an unknown name fails before any data is loaded
    paths = {k: Path(v) if v is not None else None
             for k, v in data_args.items() if k in ("data", "test_data", "data_dir")}
    train_ds, test_ds, description = resolve_data(paths["data"], paths["test_data"],
                                                  paths["data_dir"], data_args["size"], seed)
    subset = data_args["train_size"]
    if subset is not None and subset < len(train_ds):
        train_ds = train_ds.head(n=subset, seed=seed)
        description += f"; trained on a stratified subset of {subset}"
    console.print(f"[bold]{model}[/] on {description}; parameters: {params or 'defaults'}")
    result = train_run(model, params, train_ds, test_ds, out_root=out, run_dir=run_dir,
                       val_fraction=val_fraction, seed=seed, resume=resume is not None,
                       data_description=description,
                       data_args={k: str(v) if isinstance(v, Path) else v
                                  for k, v in data_args.items()})
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
    if metrics.get("interrupted"):
        console.print("[yellow]training was interrupted; the best weights so far were saved[/]")
    console.print(f"saved: {result.run_dir}")
