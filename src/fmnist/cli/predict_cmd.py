"""`fmnist predict FILES…` (shipped model) or `fmnist predict --run RUN FILES…`: name the garment.

The old form `fmnist predict RUN FILES…` still works: a first argument that is a run folder
(it holds model.json) is taken as the model, not as a folder of photos."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from fmnist.cli.app import app
from fmnist.cli.text import printable
from fmnist.defaults import DEFAULT_BATCH, DEFAULT_PIPELINE, MAX_PIXELS, PIPELINES, UNSURE_BELOW
from fmnist.errors import FmnistError


@app.command("predict")
def predict(
    inputs: list[Path] = typer.Argument(..., help="Photos, .npy arrays, IDX files, or folders "
                                        "of them (searched recursively). A first argument "
                                        "that is a run folder selects the model (old form)."),
    run: Path | None = typer.Option(None, "--run", help="A saved run folder (holding "
                                    "model.json); default: the model shipped with fmnist."),
    pipeline: str = typer.Option(DEFAULT_PIPELINE, "--pipeline", help="Photo conversion: v2 "
                                 "(colour background model, mask, dataset-like ink) or paper "
                                 "(the Fashion-MNIST paper's grey recipe)."),
    top_k: int = typer.Option(3, "--top-k", min=1, help="How many classes to show per image."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    show: Path | None = typer.Option(None, "--show", help="Save every photo's intermediate "
                                     "steps as PNGs in this folder (DIR/<name>/NN-step.png)."),
    batch_size: int = typer.Option(DEFAULT_BATCH, "--batch-size", min=1,
                                   help="Images scored per model call."),
    unsure_below: float = typer.Option(UNSURE_BELOW, "--unsure-below", min=0.0, max=1.0,
                                       help="Flag answers whose top probability is below this."),
    max_pixels: int = typer.Option(MAX_PIXELS, "--max-pixels", min=1,
                                   help="Refuse photos with more pixels (decompression bombs)."),
    threads: int = typer.Option(1, "--threads", min=1, help="Threads for a torch model or "
                                "ONNX graph. One is fastest for photos (measured: 39 ms vs "
                                "710 ms per photo on a busy 2-core machine); more can help "
                                "large .npy/IDX batches."),
) -> None:
    """Name the garment in each photo; exit 1 when any input could not be read."""
    from rich.console import Console
    from rich.markup import escape as markup_escape

    from fmnist.predict import InputFailure, predict_paths
    from fmnist.runs.store import TORCH_FILE
    from fmnist.weights import is_run_folder, load_run_or_default

    if run is None and is_run_folder(inputs[0]):
        if len(inputs) == 1:
            raise FmnistError(f"{inputs[0]} is a run folder: name the photos to predict after it")
        run, inputs = inputs[0], inputs[1:]
    if pipeline not in PIPELINES:
        raise FmnistError(f"--pipeline must be {' or '.join(PIPELINES)}, got {pipeline!r}")
    # A torch model gets its threads before the load, whose check runs a first forward pass
    # (2 threads on a busy 2-core machine: 1 s, measured; 1 thread: 0.01 s). A skops model
    # never imports torch, nor does the shipped model's ONNX graph (`fmnist.weights`).
    if run is not None and (run / TORCH_FILE).is_file():
        import torch

        torch.set_num_threads(threads)
    loaded = load_run_or_default(run, threads)
    results = predict_paths(loaded, inputs, top_k=top_k, batch_size=batch_size,
                            unsure_below=unsure_below, show_dir=show, max_pixels=max_pixels,
                            pipeline=pipeline)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    failed = 0
    records = []
    for result in results:
        if isinstance(result, InputFailure):
            failed += 1
            err.print(f"[bold red]error:[/] {markup_escape(printable(result.error))}")
            records.append(result.to_dict())
            continue
        if as_json:
            records.append(result.to_dict())
            continue
        ranked = "  ".join(f"{printable(name)} {p:6.1%}" for name, p in result.top_k)
        typer.echo(f"{printable(result.source)}\t{printable(result.message)}\t{ranked}")
    if as_json:
        typer.echo(json.dumps({"run": str(loaded.path), "results": records}, indent=2))
    if show is not None:
        err.print(f"intermediate steps saved under {show}")
    if failed:
        sys.exit(1)
