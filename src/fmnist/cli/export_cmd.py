"""`fmnist export RUN --format onnx`: a saved model as ONNX, checked with onnxruntime."""

from __future__ import annotations

from pathlib import Path

import typer

from fmnist.cli.app import app
from fmnist.errors import FmnistError


@app.command("export")
def export(
    run: Path = typer.Argument(..., help="A saved run folder (holding model.json)."),
    fmt: str = typer.Option("onnx", "--format", help="Export format (onnx)."),
    out: Path | None = typer.Option(None, "--out", help="Output file "
                                    "(default: RUN/model.onnx, RUN/model.int8.onnx with "
                                    "--int8)."),
    check: bool = typer.Option(True, "--check/--no-check", help="Write the file only if "
                               "onnxruntime reproduces the model on the official test set."),
    int8: bool = typer.Option(False, "--int8", help="Quantize a torch network to int8 (about 2x "
                              "faster on a CPU; same class as the model on >= 99% of the test "
                              "set, needs the official dataset)."),
) -> None:
    """Export a saved model to ONNX, checked against the original with onnxruntime."""
    from rich.console import Console

    from fmnist.extras import require_extra

    require_extra("export", "'fmnist export'")
    from fmnist.runs.export import export_onnx
    from fmnist.runs.store import load

    if fmt.lower() != "onnx":
        raise FmnistError(f"unknown export format {fmt!r}; supported: onnx")
    loaded = load(run)
    default = loaded.path / ("model.int8.onnx" if int8 else "model.onnx")
    path, report = export_onnx(loaded, out or default, check=check, int8=int8)
    console = Console(highlight=False, soft_wrap=True)
    console.print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    if report is not None:
        console.print(f"checked with onnxruntime on {report['n_images']:,} test images: top-1 "
                      f"agreement {report['top1_agreement']:.2%}, max probability difference "
                      f"{report['max_abs_diff']:.1e}")
