"""`fmnist models`: the registry, one line per model."""

from __future__ import annotations

import typer

from fmnist.cli.app import app


@app.command("models")
def models(
    name: str | None = typer.Argument(None, help="Show one model's defaults and quick settings."),
    pattern: str | None = typer.Option(None, "--filter",
                                       help="Only names matching this wildcard, e.g. 'cnn*'."),
) -> None:
    """List every registered model with its family and description."""
    from rich.console import Console
    from rich.table import Table

    from fmnist.models import create_model, get_spec, list_models

    console = Console(soft_wrap=True)  # paths stay whole when piped
    if name is not None:
        spec = get_spec(name)
        console.print(f"[bold]{spec.name}[/] ({spec.family}): {spec.description}")
        params = create_model(name).get_params(deep=False)  # imports the model's code
        table = Table("parameter (--set key=value)", "default", "quick preset")
        for key in sorted({*params, *spec.quick}):
            quick = repr(spec.quick[key]) if key in spec.quick else ""
            table.add_row(key, repr(params.get(key, "")), quick)
        console.print(table)
        return
    table = Table(title="Registered models (details: fmnist models NAME)")
    for col in ("name", "family", "description"):
        table.add_column(col)
    for spec in list_models(pattern):
        table.add_row(spec.name, spec.family, spec.description)
    console.print(table)
